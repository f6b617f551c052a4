"""On-chip training hardware in Amaranth's simulator against the fixed-point trainer (the spec), bit for bit."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from bp_hw.cli import main
from bp_hw.errors import BpHwError
from bp_hw.fixed import QuantConfig, quantize_model
from bp_hw.fixed.packing import flat_params, lane_weight_words, load_params, unpack_word
from bp_hw.fixed.trainer import FixedTrainer, TrainSpec, epoch_order, targets_for
from bp_hw.hdl.backprop import TrainNetwork
from bp_hw.hdl.emit import generate, rebuild_network
from bp_hw.hdl.pysim import run_training
from bp_hw.plan.hardware import ACCESS_READ_LATENCY, make_plan, train_spec_of

from test_fixed_trainer import initial_qmodel
from test_hdl_components import random_float_model
from test_hdl_network import AMARANTH_WAIVERS, _lint


@pytest.fixture(scope="module")
def xor_q():
    q, tr, _ = initial_qmodel("xor", [2, 4, 1])
    X, _ = q.quantize_inputs(tr.X)
    return q, X, targets_for(q, tr.y), tr.y


@pytest.fixture(scope="module")
def iris_q():
    q, tr, te = initial_qmodel("iris", [4, 8, 3])
    X, _ = q.quantize_inputs(tr.X)
    Xt, _ = q.quantize_inputs(te.X)
    return q, X, targets_for(q, tr.y), tr.y, Xt, te.y


def reference_run(q, spec, parallel, X, T, train=None, readback=()):
    """The spec's outputs and read-back parameters for the same stream (:meth:`FixedTrainer.run`)."""
    plan = make_plan(q, parallel, train=spec)
    return FixedTrainer(q, plan.training.spec, plan.parallel).run(X, T, train, readback)


def check_against_spec(q, spec, parallel, X, T, train=None, readback="every", hw_spec=None, device=None, **kw):
    """Run the hardware and the spec on the same samples; assert outputs and read-back parameters agree.
    ``hw_spec``: build the hardware from another spec (to show that the check fails); ``device``: plan
    for that device (products past its DSP blocks in logic)."""
    n = len(X)
    points = range(n) if readback == "every" else readback
    plan = make_plan(q, parallel, train=spec if hw_spec is None else hw_spec, device=device)
    # an instantiated DSP cell (ECP5) runs as registers and a ``*`` with its cycles (primitives=False)
    run = run_training(TrainNetwork(plan, primitives=device is None), X, T, train, readback=points, **kw)
    outputs, snapshots = reference_run(q, spec, parallel, X, T, train, points)
    bad = np.argwhere(run.outputs != outputs)
    assert not bad.size, f"outputs differ first at sample {bad[0][0]}: {run.outputs[bad[0][0]]} != {outputs[bad[0][0]]}"
    for s in sorted(snapshots):
        diff = np.flatnonzero(run.snapshots[s] != snapshots[s])
        assert not diff.size, f"after sample {s}: parameters {diff[:8]} differ"
    return plan, run


def test_ram_layout_is_the_packing_of_the_inference_roms(iris_q):
    """The training RAMs start from the words the inference ROMs hold (:mod:`bp_hw.fixed.packing`), and
    those words hold exactly the layer's weights."""
    q = iris_q[0]
    for p in (1, 8, 16, 32):
        layer = q.layers[0]
        inference = make_plan(q, [p, 3]).layers[0]
        training = make_plan(q, [p, 3], train=True).training.layers[0]
        f = training.fold
        assert f == inference.fold
        width = layer.weight_fmt.width
        rebuilt = np.zeros_like(layer.weights)
        for lane in range(f.lanes_out):
            words = training.weight_words(lane)
            assert words == inference.weight_words(lane) == lane_weight_words(layer, f, lane)
            assert len(words) == f.cycles
            for g in range(f.groups):
                for c in range(f.chunks):
                    rebuilt[g * f.lanes_out + lane, c * f.lanes_in:(c + 1) * f.lanes_in] = \
                        unpack_word(words[g * f.chunks + c], width, f.lanes_in)
        np.testing.assert_array_equal(rebuilt, layer.weights)


