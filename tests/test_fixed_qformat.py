"""QFormat parsing and ranges, checked against the definitions in DESIGN.md."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from bp_hw.errors import BpHwError
from bp_hw.fixed.qformat import QFormat

widths = st.integers(min_value=2, max_value=32)


@st.composite
def signed_formats(draw):
    w = draw(widths)
    i = draw(st.integers(min_value=-4, max_value=w + 4))
    return w, i


@given(signed_formats())
def test_q_and_hls_spellings_agree(wi):
    w, i = wi
    f = w - i
    q = QFormat.parse(f"Q{i}.{f}")
    h = QFormat.parse(f"fixed<{w},{i}>")
    assert q == h
    assert (q.width, q.int_bits, q.frac_bits, q.signed) == (w, i, f, True)
    # Range from the definition: i integer bits including the sign -> [-2^(i-1), 2^(i-1) - 2^-f].
    assert Fraction(q.min_int) * Fraction(2) ** -f == -(Fraction(2) ** (i - 1))
    assert Fraction(q.max_int) * Fraction(2) ** -f == Fraction(2) ** (i - 1) - Fraction(2) ** -f
    assert q.min_int == -(2 ** (w - 1)) and q.max_int == 2 ** (w - 1) - 1
    assert QFormat.parse(q.name) == q  # printing round-trips


@given(signed_formats())
def test_unsigned_spellings_agree(wi):
    w, i = wi
    f = w - i
    u = QFormat.parse(f"UQ{i}.{f}")
    assert u == QFormat.parse(f"ufixed<{w},{i}>")
    assert not u.signed and u.min_int == 0 and u.max_int == 2 ** w - 1
    assert u.max_value == pytest.approx(float(Fraction(2 ** w - 1) * Fraction(2) ** -f), rel=0, abs=0)


@pytest.mark.parametrize("text", ["q4.12", " Q4.12 ", "fixed< 16 , 4 >", "FIXED<16,4>"])
def test_parse_tolerates_case_and_spaces(text):
    assert QFormat.parse(text) == QFormat(4, 12)


@pytest.mark.parametrize("text", ["Q0.0", "Q1.0", "Q20.13", "UQ33.0", "fixed<33,4>", "fixed<1,1>",
                                  "fixed<0,0>", "fixed<-4,2>", "Q4", "Q4.12.1", "4.12", "int16", "",
                                  "fixed<16>", "Q-3.4"])
def test_rejects_impossible_or_unknown(text):
    with pytest.raises(BpHwError):
        QFormat.parse(text)


@given(st.integers(min_value=-(2 ** 40), max_value=2 ** 40).filter(lambda w: not 2 <= w <= 32),
       st.integers(min_value=-40, max_value=40))
def test_every_width_outside_2_to_32_is_rejected(w, i):
    with pytest.raises(BpHwError):
        QFormat.parse(f"fixed<{w},{i}>")


def test_non_string_rejected():
    with pytest.raises(BpHwError):
        QFormat.parse(16)


@given(signed_formats(), st.data())
def test_hex_round_trip(wi, data):
    w, i = wi
    fmt = QFormat(i, w - i)
    vals = np.array(data.draw(st.lists(st.integers(fmt.min_int, fmt.max_int), min_size=1, max_size=20)))
    hexes = fmt.to_hex(vals)
    assert all(len(h) == (w + 3) // 4 for h in hexes)
    raw = np.array([int(h, 16) for h in hexes])
    assert np.all(raw < 2 ** w)
    assert np.array_equal(fmt.from_bits(raw), vals)
    # Two's complement, written independently: negative v is stored as 2^w + v.
    assert [int(h, 16) for h in hexes] == [v + 2 ** w if v < 0 else v for v in vals.tolist()]
