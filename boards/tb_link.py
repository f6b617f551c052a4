"""cocotb bench of the board link: the board top's gateware on its serial lines, a host on a pseudo-terminal.

Run by :func:`bp_hw.boards.link_sim.run_link`, which writes the session's configuration
(``BP_HW_LINK_CONFIG``, JSON) and reads the result file it names. The bench

* opens a pseudo-terminal pair and starts the host command on its slave side (``bp-hw run``, the
  same code that talks to a real board's USB UART);
* runs the link's clock ``clk`` and the network's ``net_clk`` in the ratio of the board's clocks
  (``net_period_ps``);
* moves every byte the host writes onto the ``rx`` line bit by bit (start bit, 8 data bits LSB
  first, stop bit, ``divisor`` clock cycles per bit, 8N1 as the board's FT2232H sends them), and
  decodes the ``tx`` line the same way back into the pseudo-terminal;
* injects the faults the configuration asks for into either direction (:data:`FAULTS`), at seeded
  positions, and counts them;
* records the cycle of the first request byte and of the last response byte, the bytes each way, the
  board's error pulses (``frame_error``: framing, overrun, full FIFO, bad CRC, cut-off frame) and the
  host's exit status and JSON summary.

The line is driven half a clock period away from the clock edges, so no bit changes on an edge.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import tty
from collections import deque
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

#: Fault kinds: what the bench does when one is due.
FAULTS = {
    "flip": "flip one bit of a request byte",
    "drop": "drop one request byte",
    "garbage": "insert 1-8 random bytes between two request bytes",
    "cut": "drop the rest of the frame being sent, then keep the line idle for 3 idle timeouts",
    "burst": "send as many info requests as the receive FIFO holds, and 64 more, back to back: their answers "
             "are longer than the requests, so the answer queue and then the FIFO fill and bytes are lost",
    "reply_flip": "flip one bit of a response byte",
}

PERIOD_PS = 20_000          # the simulated link clock; figures are converted with the real f_link


class HostStream:
    """The bytes the host wrote, split into frames (the bench needs frame boundaries to cut frames).

    ``lengths`` maps a frame's first byte to its length; ``counted`` maps it to ``(offset, fixed, per)``
    for a frame whose length is ``fixed + per * byte[offset]``; any other byte is a frame of its own.
    """

    def __init__(self, lengths: dict[int, int], counted: dict[int, tuple[int, int, int]]):
        self.lengths = lengths
        self.counted = counted
        self.pending = bytearray()
        self.frames: deque[bytes] = deque()

    def feed(self, data: bytes) -> None:
        self.pending += data
        while self.pending:
            head = self.pending[0]
            if head in self.counted:
                offset, fixed, per = self.counted[head]
                if len(self.pending) <= offset:
                    return
                n = fixed + per * self.pending[offset]
            else:
                n = self.lengths.get(head, 1)
            if len(self.pending) < n:
                return
            frame = bytes(self.pending[:n])
            del self.pending[:n]
            self.frames.append(frame)


@cocotb.test()
async def link_session(dut):
    cfg = json.loads(Path(os.environ["BP_HW_LINK_CONFIG"]).read_text())
    divisor = int(cfg["divisor"])
    bit = divisor * PERIOD_PS
    fault = cfg.get("fault")
    every = int(cfg.get("fault_every", 0))
    max_faults = int(cfg.get("fault_count", 0))
    rng = random.Random(int(cfg.get("seed", 0)))
    stats = {"injected": 0, "bytes_to_board": 0, "bytes_to_host": 0, "first_request_cycle": None,
             "last_response_cycle": None, "responses": 0, "board_errors": 0}

    def cycle() -> int:
        return int(cocotb.utils.get_sim_time("ps")) // PERIOD_PS

    def due() -> bool:
        if fault is None or stats["injected"] >= max_faults:
            return False
        return rng.randrange(every) == 0

    cocotb.start_soon(Clock(dut.clk, PERIOD_PS, unit="ps").start())
    # The network's own clock (behind the board top's crossing), in its ratio to the link's.
    cocotb.start_soon(Clock(dut.net_clk, int(cfg["net_period_ps"]), unit="ps").start())
    dut.net_rst.value = 1
    dut.rx.value = 1
    dut.rst.value = 1
    await Timer(10 * PERIOD_PS + PERIOD_PS // 2, unit="ps")      # now half a period off the edges
    dut.rst.value = 0
    dut.net_rst.value = 0

    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    log = open(cfg["host_log"], "wb")
    host = subprocess.Popen([*cfg["host"], "--port", os.ttyname(slave)], stdout=subprocess.PIPE, stderr=log)
    stream = HostStream({int(k): int(v) for k, v in cfg["lengths"].items()},
                        {int(k): tuple(v) for k, v in cfg["counted"].items()})
    done = False

    async def send_byte(value: int):
        for level in [0] + [(value >> k) & 1 for k in range(8)] + [1]:
            dut.rx.value = level
            await Timer(bit, unit="ps")

    async def feeder():
        while not done:
            try:
                stream.feed(os.read(master, 4096))
            except (BlockingIOError, OSError):
                pass
            if not stream.frames:
                await Timer(bit, unit="ps")
                continue
            frame = stream.frames.popleft()
            if frame[0] in (0xA5, 0x54) and stats["first_request_cycle"] is None:
                stats["first_request_cycle"] = cycle()
            if fault == "burst" and due():
                stats["injected"] += 1
                frame = bytes([0x3F]) * (int(cfg["rx_fifo"]) + 64) + frame
            if fault == "cut" and len(frame) > 2 and due():
                stats["injected"] += 1
                for value in frame[:rng.randrange(1, len(frame))]:
                    await send_byte(value)
                await Timer(3 * int(cfg["idle_timeout"]) * PERIOD_PS, unit="ps")
                continue
            for value in frame:
                if fault in ("flip", "drop", "garbage") and due():
                    stats["injected"] += 1
                    if fault == "flip":
                        value ^= 1 << rng.randrange(8)
                    elif fault == "drop":
                        continue
                    else:
                        for _ in range(rng.randrange(1, 9)):
                            await send_byte(rng.randrange(256))
                            stats["bytes_to_board"] += 1
                await send_byte(value)
                stats["bytes_to_board"] += 1

    async def listener():
        expect = 0          # bytes left of the response being received
        length = int(cfg["response_length"])
        while True:
            await FallingEdge(dut.tx)
            await Timer(bit // 2, unit="ps")
            if int(dut.tx.value):
                continue                                           # a glitch, not a start bit
            value = 0
            for k in range(8):
                await Timer(bit, unit="ps")
                value |= int(dut.tx.value) << k
            await Timer(bit, unit="ps")                          # the stop bit's middle
            if expect == 0 and value == 0x5A:
                expect = length
            if expect:
                expect -= 1
                if expect == 0:
                    stats["responses"] += 1
                    stats["last_response_cycle"] = cycle()
            if fault == "reply_flip" and due():
                stats["injected"] += 1
                value ^= 1 << rng.randrange(8)
            stats["bytes_to_host"] += 1
            os.write(master, bytes([value]))

    async def board_errors():
        while True:
            await RisingEdge(dut.frame_error)
            stats["board_errors"] += 1

    cocotb.start_soon(feeder())
    cocotb.start_soon(listener())
    cocotb.start_soon(board_errors())
    while host.poll() is None:
        await Timer(2000 * PERIOD_PS, unit="ps")
    done = True
    out = host.stdout.read().decode()
    log.close()
    os.close(slave)
    os.close(master)
    stats["host_status"] = host.returncode
    try:
        stats["host"] = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    except json.JSONDecodeError:
        stats["host"] = None
    stats["cycles"] = cycle()
    Path(cfg["result"]).write_text(json.dumps(stats) + "\n")
