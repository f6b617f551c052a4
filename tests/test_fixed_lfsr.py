"""The stochastic-rounding LFSR: step rule, period, determinism.

The step rule is re-implemented here as a shift of a list of bits with the
taps given as polynomial exponents, and the maximal-length claim (period
2^32 - 1) is proved algebraically from that reference: the step is linear over
GF(2), so the period is the multiplicative order of its 32x32 matrix.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bp_hw.fixed import lfsr as lfsr_mod
from bp_hw.fixed.lfsr import DEFAULT_SEED, LFSR, step

POLY_EXPONENTS = (32, 22, 2, 1, 0)  # x^32 + x^22 + x^2 + x + 1, from the module doc
PERIOD = 2 ** 32 - 1
PERIOD_PRIME_FACTORS = (3, 5, 17, 257, 65537)


def bit_step(bits: list[int]) -> list[int]:
    """Galois step on a bit list (bits[0] = LSB): shift toward bit 0, feed the output into the taps.

    For a right-shifting Galois register, polynomial term x^e (0 < e <= 32) is
    bit e - 1 of the feedback mask (the x^32 term re-enters at the top bit).
    """
    out = bits[0]
    nxt = bits[1:] + [0]
    if out:
        for e in POLY_EXPONENTS:
            if e > 0:
                nxt[e - 1] ^= 1
    return nxt


def to_bits(v: int) -> list[int]:
    return [(v >> i) & 1 for i in range(32)]


def from_bits(bits: list[int]) -> int:
    return sum(b << i for i, b in enumerate(bits))


@given(st.integers(min_value=1, max_value=2 ** 32 - 1))
def test_step_matches_bit_level_reference(s):
    assert step(s) == from_bits(bit_step(to_bits(s)))
    assert 0 < step(s) < 2 ** 32


@settings(deadline=None, max_examples=30)
@given(st.integers(min_value=0, max_value=2 ** 40), st.integers(min_value=1, max_value=300))
def test_sequence_matches_reference_and_is_deterministic(seed, n):
    a, b = LFSR(seed), LFSR(seed)
    states = a.next_states(n)
    assert np.array_equal(states, b.next_states(n))
    bits = to_bits((seed & 0xFFFFFFFF) or DEFAULT_SEED)
    ref = []
    for _ in range(n):
        bits = bit_step(bits)
        ref.append(from_bits(bits))
    assert states.tolist() == ref
    assert a.state == ref[-1]


@settings(deadline=None, max_examples=20)
@given(st.integers(1, 2 ** 32 - 1), st.integers(0, 200), st.integers(0, 200))
def test_chunking_does_not_change_the_sequence(seed, n1, n2):
    one = LFSR(seed).next_states(n1 + n2)
    l = LFSR(seed)
    two = np.concatenate([l.next_states(n1), l.next_states(n2)])
    assert np.array_equal(one, two)


def test_zero_seed_replaced_and_seed_masked():
    assert LFSR(0).state == DEFAULT_SEED
    assert LFSR(2 ** 32).state == DEFAULT_SEED  # masks to zero
    assert LFSR(2 ** 32 + 5).state == 5


def test_no_repeat_and_never_zero_on_a_prefix():
    states = LFSR(1).next_states(1 << 17)
    assert np.all(states != 0)
    assert np.unique(states).size == states.size
    assert np.all(states < 2 ** 32)


def _gf2_matrix() -> list[int]:
    """Columns of the step's matrix as 32-bit ints: column j = step(e_j)."""
    return [from_bits(bit_step(to_bits(1 << j))) for j in range(32)]


def _apply(cols: list[int], v: int) -> int:
    out = 0
    j = 0
    while v:
        if v & 1:
            out ^= cols[j]
        v >>= 1
        j += 1
    return out


def _mat_mul(a: list[int], b: list[int]) -> list[int]:
    return [_apply(a, c) for c in b]


def _mat_pow(m: list[int], e: int) -> list[int]:
    result = [1 << j for j in range(32)]
    while e:
        if e & 1:
            result = _mat_mul(m, result)
        m = _mat_mul(m, m)
        e >>= 1
    return result


def test_period_is_maximal():
    m = _gf2_matrix()
    identity = [1 << j for j in range(32)]
    assert _mat_pow(m, PERIOD) == identity
    for p in PERIOD_PRIME_FACTORS:
        assert _mat_pow(m, PERIOD // p) != identity, f"period divides (2^32-1)/{p}"
    assert np.prod(PERIOD_PRIME_FACTORS, dtype=object) == PERIOD


def test_period_check_can_fail():
    # A non-primitive tap set (x^32 + 1) has period 32: the order test must notice.
    saved = lfsr_mod.TAPS
    cols = [((1 << j) >> 1) | ((1 << 31) if j == 0 else 0) for j in range(32)]
    identity = [1 << j for j in range(32)]
    assert _mat_pow(cols, 32) == identity and _mat_pow(cols, PERIOD) != identity
    assert lfsr_mod.TAPS == saved


@given(st.integers(1, 2 ** 32 - 1), st.integers(0, 40))
def test_offsets_are_documented_bits(seed, bits):
    states = LFSR(seed).next_states(16).astype(np.int64)
    offs = LFSR(seed).offsets(16, bits)
    if bits == 0:
        assert np.all(offs == 0)
    elif bits <= 32:
        assert offs.tolist() == [s % 2 ** bits for s in states.tolist()]
    else:
        assert offs.tolist() == [s * 2 ** (bits - 32) for s in states.tolist()]
    assert np.all((0 <= offs) & (offs < 2 ** max(bits, 0) + (bits == 0)))


@pytest.mark.parametrize("bits", [1, 4, 8])
def test_offsets_are_uniform_on_a_long_run(bits):
    offs = LFSR(DEFAULT_SEED).offsets(1 << 16, bits)
    counts = np.bincount(offs, minlength=1 << bits)
    expected = offs.size / (1 << bits)
    assert np.all(np.abs(counts - expected) < 6 * np.sqrt(expected))
