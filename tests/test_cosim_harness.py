"""The co-simulation harness (inference body) and its checker on generated networks, Verilator and Icarus.

The designs are real: a small seeded 4-5-3 sigmoid network, generated serial
(P = 1: folded, back-pressure through every layer) and fully parallel (one
vector per cycle). The checker's fault tests corrupt the expectation (the
quantized model the outputs are checked against); lost and duplicated samples
need a design with broken back-pressure, a fixture under ``tests/fixtures``.
Builds are shared by all tests of a session (and by xdist workers, through a
file lock), so each design is compiled once per simulator.
"""

from __future__ import annotations

import copy
import fcntl
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bp_hw.cosim.check import compare_outputs, first_tap_mismatch
from bp_hw.cosim.runner import run_vectors
from bp_hw.cosim.tools import verilator_fst_problem
from bp_hw.cosim.verify import random_vectors
from bp_hw.errors import BpHwError
from bp_hw.hdl.emit import generate
from bp_hw.plan.manifest import load_qmodel, read_manifest
from bp_hw.train_start import seeded_qmodel
from fixtures.simulators import cheapest_simulator, need
from fixtures.stream_faults import FaultyPipeline, write_pipeline_build

pytestmark = pytest.mark.slow

SIMULATORS = ["verilator", "icarus"]
# Icarus runs ~30x slower than Verilator; keep its batches small.
N_VECTORS = {"verilator": 3000, "icarus": 300}
# name -> generate options: serial and fully parallel with whole input vectors, one whose inputs
# arrive as beats of two elements into the input buffer, one whose weights are in SPRAM,
# written through the load port before the first input, and the beats design for the ECP5 (its
# products MULT18X18D instances, run through bp_hw/cosim/mult18x18d.v)
DESIGNS = {"serial": dict(parallel="1", input_mode="vector"), "parallel": dict(parallel="20,15", input_mode="vector"),
           "beats": dict(parallel="5x2,15", input_mode="beats"),
           "loaded": dict(parallel="1", input_mode="beats", weights="spram", device="iCE40UP5K"),
           "ecp5": dict(parallel="5x2,15", input_mode="beats", device="LFE5U-85F")}


