"""Co-simulation harness proven on toy DUTs, on Verilator and Icarus.

Builds are shared by all tests of a session (and by xdist workers, through a
file lock), so each toy is compiled once per simulator.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bp_hw.cosim import toy
from bp_hw.cosim.check import compare_outputs, first_tap_mismatch
from bp_hw.cosim.runner import run_vectors
from bp_hw.cosim.tools import find_simulator, verilator_fst_problem
from bp_hw.errors import BpHwError

pytestmark = pytest.mark.slow

SIMULATORS = ["verilator", "icarus"]
COEFFS = toy.random_coeffs(3, 4, seed=1)
# Icarus runs ~30x slower than Verilator; keep its batches small.
N_VECTORS = {"verilator": 3000, "icarus": 400}

TOYS = {
    "pipe": lambda: toy.PipelineToy(COEFFS, latency=3, tap=True),
    "serial": lambda: toy.SerialToy(COEFFS, fifo_depth=2),
    "pipe_coeff": lambda: toy.PipelineToy(COEFFS, latency=3, tap=True, fault="coeff"),
    "pipe_drop": lambda: toy.PipelineToy(COEFFS, latency=3, fault="drop"),
    "pipe_dup": lambda: toy.PipelineToy(COEFFS, latency=3, fault="dup"),
}


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by all workers of this run
    path = root / "cosim_toys"
    path.mkdir(exist_ok=True)
    return path


def toy_dir(root: Path, name: str) -> Path:
    dut = TOYS[name]()
    interval = dut.n_in + 2 if isinstance(dut, toy.SerialToy) else 1
    return toy.emit_toy(dut, root / name, "toy", interval=interval,
                        latency=getattr(dut, "latency", dut.n_in + 2))


def need(simulator: str) -> None:
    try:
        find_simulator(simulator)
    except BpHwError as exc:
        pytest.skip(f"{simulator} unavailable: {exc}")


def checker_simulator() -> str:
    """The checker's fault tests need one simulator: Icarus builds in a second, Verilator is the fallback."""
    for sim in ("icarus", "verilator"):
        try:
            find_simulator(sim)
        except BpHwError:
            continue
        return sim
    pytest.skip("no simulator available")


def inputs_for(simulator: str, seed: int = 0) -> np.ndarray:
    return toy.random_inputs(N_VECTORS[simulator], 4, 16, seed=seed)


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("stall", [0.0, 0.3])
@pytest.mark.parametrize("kind", ["pipe", "serial"])
def test_toy_matches_model(toy_root, simulator, kind, stall):
    need(simulator)
    x = inputs_for(simulator, seed=3)
    expected = toy.toy_expected(COEFFS, x, 16)
    result = run_vectors(toy_dir(toy_root, kind), x, simulator, stall=stall, seed=11)
    report = compare_outputs(expected, result)
    assert report.ok, report.describe(16)
    assert result.outputs.shape == expected.shape
    assert len(result.input_cycles) == len(x) and result.inputs_sent == len(x)
    assert np.all(np.diff(result.output_cycles.astype(np.int64)) > 0)
    if kind == "pipe":
        # The tap sees every sample exactly once, in order, like the output.
        assert compare_outputs(expected, _as_result(result, "t_stage0")).ok
        if stall == 0:
            assert result.latency_cycles == 3
            assert result.cycles == len(x) + 3  # one vector per cycle, fully pipelined
    if stall > 0:
        # Stalls must actually have slowed the stream down (the serial toy hides most of them).
        unstalled = len(x) + 3 if kind == "pipe" else 6 * len(x) + 2
        assert result.cycles > unstalled * (1.1 if kind == "pipe" else 1.01)


def _as_result(result, tap):
    """A view of *result* whose outputs are the samples of *tap* (for compare_outputs)."""
    from dataclasses import replace
    return replace(result, outputs=result.taps[tap], unknown=result.tap_unknown[tap])


