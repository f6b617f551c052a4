"""Activation lookup tables: contents, lookup rule, error bounds, symmetry, clamping."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bp_hw.errors import BpHwError
from bp_hw.fixed.lut import ActivationLUT
from bp_hw.fixed.qformat import QFormat

Q412 = QFormat(4, 12)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


FUNCS = {"sigmoid": (sigmoid, 0.25, 1.0 / (6.0 * math.sqrt(3.0))),   # f, max |f'|, max |f''|
         "tanh": (np.tanh, 1.0, 4.0 / (3.0 * math.sqrt(3.0)))}


def all_inputs(fmt: QFormat) -> np.ndarray:
    return np.arange(fmt.min_int, fmt.max_int + 1, dtype=np.int64)


def exhaustive_error(y_int, z_int, in_fmt, out_fmt, f) -> float:
    return float(np.max(np.abs(y_int * 2.0 ** -out_fmt.frac_bits - f(z_int * 2.0 ** -in_fmt.frac_bits))))


def test_sigmoid_1024_centred_within_2e3_plus_one_step():
    lut = ActivationLUT("sigmoid", 10, 8.0, Q412, Q412)
    err = lut.max_abs_error()
    assert err <= 2e-3 + Q412.step
    # Recomputed from scratch, bin by bin: table value rounded at the bin centre, error over every input.
    z = all_inputs(Q412)
    x = z / 4096.0
    k = np.floor((x + 8.0) * 64.0).astype(np.int64)          # bins of width 16/1024 = 1/64
    centre = -8.0 + (k + 0.5) / 64.0
    y = np.rint(sigmoid(centre) * 4096.0).astype(np.int64)
    got, idx = lut.lookup(z)
    assert np.array_equal(idx, k)
    assert np.array_equal(got, y)
    assert err == pytest.approx(exhaustive_error(y, z, Q412, Q412, sigmoid), rel=0, abs=1e-15)
    # The analytic bound: slope 1/4 times half a bin, plus half an output step.
    assert err <= 0.25 * (1 / 128) + Q412.step / 2 + 1e-12


@pytest.mark.parametrize("func", ["sigmoid", "tanh"])
@pytest.mark.parametrize("bits", [6, 8, 10])
def test_centred_beats_edge_sampled(func, bits):
    f = FUNCS[func][0]
    in_fmt = QFormat(4, 12)
    lut = ActivationLUT(func, bits, 8.0, in_fmt, Q412)
    edge = ActivationLUT(func, bits, 8.0, in_fmt, Q412,
                         table=np.rint(f(lut.sample_points() - lut.bin_width / 2) * 4096).astype(np.int64))
    assert lut.max_abs_error() < 0.6 * edge.max_abs_error()


@settings(max_examples=40, deadline=None)
@given(func=st.sampled_from(["sigmoid", "tanh"]), bits=st.integers(4, 12), log2r=st.integers(1, 4),
       frac=st.integers(6, 14), interpolate=st.booleans(), symmetric=st.booleans())
def test_error_within_analytic_bound(func, bits, log2r, frac, interpolate, symmetric):
    r = 2.0 ** log2r
    in_fmt = QFormat(log2r + 1, frac)
    out_fmt = QFormat(2, frac)
    if interpolate and frac + log2r + 1 - bits < 1:
        with pytest.raises(BpHwError):
            ActivationLUT(func, bits, r, in_fmt, out_fmt, symmetric, interpolate)
        return
    lut = ActivationLUT(func, bits, r, in_fmt, out_fmt, symmetric, interpolate)
    f, d1, d2 = FUNCS[func]
    h, q = lut.bin_width, out_fmt.step
    if interpolate:
        # chord error h^2/8 max|f''|; stored entries off by q/2 each; the interpolation rounding q/2.
        bound = d2 * h * h / 8 + q / 2 + q / 2
    else:
        bound = d1 * h / 2 + q / 2
    if symmetric:
        bound += q / 2  # a mirrored entry can sit one tie away from the directly rounded one
    err = lut.max_abs_error()
    assert err <= bound + 1e-12
    z = all_inputs(in_fmt)
    y, _ = lut.lookup(z)
    assert err == pytest.approx(exhaustive_error(y, z, in_fmt, out_fmt, f), rel=0, abs=1e-15)


@pytest.mark.parametrize("func", ["sigmoid", "tanh"])
@pytest.mark.parametrize("interpolate", [False, True])
@pytest.mark.parametrize("bits", [6, 8, 10, 12])
def test_symmetric_equals_full_except_at_ties(func, interpolate, bits):
    f = FUNCS[func][0]
    full = ActivationLUT(func, bits, 8.0, Q412, Q412, symmetric=False, interpolate=interpolate)
    sym = ActivationLUT(func, bits, 8.0, Q412, Q412, symmetric=True, interpolate=interpolate)
    assert sym.table.size == full.table.size // 2 + (1 if interpolate else 0)
    a, b = full.full_table(), sym.full_table()
    diff = np.flatnonzero(a != b)
    assert np.all(np.abs(a - b) <= 1)
    # Where they differ the exact value f(x) * 2^12 lies (to float precision) half way between codes.
    scaled = f(full.sample_points()[diff]) * 4096.0
    assert np.all(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    z = all_inputs(Q412)
    (ya, ia), (yb, _) = full.lookup(z), sym.lookup(z)
    touched = np.isin(ia, diff) | (np.isin(ia + 1, diff) if interpolate else False)
    assert np.all(touched[ya != yb])  # lookups only differ where they read a differing entry


def test_mirrored_half_follows_documented_rule():
    sym = ActivationLUT("sigmoid", 8, 8.0, Q412, Q412, symmetric=True)
    t = sym.full_table()
    n = 256
    assert np.array_equal(t[: n // 2], 4096 - sym.table[::-1])
    symi = ActivationLUT("tanh", 8, 8.0, Q412, Q412, symmetric=True, interpolate=True)
    ti = symi.full_table()
    assert ti.size == n + 1 and ti[n // 2] == 0
    assert np.array_equal(ti[: n // 2], -symi.table[1:][::-1])


@pytest.mark.parametrize("func", ["sigmoid", "tanh"])
@pytest.mark.parametrize("interpolate", [False, True])
def test_clamping_outside_the_range(func, interpolate):
    in_fmt = QFormat(6, 10)  # [-32, 32): much wider than the table's [-4, 4)
    lut = ActivationLUT(func, 8, 4.0, in_fmt, Q412, interpolate=interpolate)
    z = all_inputs(in_fmt)
    x = z / 1024.0
    y, idx = lut.lookup(z)
    t = lut.full_table()
    low, high = x < -4.0, x >= 4.0
    assert np.all(y[low] == t[0])
    assert np.all(idx[low] == 0) and np.all(idx[high] == 255)
    top = t[255] if not interpolate else y[np.flatnonzero(x < 4.0)[-1]]
    assert np.all(y[high] == top)
    # Outside the range the error is the distance to the function's asymptote from the last entry.
    f = FUNCS[func][0]
    far = np.abs(y[high] / 4096.0 - f(x[high])).max()
    assert far <= abs(f(np.inf) - f(4.0 - lut.bin_width)) + Q412.step


def test_interpolated_lookup_rule():
    lut = ActivationLUT("sigmoid", 8, 8.0, Q412, Q412, interpolate=True)
    s = lut.index_shift
    assert s == 12 + 3 + 1 - 8
    z = all_inputs(Q412)
    u = z + (128 << s)
    k, r = u // 2 ** s, u % 2 ** s
    t = lut.full_table()
    # Independent form of round-half-even of (dt * r) / 2^s using Python's round on exact ratios.
    want = [int(t[ki]) + round((int(t[ki + 1]) - int(t[ki])) * int(ri) / 2 ** s) for ki, ri in zip(k, r)]
    y, idx = lut.lookup(z)
    assert y.tolist() == want and np.array_equal(idx, k)


def test_relu_layer_needs_no_table_and_bad_configs_rejected():
    with pytest.raises(BpHwError):
        ActivationLUT("relu", 8, 8.0, Q412, Q412)
    with pytest.raises(BpHwError):
        ActivationLUT("sigmoid", 8, 6.0, Q412, Q412)
    with pytest.raises(BpHwError):
        ActivationLUT("sigmoid", 0, 8.0, Q412, Q412)
    with pytest.raises(BpHwError):
        ActivationLUT("tanh", 8, 8.0, Q412, QFormat(1, 7, signed=False))
    with pytest.raises(BpHwError):
        ActivationLUT("sigmoid", 16, 8.0, Q412, Q412, interpolate=True)


def test_dict_round_trip():
    lut = ActivationLUT("tanh", 9, 4.0, QFormat(3, 12), Q412, symmetric=True, interpolate=True)
    back = ActivationLUT.from_dict(lut.to_dict())
    assert back.to_dict() == lut.to_dict()
    z = all_inputs(QFormat(3, 12))
    assert np.array_equal(back.lookup(z)[0], lut.lookup(z)[0])


@pytest.mark.parametrize("function", ["sigmoid", "tanh"])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("interpolate", [False, True])
def test_rom_constants_reproduce_the_lookup(function, symmetric, interpolate):
    """The constants the hardware is built from (ROM words, address rule, clamps) give the spec's table."""
    lut = ActivationLUT(function, 6, 8.0, Q412, Q412, symmetric=symmetric, interpolate=interpolate)
    full = lut.full_table()
    if interpolate:
        # the ROM holds the effective table: interpolation reads two neighbours
        assert np.array_equal(lut.rom_table, full)
        z = all_inputs(Q412)
        u = np.clip(z, lut.interp_z_min, lut.interp_z_max) - lut.interp_z_min
        assert u.min() == 0 and (u >> lut.index_shift).max() == lut.index_max
        return
    idx = np.arange(lut.index_max + 1)
    addr, mirrored = lut.rom_address(idx)
    words = lut.rom_table[addr]
    mirror = (lut.mirror_constant - words) if function == "sigmoid" else -words
    assert np.array_equal(np.where(mirrored, mirror, words), full)
    assert lut.rom_table.size == (lut.index_offset if symmetric else lut.index_max + 1)
