"""Amaranth expressions for the integer model's rescale: ``round_shift`` and ``overflow``.

These build combinational logic from the parameters the quantized model
stores (shift, rounding mode, overflow mode, target format); the rules
themselves are those of :mod:`bp_hw.fixed.rounding`, and every use is tested
bit for bit against it. No state, no latency: callers register the result.
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Value, signed, unsigned

from ..errors import BpHwError
from ..fixed.qformat import QFormat


def shape_of(fmt: QFormat):
    """The Amaranth shape that holds integers of ``fmt``."""
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


def round_shift(x: Value, k: int, mode: str) -> Value:
    """``x / 2^k`` rounded by ``mode`` (``k <= 0``: exact left shift). ``x`` must be signed."""
    if k <= 0:
        return x << (-k)
    if mode == "floor":
        return x >> k
    if mode == "nearest-up":
        return (x + (1 << (k - 1))) >> k
    if mode == "toward-zero":
        return Mux(x < 0, (x + ((1 << k) - 1)) >> k, x >> k)
    if mode == "nearest-even":
        q = x >> k
        r = x.as_unsigned()[:k]
        half = 1 << (k - 1)
        up = (r > half) | ((r == half) & q[0])
        return q + up
    raise BpHwError(f"rounding mode {mode!r} has no inference hardware")


def overflow(x: Value, fmt: QFormat, mode: str) -> Value:
    """``x`` brought into ``fmt``'s range (saturate, symmetric or wrap), as a value of ``fmt``'s shape."""
    if mode == "wrap":
        low = x.as_unsigned()[:fmt.width]
        return low.as_signed() if fmt.signed else low
    lo = fmt.min_int
    hi = fmt.max_int
    if mode == "symmetric" and fmt.signed:
        lo = -hi
    elif mode not in ("saturate", "symmetric"):
        raise BpHwError(f"unknown overflow mode {mode!r}")
    clamped = Mux(x > hi, Const(hi, shape_of(fmt)), Mux(x < lo, Const(lo, shape_of(fmt)), x))
    return clamped.as_signed()[:fmt.width].as_signed() if fmt.signed else clamped.as_unsigned()[:fmt.width]
