"""The serial frame format between a host and a board running a network (protocol version 2).

Every frame is a sequence of bytes on an 8N1 UART; ``boards/README.md`` has
the full description and a worked example. In short::

    infer     host -> board:  A5 seq  x[0] .. x[n_in-1]            crc16
    response  board -> host:  5A seq  y[0] .. y[n_out-1]           crc16
    load      host -> board:  4C seq  addr:u24 count:u8 w[0..count-1] crc16
    ack       board -> host:  4B seq                                crc16
    NAK       board -> host:  EE seq       (bad CRC or cut off: the frame had no effect)
    info      host -> board:  3F
              board -> host:  3F  body (INFO_BODY bytes)            crc16

Integers are little-endian. Vector elements are two's complement (or plain
binary for an unsigned format), each in ``ceil(width / 8)`` bytes; a signed
element is sign-extended. The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021,
initial 0xFFFF, no reflection, no final XOR; check value of b"123456789" is
0x29B1) over the bytes between the first byte and the CRC, sent low byte first.

``seq`` is the host's tag for a request: the board copies it into the answer,
so a host may keep several requests in flight (up to :attr:`FrameSpec.window`)
and match each answer to its request. This module is the executable spec: the
host client, the Python board model and the simulation tests all use it, and
the gateware in :mod:`bp_hw.boards.uart_wrapper` implements it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from bp_hw.errors import BpHwError

__all__ = ["SYNC_REQUEST", "SYNC_RESPONSE", "LOAD", "ACK", "INFO", "NAK", "PROTOCOL_VERSION", "LOAD_BLOCK",
           "INFO_BODY", "TAG_DEPTH", "TAG_BITS", "CRC_INIT", "crc16", "crc16_byte", "FrameSpec", "rx_fifo_bytes", "design_id",
           "TRAIN", "WRITE", "READ", "TRAINING_FLAG", "TRAIN_INFO_BODY", "TrainFrameSpec"]

SYNC_REQUEST = 0xA5
SYNC_RESPONSE = 0x5A
LOAD = 0x4C
ACK = 0x4B
INFO = 0x3F
NAK = 0xEE
PROTOCOL_VERSION = 2
#: Most words one load frame carries (the board buffers them until the CRC checks out).
LOAD_BLOCK = 64
#: Bytes of the info frame's body (between the INFO byte and the CRC).
INFO_BODY = 22
CRC_INIT = 0xFFFF
CRC_POLY = 0x1021
#: Answers a board may queue (frames whose answer is not sent yet), and the bits of one queued answer
#: (kind 3, seq 8, CRC good 1): the board link's tag queue, in block RAM.
TAG_DEPTH = 16
TAG_BITS = 12
#: The receive FIFO never holds fewer bytes than this (one iCE40 block RAM as 512 x 8).
MIN_RX_FIFO = 512
MAX_RX_FIFO = 4096


def crc16_byte(crc: int, byte: int) -> int:
    """One step of CRC-16/CCITT-FALSE: the CRC after feeding ``byte``."""
    crc ^= byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ CRC_POLY) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def crc16(data: bytes | bytearray) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (``crc16(b"123456789") == 0x29B1``)."""
    crc = CRC_INIT
    for byte in data:
        crc = crc16_byte(crc, byte)
    return crc


def _with_crc(head: int, body: bytes) -> bytes:
    return bytes([head]) + body + crc16(body).to_bytes(2, "little")


def _check_crc(frame: bytes) -> bytes:
    body = bytes(frame[1:-2])
    if crc16(body) != int.from_bytes(frame[-2:], "little"):
        raise ValueError("frame CRC mismatch")
    return body


def _pack(values, count: int, width: int, signed: bool) -> bytes:
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    if values.size != count:
        raise ValueError(f"expected {count} elements, got {values.size}")
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if values.size and (values.min() < lo or values.max() > hi):
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"element out of range for {kind} {width}-bit: {values.min()}..{values.max()}")
    nbytes = (width + 7) // 8
    return b"".join(int(v).to_bytes(nbytes, "little", signed=signed) for v in values)