def test_infer_mode_is_the_integer_model(iris_q):
    q, X = iris_q[0], iris_q[1][:24]
    T = iris_q[2][:24]
    dut = TrainNetwork(make_plan(q, "8,3", train=TrainSpec()))
    run = run_training(dut, X, T, train=np.zeros(len(X)), stall_in=0.3, stall_out=0.4, seed=3,
                       read_initial=True, readback=[len(X) - 1])
    np.testing.assert_array_equal(run.outputs, q.predict(X))
    np.testing.assert_array_equal(run.initial, flat_params(q))
    np.testing.assert_array_equal(run.snapshots[len(X) - 1], flat_params(q))   # inference changes nothing


CONFIGS = [
    ("xor", "1", "nearest-even", 0.3, {}),
    ("xor", "8,4", "stochastic", 0.3, {}),
    ("iris", "1", "stochastic", 0.0, {}),
    ("iris", "8,3", "nearest-even", 0.3, {}),
    ("iris", "16,6", "stochastic", 0.2, {}),     # P_in = 2 in both layers
    ("iris", "32,24", "floor", 0.0, {}),         # fully parallel
    ("iris", "2,1", "nearest-up", 0.2, {}),
    ("iris", "4,3", "toward-zero", 0.0, {}),
    ("xor", "1", "stochastic", 0.2, {"cost": "cross-entropy"}),
    ("iris", "8,3", "nearest-even", 0.3, {"cost": "cross-entropy", "lr": "2^-3"}),
    ("iris", "8,3", "nearest-even", 0.3, {"batch": 4}),
    ("iris", "16,6", "stochastic", 0.2, {"batch": 2, "cost": "cross-entropy"}),
    ("xor", "8,4", "stochastic", 0.3, {"batch": 4, "lr": "0.75"}),
    ("iris", "1", "floor", 0.0, {"batch": 8}),
]


def _config_id(c):
    d, p, r, _, extra = c
    return "-".join([d, "P" + p.replace(",", "_"), r] + [f"{k}{v}" for k, v in extra.items()])


@pytest.mark.parametrize("data,parallel,rounding,stall,extra", CONFIGS, ids=[_config_id(c) for c in CONFIGS])
def test_training_bit_exact_after_every_sample(xor_q, iris_q, data, parallel, rounding, stall, extra):
    q, X, T = (xor_q if data == "xor" else iris_q)[:3]
    idx = np.concatenate([epoch_order(len(X), 0, e) for e in range(3)])[:10]
    check_against_spec(q, TrainSpec(update_rounding=rounding, seed=7, **extra), parallel, X[idx], T[idx],
                       stall_in=stall, stall_out=stall, seed=5)


def test_training_lanes_in_dsp_cells_on_ecp5(iris_q):
    """On the ECP5 the training lanes' operands are registered next to their RAMs and their products
    are MULT18X18D instances with their own registers and a fabric one (as the inference lanes'): two
    cycles more per pass that uses them, bit-exact with the spec under stalls, cycles as the plan says
    (the cell's model in Verilator: test_cosim_train)."""
    q, X, T = iris_q[:3]
    for parallel in ("1", "8,3"):
        plan = make_plan(q, parallel, device="LFE5U-85F", train=TrainSpec())
        plain = make_plan(q, parallel, train=TrainSpec())
        assert [x.dsp_cell for x in plan.training.layers] == ["MULT18X18D"] * 2
        # the operands registered next to their RAMs (1), the cell's registers (2) and a fabric one (1)
        assert [(x.operand_latency, x.lane_product_latency) for x in plan.training.layers] == [(1, 4)] * 2
        # the delta units' products in cells too (layer 1's output delta and layer 0's sigmoid derivative)
        assert [(x.delta_cell, x.delta_product_latency) for x in plan.training.layers] == [("MULT18X18D", 3)] * 2
        assert plan.training.read_latency == plain.training.read_latency + 1
        assert plan.training.train_cycles > plain.training.train_cycles
    assert {x.dsp_cell for x in make_plan(q, "8,3", device="iCE40UP5K", train=TrainSpec()).training.layers} == {None}
    check_against_spec(q, TrainSpec(update_rounding="stochastic"), "8,3", X[:6], T[:6], device="LFE5U-85F",
                       stall_in=0.2, stall_out=0.2)
    run = run_training(TrainNetwork(plan, primitives=False), X[:4], T[:4])
    assert set(np.diff(run.in_cycles)) == {plan.training.train_cycles}


