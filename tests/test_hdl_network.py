"""The whole network in Amaranth's simulator against the integer model; emission, lint and CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from bp_hw.cli import main
from bp_hw.data import load_dataset, split_dataset
from bp_hw.errors import BpHwError
from bp_hw.fixed import QuantConfig, quantize_model
from bp_hw.hdl.emit import generate, sanitize_name
from bp_hw.hdl.network import Network
from bp_hw.hdl.pysim import run_stream
from bp_hw.plan.hardware import make_plan, parse_parallel
from bp_hw.plan.manifest import load_qmodel, read_manifest
from bp_hw.reference import TrainConfig, train

from test_hdl_components import random_float_model


@pytest.fixture(scope="module")
def iris_q412():
    ds = load_dataset("iris")
    tr, te = split_dataset(ds, 0.3, 0)
    model = train(tr, te, TrainConfig(data="iris", layers=[4, 8, 3], epochs=100, seed=0))
    q, _ = quantize_model(model, QuantConfig(format="Q4.12", lut_bits=10), ds.X)
    X, _ = q.quantize_inputs(ds.X)
    return q, X


@pytest.mark.parametrize("parallel", ["1", "8,3", "32,24"], ids=["P1", "P8-3", "full"])
def test_iris_all_150_samples_bit_exact(iris_q412, parallel):
    q, X = iris_q412
    plan = make_plan(q, parallel, taps=True)
    run = run_stream(Network(plan), X, tap_names=("tap0", "tap1"))
    expected, traces = q.predict(X, trace=True)
    assert X.shape[0] == 150
    np.testing.assert_array_equal(run.outputs, expected)
    np.testing.assert_array_equal(run.taps["tap0"], traces[0]["out"])
    np.testing.assert_array_equal(run.taps["tap1"], traces[1]["out"])
    ideal = max(-(-layer.macs // p) for layer, p in zip(q.layers, plan.parallel))
    assert plan.ideal_interval == ideal
    assert run.interval <= 1.1 * ideal
    assert run.latency == plan.latency


ARCHS = [
    ([3, 5, 4, 2], ["tanh", "relu", "identity"], QuantConfig(format="Q3.9", lut_range=4), "1"),
    ([3, 5, 4, 2], ["tanh", "relu", "identity"], QuantConfig(format="Q3.9", lut_range=4), "5,2,8"),
    ([6, 4, 1], ["sigmoid", "sigmoid"], QuantConfig(format="Q2.6", lut_bits=8, rounding="floor"), "2,4"),
    ([6, 4, 1], ["relu", "sigmoid"], QuantConfig(format="Q4.8", lut_interpolate=True, lut_bits=6,
                                                 overflow="wrap"), "4,1"),
    ([2, 4, 1], ["sigmoid", "sigmoid"], QuantConfig(format="fixed<12,5>", lut_symmetric=True,
                                                    rounding="toward-zero"), "8,4"),
]


@pytest.mark.parametrize("sizes,acts,config,parallel", ARCHS, ids=[f"arch{i}" for i in range(len(ARCHS))])
def test_networks_under_random_stalls(sizes, acts, config, parallel):
    model = random_float_model(sizes, acts, seed=len(parallel), scale=1.5)
    rng = np.random.default_rng(7)
    X_raw = rng.normal(0, 2, (25, sizes[0]))
    q, _ = quantize_model(model, config, X_raw)
    X, _ = q.quantize_inputs(X_raw)
    run = run_stream(Network(make_plan(q, parallel)), X, stall_in=0.35, stall_out=0.35, seed=11)
    np.testing.assert_array_equal(run.outputs, q.predict(X))


def test_checker_catches_a_corrupted_weight(iris_q412):
    """The comparison can fail: hardware built from one flipped weight bit disagrees with the spec."""
    q, X = iris_q412
    bad = type(q).from_dict(q.to_dict())
    bad.layers[1].weights[2, 5] ^= 1 << 9
    run = run_stream(Network(make_plan(bad, "8,3")), X)
    expected = q.predict(X)
    mismatched = np.argwhere(run.outputs != expected)
    assert mismatched.size, "a flipped weight bit went unnoticed"
    assert set(mismatched[:, 1]) == {2}  # only the corrupted neuron's output can differ


def test_parallel_spec_parsing():
    assert parse_parallel("8,3", 2) == [8, 3]
    assert parse_parallel(4, 3) == [4, 4, 4]
    with pytest.raises(BpHwError):
        parse_parallel("8,3,1", 2)
    with pytest.raises(BpHwError):
        parse_parallel("a,b", 2)


def test_sanitize_name():
    assert sanitize_name("my net-1") == "my_net_1"
    assert sanitize_name("3layers") == "net_3layers"
    assert sanitize_name("module") == "module_net"
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", sanitize_name("../../etc/passwd;rm -rf"))


# -- emission and lint --------------------------------------------------------------------------------

# Warning classes that Amaranth's Verilog back end produces for any design: expressions that rely on
# Verilog's context widening (WIDTHEXPAND/WIDTHTRUNC), `reg x = init;` declarations (PROCASSINIT),
# unused bits of its intermediate wires (UNUSEDSIGNAL) and hierarchical module names (DECLFILENAME).
AMARANTH_WAIVERS = ["WIDTHEXPAND", "WIDTHTRUNC", "PROCASSINIT", "UNUSEDSIGNAL", "DECLFILENAME"]


def _verilator():
    from bp_hw.cosim.tools import find_simulator
    try:
        return find_simulator("verilator").executable
    except BpHwError as exc:  # pragma: no cover - verilator is a dependency
        pytest.skip(str(exc))


def _lint(path, top, waive=()):
    cmd = [_verilator(), "--lint-only", "-Wall", *[f"-Wno-{w}" for w in waive], str(path), "--top-module", top]
    return subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())


class _Counter(wiring.Component):
    def __init__(self):
        super().__init__({"count": Out(8)})

    def elaborate(self, platform):
        m = Module()
        step = Signal(3)
        m.d.sync += [step.eq(step + 1), self.count.eq(self.count + step[1:])]
        return m


def test_waived_lint_warnings_come_from_amaranth_itself(tmp_path):
    """Every waived class (bar DECLFILENAME, which needs submodules) shows up on a trivial counter."""
    path = tmp_path / "counter.v"
    path.write_text(verilog.convert(_Counter(), name="counter", emit_src=False))
    found = set(re.findall(r"%Warning-([A-Z]+)", _lint(path, "counter").stderr))
    assert {"WIDTHEXPAND", "PROCASSINIT", "UNUSEDSIGNAL"} <= found
    assert found <= set(AMARANTH_WAIVERS)


@pytest.mark.parametrize("parallel", ["1", "8,3", "32,24"])
def test_emitted_verilog_passes_lint(iris_q412, tmp_path, parallel):
    q, _ = iris_q412
    manifest = generate(q, parallel, tmp_path, name="iris net")
    assert manifest.name == "iris_net"
    result = _lint(tmp_path / "iris_net.v", "iris_net", AMARANTH_WAIVERS)
    assert result.returncode == 0, result.stderr[-3000:]
    unwaived = set(re.findall(r"%Warning-([A-Z]+)", result.stderr))
    assert not unwaived


def test_manifest_describes_the_design(iris_q412, tmp_path):
    q, _ = iris_q412
    manifest = generate(q, "8,3", tmp_path)
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == manifest.to_json()
    assert read_manifest(tmp_path) == manifest
    text = (tmp_path / f"{manifest.name}.v").read_text()
    for port in ("clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload", "o__valid", "o__ready",
                 "tap0__payload", "tap1__valid"):
        assert re.search(rf"\b{port}\b", text), port
    assert manifest.inp.elements == 4 and manifest.inp.width == 16
    assert manifest.out.elements == 3
    assert manifest.parallel == [8, 3]
    assert manifest.interval_cycles == manifest.ideal_interval_cycles == 8
    assert manifest.multipliers == 11 and manifest.mac_ops_per_inference == 56
    assert [layer.acc_width for layer in manifest.layers] == [layer.acc_width for layer in q.layers]
    # the checker's copy of the spec is there and loads
    assert load_qmodel(manifest).to_dict() == q.to_dict()


# -- CLI ----------------------------------------------------------------------------------------------

def test_generate_cli_json(iris_q412, tmp_path, capsys):
    q, _ = iris_q412
    q.save(tmp_path / "q.json")
    rc = main(["generate", str(tmp_path / "q.json"), "--parallel", "8,3", "--out", str(tmp_path / "b"), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("verilog", "manifest", "latency_cycles", "interval_cycles", "multipliers"):
        assert key in out
    assert os.path.isfile(out["verilog"]) and os.path.isfile(out["manifest"])
    assert out["interval_cycles"] == 8


@pytest.mark.parametrize("parallel,needle", [("5", "does not divide"), ("64", "exceeds"), ("8,3,1", "layers")])
def test_generate_cli_bad_parallel(iris_q412, tmp_path, capsys, parallel, needle):
    q, _ = iris_q412
    q.save(tmp_path / "q.json")
    rc = main(["generate", str(tmp_path / "q.json"), "--parallel", parallel, "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and needle in err and len(err.splitlines()) == 1


def test_generate_cli_rejects_other_versions(iris_q412, tmp_path, capsys):
    q, _ = iris_q412
    d = q.to_dict()
    d["version"] = 99
    (tmp_path / "q.json").write_text(json.dumps(d))
    rc = main(["generate", str(tmp_path / "q.json"), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "version" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "b" / "manifest.json").exists()


@pytest.mark.skipif(shutil.which("bp-hw") is None, reason="console script not installed")
def test_generate_subprocess_exit_code(tmp_path):
    r = subprocess.run(["bp-hw", "generate", str(tmp_path / "missing.json"), "--out", str(tmp_path / "b")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("parallel", ["1", "8,3", "32,24"])
def test_standalone_latency_is_measured(iris_q412, parallel):
    """One input presented to an idle network at cycle 0 comes out after standalone_latency cycles."""
    q, X = iris_q412
    plan = make_plan(q, parallel)
    run = run_stream(Network(plan), X[:1])
    assert run.out_cycles[0] == plan.standalone_latency
    assert run.out_cycles[0] - run.in_cycles[0] == plan.latency


def _check_timed_and_stalled(plan, q, X, seed, stalled_rows=40):
    """The network of ``plan`` on ``X``: bit-exact with the plan's latency and interval measured, then
    bit-exact on the first ``stalled_rows`` vectors under random stalls both ways (``seed``). Amaranth's
    simulator runs no primitives: a plan's DSP cells are the registered ``*`` they stand for."""
    run = run_stream(Network(plan, primitives=False), X)
    expected = q.predict(X)
    np.testing.assert_array_equal(run.outputs, expected)
    assert run.latency == plan.latency
    assert run.interval == plan.interval
    stalled = run_stream(Network(plan, primitives=False), X[:stalled_rows], stall_in=0.3, stall_out=0.3,
                         seed=seed)
    np.testing.assert_array_equal(stalled.outputs, expected[:stalled_rows])


