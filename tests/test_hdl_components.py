"""Each HDL block in Amaranth's simulator against the integer model (bp_hw.fixed), bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from bp_hw.errors import BpHwError
from bp_hw.fixed import QFormat, QuantConfig, quantize_model, round_shift, overflow
from bp_hw.fixed.qmodel import QLayer
from bp_hw.hdl import arith
from bp_hw.hdl.activation import ActivationUnit
from bp_hw.fixed.folding import Folding
from bp_hw.hdl.layer import LayerEngine
from bp_hw.hdl.mac import Accumulator, MACLane, ProductStage
from bp_hw.hdl.rescale import Rescale
from bp_hw.hdl.pysim import run_stream
from bp_hw.modelfile import FloatModel
from bp_hw.plan.hardware import LayerPlan, make_plan


def random_float_model(sizes, activations, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, scale, (n_out, n_in)) for n_in, n_out in zip(sizes, sizes[1:])]
    biases = [rng.normal(0, scale / 2, n_out) for n_out in sizes[1:]]
    return FloatModel(layers=list(sizes), weights=weights, biases=biases, activations=list(activations),
                      loss="mse", norm_mean=np.zeros(sizes[0]), norm_std=np.ones(sizes[0]),
                      n_classes=max(2, sizes[-1]))


def quantized_layer(config: QuantConfig, activation="sigmoid", fan_in=5, fan_out=4, seed=0) -> QLayer:
    return layer_plan(config, activation, fan_in, fan_out, seed).layer


def layer_plan(config: QuantConfig, activation="sigmoid", fan_in=5, fan_out=4, seed=0, p=1) -> LayerPlan:
    """The plan of a one-layer network's layer with ``p`` lanes."""
    model = random_float_model([fan_in, fan_out], [activation], seed=seed, scale=1.5)
    q, _ = quantize_model(model, config)
    return make_plan(q, p).layers[0]


def run_clocked(dut, tb):
    """Run the async testbench ``tb`` against ``dut`` with a clock."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


# -- rescale expressions --------------------------------------------------------------------------

class _Rescale(wiring.Component):
    def __init__(self, width, shift, mode, fmt, ovf):
        self.args = (shift, mode, fmt, ovf)
        super().__init__({"x": In(signed(width)), "y": Out(arith.shape_of(fmt))})

    def elaborate(self, platform):
        m = Module()
        shift, mode, fmt, ovf = self.args
        m.d.comb += self.y.eq(arith.overflow(arith.round_shift(self.x, shift, mode), fmt, ovf))
        return m


@pytest.mark.parametrize("mode", ["floor", "toward-zero", "nearest-up", "nearest-even"])
@pytest.mark.parametrize("ovf", ["saturate", "symmetric", "wrap"])
@pytest.mark.parametrize("shift", [3, 0, -2])
def test_rescale_matches_spec(mode, ovf, shift):
    width, fmt = 12, QFormat(3, 3)
    dut = _Rescale(width, shift, mode, fmt, ovf)
    xs = np.arange(-(1 << (width - 1)), 1 << (width - 1), 7, dtype=np.int64)
    xs = np.concatenate([xs, [-(1 << (width - 1)), (1 << (width - 1)) - 1, -4, -5, 4, 5, 12, -12, 20, -20]])
    expected, _ = overflow(round_shift(xs, shift, mode), fmt, ovf)
    got = []

    async def tb(ctx):
        for x in xs:
            ctx.set(dut.x, int(x))
            got.append(ctx.get(dut.y))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    np.testing.assert_array_equal(np.array(got), expected)


def test_pipelined_rescale_matches_spec_and_holds_with_the_enable():
    """The Rescale component (three registers) gives the spec's value LATENCY enabled cycles later."""
    fmt, width = QFormat(3, 3), 14
    rng = np.random.default_rng(5)
    for mode, ovf, shift in [("nearest-even", "saturate", 4), ("toward-zero", "wrap", 2), ("floor", "symmetric", -1)]:
        xs = rng.integers(-(1 << (width - 1)), 1 << (width - 1), 200)
        expected, _ = overflow(round_shift(xs, shift, mode), fmt, ovf)
        dut = Rescale(width, shift, mode, ovf, fmt)
        enables = rng.random(len(xs) + 10) < 0.7
        got = []

        async def tb(ctx):
            fed = 0          # enabled edges so far: the inputs taken
            for en in enables.tolist() + [True] * (len(xs) + Rescale.LATENCY):
                ctx.set(dut.acc, int(xs[min(fed, len(xs) - 1)]))
                ctx.set(dut.en, int(en))
                await ctx.tick()
                fed += en
                if en and 0 <= fed - Rescale.LATENCY < len(xs):
                    got.append(ctx.get(dut.z))
            assert len(got) == len(xs)

        run_clocked(dut, tb)
        np.testing.assert_array_equal(np.array(got), expected)


