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
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bp_hw.errors import BpHwError
from bp_hw.plan.manifest import Manifest, load_qmodel

from .frame import (ACK, INFO, INFO_BODY, LOAD_BLOCK, NAK, PROTOCOL_VERSION, READ, SYNC_RESPONSE, TRAIN_INFO_BODY,
                    FrameSpec, TrainFrameSpec)

__all__ = ["SerialPort", "BoardClient", "LinkError", "LinkStats", "read_load_image", "compare_with_model",
           "IntegerModel", "integer_model_for"]

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


class LinkError(BpHwError):
    """The board did not answer as the protocol says (after the retries)."""


@dataclass
class LinkStats:
    """What the link did during a session: answers lost and sent again, and why."""
    sent: int = 0              # frames written (first attempts and resends)
    resends: int = 0           # frames sent again (after a NAK, a timeout, or a lost answer)
    naks: int = 0
    timeouts: int = 0          # reads that waited ``timeout`` seconds for nothing
    bad_frames: int = 0        # answers with a bad CRC or cut off
    stray_bytes: int = 0       # bytes between frames that start no frame
    late: int = 0              # good answers to a request already sent again

    def to_json(self) -> dict:
        return dict(self.__dict__)


class BoardClient:
    """Speaks the frame protocol of :mod:`bp_hw.boards.frame` over a byte port, to an inference board
    (``spec`` a :class:`FrameSpec`) or a training board (a :class:`TrainFrameSpec`).

    ``port`` has ``write(bytes)``, ``read(n)`` (up to ``n`` bytes, fewer after its timeout) and
    ``discard_input()``, as :class:`SerialPort`.

    Requests are pipelined: up to ``window`` (default :attr:`FrameSpec.window`, what the board's
    receive FIFO holds) are in flight, each with its own ``seq``. The board answers in order, so a
    good answer to ``seq`` means every earlier request still unanswered was lost or refused: those
    are sent again with new tags, as are the request a NAK names and, after ``timeout`` seconds of
    silence, every unanswered one. A request sent ``retries + 1`` times without a good answer stops
    the session with :class:`LinkError`. Answers are trusted only with a good CRC-16.
    """

    def __init__(self, port, spec: FrameSpec | TrainFrameSpec, retries: int = 4, window: int | None = None):
        self.port = port
        self.spec = spec
        self._info_length = 3 + (TRAIN_INFO_BODY if isinstance(spec, TrainFrameSpec) else INFO_BODY)
        self._read_counts: dict[int, int] = {}      # seq of a read frame in flight -> values it asks for
        self.retries = retries
        self.window = spec.window if window is None else max(1, min(int(window), spec.window))
        self.stats = LinkStats()
        self._seq = 0

    # kept for the summaries of `bp-hw run`
    naks = property(lambda self: self.stats.naks)
    resends = property(lambda self: self.stats.resends)

    def info(self) -> FrameSpec:
        """Ask the board which network it carries (asked again, up to ``retries`` times, after a damaged or
        missing answer)."""
        where = getattr(self.port, "path", "the port")
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.resends += 1
                self.port.discard_input()
            self.port.write(bytes([INFO]))
            self.stats.sent += 1
            frame = self.port.read(self._info_length)
            if len(frame) < self._info_length:
                self.stats.timeouts += 1
                problem = (f"board did not answer the info request on {where} (got {len(frame)} of "
                           f"{self._info_length} bytes): is it programmed with a protocol-{PROTOCOL_VERSION} "
                           f"bitstream of this kind of build (inference or training) and is the baud rate right?")
                continue
            try:
                return type(self.spec).decode_info(frame)
            except ValueError as exc:
                self.stats.bad_frames += 1
                problem = f"bad info frame from the board: {exc}"
        raise BpHwError(problem)

    def check_shape(self) -> FrameSpec:
        """Raise a one-line error if the board's network is not the one ``spec`` describes."""
        board = self.info()
        if board != self.spec:
            raise BpHwError(f"the board carries {board.describe()}; the build folder describes "
                            f"{self.spec.describe()}: program the board with this build's bitstream")
        return board

    # -- pipelined exchanges -----------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def _read_answer(self):
        """The next answer frame: ("response", seq, y), ("ack", seq), ("nak", seq), ("bad",) or None (timeout)."""
        while True:
            head = self.port.read(1)
            if not head:
                self.stats.timeouts += 1
                return None
            kind = head[0]
            if kind == SYNC_RESPONSE:
                length = self.spec.response_length
            elif kind == ACK:
                length = 4
            elif kind == NAK:
                length = 2
            elif kind == READ and self._read_counts:
                seq = self.port.read(1)
                count = self._read_counts.get(seq[0]) if seq else None
                if count is None:
                    self.stats.bad_frames += 1
                    return ("bad",)
                frame = head + seq + self.port.read(self.spec.read_length(count) - 2)
                try:
                    return ("read", *self.spec.decode_read(frame, count))
                except ValueError:
                    self.stats.bad_frames += 1
                    return ("bad",)
            else:
                self.stats.stray_bytes += 1
                continue
            frame = head + self.port.read(length - 1)
            if len(frame) < length:
                self.stats.bad_frames += 1
                return ("bad",)
            if kind == NAK:
                self.stats.naks += 1
                return ("nak", frame[1])
            try:
                if kind == ACK:
                    return ("ack", FrameSpec.decode_ack(frame))
                seq, y = self.spec.decode_response(frame)
                return ("response", seq, y)
            except ValueError:
                self.stats.bad_frames += 1
                return ("bad",)

    def _exchange(self, frames: Callable[[int, int], bytes], n: int, answer: str, on_answer,
                  repeatable: bool = True) -> None:
        """Send request ``k`` (``frames(k, seq)``) for every ``k < n``, pipelined; ``on_answer(k, value)`` for each
        good answer of kind ``answer`` (``value`` is the response vector or values read, None for an ack).
        ``repeatable=False`` (train frames: a lost answer may hide a sample the board trained on) resends a
        request with its first seq, which the training board recognises (it answers again from the outputs it
        kept instead of training twice)."""
        todo = deque(range(n))
        attempts = np.zeros(n, dtype=np.int64)
        pending: dict[int, int] = {}          # seq -> request, in the order sent
        first_seq: dict[int, int] = {}        # request -> its seq, kept when requests are not repeatable
        done = 0

        def requeue(seqs):
            for s in seqs:
                todo.appendleft(pending.pop(s))

        while done < n:
            while todo and len(pending) < self.window:
                k = todo.popleft()
                if attempts[k] > self.retries:
                    raise LinkError(f"request {k} got no good answer in {attempts[k]} attempts "
                                    f"({self.stats.naks} NAKs, {self.stats.timeouts} timeouts, "
                                    f"{self.stats.bad_frames} bad frames so far): check the cable and the baud rate")
                self.stats.resends += attempts[k] > 0
                attempts[k] += 1
                seq = first_seq.setdefault(k, self._next_seq()) if not repeatable else self._next_seq()
                pending[seq] = k
                self.port.write(frames(k, seq))
                self.stats.sent += 1
            got = self._read_answer()
            if got is None:                               # silence: everything unanswered is lost
                requeue(reversed(list(pending)))
                continue
            if got[0] == "nak":
                if got[1] in pending:
                    requeue([got[1]])
                continue
            if got[0] != answer:
                # A damaged answer: a later answer or the timeout tells which request it was, unless only
                # one is outstanding (a train frame always is alone): that one is sent again at once.
                if got[0] == "bad" and len(pending) == 1:
                    requeue(list(pending))
                continue
            seq = got[1]
            if seq not in pending:
                self.stats.late += 1
                continue
            order = list(pending)
            requeue(reversed(order[:order.index(seq)]))    # answered in order: the earlier ones were lost
            on_answer(pending.pop(seq), got[2] if answer in ("response", "read") else None)
            done += 1

    def run(self, inputs, on_result=None) -> np.ndarray:
        """The board's output vectors for every row of ``inputs`` (integers), pipelined;
        ``on_result(k)`` after each good answer (for a progress bar)."""
        inputs = np.asarray(inputs, dtype=np.int64).reshape(-1, self.spec.n_in)
        out = np.zeros((len(inputs), self.spec.n_out), dtype=np.int64)

        def store(k, y):
            out[k] = y
            if on_result:
                on_result(k)
        self._exchange(lambda k, seq: self.spec.encode_request(inputs[k], seq), len(inputs), "response", store)
        return out

    def train(self, X, T, train: bool = True, on_result=None) -> np.ndarray:
        """A training board's forward outputs for every row of ``X`` (with targets ``T``): train frames, or
        with ``train=False`` infer frames; in order (the board trains on them in the order sent)."""
        spec = self.spec
        X = np.asarray(X, dtype=np.int64).reshape(-1, spec.n_in)
        T = np.asarray(T, dtype=np.int64).reshape(-1, spec.n_out)
        out = np.zeros((len(X), spec.n_out), dtype=np.int64)
        # One train frame at a time: the board recognises only the last one when it comes again.
        window, self.window = self.window, 1 if train else self.window

        def store(k, y):
            out[k] = y
            if on_result:
                on_result(k)
        try:
            frame = (lambda k, seq: spec.encode_train(X[k], T[k], seq)) if train else \
                (lambda k, seq: spec.encode_infer(X[k], seq))
            self._exchange(frame, len(X), "response", store, repeatable=not train)
        finally:
            self.window = window
        return out

    def write_params(self, values, on_block=None) -> None:
        """Write every parameter of a training board (flat, in address order) in blocks of ``LOAD_BLOCK``."""
        values = np.asarray(values, dtype=np.int64)
        starts = list(range(0, len(values), LOAD_BLOCK))
        self._exchange(lambda k, seq: self.spec.encode_write(starts[k], values[starts[k]:starts[k] + LOAD_BLOCK],
                                                             seq),
                       len(starts), "ack", lambda k, _: on_block and on_block(k))

    def read_params(self) -> np.ndarray:
        """Every parameter of a training board, read in blocks of ``LOAD_BLOCK``."""
        n = self.spec.params
        starts = list(range(0, n, LOAD_BLOCK))
        out = np.zeros(n, dtype=np.int64)

        def frame(k, seq):
            count = min(LOAD_BLOCK, n - starts[k])
            self._read_counts[seq] = count
            return self.spec.encode_read(starts[k], count, seq)

        def store(k, values):
            out[starts[k]:starts[k] + len(values)] = values
        try:
            self._exchange(frame, len(starts), "read", store)
        finally:
            self._read_counts.clear()
        return out

    def infer(self, x) -> np.ndarray:
        """Send one input vector, return the board's output vector."""
        return self.run(np.asarray(x)[None, :])[0]

    def load(self, image: list[tuple[int, int]], on_block=None) -> int:
        """Write a load image (``(addr, word)`` pairs, :func:`read_load_image`) through load frames of up to
        ``LOAD_BLOCK`` consecutive words; returns the number of frames (``on_block(words)`` after each
        acknowledged one). The board writes a frame's words only
        after its CRC checks out, so a refused frame is simply sent again."""
        if not self.spec.load_words:
            raise BpHwError("this network has no load port: its weights are in the bitstream")
        blocks: list[tuple[int, list[int]]] = []
        for addr, word in image:
            if blocks and blocks[-1][0] + len(blocks[-1][1]) == addr and len(blocks[-1][1]) < LOAD_BLOCK:
                blocks[-1][1].append(word)
            else:
                blocks.append((addr, [word]))
        self._exchange(lambda k, seq: self.spec.encode_load(blocks[k][0], blocks[k][1], seq), len(blocks), "ack",
                       lambda k, _: on_block and on_block(len(blocks[k][1])))
        return len(blocks)