@pytest.fixture(scope="session")
def root(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by all workers of this run
    path = base / "cosim_harness"
    path.mkdir(exist_ok=True)
    with open(path / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / "pipe_dup" / "manifest.json").is_file():
            q, _, _ = seeded_qmodel("iris", [4, 5, 3], seed=2)
            for name, options in DESIGNS.items():
                generate(q, out_dir=path / name, name=f"net_{name}", **options)
            for fault in (None, "drop", "dup"):
                write_pipeline_build(FaultyPipeline(fault=fault), path / f"pipe_{fault}")
    return path


def inputs_for(build: Path, n: int, seed: int = 0) -> np.ndarray:
    fmt = load_qmodel(read_manifest(build)).input_fmt
    return random_vectors(fmt, n, 4, seed)


def tap_view(result, tap: str):
    """A view of ``result`` whose outputs are the samples of ``tap`` (for compare_outputs)."""
    return replace(result, outputs=result.taps[tap], unknown=result.tap_unknown[tap])


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("stall", [0.0, 0.3])
@pytest.mark.parametrize("design", list(DESIGNS))
def test_network_matches_integer_model(root, simulator, design, stall):
    need(simulator)
    build = root / design
    manifest = read_manifest(build)
    q = load_qmodel(manifest)
    x = inputs_for(build, N_VECTORS[simulator], seed=3)
    expected, traces = q.predict(x, trace=True)
    result = run_vectors(build, x, simulator, stall=stall, seed=11)
    report = compare_outputs(expected, result)
    assert report.ok, report.describe(16)
    assert manifest.inp.beats == {"beats": 2, "loaded": 4, "ecp5": 2}.get(design, 1)
    assert (manifest.load is not None) == (design == "loaded")
    cells = {x.dsp_cell for x in manifest.layers}
    assert cells == ({"MULT18X18D"} if design == "ecp5" else {None})
    assert ("MULT18X18D #(" in manifest.verilog[0].read_text()) == (design == "ecp5")
    assert len(result.input_cycles) == len(x) and result.inputs_sent == len(x)
    assert np.all(np.diff(result.output_cycles.astype(np.int64)) > 0)
    # Every tap sees every sample exactly once, in order, like the output.
    for l, tap in enumerate(manifest.taps):
        assert compare_outputs(traces[l]["out"], tap_view(result, tap.name)).ok, tap.name
    unstalled = manifest.latency_cycles + manifest.interval_cycles * len(x)
    if stall == 0:
        # The plan's timing holds when nothing stalls.
        assert result.latency_cycles == manifest.latency_cycles
        assert np.all(np.diff(result.output_cycles.astype(np.int64)) == manifest.interval_cycles)
    elif design != "loaded":
        # Stalls must actually have slowed the stream down (a folded design hides most of them;
        # the loaded one, serial with 4 input beats per 20-cycle interval, hides them all).
        assert result.cycles > unstalled * (1.005 if design == "serial" else 1.1)


def test_corrupted_load_image_is_caught(root, tmp_path):
    """The weights in SPRAM come from the load image: one flipped bit in it and the outputs differ."""
    need("verilator")
    build = root / "loaded"
    manifest = read_manifest(build)
    lines = (build / manifest.load.image).read_text().splitlines()
    lines[3] = f"{int(lines[3], 16) ^ (1 << 11):0{len(lines[3])}x}"
    bad = tmp_path / "load.hex"
    bad.write_text("\n".join(lines) + "\n")
    q = load_qmodel(manifest)
    x = inputs_for(build, 300, seed=5)
    assert compare_outputs(q.predict(x), run_vectors(build, x)).ok
    assert not compare_outputs(q.predict(x), run_vectors(build, x, load_image=bad)).ok


def test_mult18x18d_model_is_what_runs(root, monkeypatch):
    """The ECP5 design's products run through the MULT18X18D model: with the model's products doubled
    the outputs differ (and the true model matches again after)."""
    import bp_hw.cosim.runner as runner
    simulator = cheapest_simulator()
    build = root / "ecp5"
    manifest = read_manifest(build)
    q = load_qmodel(manifest)
    x = inputs_for(build, 300, seed=6)
    text = runner.primitive_models(manifest)
    assert "module MULT18X18D" in text
    bad = text.replace("p_r <= product[35:0];", "p_r <= product[34:0] << 1;")
    assert bad != text
    monkeypatch.setattr(runner, "primitive_models", lambda m: bad)
    assert not compare_outputs(q.predict(x), run_vectors(build, x, simulator)).ok
    monkeypatch.undo()
    assert compare_outputs(q.predict(x), run_vectors(build, x, simulator)).ok


def test_corrupted_expectation_is_caught_and_located(root):
    """The outputs are checked against a model whose W0[2, 1] is off by one: the checker must
    fail exactly on the vectors where the two models disagree, and name layer 0, neuron 2."""
    simulator = cheapest_simulator()
    build = root / "serial"
    q = load_qmodel(read_manifest(build))
    bad = copy.deepcopy(q)
    bad.layers[0].weights[2, 1] += 1
    x = inputs_for(build, N_VECTORS[simulator], seed=4)
    expected, traces = bad.predict(x, trace=True)
    result = run_vectors(build, x, simulator, stall=0.3, seed=2)
    report = compare_outputs(expected, result)
    differs = np.flatnonzero((q.predict(x) != expected).any(axis=1))
    assert len(differs) > 0 and not report.ok
    assert report.missing == 0 and report.extra == 0
    assert np.array_equal(report.mismatched, differs)
    first_tap = int(np.flatnonzero(traces[0]["out"][:, 2] != q.predict(x, trace=True)[1][0]["out"][:, 2])[0])
    assert first_tap_mismatch({"tap0": traces[0]["out"], "tap1": traces[1]["out"]}, result) == ("tap0", first_tap, 2)
    assert "vector" in report.describe(16)


def test_lost_samples_are_caught(root):
    simulator = cheapest_simulator()
    build = root / "pipe_drop"
    x = random_vectors(_q16(), N_VECTORS[simulator], 4, seed=5)
    # Without back-pressure the broken pipeline is indistinguishable from a good one...
    assert compare_outputs(x, run_vectors(build, x, simulator, stall=0.0)).ok
    # ...stalls expose it.
    report = compare_outputs(x, run_vectors(build, x, simulator, stall=0.3, seed=9))
    assert not report.ok and report.missing > 0 and report.extra == 0
    assert any("lost" in h for h in report.hints), report.describe()


def test_duplicated_samples_are_caught(root):
    simulator = cheapest_simulator()
    x = random_vectors(_q16(), N_VECTORS[simulator], 4, seed=6)
    assert compare_outputs(x, run_vectors(root / "pipe_None", x, simulator, stall=0.3, seed=1)).ok
    report = compare_outputs(x, run_vectors(root / "pipe_dup", x, simulator, stall=0.3, seed=1))
    assert not report.ok and report.extra > 0
    assert any("duplicated" in h for h in report.hints), report.describe()


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_watchdog_is_reported(root, simulator):
    """A run that stops moving ends with ``timed_out`` (the serial design takes 20 cycles per vector)."""
    need(simulator)
    x = inputs_for(root / "serial", 20, seed=8)
    result = run_vectors(root / "serial", x, simulator, watchdog=5)
    report = compare_outputs(load_qmodel(read_manifest(root / "serial")).predict(x), result)
    assert result.timed_out and report.timed_out and not report.ok
    assert result.inputs_sent < len(x) and "watchdog" in report.summary()


@pytest.mark.parametrize("simulator,suffix", [("verilator", ".vcd"), ("verilator", ".fst"),
                                              ("icarus", ".vcd"), ("icarus", ".fst")])
def test_single_vector_with_waveform(root, tmp_path, simulator, suffix):
    need(simulator)
    build = root / "parallel"
    if simulator == "verilator" and suffix == ".fst" and verilator_fst_problem():
        # The one-line reason is what a user gets; check it, then skip the dump itself.
        with pytest.raises(BpHwError, match="liblz4-dev"):
            run_vectors(build, np.zeros((1, 4), np.int64), simulator, waves=tmp_path / "x.fst")
        pytest.skip(verilator_fst_problem())
    x = inputs_for(build, 20, seed=7)[17:18]
    waves = tmp_path / f"vector17{suffix}"
    result = run_vectors(build, x, simulator, waves=waves)
    assert compare_outputs(load_qmodel(read_manifest(build)).predict(x), result).ok
    assert waves.is_file() and waves.stat().st_size > 0
    if suffix == ".vcd":
        assert "o__payload" in waves.read_text(errors="replace")


def test_build_is_cached_and_reported_separately(root):
    need("verilator")
    x = inputs_for(root / "parallel", 10)
    run_vectors(root / "parallel", x)
    again = run_vectors(root / "parallel", x)
    assert again.build_cached and again.build_seconds == 0.0
    assert again.run_seconds > 0


def test_bad_inputs_are_user_errors(root, tmp_path):
    need("verilator")
    build = root / "parallel"
    with pytest.raises(BpHwError, match="does not fit"):
        run_vectors(build, np.full((2, 4), 40000))
    with pytest.raises(BpHwError, match="shape"):
        run_vectors(build, np.zeros((2, 5), np.int64))
    with pytest.raises(BpHwError, match="stall"):
        run_vectors(build, np.zeros((2, 4), np.int64), stall=1.0)
    with pytest.raises(BpHwError, match="fst or .vcd"):
        run_vectors(build, np.zeros((1, 4), np.int64), waves="x.ghw")
    q, _, _ = seeded_qmodel("xor", [2, 2, 1])
    generate(q, 1, tmp_path / "train", train=True)
    with pytest.raises(BpHwError, match="training design"):
        run_vectors(tmp_path / "train", np.zeros((1, 2), np.int64))


def _q16():
    from bp_hw.fixed.qformat import QFormat
    return QFormat.parse("Q16.0")