@pytest.mark.parametrize("parallel", ["1", "8,3", "2x2,3", "4x4,1", "32,24"])
def test_beats_through_the_input_buffer(iris_q412, parallel):
    """Inputs as beats of P_in elements into the input buffer: bit-exact, also under stalls, with the
    plan's latency, standalone latency and interval measured."""
    q, X = iris_q412
    plan = make_plan(q, parallel, input_mode="beats")
    assert plan.layers[0].input_source == "buffer"
    _check_timed_and_stalled(plan, q, X, seed=3)
    assert run_stream(Network(plan), X[:1]).out_cycles[0] == plan.standalone_latency


def test_beats_checker_catches_a_corrupted_weight(iris_q412):
    q, X = iris_q412
    bad = type(q).from_dict(q.to_dict())
    bad.layers[0].weights[3, 2] ^= 1 << 10
    run = run_stream(Network(make_plan(bad, "2x2,3", input_mode="beats")), X, tap_names=())
    assert not np.array_equal(run.outputs, q.predict(X)), "a flipped first-layer weight bit went unnoticed"


@pytest.mark.parametrize("parallel", ["1", "1x2,1"])
def test_weights_in_spram_loaded_at_run_time(iris_q412, parallel):
    """Weights in SPRAM arrive through the load port (the plan's load image); the behavioural RAM
    stands for the primitive here (Verilator runs the primitive's own model: test_cosim_harness)."""
    q, X = iris_q412
    plan = make_plan(q, parallel, device="iCE40UP5K", weights="spram", input_mode="beats")
    assert plan.load is not None
    mems = [m for m in plan.memories if m.kind == "weights"]
    assert all(m.placement == "spram" and m.loaded for m in mems)
    assert plan.load.words == sum(m.count * m.depth for m in mems)
    image = plan.load.image(plan)
    run = run_stream(Network(plan, primitives=False), X, load=image)
    np.testing.assert_array_equal(run.outputs, q.predict(X))
    bad = list(image)
    bad[1] = (bad[1][0], bad[1][1] ^ (1 << 10))
    run = run_stream(Network(plan, primitives=False), X, load=bad)
    assert not np.array_equal(run.outputs, q.predict(X)), "a flipped bit of the load image went unnoticed"