def test_products_past_the_dsp_blocks_in_logic(iris_q):
    """iris at P = 8,3 on the iCE40UP5K: 15 multipliers, 8 DSP blocks; the delta units and layer 1's lanes
    compute in logic (the groups with the fewest DSPs first), still bit-exact, cycles as the plan says."""
    q, X, T = iris_q[:3]
    plan = make_plan(q, "8,3", device="iCE40UP5K", train=TrainSpec())
    flags = [(x.logic_multipliers, x.delta_logic) for x in plan.training.layers]
    assert flags == [(False, True), (True, True)]
    assert sum(sum(x.dsps(plan.device)) for x in plan.training.layers) == 8
    # products in logic take a cycle more (ProductStage): each pass and delta unit that uses them is longer
    assert plan.training.train_cycles > make_plan(q, "8,3", train=TrainSpec()).training.train_cycles
    assert all(not x.logic_multipliers for x in make_plan(q, "8,3", device="LFE5U-85F", train=True).training.layers)
    check_against_spec(q, TrainSpec(update_rounding="stochastic"), "8,3", X[:6], T[:6], device="iCE40UP5K",
                       stall_in=0.2)
    run = run_training(TrainNetwork(plan), X[:4], T[:4])
    assert set(np.diff(run.in_cycles)) == {plan.training.train_cycles}


def test_mini_batch_with_inference_samples_between(iris_q):
    """Inference samples inside a batch neither count nor change the sums (the spec's rule)."""
    q, X, T = iris_q[:3]
    train = np.array([1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 0])
    check_against_spec(q, TrainSpec(batch=4, update_rounding="stochastic"), "4,3", X[:14], T[:14], train,
                       stall_out=0.3)


def test_checker_catches_hardware_with_another_batch_size(iris_q):
    q, X, T = iris_q[:3]
    with pytest.raises(AssertionError, match="differ first at sample 1"):   # B = 1 updated after sample 0
        check_against_spec(q, TrainSpec(), "8,3", X[:3], T[:3], hw_spec=TrainSpec(batch=2))


def test_checker_catches_hardware_built_for_another_cost(iris_q):
    """A cross-entropy design checked against the MSE spec fails at the first sample after an update."""
    q, X, T = iris_q[:3]
    with pytest.raises(AssertionError, match="differ first at sample 1"):
        check_against_spec(q, TrainSpec(), "8,3", X[:2], T[:2], hw_spec=TrainSpec(cost="cross-entropy"))


ARCHS = [
    # sizes, activations, quantizer, P, training spec
    ([3, 5, 4, 2], ["tanh", "relu", "identity"], QuantConfig(format="Q3.9", lut_range=4), "5,2,8",
     TrainSpec(lr="0.3", update_rounding="stochastic")),
    ([3, 5, 4, 2], ["tanh", "relu", "identity"], QuantConfig(format="Q3.9", lut_range=4), "1",
     TrainSpec(lr="2^-3", delta_format="Q2.10", error_format="Q4.8")),
    ([6, 4, 1], ["relu", "sigmoid"], QuantConfig(format="Q4.8", lut_interpolate=True, lut_bits=6, overflow="wrap"),
     "4,1", TrainSpec(lr="0.75")),
    ([2, 4, 1], ["sigmoid", "sigmoid"], QuantConfig(format="fixed<12,5>", lut_symmetric=True,
                                                    rounding="toward-zero"), "8,4", TrainSpec(update_rounding="floor")),
    ([4, 6, 3], ["sigmoid", "sigmoid"], QuantConfig(bit_budget=8), "3,9", TrainSpec(update_rounding="stochastic")),
    ([3, 5, 2], ["relu", "tanh"], QuantConfig(format="Q3.9", lut_range=4), "5,2",
     TrainSpec(lr="2^-2", cost="cross-entropy")),
    ([3, 4, 2], ["relu", "identity"], QuantConfig(format="Q1.7"), "2,4",     # ONE not representable
     TrainSpec(lr="2^-2", update_rounding="stochastic")),
]


