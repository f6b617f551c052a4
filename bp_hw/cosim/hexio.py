"""Pack stream payloads into hex files for the harness and unpack its logs, vectorised.

A payload of n elements of W bits is one hex word with element k in bits
``[k*W, (k+1)*W)`` (element 0 in the least significant bits), the packing of
an Amaranth ``ArrayLayout`` and of the generator's ports; a payload of several
fields (the training input ``{x, t, train}``) has each field at its bit offset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from bp_hw.errors import BpHwError

__all__ = ["check_range", "pack_hex_fields", "pack_hex", "write_hex", "read_log", "read_cycles"]

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# ASCII -> nibble value; 255 marks anything else (x, z, X, Z, ...).
_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i


def check_range(values: np.ndarray, width: int, signed: bool, what: str) -> np.ndarray:
    """Return *values* as int64, raising :class:`BpHwError` if any does not fit."""
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
            values = values.astype(np.int64)
        else:
            raise BpHwError(f"{what}: expected integers (the quantised values), got dtype {values.dtype}")
    values = values.astype(np.int64)
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if values.size and (values.min() < lo or values.max() > hi):
        bad = values[(values < lo) | (values > hi)][0]
        raise BpHwError(f"{what}: value {bad} does not fit in {'signed' if signed else 'unsigned'} "
                        f"{width} bits [{lo}, {hi}]")
    return values


def pack_hex_fields(n: int, bits: int, fields: Sequence[tuple[int, int, np.ndarray]]) -> bytes:
    """Hex lines (MSB first, fixed length), one per row, of ``bits``-bit payloads made of ``fields``:
    ``(offset, width, values (n, elements))``, element k of a field in bits
    ``[offset + k*width, offset + (k+1)*width)``; bits no field covers are 0."""
    digits = (bits + 3) // 4
    if n == 0:
        return b""
    packed = np.zeros((n, digits * 4), dtype=np.uint8)  # LSB first
    for offset, width, values in fields:
        values = np.asarray(values, dtype=np.int64).reshape(n, -1)
        u = values.astype(np.uint64) & np.uint64((1 << width) - 1 if width < 64 else 0xFFFFFFFFFFFFFFFF)
        b = ((u[:, :, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
        packed[:, offset:offset + values.shape[1] * width] = b.reshape(n, -1)
    nibbles = packed.reshape(n, digits, 4) @ np.array([1, 2, 4, 8], dtype=np.uint8)
    chars = _HEX_DIGITS[nibbles[:, ::-1]]  # most significant digit first
    lines = np.concatenate([chars, np.full((n, 1), ord("\n"), dtype=np.uint8)], axis=1)
    return lines.tobytes()


def pack_hex(values: np.ndarray, width: int) -> bytes:
    """Rows of (n, elements) ints -> hex lines (MSB first, fixed length), one per row."""
    values = np.asarray(values, dtype=np.int64)
    n, elements = values.shape
    return pack_hex_fields(n, elements * width, [(0, width, values)])


def write_hex(path: str | Path, values: np.ndarray, width: int) -> None:
    Path(path).write_bytes(pack_hex(values, width))


def _nibbles_to_values(nib: np.ndarray, elements: int, width: int, signed: bool) -> np.ndarray:
    n, digits = nib.shape
    bits = ((nib[:, ::-1, None] >> np.arange(4, dtype=np.uint8)) & 1).reshape(n, digits * 4)
    bits = bits[:, :elements * width].reshape(n, elements, width).astype(np.uint64)
    vals = (bits << np.arange(width, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)
    if not signed:
        return vals.astype(np.int64)
    if width == 64:
        return vals.view(np.int64)
    out = vals.astype(np.int64)
    return np.where(out >= (1 << (width - 1)), out - (1 << width), out)


def read_log(path: str | Path, elements: int, width: int, signed: bool
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a harness log of ``<cycle> <payload>`` lines.

    Returns ``(cycles uint64 (n,), values int64 (n, elements), unknown bool (n,))``;
    ``unknown`` marks rows whose payload had X or Z bits (their values read as 0).
    """
    raw = Path(path).read_bytes() if Path(path).is_file() else b""
    digits = (elements * width + 3) // 4
    line = 16 + 1 + digits + 1
    if not raw:
        return (np.zeros(0, np.uint64), np.zeros((0, elements), np.int64), np.zeros(0, bool))
    if len(raw) % line:
        raise RuntimeError(f"{path}: harness log is malformed (length {len(raw)} is not a "
                           f"multiple of the line length {line})")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, line)
    nib = _NIBBLE[rows]
    cyc_nib, pay_nib = nib[:, :16], nib[:, 17:17 + digits]
    unknown = (pay_nib == 255).any(axis=1)
    if (cyc_nib == 255).any():
        raise RuntimeError(f"{path}: harness cycle counter contains X/Z")
    pay_nib = np.where(pay_nib == 255, 0, pay_nib).astype(np.uint8)
    cycles = (cyc_nib.astype(np.uint64) << (np.arange(15, -1, -1, dtype=np.uint64) * np.uint64(4))).sum(
        axis=1, dtype=np.uint64)
    return cycles, _nibbles_to_values(pay_nib, elements, width, signed), unknown


def read_cycles(path: str | Path) -> np.ndarray:
    """Parse a log of bare ``<cycle>`` hex lines (the input-transfer log)."""
    raw = Path(path).read_bytes() if Path(path).is_file() else b""
    if not raw:
        return np.zeros(0, np.uint64)
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 17)
    nib = _NIBBLE[rows[:, :16]].astype(np.uint64)
    return (nib << (np.arange(15, -1, -1, dtype=np.uint64) * np.uint64(4))).sum(axis=1, dtype=np.uint64)
