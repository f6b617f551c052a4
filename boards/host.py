"""Host side of the serial link: open a port, send samples, compare with a model.

POSIX only and without pyserial: the port is opened with ``os.open`` and put in
raw 8N1 mode with :mod:`termios`. Anything that reads/writes bytes with a
timeout (``read(n) -> bytes``, ``write(bytes)``) can stand in for
:class:`SerialPort` (the tests use a pty pair).
"""

from __future__ import annotations

import os
import select
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bp_hw.errors import BpHwError
from bp_hw.plan.manifest import Manifest, load_qmodel

from .frame import INFO, NAK, SYNC_RESPONSE, FrameSpec

__all__ = ["SerialPort", "BoardClient", "compare_with_model", "IntegerModel", "integer_model_for"]

_BAUD_CONSTANTS = {9600: "B9600", 19200: "B19200", 38400: "B38400", 57600: "B57600", 115200: "B115200",
                   230400: "B230400", 460800: "B460800", 921600: "B921600", 1000000: "B1000000",
                   2000000: "B2000000", 3000000: "B3000000"}


class SerialPort:
    """A raw 8N1 serial port (a tty device or a pty) with read timeouts."""

    def __init__(self, path: str, baud: int = 115200, timeout: float = 1.0):
        import termios
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise BpHwError(f"cannot open serial port {path}: {exc.strerror}") from None
        self.path = path
        self.timeout = timeout
        try:
            attrs = termios.tcgetattr(self.fd)
        except termios.error as exc:
            os.close(self.fd)
            raise BpHwError(f"{path} is not a serial port ({exc.args[-1]})") from None
        iflag, oflag, cflag, lflag, _, _, cc = attrs
        iflag = 0
        oflag = 0
        lflag = 0
        cflag = (cflag & ~(termios.CSIZE | termios.PARENB | termios.CSTOPB)) | termios.CS8 | termios.CREAD \
            | termios.CLOCAL
        if hasattr(termios, "CRTSCTS"):
            cflag &= ~termios.CRTSCTS
        name = _BAUD_CONSTANTS.get(baud)
        if name is None or not hasattr(termios, name):
            os.close(self.fd)
            raise BpHwError(f"unsupported baud rate {baud}; use one of {sorted(_BAUD_CONSTANTS)}")
        speed = getattr(termios, name)
        cc = list(cc)
        cc[termios.VMIN] = 0
        cc[termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])
        termios.tcflush(self.fd, termios.TCIOFLUSH)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            select.select([], [self.fd], [], self.timeout)
            n = os.write(self.fd, view)
            view = view[n:]

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only if ``timeout`` seconds pass without the rest."""
        out = bytearray()
        deadline = time.monotonic() + self.timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, n - len(out))
                except BlockingIOError:
                    continue
                if not chunk:
                    break
                out += chunk
        return bytes(out)

    def discard_input(self) -> None:
        import termios
        termios.tcflush(self.fd, termios.TCIFLUSH)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BoardClient:
    """Speaks the frame protocol of :mod:`bp_hw.boards.frame` over a byte port.

    ``port`` has ``write(bytes)``, ``read(n)`` and ``discard_input()``, as :class:`SerialPort`.

    One request at a time (stop and wait), as the board expects.
    """

    def __init__(self, port, spec: FrameSpec, retries: int = 2):
        self.port = port
        self.spec = spec
        self.retries = retries
        self.naks = 0
        self.resends = 0

    def info(self) -> FrameSpec:
        """Ask the board which network it carries."""
        self.port.write(bytes([INFO]))
        frame = self.port.read(9)
        if len(frame) < 9:
            raise BpHwError(f"board did not answer the info request on {getattr(self.port, 'path', 'the port')} "
                            f"(got {len(frame)} of 9 bytes): is it programmed and is the baud rate right?")
        try:
            return FrameSpec.decode_info(frame)
        except ValueError as exc:
            raise BpHwError(f"bad info frame from the board: {exc}") from None

    def check_shape(self) -> FrameSpec:
        """Raise a one-line error if the board's network does not match ``spec``."""
        board = self.info()
        if board != self.spec:
            raise BpHwError(f"the board carries a network with {board.n_in} inputs x {board.in_width} bits -> "
                            f"{board.n_out} outputs x {board.out_width} bits, the build folder describes "
                            f"{self.spec.n_in} x {self.spec.in_width} -> {self.spec.n_out} x {self.spec.out_width}")
        return board

    def infer(self, x) -> np.ndarray:
        """Send one input vector, return the board's output vector."""
        request = self.spec.encode_request(x)
        last = "no answer"
        for attempt in range(self.retries + 1):
            if attempt:
                self.resends += 1
                self.port.discard_input()
            self.port.write(request)
            first = self.port.read(1)
            if not first:
                last = "no answer (timeout)"
                continue
            if first[0] == NAK:
                self.naks += 1
                last = "the board reported a CRC error in the request (NAK)"
                continue
            if first[0] != SYNC_RESPONSE:
                last = f"unexpected byte {first[0]:02X} instead of a response frame"
                continue
            rest = self.port.read(self.spec.response_length - 1)
            try:
                return self.spec.decode_response(first + rest)
            except ValueError as exc:
                last = f"bad response frame ({exc})"
        raise BpHwError(f"sample failed after {self.retries + 1} attempts: {last}")