def read_load_image(manifest: Manifest) -> list[tuple[int, int]]:
    """The ``(addr, word)`` pairs of a build's load image (``manifest.load.image``: one hex payload per line,
    ``addr << data_width | data``)."""
    load = manifest.load
    if load is None:
        return []
    path = manifest.build_dir / load.image
    try:
        lines = path.read_text().split()
    except OSError as exc:
        raise BpHwError(f"cannot read the load image {path}: {exc.strerror}") from None
    width = load.port.field("data").width
    values = [int(line, 16) for line in lines]
    if len(values) != load.words:
        raise BpHwError(f"{path} has {len(values)} words; the manifest says {load.words}: regenerate the build")
    return [(v >> width, v & ((1 << width) - 1)) for v in values]


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
                       expected: Callable[[np.ndarray], np.ndarray], on_result=None) -> Comparison:
    """Run every row of ``inputs`` (integers) on the board, pipelined, and compare with ``expected(inputs)``.

    ``expected`` maps a (batch, n_in) integer array to the (batch, n_out)
    integer outputs of the integer model; it is called once, vectorised.
    """
    inputs = np.asarray(inputs, dtype=np.int64)
    want = np.asarray(expected(inputs), dtype=np.int64).reshape(len(inputs), client.spec.n_out)
    result = Comparison()
    start = time.monotonic()
    got = client.run(inputs, on_result)
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