# -- MAC lane ---------------------------------------------------------------------------------------

def test_product_stage_and_accumulator_without_bias():
    """The two halves of a MAC lane as the training layer uses them: muxed operands in, exact products
    out two cycles later; an accumulator with no bias summing ``lanes`` products over ``first``..``last``."""
    rng = np.random.default_rng(9)
    lanes, terms, sums = 3, 4, 6
    a = rng.integers(-(1 << 11), 1 << 11, (sums * terms, lanes))
    b = rng.integers(-(1 << 7), 1 << 7, (sums * terms, lanes))
    ps = ProductStage(signed(12), signed(8), lanes)
    acc = Accumulator(ps.prod_shape, lanes, 24)
    top = Module()
    top.submodules.ps, top.submodules.acc = ps, acc
    got_p, got_acc = [], []

    async def tb(ctx):
        ctx.set(ps.en, 1)
        ctx.set(acc.en, 1)
        for step in range(len(a) + ProductStage.LATENCY + Accumulator.LATENCY + 1):
            if step < len(a):
                ctx.set(ps.a, [int(v) for v in a[step]])
                ctx.set(ps.b, [int(v) for v in b[step]])
            t = step - ProductStage.LATENCY       # the term whose products are on ps.p now
            ctx.set(acc.valid, 0 <= t < len(a))
            ctx.set(acc.first, t % terms == 0)
            ctx.set(acc.last, t % terms == terms - 1)
            ctx.set(acc.p, ctx.get(ps.p))
            if 0 <= t < len(a):
                got_p.append([ctx.get(ps.p[k]) for k in range(lanes)])
            await ctx.tick()
            if ctx.get(acc.done):
                got_acc.append(ctx.get(acc.acc))

    run_clocked(top, tb)
    np.testing.assert_array_equal(np.array(got_p), a * b)
    np.testing.assert_array_equal(np.array(got_acc), (a * b).sum(axis=1).reshape(sums, terms).sum(axis=1))


@pytest.mark.parametrize("a_shape,b_shape", [(signed(8), unsigned(8)), (unsigned(9), signed(16)),
                                             (signed(12), signed(5)), (signed(16), signed(16))])
def test_products_in_logic_are_exact_and_hold(a_shape, b_shape):
    """The shift-add products (no DSP) for signed and unsigned operands: exact, ``latency`` (3)
    enabled cycles after the operands, and frozen while the enable is low."""
    rng = np.random.default_rng(4)
    lanes, n = 2, 40

    def draw(shape):
        lo, hi = (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else (0, 1 << shape.width)
        return rng.integers(lo, hi, (n, lanes))

    a, b = draw(a_shape), draw(b_shape)
    ps = ProductStage(a_shape, b_shape, lanes, in_logic=True)
    assert ps.latency == 3
    enables = (rng.random(4 * n) < 0.6).tolist()
    got = {}

    async def tb(ctx):
        ticks = 0                  # enabled ticks so far; item k is on p after k + latency of them
        while ticks < n - 1 + ps.latency:
            if ticks < n:
                ctx.set(ps.a, [int(v) for v in a[ticks]])
                ctx.set(ps.b, [int(v) for v in b[ticks]])
            en = enables.pop() if enables else True
            before = [ctx.get(ps.p[k]) for k in range(lanes)]
            ctx.set(ps.en, en)
            await ctx.tick()
            now = [ctx.get(ps.p[k]) for k in range(lanes)]
            if not en:
                assert now == before
                continue
            ticks += 1
            if ticks >= ps.latency:
                got[ticks - ps.latency] = now

    run_clocked(ps, tb)
    assert sorted(got) == list(range(n))
    np.testing.assert_array_equal(np.array([got[k] for k in range(n)]), a * b)


@pytest.mark.parametrize("lanes_in,in_logic", [(1, False), (3, False), (1, True), (3, True)])
def test_mac_lane_equals_accumulate(lanes_in, in_logic):
    layer = quantized_layer(QuantConfig(format="Q4.12"), fan_in=6, fan_out=3, seed=1)
    rng = np.random.default_rng(2)
    a = rng.integers(layer.in_fmt.min_int, layer.in_fmt.max_int + 1, size=(5, layer.fan_in))
    expected = layer.accumulate(a)             # (5 samples, 3 neurons)
    chunks = layer.fan_in // lanes_in
    dut = MACLane(arith.shape_of(layer.weight_fmt), arith.shape_of(layer.in_fmt), arith.shape_of(layer.bias_fmt),
                  layer.bias_shift, layer.acc_width, lanes_in, in_logic=in_logic)
    assert dut.latency == MACLane.LATENCY + in_logic + (lanes_in > 1)
    got = []

    async def tb(ctx):
        ctx.set(dut.en, 1)
        jobs = [(s, n) for s in range(a.shape[0]) for n in range(layer.fan_out)]
        feed = [(s, n, c) for s, n in jobs for c in range(chunks)]
        pending = len(jobs)
        for step in range(len(feed) + dut.latency + 2):
            if step < len(feed):
                s, n, c = feed[step]
                cols = slice(c * lanes_in, (c + 1) * lanes_in)
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, c == 0)
                ctx.set(dut.last, c == chunks - 1)
                ctx.set(dut.w, [int(v) for v in layer.weights[n, cols]])
                ctx.set(dut.a, [int(v) for v in a[s, cols]])
                ctx.set(dut.bias, int(layer.biases[n]))
            else:
                ctx.set(dut.valid, 0)
            # hold the enable low now and then: nothing may move
            if step % 5 == 4:
                ctx.set(dut.en, 0)
                before = (ctx.get(dut.acc), ctx.get(dut.done))
                await ctx.tick()
                assert (ctx.get(dut.acc), ctx.get(dut.done)) == before
                ctx.set(dut.en, 1)
            await ctx.tick()
            if ctx.get(dut.done):
                got.append(ctx.get(dut.acc))
        assert len(got) == pending

    run_clocked(dut, tb)
    np.testing.assert_array_equal(np.array(got).reshape(expected.shape), expected)