def test_spram_placement_rules(iris_q412):
    q, _ = iris_q412
    with pytest.raises(BpHwError, match="needs a device with SPRAM"):
        make_plan(q, 1, weights="spram")
    with pytest.raises(BpHwError, match="SPRAM blocks.*has 4"):
        make_plan(q, "8,3", device="iCE40UP5K", weights="spram")   # 11 lane memories
    # small networks keep their ROMs: auto only moves weights when block RAM runs out
    assert make_plan(q, 1, device="iCE40UP5K").load is None


def test_products_in_logic_past_the_dsps(iris_q412):
    """8 + 3 lanes on the UP5K's 8 DSP blocks: the second layer's products go to LUTs, one register
    deeper; bit-exact, also under stalls, with the plan's latency and interval measured."""
    q, X = iris_q412
    plan = make_plan(q, "8,3", device="iCE40UP5K", weights="rom")
    assert [x.logic_multipliers for x in plan.layers] == [False, True]
    assert plan.layers[1].latency == plan.layers[0].latency + 1
    _check_timed_and_stalled(plan, q, X, seed=5)


@pytest.mark.parametrize("parallel", ["4x2,1", "4x1,2x2"])
def test_slots_in_bram_read_a_chunk_of_each_word(parallel):
    """A producer's word of 4 neurons read as 4 chunks (or 2) by the next layer's 24 chunks: block
    RAM slots; bit-exact, also under stalls, with the plan's latency and interval measured."""
    model = random_float_model([12, 24, 6], ["sigmoid", "sigmoid"], seed=3, scale=1.0)
    rng = np.random.default_rng(8)
    X_raw = rng.normal(0, 1.5, (30, 12))
    q, _ = quantize_model(model, QuantConfig(format="Q4.12"), X_raw)
    X, _ = q.quantize_inputs(X_raw)
    plan = make_plan(q, parallel, taps=True)
    assert plan.mem_links == [True] and plan.layers[1].in_word_chunks > 1
    run = run_stream(Network(plan), X, tap_names=("tap0", "tap1"))
    expected, traces = q.predict(X, trace=True)
    np.testing.assert_array_equal(run.taps["tap0"], traces[0]["out"])
    np.testing.assert_array_equal(run.outputs, expected)
    assert run.latency == plan.latency
    assert run.interval == plan.interval
    stalled = run_stream(Network(plan), X, stall_in=0.3, stall_out=0.3, seed=2)
    np.testing.assert_array_equal(stalled.outputs, expected)


@pytest.mark.parametrize("parallel", ["1", "2x2,3"])
def test_operands_registered_on_ecp5(iris_q412, parallel):
    """On the ECP5 every MAC operand is registered once more after its memory, and every product
    (a MULT18X18D instance with its own registers, whose model runs in Verilator: test_cosim_harness)
    once more after the block: two more cycles per layer, bit-exact, also under stalls, with the
    plan's latency and interval measured."""
    q, X = iris_q412
    plan = make_plan(q, parallel, device="LFE5U-85F")
    assert all(x.operand_latency == 1 for x in plan.layers)
    assert [x.dsp_cell for x in plan.layers] == ["MULT18X18D"] * len(plan.layers)
    assert plan.latency == make_plan(q, parallel).latency + 2 * len(plan.layers)
    assert {x.dsp_cell for x in make_plan(q, parallel, device="iCE40UP5K").layers} == {None}
    assert {x.dsp_cell for x in make_plan(q, parallel, device="LFE5U-85F", train=True).layers} == {None}
    _check_timed_and_stalled(plan, q, X, seed=4)