def _arch_case(sizes, acts, config, parallel, n):
    """A random float model of ``sizes``/``acts`` quantized with ``config``, ``n`` quantized inputs and targets."""
    model = random_float_model(sizes, acts, seed=len(parallel), scale=1.0)
    rng = np.random.default_rng(3)
    X_raw = rng.normal(0, 1.5, (n, sizes[0]))
    q, _ = quantize_model(model, config, X_raw)
    X, _ = q.quantize_inputs(X_raw)
    return q, X, targets_for(q, rng.integers(0, max(2, sizes[-1]), len(X)))


@pytest.mark.parametrize("sizes,acts,config,parallel,spec", ARCHS, ids=[f"arch{i}" for i in range(len(ARCHS))])
def test_other_activations_formats_and_learning_rates(sizes, acts, config, parallel, spec):
    q, X, T = _arch_case(sizes, acts, config, parallel, 10)
    check_against_spec(q, spec, parallel, X, T, stall_in=0.2, stall_out=0.2)


@pytest.mark.parametrize("arch", [0, 4], ids=["tanh-relu-identity", "sigmoid-8bit"])
def test_other_activations_with_products_in_logic(arch):
    """The tanh / ReLU delta units and the last layer's error path with their products in logic."""
    sizes, acts, config, parallel, spec = ARCHS[arch]
    q, X, T = _arch_case(sizes, acts, config, parallel, 8)
    plan = make_plan(q, parallel, train=spec, device="iCE40UP5K")
    assert any(x.delta_logic for x in plan.training.layers) and any(x.logic_multipliers for x in plan.training.layers)
    check_against_spec(q, spec, plan.parallel, X, T, device="iCE40UP5K", stall_out=0.2)
    run = run_training(TrainNetwork(plan), X[:3], T[:3])
    assert set(np.diff(run.in_cycles)) == {plan.training.train_cycles}


def test_mixed_train_and_infer_samples(iris_q):
    q, X, T = iris_q[:3]
    train = np.random.default_rng(1).integers(0, 2, 16)
    check_against_spec(q, TrainSpec(update_rounding="stochastic"), "8,1", X[:16], T[:16], train,
                       readback=[3, 9, 15], stall_out=0.5)


def test_access_port_loads_weights_that_training_then_uses(iris_q):
    q, X, T = iris_q[:3]
    rng = np.random.default_rng(4)
    flat = flat_params(q)
    new = np.clip(flat + rng.integers(-300, 300, flat.size), -(1 << 15), (1 << 15) - 1)
    loaded = load_params(q, new)
    dut = TrainNetwork(make_plan(q, "8,3", train=TrainSpec()))
    run = run_training(dut, X[:5], T[:5], load=new, read_initial=True, readback=[4])
    np.testing.assert_array_equal(run.initial, new)
    outputs, snaps = reference_run(loaded, TrainSpec(), "8,3", X[:5], T[:5], readback=[4])
    np.testing.assert_array_equal(run.outputs, outputs)
    np.testing.assert_array_equal(run.snapshots[4], snaps[4])


def test_checker_catches_a_flipped_weight_bit(iris_q):
    """The comparison can fail: one weight bit flipped through the access port is caught."""
    q, X, T = iris_q[:3]
    flat = flat_params(q)
    bad = flat.copy()
    addr = 40 + 2 * 8 + 5          # layer 1, W[2, 5] (layer 1 starts after layer 0's 32 weights + 8 biases)
    bad[addr] ^= 1 << 9
    dut = TrainNetwork(make_plan(q, "8,3", train=TrainSpec()))
    run = run_training(dut, X[:3], T[:3], load=bad, readback=[0, 2])
    outputs, snaps = reference_run(q, TrainSpec(), "8,3", X[:3], T[:3], readback=[0, 2])
    assert np.any(run.outputs != outputs), "a flipped weight bit went unnoticed in the outputs"
    assert np.any(run.snapshots[0] != snaps[0]), "a flipped weight bit went unnoticed in the weights"
    with pytest.raises(AssertionError):
        check_against_spec(load_params(q, bad), TrainSpec(), "8,3", X[:2], T[:2], readback=[1], load=flat)


