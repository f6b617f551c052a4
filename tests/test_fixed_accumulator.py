"""The accumulator width rule under the worst case, and the check that enforces it.

For a layer whose inputs, weights and biases may take any value of their
formats, ``acc = sum_j W[i,j] a[j] + (b[i] << bias_shift)`` is extreme when
every term is extreme with the same sign; since every input shares one format
and every weight another, that happens with all weights equal to one format
extreme and all inputs equal to one format extreme. The test builds one neuron
per (weight extreme, bias extreme) and one sample per input extreme, so the
batch contains both the largest and the smallest accumulator the layer can
ever produce.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bp_hw.fixed.qformat import QFormat
from bp_hw.fixed.qmodel import QLayer


def bits_needed(lo: int, hi: int) -> int:
    """Smallest two's complement width holding every integer of [lo, hi] (plain Python ints)."""
    b = 1
    while not (-(2 ** (b - 1)) <= lo and hi <= 2 ** (b - 1) - 1):
        b += 1
    return b


class NarrowLayer(QLayer):
    """A layer whose accumulator is declared ``narrow_by`` bits narrower than the rule: a deliberate bug."""

    narrow_by = 1

    @property
    def acc_width(self) -> int:
        return super().acc_width - self.narrow_by


def worst_case_layer(in_fmt, w_fmt, b_fmt, fan_in, cls=QLayer):
    weights = np.array([[w] * fan_in for w in (w_fmt.min_int, w_fmt.max_int) for _ in range(2)], dtype=np.int64)
    biases = np.array([b_fmt.min_int, b_fmt.max_int] * 2, dtype=np.int64)
    z_fmt = QFormat(16, 16)
    layer = cls(weights, biases, "identity", in_fmt, w_fmt, b_fmt, z_fmt, z_fmt)
    inputs = np.array([[in_fmt.min_int] * fan_in, [in_fmt.max_int] * fan_in], dtype=np.int64)
    return layer, inputs


def exact_extremes(in_fmt, w_fmt, b_fmt, fan_in, bias_shift):
    """Largest and smallest accumulator by exhaustive vertex search, in Python integers."""
    prods = [w * a for w in (w_fmt.min_int, w_fmt.max_int) for a in (in_fmt.min_int, in_fmt.max_int)]
    bias = [b * 2 ** bias_shift for b in (b_fmt.min_int, b_fmt.max_int)]
    return fan_in * min(prods) + min(bias), fan_in * max(prods) + max(bias)


@st.composite
def layer_formats(draw):
    def fmt(max_w):
        w = draw(st.integers(2, max_w))
        i = draw(st.integers(-2, w))  # frac >= 0 keeps the aligned bias inside int64
        return QFormat(i, w - i, draw(st.booleans()))
    in_fmt, w_fmt = fmt(16), fmt(16)
    b_fmt = fmt(24)
    product_frac = in_fmt.frac_bits + w_fmt.frac_bits
    if b_fmt.frac_bits > product_frac:  # the layer refuses finer biases (the quantizer coarsens them)
        w = max(b_fmt.width - (b_fmt.frac_bits - product_frac), 2)
        b_fmt = QFormat(w - product_frac, product_frac, b_fmt.signed)
    return in_fmt, w_fmt, b_fmt


@settings(max_examples=200, deadline=None)
@given(layer_formats(), st.integers(min_value=1, max_value=4096))
def test_worst_case_fits_acc_width(fmts, fan_in):
    in_fmt, w_fmt, b_fmt = fmts
    layer, inputs = worst_case_layer(in_fmt, w_fmt, b_fmt, fan_in)
    trace = layer.forward(inputs)  # raises AssertionError if the rule were violated
    acc = trace["acc"]
    lo, hi = exact_extremes(in_fmt, w_fmt, b_fmt, fan_in, layer.bias_shift)
    assert int(acc.min()) == lo and int(acc.max()) == hi  # the batch really reaches the extremes
    assert bits_needed(lo, hi) <= layer.acc_width
    # The rule is never loose by more than the unused top of the guard bits plus one product bit.
    assert layer.acc_width - bits_needed(lo, hi) <= 1 + (layer.acc_width - layer.product_width)


@pytest.mark.parametrize("in_fmt, w_fmt, b_fmt, fan_in", [
    (QFormat(2, 6), QFormat(2, 6), QFormat(12, 0), 1),       # a coarse, wide bias dominates
    (QFormat(1, 7, False), QFormat(2, 6), QFormat(8, 0), 1),
])
def test_rule_is_tight_and_one_bit_less_overflows(in_fmt, w_fmt, b_fmt, fan_in):
    layer, inputs = worst_case_layer(in_fmt, w_fmt, b_fmt, fan_in)
    lo, hi = exact_extremes(in_fmt, w_fmt, b_fmt, fan_in, layer.bias_shift)
    assert bits_needed(lo, hi) == layer.acc_width
    narrow, _ = worst_case_layer(in_fmt, w_fmt, b_fmt, fan_in, cls=NarrowLayer)
    with pytest.raises(AssertionError, match="accumulator exceeds"):
        narrow.forward(inputs)


@pytest.mark.parametrize("fan_in", [4, 8, 64])
def test_equal_signed_formats_have_exactly_one_spare_bit(fan_in):
    # Signed x signed products reach +2^(a+w-2) only at min*min, so with equal formats the rule
    # keeps one bit in reserve: one bit less still fits the worst case, two bits less does not.
    q = QFormat(4, 12)
    layer, inputs = worst_case_layer(q, q, q, fan_in)
    lo, hi = exact_extremes(q, q, q, fan_in, layer.bias_shift)
    assert bits_needed(lo, hi) == layer.acc_width - 1
    NarrowLayer.narrow_by = 1
    one_less, _ = worst_case_layer(q, q, q, fan_in, cls=NarrowLayer)
    one_less.forward(inputs)
    two_less = type("TwoLess", (NarrowLayer,), {"narrow_by": 2})
    layer2, _ = worst_case_layer(q, q, q, fan_in, cls=two_less)
    with pytest.raises(AssertionError, match="accumulator exceeds"):
        layer2.forward(inputs)