# -- activation unit --------------------------------------------------------------------------------

ACT_CASES = [
    ("sigmoid", QuantConfig(format="Q4.12")),
    ("sigmoid", QuantConfig(format="Q4.12", lut_symmetric=True)),
    ("sigmoid", QuantConfig(format="Q4.12", lut_interpolate=True, lut_bits=6)),
    ("sigmoid", QuantConfig(format="Q4.12", lut_interpolate=True, lut_symmetric=True, lut_bits=5)),
    ("sigmoid", QuantConfig(format="Q2.6", lut_bits=10)),   # table finer than the input: left shift
    ("tanh", QuantConfig(format="Q3.9", lut_range=4, lut_symmetric=True, lut_bits=8)),
    ("relu", QuantConfig(format="Q3.9")),
    ("identity", QuantConfig(format="Q3.9")),
]


@pytest.mark.parametrize("activation,config", ACT_CASES, ids=[f"{a}-{i}" for i, (a, _) in enumerate(ACT_CASES)])
def test_activation_unit_equals_lookup(activation, config):
    plan = layer_plan(config, activation)
    layer = plan.layer
    zf = layer.z_fmt
    z = np.unique(np.concatenate([np.arange(zf.min_int, zf.max_int + 1, max(1, (1 << zf.width) // 1500)),
                                  [zf.min_int, zf.max_int, 0, -1, 1]]))
    expected, _ = layer.activate(z)
    dut = ActivationUnit(plan)
    got = []

    async def tb(ctx):
        ctx.set(dut.en, 1)
        for step in range(len(z) + plan.activation_latency):
            if step < len(z):
                ctx.set(dut.z, int(z[step]))
                ctx.set(dut.valid, 1)
            else:
                ctx.set(dut.valid, 0)
            await ctx.tick()
            if ctx.get(dut.y_valid):
                got.append(ctx.get(dut.y))

    run_clocked(dut, tb)
    np.testing.assert_array_equal(np.array(got), expected)


# -- layer engine -----------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1, 2, 4, 8, 24])
def test_layer_engine_equals_forward_under_stalls(p):
    plan = layer_plan(QuantConfig(format="Q4.12", lut_symmetric=True), fan_in=6, fan_out=4, seed=3, p=p)
    layer = plan.layer
    rng = np.random.default_rng(p)
    a = rng.integers(layer.in_fmt.min_int, layer.in_fmt.max_int + 1, size=(12, layer.fan_in))
    run = run_stream(LayerEngine(plan), a, stall_in=0.3, stall_out=0.3, seed=p)
    np.testing.assert_array_equal(run.outputs, layer.forward(a)["out"])
    free = run_stream(LayerEngine(plan), a)
    assert free.latency == plan.latency
    assert free.interval == plan.interval == layer.macs // p


def test_folding_rules():
    assert Folding.of(4, 8, 8) == Folding(8, 8, 1, 1, 4)
    assert Folding.of(4, 8, 16) == Folding(16, 8, 2, 1, 2)
    assert Folding.of(4, 8, 2).cycles == 16
    for bad in (0, 3, 12, 64):
        with pytest.raises(BpHwError):
            Folding.of(4, 8, bad)
