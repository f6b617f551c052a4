"""8N1 UART receiver and transmitter with byte streams.

Both components take ``divisor``, the number of ``sync`` clock cycles per bit
(``round(f_clk / baud)``; at least 4). Bytes travel LSB first, framed by one
start bit (0) and one stop bit (1); the line idles high.
"""

# No "from __future__ import annotations": wiring.Component reads its port annotations as objects.

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx", "uart_divisor"]


def uart_divisor(clk_hz: float, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_hz``; raises if the rate error exceeds 2 %."""
    divisor = round(clk_hz / baud)
    if divisor < 4:
        raise ValueError(f"clock {clk_hz/1e6:g} MHz is too slow for {baud} baud (needs >= 4 cycles per bit)")
    error = abs(clk_hz / divisor - baud) / baud
    if error > 0.02:
        raise ValueError(f"{baud} baud at {clk_hz/1e6:g} MHz has {error:.1%} rate error (> 2 %)")
    return divisor


def _bit_timer(divisor):
    """A down-counter that expires when its sign bit sets (no wide compare on the critical path).

    Loading ``n - 2`` makes ``expired`` true ``n - 1`` cycles later, i.e. one
    event every ``n`` cycles when reloaded on expiry.
    """
    return Signal(range(-1, divisor))


def _check_divisor(divisor):
    if not isinstance(divisor, int) or divisor < 4:
        raise ValueError(f"UART divisor must be an integer >= 4, not {divisor!r}")


class UARTRx(wiring.Component):
    """UART receiver.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (>= 4).

    Ports
    -----
    rx : In(1)
        The serial line, asynchronous (synchronised here by two flip-flops; idles high).
    o : Out(stream.Signature(8))
        Received bytes. ``o.valid`` stays high until ``o.ready``; a byte that
        completes while the previous one is still waiting is dropped.
    frame_error : Out(1)
        One-cycle pulse: a byte arrived with a low stop bit (the byte is dropped).
    overrun : Out(1)
        One-cycle pulse: a good byte was dropped because ``o`` was still full.

    Latency
    -------
    ``o.valid`` rises ``2 + divisor // 2 + 9 * divisor`` cycles after the
    falling edge of the start bit (two synchroniser stages, then the middle of
    the stop bit). The receiver is ready for the next start bit at that point,
    so back-to-back bytes at full line rate are accepted.
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    frame_error: Out(1)
    overrun: Out(1)

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)

        timer = _bit_timer(self.divisor)
        expired = timer[-1]
        bits = Signal(range(9))
        shreg = Signal(8)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.sync += [self.frame_error.eq(0), self.overrun.eq(0)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self.divisor // 2 - 2)
                    m.next = "START"
            with m.State("START"):
                with m.If(~expired):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):  # glitch shorter than half a bit: not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 2), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(~expired):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 2), shreg.eq(Cat(shreg[1:], rx)),
                                 bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(~expired):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(~rx):
                        m.d.sync += self.frame_error.eq(1)
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.sync += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """UART transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (>= 4).

    Ports
    -----
    i : In(stream.Signature(8))
        Bytes to send; ``i.ready`` is high while the one-byte buffer in front of
        the shifter is empty.
    tx : Out(1)
        The serial line (registered, idles high).

    Latency
    -------
    When the line is idle the start bit appears on ``tx`` two cycles after the
    transfer on ``i``; a byte occupies ``10 * divisor`` cycles. The next byte
    can be handed over one cycle after the shifter takes the previous one, so
    consecutive bytes go out back to back.
    """

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = _bit_timer(self.divisor)
        bits = Signal(range(11))
        shreg = Signal(10, init=0x3FF)

        # A byte handed over on i waits in a one-byte buffer until the shifter is idle: i.ready is
        # a register (the buffer is empty), and the shifter loads from registers, so the sender's
        # decisions reach only the buffer's enable.
        buf, full = Signal(8), Signal()
        idle = Signal(init=1)          # high exactly where bits == 0
        m.d.comb += self.i.ready.eq(~full)
        m.d.sync += self.tx.eq(shreg[0])
        with m.If(self.i.valid & ~full):
            m.d.sync += [buf.eq(self.i.payload), full.eq(1)]
        with m.If(full & idle):
            m.d.sync += [shreg.eq(Cat(0, buf, 1)), bits.eq(10), timer.eq(self.divisor - 2), idle.eq(0),
                         full.eq(0)]
        with m.Elif(bits != 0):
            with m.If(~timer[-1]):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():
                m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), bits.eq(bits - 1), timer.eq(self.divisor - 2),
                             idle.eq(bits == 1)]
        return m
