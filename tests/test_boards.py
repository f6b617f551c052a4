"""The UART wrapper end to end in simulation, the frame format, and the host client over a pty.

The network under the wrapper is a small generated one (a seeded iris 4-3-3 model); the
expectation is its integer model, ``QModel.predict``.
"""

import json
import os
import threading

import numpy as np
import pytest
from amaranth.sim import Simulator

from bp_hw.boards.frame import ACK, INFO, LOAD_BLOCK, NAK, FrameSpec, crc16
from bp_hw.boards.host import BoardClient, LinkError, SerialPort, compare_with_model, integer_model_for, read_load_image
from bp_hw.boards.serial_sim import receive_bytes, send_bytes
from bp_hw.boards.uart_wrapper import NetworkUART
from bp_hw.cli import main
from bp_hw.errors import BpHwError
from bp_hw.hdl.emit import generate
from bp_hw.hdl.network import Network
from bp_hw.plan import make_plan, read_manifest
from bp_hw.train_start import seeded_qmodel

DIVISOR = 4   # cycles per bit: the real board uses ~17-1000, the logic is the same
IDLE = 2048   # cycles before a frame that stopped half way is given up (two timer ticks)


@pytest.fixture(scope="module")
def iris_q():
    return seeded_qmodel("iris", [4, 3, 3])[0]


def test_crc16_check_value():
    assert crc16(b"123456789") == 0x29B1


def test_gateware_crc_step_is_the_spec():
    """The CRC-16 step the wrappers build (XOR trees derived from the spec) against frame.crc16_byte."""
    from amaranth.hdl import Module, Signal
    from bp_hw.boards.frame import crc16_byte
    from bp_hw.boards.link_core import crc16_update
    crc, byte, out = Signal(16), Signal(8), Signal(16)
    m = Module()
    m.d.comb += out.eq(crc16_update(crc, byte))
    rng = np.random.default_rng(7)
    cases = [(0xFFFF, 0), (0, 0xFF), (0x8000, 1)] + [(int(a), int(b)) for a, b in
                                                    zip(rng.integers(0, 1 << 16, 200), rng.integers(0, 256, 200))]

    async def bench(ctx):
        for c, b in cases:
            ctx.set(crc, c)
            ctx.set(byte, b)
            assert ctx.get(out) == crc16_byte(c, b), (c, b)
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_readme_worked_example():
    spec = FrameSpec(n_in=2, n_out=1, in_width=16, out_width=16)
    assert spec.encode_request([1, -2], seq=7) == bytes.fromhex("A5 07 01 00 FE FF 52 2E")
    assert spec.encode_response([3], seq=7) == bytes.fromhex("5A 07 03 00 5F 1C")


def test_frame_round_trip_sign_extension_and_unsigned_pixels():
    spec = FrameSpec(n_in=3, n_out=2, in_width=12, out_width=16)
    frame = spec.encode_request([-1, 2047, -2048], seq=9)
    assert frame[2:4] == b"\xff\xff" and len(frame) == spec.request_length
    seq, x = spec.decode_request(frame)
    assert seq == 9 and x.tolist() == [-1, 2047, -2048]
    with pytest.raises(ValueError):
        spec.encode_request([2048, 0, 0])
    bad = bytearray(spec.encode_response([5, -6], seq=1))
    bad[2] ^= 1
    with pytest.raises(ValueError, match="CRC"):
        spec.decode_response(bytes(bad))
    assert FrameSpec.decode_info(spec.info_response()) == spec
    pixels = FrameSpec(n_in=784, n_out=10, in_width=8, out_width=16, in_signed=False, in_beat=2,
                       load_words=12544, load_addr_width=15, load_width=16)
    frame = pixels.encode_request(np.full(784, 255), seq=3)
    assert len(frame) == 4 + 784 and frame[2] == 0xFF          # one byte a pixel, 0..255
    assert pixels.decode_request(frame)[1].max() == 255
    with pytest.raises(ValueError):
        pixels.encode_request(np.full(784, -1))
    assert FrameSpec.decode_info(pixels.info_response()) == pixels
    assert pixels.window == 2 and pixels.rx_fifo == 2048
    load = pixels.encode_load(40, [1, 65535, 7], seq=5)
    seq, addr, words = pixels.decode_load(load)
    assert (seq, addr, words.tolist()) == (5, 40, [1, 65535, 7])
    with pytest.raises(ValueError):
        pixels.encode_load(0, list(range(LOAD_BLOCK + 1)))
    assert FrameSpec.decode_ack(FrameSpec.encode_ack(200)) == 200