@pytest.mark.parametrize("data,parallel,batch", [("xor", "1", 1), ("xor", "8,4", 1), ("iris", "1", 1),
                                                 ("iris", "8,3", 1), ("iris", "16,6", 1), ("iris", "32,24", 1),
                                                 ("iris", "1", 4), ("iris", "8,3", 2)])
def test_cycles_per_sample_as_documented(xor_q, iris_q, data, parallel, batch):
    q, X, T = (xor_q if data == "xor" else iris_q)[:3]
    n = 6
    train = np.array([1] * n + [0] * n)
    plan = make_plan(q, parallel, train=TrainSpec(batch=batch))
    tp = plan.training
    run = run_training(TrainNetwork(plan), np.concatenate([X[:n]] * 2), np.concatenate([T[:n]] * 2), train)
    gaps = np.diff(run.in_cycles)
    assert set(gaps[:n]) == {tp.train_cycles}
    assert set(gaps[n:]) == {tp.infer_cycles}
    # latency of an inference sample: input transfer to output transfer
    assert run.out_cycles[-1] - run.in_cycles[-1] == tp.infer_cycles
    assert tp.train_cycles <= 3.5 * tp.infer_cycles
    # against one inference of the pipelined inference design, input presented to output taken
    assert tp.train_cycles <= 3.5 * make_plan(q, parallel).standalone_latency


@pytest.mark.slow
def test_xor_converges_on_chip(xor_q):
    """xor 2-4-1 sigmoid Q4.12 from the seeded initialisation: trained in the simulator until all four
    patterns are right (as many epochs as the spec needs), zero mismatches, weights checked every epoch."""
    q, X, T, y = xor_q
    ref = FixedTrainer(q)
    for epoch in range(1000):
        ref.epoch(X, T, epoch_order(len(X), 0, epoch))
        if np.array_equal(ref.model.classify(ref.model.predict(X)), y):
            break
    epochs = epoch + 1
    # each epoch: the four samples in the epoch's order (train), then the four patterns (infer)
    idx = np.concatenate([np.concatenate([epoch_order(len(X), 0, e), np.arange(len(X))]) for e in range(epochs)])
    train = np.tile(np.r_[np.ones(len(X)), np.zeros(len(X))], epochs).astype(np.int64)
    ends = [8 * e + 3 for e in range(epochs)]
    _, run = check_against_spec(q, TrainSpec(), "1", X[idx], T[idx], train, readback=ends)
    final = run.outputs[-len(X):]
    assert np.array_equal(q.classify(final), y)
    assert epochs < 5000


def test_iris_two_epochs_bit_exact(iris_q):
    q, X, T = iris_q[:3]
    idx = np.concatenate([epoch_order(len(X), 0, e) for e in range(2)])
    check_against_spec(q, TrainSpec(), "8,3", X[idx], T[idx], readback=[len(X) - 1, 2 * len(X) - 1])


# -- generation ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("parallel,rounding,extra", [("1", "stochastic", {}), ("8,3", "nearest-even", {}),
                                                     ("16,6", "stochastic", {}),
                                                     ("4,3", "stochastic", {"batch": 8, "cost": "cross-entropy"})])
