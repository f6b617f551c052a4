"""bp-hw explore: the sweep, the Pareto front and the must-show (smaller than Q4.12 within 1 point)."""

from __future__ import annotations

import json

import pytest

from bp_hw.cli import main
from bp_hw.errors import BpHwError
from bp_hw.explore import Point, pareto_front


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("explore") / "model.npz"
    assert main(["train", "--data", "iris", "--out", str(path)]) == 0
    return path


def test_explore_finds_a_smaller_format_within_one_point(iris_model, tmp_path, capsys):
    rc = main(["explore", str(iris_model), "--formats", "Q4.12,Q2.6,auto:8,auto:6", "--parallel", "1;8,3",
               "--out", str(tmp_path / "x"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["points"] == 8
    best = summary["smallest_within_1_point"]
    assert best is not None and best["bits"] < 16
    assert best["accuracy"] >= summary["float_accuracy"] - 0.01
    for name in ("explore.json", "explore.csv", "explore.png"):
        assert (tmp_path / "x" / name).stat().st_size > 0
    front = summary["pareto"]
    assert front and all(p["pareto"] for p in front)
    assert any(p["fits"] for p in front)          # at least one point of the front fits the iCE40UP5K
    assert any(not p["fits"] for p in json.loads((tmp_path / "x" / "explore.json").read_text())["all"])  # 8,3 needs 11 DSPs


def _pt(acc, luts, thr):
    return Point(format="f", parallel="1", lut_bits=10, bits=8, accuracy=acc, train_accuracy=acc, interval_cycles=1,
                 latency_cycles=1, multipliers=1, luts=luts, ffs=0, dsps=0, brams=0, fits=True,
                 inferences_per_s=thr, clock_mhz=50.0)


def test_pareto_front_drops_dominated_points():
    a, b, c, d = _pt(0.95, 100, 10), _pt(0.95, 120, 10), _pt(0.90, 80, 10), _pt(0.96, 200, 50)
    front = pareto_front([a, b, c, d])
    assert b not in front and {id(p) for p in front} == {id(a), id(c), id(d)}


def test_explore_bad_input(iris_model, tmp_path, capsys):
    assert main(["explore", str(iris_model), "--formats", "auto:x", "--out", str(tmp_path / "y")]) == 2
    assert main(["explore", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("error" in line for line in err)


def test_evaluate_reads_the_plan_and_the_estimate_without_building_hardware():
    """A point's cycles are the plan's and its resources the estimate's; no Amaranth is imported."""
    import subprocess
    import sys
    code = """
import sys
from bp_hw.data import load_dataset, split_dataset
from bp_hw.explore import evaluate
from bp_hw.modelfile import FloatModel
from bp_hw.plan import BOARDS, make_plan
from bp_hw.reference import init_weights
from bp_hw.fixed import QuantConfig, quantize_model
from bp_hw.synth_estimate import estimate_resources
import numpy as np
ds = load_dataset("iris")
tr, te = split_dataset(ds, 0.3, 0)
W, B = init_weights([4, 8, 3], "xavier", 0)
fm = FloatModel(layers=[4, 8, 3], weights=W, biases=B, activations=["sigmoid"] * 2, loss="mse",
                norm_mean=tr.X.mean(0), norm_std=tr.X.std(0), n_classes=3)
p = evaluate(fm, tr, te, "Q2.6", "4,3", 8, BOARDS["ulx3s-85f"])
q, _ = quantize_model(fm, QuantConfig(format="Q2.6", lut_bits=8), tr.X)
plan = make_plan(q, "4,3", device="LFE5U-85F")
est = estimate_resources(plan, "LFE5U-85F")
assert (p.interval_cycles, p.latency_cycles, p.multipliers) == (plan.interval, plan.latency, plan.multipliers)
assert (p.luts, p.dsps, p.brams, p.clock_mhz) == (est["luts"], est["dsps"], est["brams"], 120.0)
assert not [m for m in sys.modules if m.startswith("amaranth")], "explore built hardware"
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_explore_unknown_board_is_a_user_error(iris_model, tmp_path):
    from bp_hw.explore import explore
    with pytest.raises(BpHwError, match="unknown board 'nope'"):
        explore(iris_model, tmp_path, board="nope")
