"""The serial frame format between a host and a board running a network.

Every frame is a sequence of bytes on an 8N1 UART (115200 baud by default);
see ``boards/README.md`` for the full description. In short::

    request   host -> board:  A5  x[0] .. x[n_in-1]   crc8
    response  board -> host:  5A  y[0] .. y[n_out-1]  crc8
    NAK       board -> host:  EE                       (request CRC was wrong; frame dropped)
    info      host -> board:  3F
              board -> host:  3F  01  n_in:u16 n_out:u16 in_width:u8 out_width:u8  crc8

Elements are little-endian two's complement, each sign-extended to a whole
number of bytes (``ceil(width / 8)``). The CRC is CRC-8/SMBUS (polynomial
0x07, initial value 0, no reflection) over the bytes between the first byte
and the CRC. This module is the executable spec: the host client, the Python
board model and the simulation tests all use it, and the gateware in
:mod:`bp_hw.boards.uart_wrapper` implements it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bp_hw.errors import BpHwError

__all__ = ["SYNC_REQUEST", "SYNC_RESPONSE", "INFO", "NAK", "PROTOCOL_VERSION", "crc8", "FrameSpec"]

SYNC_REQUEST = 0xA5
SYNC_RESPONSE = 0x5A
INFO = 0x3F
NAK = 0xEE
PROTOCOL_VERSION = 1


def crc8(data: bytes | bytearray) -> int:
    """CRC-8/SMBUS of ``data`` (check value of b"123456789" is 0xF4)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _pack(values: np.ndarray, count: int, width: int) -> bytes:
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    if values.size != count:
        raise ValueError(f"expected {count} elements, got {values.size}")
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if values.min(initial=0) < lo or values.max(initial=0) > hi:
        raise ValueError(f"element out of range for signed {width}-bit: {values.min()}..{values.max()}")
    nbytes = (width + 7) // 8
    return b"".join(int(v).to_bytes(nbytes, "little", signed=True) for v in values)


def _unpack(payload: bytes, count: int, width: int) -> np.ndarray:
    nbytes = (width + 7) // 8
    if len(payload) != count * nbytes:
        raise ValueError(f"payload has {len(payload)} bytes, expected {count * nbytes}")
    return np.array([int.from_bytes(payload[k * nbytes:(k + 1) * nbytes], "little", signed=True)
                     for k in range(count)], dtype=np.int64)


@dataclass(frozen=True)
class FrameSpec:
    """Vector sizes of one network's frames."""
    n_in: int
    n_out: int
    in_width: int
    out_width: int

    @classmethod
    def from_manifest(cls, manifest) -> "FrameSpec":
        """The frames of the build a :class:`~bp_hw.plan.manifest.Manifest` describes (vector streams)."""
        inp, out = manifest.inp, manifest.out
        if inp.elements is None or out.elements is None:
            raise BpHwError(f"the board link carries one input and one output vector; the build in "
                            f"{manifest.build_dir} streams {', '.join(f.name for f in inp.fields)}")
        return cls(inp.elements, out.elements, inp.width, out.width)

    @property
    def in_bytes(self) -> int:
        return (self.in_width + 7) // 8

    @property
    def out_bytes(self) -> int:
        return (self.out_width + 7) // 8

    @property
    def request_length(self) -> int:
        return 2 + self.n_in * self.in_bytes

    @property
    def response_length(self) -> int:
        return 2 + self.n_out * self.out_bytes

    def encode_request(self, x) -> bytes:
        payload = _pack(x, self.n_in, self.in_width)
        return bytes([SYNC_REQUEST]) + payload + bytes([crc8(payload)])

    def decode_request(self, frame: bytes) -> np.ndarray:
        return self._decode(frame, SYNC_REQUEST, self.n_in, self.in_width)

    def encode_response(self, y) -> bytes:
        payload = _pack(y, self.n_out, self.out_width)
        return bytes([SYNC_RESPONSE]) + payload + bytes([crc8(payload)])

    def decode_response(self, frame: bytes) -> np.ndarray:
        return self._decode(frame, SYNC_RESPONSE, self.n_out, self.out_width)

    def info_response(self) -> bytes:
        body = bytes([PROTOCOL_VERSION]) + self.n_in.to_bytes(2, "little") + self.n_out.to_bytes(2, "little") \
            + bytes([self.in_width, self.out_width])
        return bytes([INFO]) + body + bytes([crc8(body)])

    @classmethod
    def decode_info(cls, frame: bytes) -> "FrameSpec":
        if len(frame) != 9 or frame[0] != INFO:
            raise ValueError(f"not an info frame: {frame.hex()}")
        body = frame[1:-1]
        if crc8(body) != frame[-1]:
            raise ValueError("info frame CRC mismatch")
        if body[0] != PROTOCOL_VERSION:
            raise ValueError(f"board speaks frame protocol {body[0]}, this host {PROTOCOL_VERSION}")
        return cls(int.from_bytes(body[1:3], "little"), int.from_bytes(body[3:5], "little"), body[5], body[6])

    @staticmethod
    def _decode(frame: bytes, sync: int, count: int, width: int) -> np.ndarray:
        if not frame or frame[0] != sync:
            raise ValueError(f"frame does not start with {sync:02X}: {bytes(frame[:4]).hex()}")
        payload = bytes(frame[1:-1])
        if crc8(payload) != frame[-1]:
            raise ValueError("frame CRC mismatch")
        return _unpack(payload, count, width)