def _spec_of(plan) -> FrameSpec:
    q, ld = plan.qmodel, plan.load
    extra = dict(load_words=ld.words, load_addr_width=ld.addr_width, load_width=ld.data_width) if ld else {}
    return FrameSpec(q.sizes[0], q.sizes[-1], q.input_fmt.width, q.output_fmt.width, q.input_fmt.signed,
                     q.output_fmt.signed, plan.inp.vector.elements, **extra)


def _load_frames(plan, spec, seq) -> tuple[bytes, int]:
    blocks = []
    for addr, word in plan.load.image(plan):
        if blocks and blocks[-1][0] + len(blocks[-1][1]) == addr and len(blocks[-1][1]) < LOAD_BLOCK:
            blocks[-1][1].append(word)
        else:
            blocks.append((addr, [word]))
    return b"".join(spec.encode_load(a, w, seq) for a, w in blocks), len(blocks)


def simulate_link(plan, data: bytes, n_reply: int) -> tuple[FrameSpec, bytes]:
    """Send ``data`` to ``plan``'s network behind the UART wrapper, bit by bit, as one burst (requests
    back to back), and return the first ``n_reply`` bytes the wrapper sends."""
    spec = _spec_of(plan)
    dut = NetworkUART(Network(plan, primitives=False), spec, DIVISOR, IDLE)
    answer = []

    async def host(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(5)
        await send_bytes(ctx, dut.rx, data, DIVISOR)

    async def listen(ctx):
        answer.append(await receive_bytes(ctx, dut.tx, n_reply, DIVISOR,
                                           timeout_cycles=10 * DIVISOR * len(data) + 2 * IDLE))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.add_testbench(listen)
    sim.run()
    return spec, answer[0]


@pytest.mark.parametrize("mode", ["vector", "beats", "spram"])
def test_wrapper_answers_equal_the_integer_model(iris_q, mode):
    """Info, (a load image,) back-to-back requests, line noise, a bad CRC (NAK, output dropped), the link
    recovering, and a frame cut off half way (NAK after the idle timeout): every answer as the spec says."""
    kw = {"vector": dict(input_mode="vector"), "beats": dict(input_mode="beats"),
          "spram": dict(input_mode="beats", weights="spram", device="iCE40UP5K")}[mode]
    plan = make_plan(iris_q, "1", **kw)
    assert (plan.load is not None) == (mode == "spram")
    spec = _spec_of(plan)
    rng = np.random.default_rng(2)
    lo, hi = -(1 << (spec.in_width - 1)), (1 << (spec.in_width - 1))
    X = rng.integers(lo, hi, size=(5, spec.n_in))
    X[0] = hi - 1               # saturates positive
    X[1] = lo                   # extreme negative inputs
    data = bytes([INFO])
    n_acks = 0
    if plan.load is not None:
        frames, n_acks = _load_frames(plan, spec, seq=200)
        data += frames
    data += b"".join(spec.encode_request(x, seq=k) for k, x in enumerate(X))
    corrupt = bytearray(spec.encode_request(X[2], seq=99))
    corrupt[3] ^= 0x40
    data += b"\x00\x13" + bytes(corrupt) + spec.encode_request(X[3], seq=50)
    data += spec.encode_request(X[4], seq=51)[:5]               # cut off
    info = spec.info_response()
    n = len(info) + 4 * n_acks + 6 * spec.response_length + 2 + 2
    got_spec, r = simulate_link(plan, data, n)
    assert got_spec == spec and FrameSpec.decode_info(r[:len(info)]) == spec
    at = len(info)
    for _ in range(n_acks):
        assert FrameSpec.decode_ack(r[at:at + 4]) == 200
        at += 4
    want = iris_q.predict(X)
    for k in range(5):
        seq, y = spec.decode_response(r[at:at + spec.response_length])
        at += spec.response_length
        assert seq == k
        np.testing.assert_array_equal(y, want[k])
    assert r[at:at + 2] == bytes([NAK, 99])
    seq, y = spec.decode_response(r[at + 2:at + 2 + spec.response_length])
    assert seq == 50
    np.testing.assert_array_equal(y, want[3])
    assert r[-2:] == bytes([NAK, 51])


def test_wrapper_check_catches_a_wrong_network(iris_q):
    """The end-to-end check must be able to fail: a network with other weights is caught."""
    other = seeded_qmodel("iris", [4, 3, 3], seed=1)[0]
    plan = make_plan(other, 1)
    spec = _spec_of(plan)
    X = np.array([[4096, -4096, 2048, 1000]])
    _, r = simulate_link(plan, spec.encode_request(X[0], seq=1), spec.response_length)
    assert not np.array_equal(spec.decode_response(r)[1], iris_q.predict(X)[0])
    np.testing.assert_array_equal(spec.decode_response(r)[1], other.predict(X)[0])


def test_wrapper_writes_no_weight_from_a_refused_load_frame(iris_q):
    """A load frame with a bad CRC is NAKed and writes nothing: the network answers as if it had never come
    (here the weights of the good image stay); the companion of the load check above."""
    plan = make_plan(iris_q, "1", input_mode="beats", weights="spram", device="iCE40UP5K")
    spec = _spec_of(plan)
    frames, n_acks = _load_frames(plan, spec, seq=1)
    addr, word = plan.load.image(plan)[0]
    bad = bytearray(spec.encode_load(addr, [word ^ 0x5555], seq=2))
    bad[-1] ^= 1
    X = np.array([[4096, -4096, 2048, 1000]])
    data = frames + bytes(bad) + spec.encode_request(X[0], seq=3)
    _, r = simulate_link(plan, data, 4 * n_acks + 2 + spec.response_length)
    assert r[4 * n_acks:4 * n_acks + 2] == bytes([NAK, 2])
    seq, y = spec.decode_response(r[4 * n_acks + 2:])
    np.testing.assert_array_equal(y, iris_q.predict(X)[0])


class PtyBoard:
    """A Python model of a programmed board behind a pty, answering frames like the gateware does
    (the host client's tests; the gateware itself is checked above and in the UART-level simulation).
    ``corrupt_first`` responses get a flipped bit; ``drop_first`` requests get no answer at all."""

    def __init__(self, spec, model, corrupt_first=0, drop_first=0):
        self.spec = spec
        self.model = model
        self.corrupt_first = corrupt_first
        self.drop_first = drop_first
        self.loaded: dict[int, int] = {}
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        self._slave = slave
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = os.read(self.master, n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _serve(self):
        spec = self.spec
        try:
            while not self._stop.is_set():
                first = self._read(1)
                if first[0] == INFO:
                    os.write(self.master, spec.info_response())
                elif first[0] == 0xA5:
                    frame = first + self._read(spec.request_length - 1)
                    try:
                        seq, x = spec.decode_request(frame)
                    except ValueError:
                        os.write(self.master, bytes([NAK, frame[1]]))
                        continue
                    if self.drop_first > 0:
                        self.drop_first -= 1
                        continue
                    reply = bytearray(spec.encode_response(self.model(x[None, :])[0], seq))
                    if self.corrupt_first > 0:
                        self.corrupt_first -= 1
                        reply[2] ^= 0x01
                    os.write(self.master, bytes(reply))
                elif first[0] == 0x4C:
                    head = first + self._read(5)
                    frame = head + self._read(spec.load_frame_length(head[5]) - 6)
                    seq, addr, words = spec.decode_load(frame)
                    self.loaded.update({addr + k: int(w) for k, w in enumerate(words)})
                    os.write(self.master, FrameSpec.encode_ack(seq))
        except (EOFError, OSError, ValueError):
            pass

    def close(self):
        self._stop.set()
        os.close(self._slave)
        os.close(self.master)


@pytest.fixture(scope="module")
def iris_build(iris_q, tmp_path_factory):
    out = tmp_path_factory.mktemp("iris433")
    generate(iris_q, 1, out, name="iris433", taps=False)
    return out


@pytest.fixture
def pty_board(iris_q, iris_build):
    spec = FrameSpec.from_manifest(read_manifest(iris_build))
    board = PtyBoard(spec, iris_q.predict, corrupt_first=1)
    yield spec, board
    board.close()


def test_host_client_over_pty(iris_q, pty_board):
    spec, board = pty_board
    X = np.random.default_rng(3).integers(-30000, 30000, size=(20, spec.n_in))
    with SerialPort(board.path, 115200, timeout=2.0) as port:
        client = BoardClient(port, spec)
        client.check_shape()
        result = compare_with_model(client, X, iris_q.predict)
        assert client.resends == 1           # the corrupted response was retried
        summary = result.summary()
        assert summary["bit_exact"] and summary["samples"] == 20
        # A wrong model is reported as a mismatch, not silently accepted.
        wrong = compare_with_model(client, X[:3], lambda x: iris_q.predict(x) + 1)
        assert wrong.mismatched_samples == 3 and wrong.first_mismatch["sample"] == 0


def test_host_client_shape_mismatch_is_one_line_error(pty_board):
    spec, board = pty_board
    with SerialPort(board.path, 115200, timeout=2.0) as port:
        client = BoardClient(port, FrameSpec(spec.n_in + 1, spec.n_out, spec.in_width, spec.out_width))
        with pytest.raises(BpHwError, match="inputs"):
            client.check_shape()


def test_host_client_resends_lost_requests_and_loads_an_image(iris_q):
    """Pipelined requests: two get no answer; the later answers show they were lost and they are sent
    again; a load image goes out in blocks and lands word for word."""
    spec = FrameSpec(4, 3, 16, 16, load_words=100, load_addr_width=8, load_width=16)
    board = PtyBoard(spec, iris_q.predict, drop_first=2)
    try:
        with SerialPort(board.path, 3000000, timeout=1.0) as port:
            client = BoardClient(port, spec)
            assert client.window > 1
            image = [(a, (a * 37) & 0xFFFF) for a in range(100)]
            assert client.load(image) == 2 and board.loaded == dict(image)
            X = np.random.default_rng(5).integers(-30000, 30000, size=(30, 4))
            np.testing.assert_array_equal(client.run(X), iris_q.predict(X))
            assert client.stats.resends == 2 and client.stats.sent == 2 + 32
    finally:
        board.close()


def test_host_client_gives_up_on_a_silent_board(iris_q):
    spec = FrameSpec(4, 3, 16, 16)
    board = PtyBoard(spec, iris_q.predict, drop_first=10 ** 6)
    try:
        with SerialPort(board.path, 115200, timeout=0.05) as port:
            client = BoardClient(port, spec, retries=2)
            with pytest.raises(LinkError, match="no good answer in 3 attempts"):
                client.run(np.zeros((3, 4)))
            assert client.stats.timeouts >= 3
    finally:
        board.close()


def test_serial_port_errors():
    with pytest.raises(BpHwError, match="cannot open"):
        SerialPort("/nonexistent/ttyUSB9")
    with pytest.raises(BpHwError, match="not a serial port"):
        SerialPort("/dev/null")


def test_integer_model_is_the_builds_quantized_model(iris_q, iris_build):
    model = integer_model_for(read_manifest(iris_build))
    X = np.random.default_rng(4).integers(-30000, 30000, size=(5, 4))
    np.testing.assert_array_equal(model.expected(X), iris_q.predict(X))
    qmodel = iris_build / "qmodel.json"
    saved = qmodel.read_bytes()
    try:   # a changed model file is caught by its digest
        qmodel.write_bytes(saved.replace(b"4", b"5", 1))
        with pytest.raises(BpHwError, match="changed since"):
            integer_model_for(read_manifest(iris_build))
    finally:
        qmodel.write_bytes(saved)


def test_cli_run_against_pty_board(iris_q, pty_board, iris_build, capsys):
    """`bp-hw run` end to end: iris through the build's integer model, against the pty board."""
    from bp_hw.data import load_dataset
    _, board = pty_board
    status = main(["run", "--port", board.path, "--data", "iris", "--build", str(iris_build), "--limit", "30",
                   "--timeout", "2", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 0 and summary["bit_exact"] and summary["samples"] == 30 and summary["resends"] == 1
    ds = load_dataset("iris")
    labels = iris_q.classify(iris_q.predict(iris_q.quantize_inputs(ds.X[:30])[0]))
    assert summary["board_accuracy"] == pytest.approx(np.mean(labels == ds.y[:30]))
    status = main(["run", "--port", board.path, "--data", "xor", "--build", str(iris_build)])
    assert status == 2 and "features" in capsys.readouterr().err


def test_cli_run_refuses_a_training_build(tmp_path, capsys):
    q = seeded_qmodel("xor", [2, 2, 1])[0]
    generate(q, 1, tmp_path, name="xor_train", train=True)
    assert main(["run", "--port", "/dev/null", "--data", "xor", "--build", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "training build" in err and err.count("\n") == 1
