"""Amaranth expressions for the integer model's rescale: ``round_shift`` and ``overflow``.

These build combinational logic from the parameters the quantized model
stores (shift, rounding mode, overflow mode, target format); the rules
themselves are those of :mod:`bp_hw.fixed.rounding`, and every use is tested
bit for bit against it. No state, no latency: callers register the result.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value, signed, unsigned

from ..errors import BpHwError
from ..fixed.qformat import QFormat


def shape_of(fmt: QFormat):
    """The Amaranth shape that holds integers of ``fmt``."""
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


def round_parts(x: Value, k: int, mode: str) -> tuple[Value, Value]:
    """``round_shift(x, k, mode)`` as ``(q, up)`` with ``q = floor(x / 2^k)`` (wiring only) and a
    one-bit round-up decision from the dropped bits, so that a pipeline can register both before
    the add. ``x`` must be signed; ``k <= 0`` gives ``(x << -k, 0)``."""
    if k <= 0:
        return x << (-k), Const(0, 1)
    if len(x) <= k:     # a shift past the top: sign-extend so that bit k - 1 (and the sign above it) exist
        x = Cat(x, x[-1].replicate(k + 1 - len(x))).as_signed()
    q = x >> k
    half_bit = x.as_unsigned()[k - 1]
    below_half = x.as_unsigned()[:k - 1].any() if k > 1 else Const(0, 1)
    if mode == "floor":
        return q, Const(0, 1)
    if mode == "nearest-up":        # (x + 2^(k-1)) >> k
        return q, half_bit
    if mode == "nearest-even":      # above half, or exactly half and q odd
        return q, half_bit & (below_half | q[0])
    if mode == "toward-zero":       # negative and inexact: round up towards zero
        return q, x[-1] & x.as_unsigned()[:k].any()
    raise BpHwError(f"rounding mode {mode!r} has no inference hardware")


def round_shift(x: Value, k: int, mode: str) -> Value:
    """``x / 2^k`` rounded by ``mode`` (``k <= 0``: exact left shift). ``x`` must be signed."""
    q, up = round_parts(x, k, mode)
    return q + up


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
