"""The flow report's figures mean what they say."""

from __future__ import annotations

import pytest

from bp_hw.cosim.verify import Verification
from bp_hw.flow import Flow, FlowConfig, StepResult
from bp_hw.report import write_report


def verification(vectors: int, cycles: int, run_seconds: float, sim_seconds: float) -> Verification:
    return Verification(simulator="verilator", simulator_version="5.036", design="q", vectors=vectors,
                        mismatches=0, missing=0, extra=0, tap_mismatches=0, timed_out=False, stall=0.0, seed=0,
                        cycles=cycles, latency_cycles=43, build_seconds=0.5, build_cached=True,
                        run_seconds=run_seconds, sim_seconds=sim_seconds, verify_seconds=run_seconds + 0.05,
                        batches=1, hints=[], first=None)


def test_simulation_speed_and_start_up_are_apart_from_a_rate_of_few_vectors():
    # 150 vectors in 1.05 s were reported as "143 verified/s": that is the simulator's start-up.
    v = verification(150, 150 * 32, run_seconds=1.0, sim_seconds=0.01)
    assert v.sim_cycles_per_second == pytest.approx(150 * 32 / 0.01)
    assert v.startup_seconds == pytest.approx(0.99)
    assert v.verified_per_second is None
    big = verification(100_000, 100_000 * 32, run_seconds=3.0, sim_seconds=2.0)
    assert big.verified_per_second == pytest.approx(100_000 / 3.05)
    assert big.startup_seconds == pytest.approx(1.0)
    unmeasured = verification(150, 4800, run_seconds=1.0, sim_seconds=0.0)
    assert unmeasured.sim_cycles_per_second is None and unmeasured.startup_seconds is None


def test_report_shows_simulated_cycles_and_start_up_not_verified_per_second(tmp_path):
    flow = Flow(FlowConfig(), tmp_path)
    summary = {"ok": True, "simulator": "verilator", "vectors": 150, "mismatches": 0, "cycles": 4800,
               "cycles_per_inference": 32.0, "verified_per_second": None, "sim_cycles_per_second": 480000.0,
               "startup_seconds": 0.99, "build_seconds": 0.5}
    flow.results = [StepResult("simulate", "ok", 1.1, summary)]
    write_report(flow)
    page = (tmp_path / "report.html").read_text()
    assert "sim_cycles_per_second" in page and "4.8e+05" in page
    assert "startup_seconds" in page and "0.99" in page
    assert "verified_per_second" not in page


def test_report_of_a_flow_with_a_build_and_synthesis(tmp_path):
    """The report reads the build's manifest (the plan's figures) beside a synthesis summary."""
    from bp_hw.hdl.emit import generate
    from bp_hw.train_start import seeded_qmodel
    flow = Flow(FlowConfig(), tmp_path)
    q, _, _ = seeded_qmodel("iris", [4, 8, 3])
    manifest = generate(q, 1, flow.build_dir, name="q")
    synth = {"board": "icebreaker", "device": "iCE40UP5K", "luts": 1360, "ffs": 952, "dsps": 2, "brams": 9,
             "fmax_mhz": 55.0}
    flow.results = [StepResult("generate", "ok", 1.0, {}), StepResult("synth", "ok", 40.0, synth)]
    write_report(flow)
    page = (tmp_path / "report.html").read_text()
    assert "Synthesis" in page and "layer0.weights" in page and "data:image/svg+xml;base64," in page
    # inferences/s at Fmax from the manifest's interval
    assert f"<td>{55.0e6 / manifest.interval_cycles:.4g}</td>" in page