@dataclass
class Comparison:
    samples: int = 0
    mismatched_samples: int = 0
    first_mismatch: dict | None = None
    outputs: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        return {"samples": self.samples, "mismatched_samples": self.mismatched_samples,
                "bit_exact": self.mismatched_samples == 0 and self.samples > 0,
                "first_mismatch": self.first_mismatch, "seconds": round(self.seconds, 3),
                "samples_per_s": round(self.samples / self.seconds, 1) if self.seconds > 0 else None}


def compare_with_model(client: BoardClient, inputs: np.ndarray,
                       expected: Callable[[np.ndarray], np.ndarray], progress=None) -> Comparison:
    """Run every row of ``inputs`` (integers) on the board and compare with ``expected(inputs)``.

    ``expected`` maps a (batch, n_in) integer array to the (batch, n_out)
    integer outputs of the integer model; it is called once, vectorised.
    """
    inputs = np.asarray(inputs, dtype=np.int64)
    want = np.asarray(expected(inputs), dtype=np.int64).reshape(len(inputs), client.spec.n_out)
    result = Comparison()
    start = time.monotonic()
    rows = range(len(inputs)) if progress is None else progress(range(len(inputs)))
    got = np.empty_like(want)
    for k in rows:
        got[k] = client.infer(inputs[k])
    result.seconds = time.monotonic() - start
    bad = np.flatnonzero((got != want).any(axis=1))
    result.samples = len(inputs)
    result.mismatched_samples = int(bad.size)
    result.outputs = got.tolist()
    if bad.size:
        k = int(bad[0])
        result.first_mismatch = {"sample": k, "input": inputs[k].tolist(), "board": got[k].tolist(),
                                 "model": want[k].tolist()}
    return result


@dataclass
class IntegerModel:
    """What the host needs from the integer model: input quantization and expected outputs."""
    quantize: Callable[[np.ndarray], np.ndarray]          # raw features (n, d) -> integers (n, n_in)
    expected: Callable[[np.ndarray], np.ndarray]          # integers (n, n_in) -> integers (n, n_out)
    classify: Callable[[np.ndarray], np.ndarray] | None = None   # integer outputs -> class labels


def integer_model_for(manifest: Manifest) -> IntegerModel:
    """The integer model that a board built from ``manifest``'s build must agree with bit for bit:
    the build's quantized model (:func:`bp_hw.plan.manifest.load_qmodel`, its digest checked)."""
    qm = load_qmodel(manifest)
    return IntegerModel(lambda X: qm.quantize_inputs(X)[0], qm.predict, qm.classify)