def test_training_verilog_passes_lint(iris_q, tmp_path, parallel, rounding, extra):
    manifest = generate(iris_q[0], parallel, tmp_path, name="iris_train",
                        train=TrainSpec(update_rounding=rounding, **extra))
    result = _lint(tmp_path / "iris_train.v", "iris_train", AMARANTH_WAIVERS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not set(re.findall(r"%Warning-([A-Z]+)", result.stderr))
    assert manifest.kind == "training" and manifest.is_training


def test_training_manifest(iris_q, tmp_path):
    q = iris_q[0]
    manifest = generate(q, "8,3", tmp_path, train=TrainSpec(lr="2^-2"))
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest.to_json()
    tr = manifest.training
    text = (tmp_path / f"{manifest.name}.v").read_text()
    for port in ("i__payload", "i__valid", "i__ready", "o__payload", "o__ready", "wacc__addr", "wacc__wdata",
                 "wacc__we", "wacc__rdata", "busy"):
        assert re.search(rf"\b{port}\b", text), port
    inp = manifest.inp
    assert (inp.field("x").offset, inp.field("t").offset, inp.field("train").offset) == (0, 64, 112)
    assert inp.payload_width == 113
    assert tr.access["read_latency"] == ACCESS_READ_LATENCY
    assert tr.access["depth"] == 4 * 8 + 8 + 8 * 3 + 3
    assert [(m["weights_base"], m["biases_base"]) for m in tr.address_map] == [(0, 32), (40, 64)]
    assert tr.eta == 0.25 and tr.spec["eta_frac"] == 2
    layer0 = tr.spec["layers"][0]
    assert (layer0["error_format"], layer0["delta_format"]) == ("Q4.12", "Q1.15")
    # the spec's shifts (docs of bp_hw.fixed.trainer): f_d + f_eta + f_a - f_w and f_d + f_eta - f_b
    assert (layer0["weight_update_shift"], layer0["bias_update_shift"]) == (15 + 2 + 12 - 12, 15 + 2 - 12)
    assert layer0["error_below_shift"] is None and tr.spec["layers"][1]["error_below_shift"] == 12 + 15 - 12
    plan = make_plan(q, "8,3", train=TrainSpec(lr="2^-2"))
    assert tr.cycles_per_train_sample == plan.training.train_cycles
    assert tr.cycles_per_infer_sample == manifest.latency_cycles == plan.training.infer_cycles
    assert tr.multipliers == manifest.multipliers == plan.training.multipliers
    # the network rebuilt from the build folder is the same training design: it learns as the spec does
    rebuilt = rebuild_network(tmp_path)
    assert isinstance(rebuilt, TrainNetwork) and rebuilt.eta_frac == 2 and rebuilt.parallel == [8, 3]
    X, T = iris_q[1][:3], iris_q[2][:3]
    run = run_training(rebuilt, X, T, readback=[2])
    outputs, snaps = reference_run(q, TrainSpec(lr="2^-2"), "8,3", X, T, readback=[2])
    np.testing.assert_array_equal(run.outputs, outputs)
    np.testing.assert_array_equal(run.snapshots[2], snaps[2])


def test_generate_train_cli(iris_q, tmp_path, capsys):
    q = iris_q[0]
    q.save(tmp_path / "q.json")
    rc = main(["generate", str(tmp_path / "q.json"), "--train", "--lr", "2^-3", "--update-rounding", "stochastic",
               "--cost", "cross-entropy", "--batch", "4", "--parallel", "8,3", "--out", str(tmp_path / "b"), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["train"] and out["eta"] == 0.125 and out["update_rounding"] == "stochastic"
    assert out["cost"] == "cross-entropy" and out["batch"] == 4
    spec = json.loads((tmp_path / "b" / "manifest.json").read_text())["training"]["spec"]
    assert (spec["cost"], spec["batch"], spec["layers"][1]["derivative"]) == ("cross-entropy", 4, "identity")
    assert out["cycles_per_train_sample"] <= 3.5 * out["cycles_per_infer_sample"]
    assert os.path.isfile(out["verilog"])


@pytest.mark.parametrize("argv,needle", [(["--lr", "2^-2"], "--train"), (["--train", "--lr", "2^3"], "above 1"),
                                         (["--train", "--update-rounding", "up"], "rounding mode"),
                                         (["--cost", "cross-entropy"], "--train"),
                                         (["--train", "--cost", "hinge"], "cross-entropy"),
                                         (["--train", "--batch", "6"], "power of two")])
def test_generate_train_cli_errors(iris_q, tmp_path, capsys, argv, needle):
    iris_q[0].save(tmp_path / "q.json")
    rc = main(["generate", str(tmp_path / "q.json"), *argv, "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and needle in err and len(err.splitlines()) == 1, err


def test_train_spec_dict_round_trip(iris_q):
    q = iris_q[0]
    spec = TrainSpec(lr="0.3", update_rounding="stochastic", seed=9)
    d = FixedTrainer(q, spec).spec_dict()
    tp = make_plan(q, 1, train=d).training
    assert tp.spec == spec and tp.eta_int == FixedTrainer(q, spec).eta_int
    assert tp.spec_dict == d
    with pytest.raises(BpHwError):
        train_spec_of({"lr": "2^-1", "bogus": 1})
