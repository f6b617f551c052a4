"""Rounding and overflow: the only two ways precision is ever lost.

Everything works on numpy int64 arrays of exact integers.

``round_shift(x, k, mode)`` computes ``x / 2^k`` rounded to an integer:

=================  ==========================================================
mode               result (``q = floor(x / 2^k)``, ``r = x - q * 2^k``)
=================  ==========================================================
``floor``          ``q`` — what dropping the low bits does in hardware
``toward-zero``    ``q`` if ``x >= 0`` else ``-floor(-x / 2^k)``
``nearest-up``     ``floor((x + 2^(k-1)) / 2^k)`` — ties toward +infinity
``nearest-even``   nearest, ties to the even neighbour (convergent rounding)
``stochastic``     ``floor((x + u) / 2^k)``, ``u`` the LFSR offset (``lfsr.py``)
=================  ==========================================================

For ``k <= 0`` the value is shifted left by ``-k`` (exact, no rounding).

``overflow(x, fmt, mode)`` brings an integer into a format's range:
``saturate`` clips to ``[min, max]``, ``symmetric`` clips to ``[-max, max]``
(signed formats; keeps negation exact), ``wrap`` keeps the low ``width`` bits
as two's complement. Each element out of range counts as one saturation
(for ``wrap``: one overflow).
"""

from __future__ import annotations

import numpy as np

from ..errors import BpHwError
from .lfsr import LFSR
from .qformat import QFormat

ROUNDING_MODES = ("floor", "toward-zero", "nearest-up", "nearest-even", "stochastic")
OVERFLOW_MODES = ("saturate", "symmetric", "wrap")

_ALIASES = {
    "truncate": "floor", "trunc": "floor", "rnd_floor": "floor",
    "zero": "toward-zero", "towards-zero": "toward-zero", "rnd_zero": "toward-zero",
    "nearest": "nearest-up", "half-up": "nearest-up", "round": "nearest-up", "rnd": "nearest-up",
    "convergent": "nearest-even", "half-even": "nearest-even", "rnd_conv": "nearest-even",
    "sat": "saturate", "sat_sym": "symmetric", "symmetric-saturate": "symmetric", "wrap-around": "wrap",
}
# Names are looked up after "_" -> "-", so the hls4ml spellings (rnd_conv, sat_sym) need the same form.
_ALIASES = {k.replace("_", "-"): v for k, v in _ALIASES.items()}


def rounding_mode(name: str) -> str:
    """Canonical rounding mode name, or a BpHwError listing the valid ones."""
    key = _ALIASES.get(str(name).lower().replace("_", "-"), str(name).lower().replace("_", "-"))
    key = _ALIASES.get(key, key)
    if key not in ROUNDING_MODES:
        raise BpHwError(f"unknown rounding mode {name!r}; choose one of {', '.join(ROUNDING_MODES)}")
    return key


def overflow_mode(name: str) -> str:
    """Canonical overflow mode name, or a BpHwError listing the valid ones."""
    key = str(name).lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in OVERFLOW_MODES:
        raise BpHwError(f"unknown overflow mode {name!r}; choose one of {', '.join(OVERFLOW_MODES)}")
    return key


def round_shift(x, k: int, mode: str = "nearest-even", lfsr: LFSR | None = None) -> np.ndarray:
    """``x / 2^k`` rounded to integers by ``mode`` (see the module doc). Exact int64 arithmetic."""
    x = np.asarray(x, dtype=np.int64)
    if k <= 0:
        return x << (-k)
    if mode == "floor":
        return x >> k
    if mode == "toward-zero":
        return np.where(x >= 0, x >> k, -((-x) >> k))
    if mode == "nearest-up":
        return (x + (1 << (k - 1))) >> k
    if mode == "nearest-even":
        q = x >> k
        r = x & ((1 << k) - 1)
        half = 1 << (k - 1)
        up = (r > half) | ((r == half) & ((q & 1) == 1))
        return q + up.astype(np.int64)
    if mode == "stochastic":
        if lfsr is None:
            raise ValueError("stochastic rounding needs an LFSR")
        u = lfsr.offsets(x.size, k).reshape(x.shape)
        return (x + u) >> k
    raise BpHwError(f"unknown rounding mode {mode!r}")


def overflow(x, fmt: QFormat, mode: str = "saturate") -> tuple[np.ndarray, int]:
    """Bring ``x`` into ``fmt``'s integer range; return ``(values, count out of range)``."""
    x = np.asarray(x, dtype=np.int64)
    lo, hi = fmt.min_int, fmt.max_int
    if mode == "symmetric" and fmt.signed:
        lo = -hi
    out_of_range = (x < lo) | (x > hi)
    count = int(np.count_nonzero(out_of_range))
    if mode == "wrap":
        mask = (1 << fmt.width) - 1
        y = x & mask
        if fmt.signed:
            y = np.where(y > fmt.max_int, y - (1 << fmt.width), y)
        return y, count
    if mode in ("saturate", "symmetric"):
        return np.clip(x, lo, hi), count
    raise BpHwError(f"unknown overflow mode {mode!r}")


def requantize(x, from_frac: int, fmt: QFormat, rounding: str = "nearest-even",
               overflow_mode_: str = "saturate", lfsr: LFSR | None = None) -> tuple[np.ndarray, int]:
    """Rescale integers with ``from_frac`` fraction bits into ``fmt``: round_shift, then overflow."""
    y = round_shift(x, from_frac - fmt.frac_bits, rounding, lfsr)
    return overflow(y, fmt, overflow_mode_)


def quantize_float(values, fmt: QFormat, rounding: str = "nearest-even",
                   overflow_mode_: str = "saturate", lfsr: LFSR | None = None) -> tuple[np.ndarray, int]:
    """Real numbers to integers of ``fmt``; returns ``(ints, saturations)``.

    Scaling by ``2^frac`` is exact in float64; the rounding is then applied to
    that exact value (for ``stochastic``, through 32 extra fraction bits taken
    with ``floor``, then :func:`round_shift` by 32).
    """
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise BpHwError("cannot quantize NaN or infinite values")
    scaled = np.ldexp(v, fmt.frac_bits)
    # A negative shift can underflow a subnormal to zero; keep its sign so that floor of a tiny
    # negative value is still -1 (the exact rational's floor).
    scaled = np.where((scaled == 0) & (v != 0), np.copysign(np.finfo(np.float64).smallest_subnormal, v), scaled)
    limit = 2.0 ** 62
    scaled = np.clip(scaled, -limit, limit)  # beyond int64; saturates below anyway
    if rounding == "floor":
        q = np.floor(scaled)
    elif rounding == "toward-zero":
        q = np.trunc(scaled)
    elif rounding == "nearest-up":
        # not floor(scaled + 0.5): that sum is itself rounded (0.49999999999999994 -> 1)
        q = np.floor(scaled)
        q = q + (scaled - q >= 0.5)
    elif rounding == "nearest-even":
        q = np.rint(scaled)
    elif rounding == "stochastic":
        # floor(scaled * 2^32) split as whole * 2^32 + fine so that large values do not
        # overflow int64; round_shift of the fraction part alone gives the same result.
        whole = np.floor(scaled)
        fine = np.floor(np.ldexp(scaled - whole, 32)).astype(np.int64)
        q = whole.astype(np.int64) + round_shift(fine, 32, "stochastic", lfsr)
    else:
        raise BpHwError(f"unknown rounding mode {rounding!r}")
    q = np.clip(q, -limit, limit).astype(np.int64)
    return overflow(q, fmt, overflow_mode_)
