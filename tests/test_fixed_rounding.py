"""Rounding, overflow and float quantization against exact rational arithmetic.

Each mode's expected result is computed here from its mathematical definition
with :class:`fractions.Fraction` (no shifts, no masks), so a slip in the
bit-twiddling of ``rounding.py`` cannot hide in a shared formula.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, example, given, settings, strategies as st

from bp_hw.errors import BpHwError
from bp_hw.fixed.lfsr import LFSR
from bp_hw.fixed.qformat import QFormat
from bp_hw.fixed.rounding import (OVERFLOW_MODES, ROUNDING_MODES, overflow, overflow_mode, quantize_float,
                                  requantize, round_shift, rounding_mode)

DETERMINISTIC = [m for m in ROUNDING_MODES if m != "stochastic"]
ints = st.integers(min_value=-(2 ** 52), max_value=2 ** 52)
int_lists = st.lists(ints, min_size=1, max_size=30)


def exact_round(q: Fraction, mode: str) -> int:
    """Round a rational number to an integer by the definition of ``mode``."""
    if mode == "floor":
        return math.floor(q)
    if mode == "toward-zero":
        return int(q)  # int() of a Fraction truncates toward zero
    if mode == "nearest-up":
        return math.floor(q + Fraction(1, 2))
    if mode == "nearest-even":
        lo = math.floor(q)
        d = q - lo
        if d != Fraction(1, 2):
            return lo + (d > Fraction(1, 2))
        return lo if lo % 2 == 0 else lo + 1
    raise AssertionError(mode)


def reference_lfsr_states(seed: int, n: int) -> list[int]:
    """The LFSR of lfsr.py, written as a list of bits (see test_fixed_lfsr for its own check)."""
    bits = [(seed >> i) & 1 for i in range(32)]
    if not any(bits):
        bits = [(0xACE1ACE1 >> i) & 1 for i in range(32)]
    out = []
    for _ in range(n):
        o = bits[0]
        bits = bits[1:] + [0]
        if o:
            for t in (0, 1, 21, 31):
                bits[t] ^= 1
        out.append(sum(b << i for i, b in enumerate(bits)))
    return out


def exact_range(fmt: QFormat, mode: str) -> tuple[int, int]:
    lo, hi = -(2 ** (fmt.width - 1)), 2 ** (fmt.width - 1) - 1
    if not fmt.signed:
        lo, hi = 0, 2 ** fmt.width - 1
    if mode == "symmetric" and fmt.signed:
        lo = -hi
    return lo, hi


def exact_overflow(v: int, fmt: QFormat, mode: str) -> int:
    lo, hi = exact_range(fmt, mode)
    if mode == "wrap":
        span = 2 ** fmt.width
        base = -(2 ** (fmt.width - 1)) if fmt.signed else 0
        return (v - base) % span + base
    return min(max(v, lo), hi)


@st.composite
def formats(draw, signed=None):
    w = draw(st.integers(min_value=2, max_value=32))
    i = draw(st.integers(min_value=-3, max_value=w + 3))
    s = draw(st.booleans()) if signed is None else signed
    return QFormat(i, w - i, s)


# -- round_shift ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", DETERMINISTIC)
@given(xs=int_lists, k=st.integers(min_value=-8, max_value=40))
def test_round_shift_matches_exact_rationals(mode, xs, k):
    got = round_shift(np.array(xs, dtype=np.int64), k, mode)
    if k <= 0:
        want = [x * 2 ** -k for x in xs]
    else:
        want = [exact_round(Fraction(x, 2 ** k), mode) for x in xs]
    assert got.tolist() == want


@given(xs=int_lists, k=st.integers(min_value=1, max_value=40), seed=st.integers(0, 2 ** 32 - 1))
def test_round_shift_stochastic_uses_documented_offsets(xs, k, seed):
    lfsr = LFSR(seed)
    got = round_shift(np.array(xs, dtype=np.int64), k, "stochastic", lfsr)
    states = reference_lfsr_states(seed, len(xs))
    # Offset: the low k bits of the state after a step (k <= 32), or the 32 bits at the top of k bits.
    offs = [s % 2 ** k if k <= 32 else s * 2 ** (k - 32) for s in states]
    want = [math.floor(Fraction(x + u, 2 ** k)) for x, u in zip(xs, offs)]
    assert got.tolist() == want
    # Stochastic rounding only ever picks one of the two neighbours.
    for x, g in zip(xs, got.tolist()):
        assert math.floor(Fraction(x, 2 ** k)) <= g <= math.ceil(Fraction(x, 2 ** k))
    assert lfsr.state == states[-1]


@settings(max_examples=25, deadline=None)
@given(num=st.integers(min_value=-(2 ** 20), max_value=2 ** 20), k=st.integers(min_value=1, max_value=12),
       seed=st.integers(1, 2 ** 32 - 1))
def test_stochastic_rounding_is_unbiased_on_average(num, k, seed):
    n = 8192
    x = np.full(n, num, dtype=np.int64)
    got = round_shift(x, k, "stochastic", LFSR(seed))
    exact = num / 2 ** k
    frac = exact - math.floor(exact)
    # Each result is floor or floor + 1 with P(up) = frac: the mean error has std <= 0.5 / sqrt(n).
    tol = 6 * math.sqrt(max(frac * (1 - frac), 1e-4) / n) + 2.0 ** -k + 1e-9
    assert abs(got.mean() - exact) < tol
    # ...whereas floor is biased by -frac for every element, independently of n.
    assert round_shift(x, k, "floor").mean() == pytest.approx(exact - frac)


def test_stochastic_needs_an_lfsr():
    with pytest.raises(ValueError):
        round_shift(np.array([3]), 1, "stochastic")


def test_unknown_mode_names():
    with pytest.raises(BpHwError):
        rounding_mode("banker")
    with pytest.raises(BpHwError):
        overflow_mode("clip-ish")
    assert rounding_mode("convergent") == "nearest-even"
    assert rounding_mode("TRUNCATE") == "floor"
    assert overflow_mode("sat_sym") == "symmetric"


# -- overflow -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", OVERFLOW_MODES)
@given(fmt=formats(), xs=st.lists(st.integers(min_value=-(2 ** 40), max_value=2 ** 40), min_size=1,
                                  max_size=30))
def test_overflow_matches_definition(mode, fmt, xs):
    got, count = overflow(np.array(xs, dtype=np.int64), fmt, mode)
    assert got.tolist() == [exact_overflow(x, fmt, mode) for x in xs]
    lo, hi = exact_range(fmt, mode)
    assert count == sum(1 for x in xs if not lo <= x <= hi)
    assert all(fmt.min_int <= v <= fmt.max_int for v in got.tolist())


@given(fmt=formats(signed=True))
def test_symmetric_saturation_keeps_negation_exact(fmt):
    got, count = overflow(np.array([fmt.min_int, fmt.max_int]), fmt, "symmetric")
    assert got.tolist() == [-fmt.max_int, fmt.max_int] and count == 1


@given(fmt=formats(), xs=int_lists, from_frac=st.integers(-4, 40),
       mode=st.sampled_from(DETERMINISTIC), omode=st.sampled_from(OVERFLOW_MODES))
def test_requantize_is_round_then_overflow(fmt, xs, from_frac, mode, omode):
    got, count = requantize(np.array(xs, dtype=np.int64), from_frac, fmt, mode, omode)
    k = from_frac - fmt.frac_bits
    assume(k > -8)  # keep x * 2^-k inside int64
    rounded = [exact_round(Fraction(x) / Fraction(2) ** k, mode) for x in xs]
    assert got.tolist() == [exact_overflow(r, fmt, omode) for r in rounded]
    lo, hi = exact_range(fmt, omode)
    assert count == sum(1 for r in rounded if not lo <= r <= hi)


# -- quantize_float ---------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)


@pytest.mark.parametrize("mode", DETERMINISTIC)
@given(fmt=formats(), vs=st.lists(finite, min_size=1, max_size=20), omode=st.sampled_from(OVERFLOW_MODES))
@example(fmt=QFormat(int_bits=3, frac_bits=-1, signed=False), vs=[-5e-324], omode="wrap")
@example(fmt=QFormat(int_bits=3, frac_bits=-1, signed=False), vs=[-5e-324], omode="saturate")
def test_quantize_float_matches_exact_rationals(mode, fmt, vs, omode):
    assume(all(abs(v) * 2.0 ** fmt.frac_bits < 2.0 ** 62 for v in vs))  # beyond that only saturation is meaningful
    got, count = quantize_float(np.array(vs), fmt, mode, omode)
    rounded = [exact_round(Fraction(v) * Fraction(2) ** fmt.frac_bits, mode) for v in vs]
    assert got.tolist() == [exact_overflow(r, fmt, omode) for r in rounded]
    lo, hi = exact_range(fmt, omode)
    assert count == sum(1 for r in rounded if not lo <= r <= hi)


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_quantize_float_just_below_a_half(mode):
    # The largest double below 1/2: every nearest mode must round it down.
    v = np.nextafter(0.5, 0.0)
    got, _ = quantize_float(np.array([v, -v]), QFormat(8, 0), mode)
    assert got.tolist() == [exact_round(Fraction(v), mode), exact_round(-Fraction(v), mode)]


@given(fmt=formats(signed=True), vs=st.lists(finite, min_size=1, max_size=20), seed=st.integers(1, 2 ** 32 - 1))
def test_quantize_float_stochastic(fmt, vs, seed):
    assume(all(abs(v) * 2.0 ** fmt.frac_bits < 2.0 ** 62 for v in vs))
    got, _ = quantize_float(np.array(vs), fmt, "stochastic", lfsr=LFSR(seed))
    states = reference_lfsr_states(seed, len(vs))
    # Documented rule: 32 extra fraction bits taken with floor, then rounded by the LFSR's low 32 bits.
    want = []
    for v, u in zip(vs, states):
        fine = math.floor(Fraction(v) * Fraction(2) ** (fmt.frac_bits + 32))
        want.append(exact_overflow(math.floor(Fraction(fine + u, 2 ** 32)), fmt, "saturate"))
    assert got.tolist() == want


def test_quantize_float_stochastic_full_32_bit_range():
    fmt = QFormat(32, 0)
    got, sat = quantize_float(np.array([2.0 ** 31 - 1, -(2.0 ** 31), 2.0 ** 31]), fmt, "stochastic", lfsr=LFSR(7))
    assert got.tolist() == [2 ** 31 - 1, -(2 ** 31), 2 ** 31 - 1] and sat == 1


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_quantize_float_rejects_non_finite(bad):
    with pytest.raises(BpHwError):
        quantize_float(np.array([0.0, bad]), QFormat(4, 12))
