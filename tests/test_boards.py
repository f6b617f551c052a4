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

from bp_hw.boards.frame import INFO, NAK, FrameSpec, crc8
from bp_hw.boards.host import BoardClient, SerialPort, compare_with_model, integer_model_for
from bp_hw.boards.serial_sim import receive_bytes, send_bytes
from bp_hw.boards.uart_wrapper import NetworkUART
from bp_hw.cli import main
from bp_hw.errors import BpHwError
from bp_hw.hdl.emit import build_network, generate
from bp_hw.plan import make_plan, read_manifest
from bp_hw.train_start import seeded_qmodel

DIVISOR = 4   # cycles per bit: the real board uses ~100-1000, the logic is the same


@pytest.fixture(scope="module")
def iris_q():
    return seeded_qmodel("iris", [4, 3, 3])[0]


def test_crc8_check_value():
    assert crc8(b"123456789") == 0xF4


def test_readme_worked_example():
    spec = FrameSpec(n_in=2, n_out=1, in_width=16, out_width=16)
    assert spec.encode_request([1, -2]) == bytes.fromhex("A5 01 00 FE FF 27")
    assert spec.encode_response([3]) == bytes.fromhex("5A 03 00 3F")


def test_frame_round_trip_and_sign_extension():
    spec = FrameSpec(n_in=3, n_out=2, in_width=12, out_width=16)
    frame = spec.encode_request([-1, 2047, -2048])
    assert frame[1:3] == b"\xff\xff" and len(frame) == spec.request_length
    assert spec.decode_request(frame).tolist() == [-1, 2047, -2048]
    with pytest.raises(ValueError):
        spec.encode_request([2048, 0, 0])
    bad = bytearray(spec.encode_response([5, -6]))
    bad[1] ^= 1
    with pytest.raises(ValueError, match="CRC"):
        spec.decode_response(bytes(bad))
    assert FrameSpec.decode_info(spec.info_response()) == spec


def simulate_host(plan, transactions):
    """Run ``plan``'s network behind the UART wrapper with a bit-level host;
    ``transactions`` = [(bytes to send, number of bytes to expect)]."""
    dut = NetworkUART(build_network(plan), DIVISOR)
    answers = []

    async def host(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(5)
        for send, n_reply in transactions:
            await send_bytes(ctx, dut.rx, send, DIVISOR)
            answers.append(await receive_bytes(ctx, dut.tx, n_reply, DIVISOR,
                                               timeout_cycles=20 * DIVISOR + 4 * plan.standalone_latency))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.run()
    return dut.spec, answers


def _frames(plan) -> FrameSpec:
    q = plan.qmodel
    return FrameSpec(q.sizes[0], q.sizes[-1], q.input_fmt.width, q.output_fmt.width)


@pytest.mark.parametrize("parallel", ["1", "3,3"])
def test_wrapper_answers_equal_the_integer_model(iris_q, parallel):
    plan = make_plan(iris_q, parallel)
    spec = _frames(plan)
    rng = np.random.default_rng(2)
    lo, hi = -(1 << (spec.in_width - 1)), (1 << (spec.in_width - 1))
    X = rng.integers(lo, hi, size=(4, spec.n_in))
    X[0] = hi - 1               # saturates positive
    X[1] = lo                   # extreme negative inputs
    corrupt = bytearray(spec.encode_request(X[2]))
    corrupt[-1] ^= 0x40
    transactions = [(bytes([INFO]), 9)]
    transactions += [(spec.encode_request(x), spec.response_length) for x in X]
    transactions += [(b"\x00\x13" + bytes(corrupt), 1),                      # noise, then a bad CRC -> NAK
                     (spec.encode_request(X[3]), spec.response_length)]     # and the link recovers
    got_spec, answers = simulate_host(plan, transactions)
    assert got_spec == spec
    assert FrameSpec.decode_info(answers[0]) == spec
    got = np.array([spec.decode_response(a) for a in answers[1:5]])
    np.testing.assert_array_equal(got, iris_q.predict(X))
    assert answers[5] == bytes([NAK])
    np.testing.assert_array_equal(spec.decode_response(answers[6]), iris_q.predict(X[3:4])[0])


def test_wrapper_check_catches_a_wrong_network(iris_q):
    """The end-to-end check must be able to fail: a network with other weights is caught."""
    other = seeded_qmodel("iris", [4, 3, 3], seed=1)[0]
    plan = make_plan(other, 1)
    spec = _frames(plan)
    X = np.array([[4096, -4096, 2048, 1000]])
    _, answers = simulate_host(plan, [(spec.encode_request(X[0]), spec.response_length)])
    assert not np.array_equal(spec.decode_response(answers[0]), iris_q.predict(X)[0])
    np.testing.assert_array_equal(spec.decode_response(answers[0]), other.predict(X)[0])


class PtyBoard:
    """A Python model of a programmed board behind a pty: answers frames like the gateware."""

    def __init__(self, spec, model, corrupt_first=0):
        self.spec = spec
        self.model = model
        self.corrupt_first = corrupt_first
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
        try:
            while not self._stop.is_set():
                first = self._read(1)[0]
                if first == INFO:
                    os.write(self.master, self.spec.info_response())
                elif first == 0xA5:
                    rest = self._read(self.spec.request_length - 1)
                    try:
                        x = self.spec.decode_request(bytes([first]) + rest)
                    except ValueError:
                        os.write(self.master, bytes([NAK]))
                        continue
                    reply = bytearray(self.spec.encode_response(self.model(x[None, :])[0]))
                    if self.corrupt_first > 0:
                        self.corrupt_first -= 1
                        reply[1] ^= 0x01
                    os.write(self.master, bytes(reply))
        except (EOFError, OSError):
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