def test_corrupted_coefficient_is_caught_and_located(toy_root):
    simulator = checker_simulator()
    x = inputs_for(simulator, seed=4)
    expected = toy.toy_expected(COEFFS, x, 16)
    result = run_vectors(toy_dir(toy_root, "pipe_coeff"), x, simulator, stall=0.3, seed=2)
    report = compare_outputs(expected, result)
    assert not report.ok
    assert report.missing == 0 and report.extra == 0
    # C[0][0] is off by one: output 0 differs exactly where x[:, 0] != 0, the others never.
    assert np.array_equal(report.mismatched, np.flatnonzero(x[:, 0] != 0))
    assert report.first_element == 0
    assert np.array_equal(result.outputs[:, 1:], expected[:, 1:])
    assert first_tap_mismatch({"t_stage0": expected}, result) == ("t_stage0", report.first_mismatch, 0)
    assert "vector" in report.describe(16)


def test_lost_samples_are_caught(toy_root):
    simulator = checker_simulator()
    x = inputs_for(simulator, seed=5)
    expected = toy.toy_expected(COEFFS, x, 16)
    build = toy_dir(toy_root, "pipe_drop")
    # Without back-pressure the broken pipeline is indistinguishable from a good one...
    assert compare_outputs(expected, run_vectors(build, x, simulator, stall=0.0)).ok
    # ...stalls expose it.
    report = compare_outputs(expected, run_vectors(build, x, simulator, stall=0.3, seed=9))
    assert not report.ok and report.missing > 0 and report.extra == 0
    assert any("lost" in h for h in report.hints), report.describe()


def test_duplicated_samples_are_caught(toy_root):
    simulator = checker_simulator()
    x = inputs_for(simulator, seed=6)
    expected = toy.toy_expected(COEFFS, x, 16)
    report = compare_outputs(expected, run_vectors(toy_dir(toy_root, "pipe_dup"), x, simulator,
                                                   stall=0.3, seed=1))
    assert not report.ok and report.extra > 0
    assert any("duplicated" in h for h in report.hints), report.describe()


@pytest.mark.parametrize("simulator,suffix", [("verilator", ".vcd"), ("verilator", ".fst"),
                                              ("icarus", ".vcd"), ("icarus", ".fst")])
def test_single_vector_with_waveform(toy_root, tmp_path, simulator, suffix):
    need(simulator)
    if simulator == "verilator" and suffix == ".fst" and verilator_fst_problem():
        # The one-line reason is what a user gets; check it, then skip the dump itself.
        with pytest.raises(BpHwError, match="liblz4-dev"):
            run_vectors(toy_dir(toy_root, "pipe"), np.zeros((1, 4), np.int64), simulator,
                        waves=tmp_path / "x.fst")
        pytest.skip(verilator_fst_problem())
    x = inputs_for(simulator, seed=7)[17:18]
    waves = tmp_path / f"vector17{suffix}"
    result = run_vectors(toy_dir(toy_root, "pipe"), x, simulator, waves=waves)
    assert compare_outputs(toy.toy_expected(COEFFS, x, 16), result).ok
    assert waves.is_file() and waves.stat().st_size > 0
    if suffix == ".vcd":
        assert "o__payload" in waves.read_text(errors="replace")


def test_build_is_cached_and_reported_separately(toy_root):
    need("verilator")
    x = inputs_for("verilator")[:10]
    run_vectors(toy_dir(toy_root, "pipe"), x)
    again = run_vectors(toy_dir(toy_root, "pipe"), x)
    assert again.build_cached and again.build_seconds == 0.0
    assert again.run_seconds > 0


def test_bad_inputs_are_user_errors(toy_root):
    need("verilator")
    build = toy_dir(toy_root, "pipe")
    with pytest.raises(BpHwError, match="does not fit"):
        run_vectors(build, np.full((2, 4), 40000))
    with pytest.raises(BpHwError, match="shape"):
        run_vectors(build, np.zeros((2, 5), np.int64))
    with pytest.raises(BpHwError, match="stall"):
        run_vectors(build, np.zeros((2, 4), np.int64), stall=1.0)
    with pytest.raises(BpHwError, match="fst or .vcd"):
        run_vectors(build, np.zeros((1, 4), np.int64), waves="x.ghw")