def _unpack(payload: bytes, count: int, width: int, signed: bool) -> np.ndarray:
    nbytes = (width + 7) // 8
    if len(payload) != count * nbytes:
        raise ValueError(f"payload has {len(payload)} bytes, expected {count * nbytes}")
    return np.array([int.from_bytes(payload[k * nbytes:(k + 1) * nbytes], "little", signed=signed)
                     for k in range(count)], dtype=np.int64)


def rx_fifo_bytes(request_length: int) -> int:
    """Depth of the board's receive FIFO: a power of two holding two requests, 512 to 4096 bytes."""
    need = max(MIN_RX_FIFO, 2 * request_length)
    return min(MAX_RX_FIFO, 1 << (need - 1).bit_length())


def design_id(manifest) -> int:
    """A 32-bit name of the build a manifest describes: the start of its quantized model's SHA-256
    (or of the manifest file's, for a design without one), so the host can tell two builds apart."""
    from bp_hw.plan.manifest import MANIFEST_NAME
    digest = manifest.qmodel_sha256 or hashlib.sha256((manifest.build_dir / MANIFEST_NAME).read_bytes()).hexdigest()
    return int(digest[:8], 16)


@dataclass(frozen=True)
class FrameSpec:
    """What the frames of one board look like: vector sizes and formats, beats, the load port.

    ``in_beat`` is the number of input elements the board hands the network per transfer (the
    network's input beat; ``n_in`` for a network that takes whole vectors). ``load_words`` is 0
    when the network has no load port; else the words of its load image, each ``load_width`` bits
    at an address of ``load_addr_width`` bits.
    """

    n_in: int
    n_out: int
    in_width: int
    out_width: int
    in_signed: bool = True
    out_signed: bool = True
    in_beat: int = 0               # 0: the whole vector in one transfer
    load_words: int = 0
    load_addr_width: int = 0
    load_width: int = 0
    design: int = 0

    def __post_init__(self):
        if self.in_beat == 0:
            object.__setattr__(self, "in_beat", self.n_in)
        if self.n_in % self.in_beat:
            raise ValueError(f"{self.n_in} input elements are not a whole number of {self.in_beat}-element beats")
        if self.load_addr_width > 24:
            raise ValueError(f"a load address of {self.load_addr_width} bits does not fit the frame's 24")

    @classmethod
    def from_manifest(cls, manifest) -> "FrameSpec":
        """The frames of the build a :class:`~bp_hw.plan.manifest.Manifest` describes (vector streams)."""
        inp, out = manifest.inp, manifest.out
        if inp.elements is None or out.elements is None:
            raise BpHwError(f"the board link carries one input and one output vector; the build in "
                            f"{manifest.build_dir} streams {', '.join(f.name for f in inp.fields)}")
        if out.beats != 1:
            raise BpHwError(f"the board link takes the output vector in one transfer; the build in "
                            f"{manifest.build_dir} sends it in {out.beats} beats")
        load = manifest.load
        extra = {}
        if load is not None:
            data, addr = load.port.field("data"), load.port.field("addr")
            extra = dict(load_words=load.words, load_addr_width=addr.width, load_width=data.width)
        return cls(inp.vector_elements, out.elements, inp.width, out.width, bool(inp.signed), bool(out.signed),
                   inp.elements, design=design_id(manifest), **extra)

    # -- sizes --------------------------------------------------------------------------------

    @property
    def in_bytes(self) -> int:
        return (self.in_width + 7) // 8

    @property
    def out_bytes(self) -> int:
        return (self.out_width + 7) // 8

    @property
    def in_beats(self) -> int:
        return self.n_in // self.in_beat

    @property
    def load_bytes(self) -> int:
        """Bytes of one load word in a load frame."""
        return (self.load_width + 7) // 8

    @property
    def request_length(self) -> int:
        return 4 + self.n_in * self.in_bytes

    @property
    def response_length(self) -> int:
        return 4 + self.n_out * self.out_bytes

    @property
    def rx_fifo(self) -> int:
        """Bytes the board's receive FIFO holds."""
        return rx_fifo_bytes(self.request_length)

    @property
    def window(self) -> int:
        """Requests a host may have unanswered at once: as many as the receive FIFO holds
        (at least 1, at most 128 so that 8-bit tags stay unambiguous)."""
        return max(1, min(128, self.rx_fifo // self.request_length))

    def line_bound(self, baud: float) -> float:
        """Samples per second the line allows with requests in flight back to back (full duplex)."""
        return baud / (10 * max(self.request_length, self.response_length))

    # -- frames -------------------------------------------------------------------------------

    def encode_request(self, x, seq: int = 0) -> bytes:
        return _with_crc(SYNC_REQUEST, bytes([seq & 0xFF]) + _pack(x, self.n_in, self.in_width, self.in_signed))

    def decode_request(self, frame: bytes) -> tuple[int, np.ndarray]:
        body = self._body(frame, SYNC_REQUEST, self.request_length)
        return body[0], _unpack(body[1:], self.n_in, self.in_width, self.in_signed)

    def encode_response(self, y, seq: int = 0) -> bytes:
        return _with_crc(SYNC_RESPONSE, bytes([seq & 0xFF]) + _pack(y, self.n_out, self.out_width, self.out_signed))

    def decode_response(self, frame: bytes) -> tuple[int, np.ndarray]:
        body = self._body(frame, SYNC_RESPONSE, self.response_length)
        return body[0], _unpack(body[1:], self.n_out, self.out_width, self.out_signed)

    def load_frame_length(self, count: int) -> int:
        return 8 + count * self.load_bytes

    def encode_load(self, addr: int, words, seq: int = 0) -> bytes:
        """A load frame writing ``words`` at ``addr``, ``addr + 1``, ... of the load port."""
        words = list(words)
        if not 1 <= len(words) <= LOAD_BLOCK:
            raise ValueError(f"a load frame carries 1 to {LOAD_BLOCK} words, not {len(words)}")
        if not 0 <= addr < (1 << 24):
            raise ValueError(f"load address {addr} does not fit 24 bits")
        payload = _pack(words, len(words), self.load_width, False)
        return _with_crc(LOAD, bytes([seq & 0xFF]) + addr.to_bytes(3, "little") + bytes([len(words)]) + payload)

    def decode_load(self, frame: bytes) -> tuple[int, int, np.ndarray]:
        """``(seq, addr, words)`` of a load frame."""
        if len(frame) < 8 or frame[0] != LOAD:
            raise ValueError(f"not a load frame: {bytes(frame[:6]).hex()}")
        count = frame[5]
        body = self._body(frame, LOAD, self.load_frame_length(count))
        return body[0], int.from_bytes(body[1:4], "little"), _unpack(body[5:], count, self.load_width, False)

    @staticmethod
    def encode_ack(seq: int) -> bytes:
        return _with_crc(ACK, bytes([seq & 0xFF]))

    @staticmethod
    def decode_ack(frame: bytes) -> int:
        return FrameSpec._body(frame, ACK, 4)[0]

    def info_body(self) -> bytes:
        flags = int(self.in_signed) | int(self.out_signed) << 1
        return (bytes([PROTOCOL_VERSION]) + self.n_in.to_bytes(2, "little") + self.n_out.to_bytes(2, "little")
                + bytes([self.in_width, self.out_width, flags]) + self.in_beat.to_bytes(2, "little")
                + self.load_words.to_bytes(4, "little") + bytes([self.load_addr_width, self.load_width])
                + (self.rx_fifo.bit_length() - 1).to_bytes(1, "little") + self.design.to_bytes(4, "little")
                + bytes([LOAD_BLOCK]))

    def info_response(self) -> bytes:
        return _with_crc(INFO, self.info_body())

    @classmethod
    def decode_info(cls, frame: bytes) -> "FrameSpec":
        if len(frame) < 2 or frame[0] != INFO:
            raise ValueError(f"not an info frame: {bytes(frame[:4]).hex()}")
        if frame[1] != PROTOCOL_VERSION:
            raise ValueError(f"board speaks frame protocol {frame[1]}, this host {PROTOCOL_VERSION}")
        b = cls._body(frame, INFO, INFO_BODY + 3)
        u16 = lambda k: int.from_bytes(b[k:k + 2], "little")  # noqa: E731
        spec = cls(u16(1), u16(3), b[5], b[6], bool(b[7] & 1), bool(b[7] & 2), u16(8),
                   int.from_bytes(b[10:14], "little"), b[14], b[15], int.from_bytes(b[17:21], "little"))
        if 1 << b[16] != spec.rx_fifo or b[21] != LOAD_BLOCK:
            raise ValueError(f"the board's receive FIFO ({1 << b[16]} bytes) or load block ({b[21]} words) is not "
                             f"what this host computes ({spec.rx_fifo}, {LOAD_BLOCK})")
        return spec

    @staticmethod
    def _body(frame: bytes, head: int, length: int) -> bytes:
        if not frame or frame[0] != head:
            raise ValueError(f"frame does not start with {head:02X}: {bytes(frame[:4]).hex()}")
        if len(frame) != length:
            raise ValueError(f"frame has {len(frame)} bytes, expected {length}")
        return _check_crc(frame)

    def describe(self) -> str:
        load = f", loads {self.load_words} words" if self.load_words else ""
        return (f"{self.n_in} inputs x {self.in_width} bits -> {self.n_out} outputs x {self.out_width} bits"
                f"{load} (design {self.design:08x})")


# -- the training board (protocol 2, training kind) -------------------------------------------------

TRAIN = 0x54
WRITE = 0x57
READ = 0x52
#: Info flags bit: the board carries a training design.
TRAINING_FLAG = 0x04
#: Bytes of a training board's info body.
TRAIN_INFO_BODY = 20


@dataclass(frozen=True)
class TrainFrameSpec:
    """The frames of a training board (``bp-hw synth --train``)::

        infer   host -> board:  A5 seq x[0..n_in-1]                    crc16   -> response 5A seq y crc16
        train   host -> board:  54 seq x[0..n_in-1] t[0..n_out-1]      crc16   -> response 5A seq y crc16
        write   host -> board:  57 seq addr:u16 count:u8 v[0..count-1] crc16   -> ack 4B seq crc16
        read    host -> board:  52 seq addr:u16 count:u8               crc16   -> 52 seq v[0..count-1] crc16
        info    host -> board:  3F                                     -> 3F body crc16

    A train frame's response carries the forward outputs before the update. ``v`` are parameters
    (the flat address map of the manifest's ``training.address_map``), signed, ``param_width`` bits in
    ``ceil(param_width / 8)`` bytes each; ``1 <= count <= LOAD_BLOCK``. Every frame is answered in
    order; a bad CRC or a frame cut off is answered with ``EE seq`` and has no effect (no sample is
    trained, no parameter written).
    """

    n_in: int
    n_out: int
    in_width: int
    out_width: int
    target_width: int
    params: int
    param_width: int
    in_signed: bool = True
    out_signed: bool = True
    design: int = 0

    @classmethod
    def from_manifest(cls, manifest) -> "TrainFrameSpec":
        if not manifest.is_training:
            raise BpHwError(f"{manifest.build_dir} is an inference build; the training board needs `generate --train`")
        inp, out = manifest.inp, manifest.out
        x, t = inp.field("x"), inp.field("t")
        acc = manifest.training.access
        return cls(x.elements, out.elements, x.width, out.width, t.width, acc["depth"], acc["data_width"],
                   x.signed, bool(out.signed), design_id(manifest))

    in_bytes = property(lambda self: (self.in_width + 7) // 8)
    out_bytes = property(lambda self: (self.out_width + 7) // 8)
    target_bytes = property(lambda self: (self.target_width + 7) // 8)
    param_bytes = property(lambda self: (self.param_width + 7) // 8)

    @property
    def request_length(self) -> int:
        """The longest sample frame (a train frame)."""
        return 4 + self.n_in * self.in_bytes + self.n_out * self.target_bytes

    @property
    def infer_length(self) -> int:
        return 4 + self.n_in * self.in_bytes

    @property
    def response_length(self) -> int:
        return 4 + self.n_out * self.out_bytes

    def read_length(self, count: int) -> int:
        return 4 + count * self.param_bytes

    def write_length(self, count: int) -> int:
        return 7 + count * self.param_bytes

    rx_fifo = property(lambda self: rx_fifo_bytes(max(self.request_length, self.write_length(LOAD_BLOCK))))
    window = property(lambda self: max(1, min(64, self.rx_fifo // self.request_length)))

    def line_bound(self, baud: float) -> float:
        return baud / (10 * max(self.request_length, self.response_length))

    def encode_infer(self, x, seq: int = 0) -> bytes:
        return _with_crc(SYNC_REQUEST, bytes([seq & 0xFF]) + _pack(x, self.n_in, self.in_width, self.in_signed))

    def encode_train(self, x, t, seq: int = 0) -> bytes:
        return _with_crc(TRAIN, bytes([seq & 0xFF]) + _pack(x, self.n_in, self.in_width, self.in_signed)
                         + _pack(t, self.n_out, self.target_width, True))

    def decode_response(self, frame: bytes) -> tuple[int, np.ndarray]:
        body = FrameSpec._body(frame, SYNC_RESPONSE, self.response_length)
        return body[0], _unpack(body[1:], self.n_out, self.out_width, self.out_signed)

    def encode_write(self, addr: int, values, seq: int = 0) -> bytes:
        values = list(values)
        if not 1 <= len(values) <= LOAD_BLOCK or not 0 <= addr < (1 << 16):
            raise ValueError(f"a write frame carries 1 to {LOAD_BLOCK} values at a 16-bit address")
        return _with_crc(WRITE, bytes([seq & 0xFF]) + addr.to_bytes(2, "little") + bytes([len(values)])
                         + _pack(values, len(values), self.param_width, True))

    def encode_read(self, addr: int, count: int, seq: int = 0) -> bytes:
        if not 1 <= count <= LOAD_BLOCK or not 0 <= addr < (1 << 16):
            raise ValueError(f"a read frame asks for 1 to {LOAD_BLOCK} values at a 16-bit address")
        return _with_crc(READ, bytes([seq & 0xFF]) + addr.to_bytes(2, "little") + bytes([count]))

    def decode_read(self, frame: bytes, count: int) -> tuple[int, np.ndarray]:
        body = FrameSpec._body(frame, READ, self.read_length(count))
        return body[0], _unpack(body[1:], count, self.param_width, True)

    def info_body(self) -> bytes:
        flags = int(self.in_signed) | int(self.out_signed) << 1 | TRAINING_FLAG
        return (bytes([PROTOCOL_VERSION]) + self.n_in.to_bytes(2, "little") + self.n_out.to_bytes(2, "little")
                + bytes([self.in_width, self.out_width, flags, self.target_width]) + self.params.to_bytes(2, "little")
                + bytes([self.param_width, self.rx_fifo.bit_length() - 1]) + self.design.to_bytes(4, "little")
                + bytes([LOAD_BLOCK]) + bytes(2))

    def info_response(self) -> bytes:
        return _with_crc(INFO, self.info_body())

    @classmethod
    def decode_info(cls, frame: bytes) -> "TrainFrameSpec":
        if len(frame) < 9 or frame[0] != INFO:
            raise ValueError(f"not an info frame: {bytes(frame[:4]).hex()}")
        if frame[1] != PROTOCOL_VERSION:
            raise ValueError(f"board speaks frame protocol {frame[1]}, this host {PROTOCOL_VERSION}")
        if not frame[8] & TRAINING_FLAG:
            raise ValueError("the board carries an inference design, not a training one")
        b = FrameSpec._body(frame, INFO, TRAIN_INFO_BODY + 3)
        u16 = lambda k: int.from_bytes(b[k:k + 2], "little")  # noqa: E731
        return cls(u16(1), u16(3), b[5], b[6], b[8], u16(9), b[11], bool(b[7] & 1), bool(b[7] & 2),
                   int.from_bytes(b[13:17], "little"))

    def describe(self) -> str:
        return (f"a training network of {self.n_in} inputs x {self.in_width} bits -> {self.n_out} outputs x "
                f"{self.out_width} bits, {self.params} parameters of {self.param_width} bits (design {self.design:08x})")
