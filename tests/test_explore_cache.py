"""bp-hw explore: content-hash cache (rerun computes nothing, a new format only its runs), seeds folded
into median and range, failed runs recorded, the flow report embedding."""

from __future__ import annotations

import hashlib
import json
import sys

import pytest

from bp_hw.cli import main
from bp_hw.errors import BpHwError
from bp_hw.explore import Design, explore, fold_runs, pareto_front, quantize_design
from bp_hw.explore.cache import ResultCache, run_key
from bp_hw.explore.engine import _run_killable, make_engine
from bp_hw.explore.points import qmodel_text


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("explore_cache") / "model.npz"
    assert main(["train", "--data", "iris", "--epochs", "30", "--out", str(path)]) == 0
    return path


def _sweep(model, out, formats, **kw):
    return explore(model, out, formats=formats, parallels=["1", "8,3"], **kw)


def test_rerun_computes_nothing_and_a_new_format_only_its_runs(iris_model, tmp_path):
    first = _sweep(iris_model, tmp_path, ["Q4.12", "Q3.9"])
    assert (first["runs"], first["computed"], first["cached"]) == (4, 4, 0)
    again = _sweep(iris_model, tmp_path, ["Q4.12", "Q3.9"])
    assert (again["computed"], again["cached"]) == (0, 4)
    assert again["pareto"] == first["pareto"]
    more = _sweep(iris_model, tmp_path, ["Q4.12", "Q3.9", "Q2.5"])
    assert (more["runs"], more["computed"], more["cached"]) == (6, 2, 4)
    fresh = _sweep(iris_model, tmp_path, ["Q4.12"], resume=False)
    assert fresh["computed"] == 2
    # another output folder sharing the cache folder shares the results
    other = _sweep(iris_model, tmp_path / "other", ["Q3.9"], cache_dir=tmp_path / "cache")
    assert other["computed"] == 0


def test_a_corrupt_or_failed_cache_entry_is_recomputed(iris_model, tmp_path):
    _sweep(iris_model, tmp_path, ["Q4.12"])
    entries = sorted((tmp_path / "cache").glob("*.json"))
    assert len(entries) == 2
    entries[0].write_text("{not json")
    bad = json.loads(entries[1].read_text())
    entries[1].write_text(json.dumps({**bad, "status": "failed", "reason": "timeout"}))
    assert _sweep(iris_model, tmp_path, ["Q4.12"])["computed"] == 2


def test_key_is_the_content_and_the_digest_is_the_manifests(iris_model, tmp_path):
    from bp_hw.explore.points import load_source
    from bp_hw.hdl.emit import generate
    model, tr, te = load_source(iris_model, None)
    quant = quantize_design(model, tr, te, "Q2.6", 10)
    digest = hashlib.sha256(qmodel_text(quant["qmodel"]).encode()).hexdigest()
    manifest = generate(quant["qmodel"], "1", tmp_path / "b", taps=False, images=False)
    assert manifest.qmodel_sha256 == digest
    key = run_key("synth", digest, "1", "icebreaker", 1)
    assert key == run_key("synth", digest, "1", "icebreaker", 1)
    others = {run_key("synth", digest, "1", "icebreaker", 2), run_key("synth", digest, "2,1", "icebreaker", 1),
              run_key("synth", digest, "1", "ulx3s-85f", 1), run_key("estimate", digest, "1", "icebreaker", 1),
              run_key("synth", "0" * 64, "1", "icebreaker", 1)}
    assert key not in others and len(others) == 5
    cache = ResultCache(tmp_path / "c")
    cache.put({"key": key, "status": "ok", "luts": 1})
    assert cache.get(key)["luts"] == 1 and cache.get(run_key("synth", digest, "1", "icebreaker", 2)) is None


def _run(seed, fmax, luts=1000, status="ok"):
    return {"key": str(seed), "kind": "synth", "seed": seed, "status": status, "reason": None if status == "ok"
            else "timeout after 5 s", "interval_cycles": 32, "latency_cycles": 40, "multipliers": 2, "fits": True,
            "luts": luts, "ffs": 600, "dsps": 2, "brams": 7, "fmax_mhz": fmax,
            "estimate": {"luts": 1100, "ffs": 500, "dsps": 2, "brams": 7}}


def test_seeds_fold_into_median_and_range():
    quant = {"bits": 8, "accuracy": 0.95, "train_accuracy": 0.97}
    d = Design("Q2.6", 10, "1", "icebreaker")
    p = fold_runs(d, quant, [_run(None, 50.0, 990), _run(1, 56.0, 1000), _run(2, 53.0, 1010)], 50.0)
    assert (p.fmax_mhz, p.fmax_min_mhz, p.fmax_max_mhz, p.seeds_ok) == (53.0, 50.0, 56.0, 3)
    assert p.luts == 1000 and p.inferences_per_s == pytest.approx(53e6 / 32) and p.status == "ok"
    part = fold_runs(d, quant, [_run(None, 50.0), _run(1, None, status="failed")], 50.0)
    assert part.status == "ok" and part.seeds_ok == 1 and "1 of 2 seeds failed: timeout" in part.reason
    dead = fold_runs(d, quant, [_run(1, None, status="failed")], 50.0)
    assert dead.status == "failed" and dead.luts == 1100 and dead.reason.startswith("timeout")
    front = pareto_front([p, dead])
    assert front == [p] and not dead.pareto


def test_a_design_that_does_not_fit_is_a_recorded_failure_not_a_crash(iris_model, tmp_path):
    """--synth on a design the iCE40 cannot hold (8,3: its 11 sigmoid and weight ROMs need 41 block RAMs;
    its 11 multipliers fit, 3 of them in LUTs): recorded with its reason, no tool runs."""
    s = explore(iris_model, tmp_path, formats=["Q4.12"], parallels=["8,3"], synth="all", seeds=[None, 1],
                engine="serial")
    assert (s["runs"], s["failed"], s["pareto"]) == (2, 2, [])
    data = json.loads((tmp_path / "explore.json").read_text())
    assert all("does not fit iCE40UP5K" in r["reason"] and "block RAMs" in r["reason"] for r in data["runs"])
    assert data["all"][0]["status"] == "failed" and (tmp_path / "explore.png").stat().st_size > 0


def test_a_run_past_its_timeout_is_killed():
    code, _, _ = _run_killable([sys.executable, "-c", "import time; time.sleep(30)"], 0.5)
    assert code is None
    code, out, _ = _run_killable([sys.executable, "-c", "print('ok')"], 30)
    assert (code, out.strip()) == (0, "ok")


def test_explore_after_a_flow_is_embedded_in_its_report(iris_model, tmp_path):
    flow = tmp_path / "flow"
    (flow / "1_train").mkdir(parents=True)
    (flow / "1_train" / "model.npz").write_bytes(iris_model.read_bytes())
    (flow / "report.html").write_text("<!doctype html><html><body><h1>bp-hw flow report</h1></body></html>")
    (flow / "report.json").write_text(json.dumps({"summary": {}}))
    for _ in range(2):      # a second exploration replaces the section
        s = explore(flow, None, formats=["Q4.12", "Q2.6"], parallels=["1"])
    assert s["plot"] == str(flow / "6_explore" / "explore.png")
    page = (flow / "report.html").read_text()
    assert page.count("<h2>Design-space exploration</h2>") == 1 and "data:image/png;base64," in page
    assert page.index("Design-space exploration") < page.index("</body>")
    assert json.loads((flow / "report.json").read_text())["explore"]["points"] == 2


def test_explore_cli_user_errors(iris_model, tmp_path, capsys, monkeypatch):
    assert main(["explore", str(iris_model), "--seeds", "1", "--out", str(tmp_path / "a")]) == 2
    assert main(["explore", str(iris_model), "--synth", "--seeds", "x", "--out", str(tmp_path / "a")]) == 2
    assert main(["explore", str(iris_model), "--formats", "Q4.12"]) == 2          # a model file needs --out
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all("error" in line for line in err)
    assert "only applies with --synth" in err[0] and "placement seed 'x'" in err[1] and "--out" in err[2]
    assert not (tmp_path / "a").exists()
    monkeypatch.setitem(sys.modules, "distributed", None)                         # the dist extra missing
    with pytest.raises(BpHwError, match=r'pip install -e "\.\[dist\]"'):
        make_engine("dask", True, 2, None)
    assert type(make_engine("auto", True, 2, None)).__name__ == "PoolEngine"


def test_progress_reports_done_failed_and_the_best_so_far(iris_model, tmp_path):
    states = []
    explore(iris_model, tmp_path, formats=["Q4.12", "Q2.6"], parallels=["1", "8,3"],
            progress=lambda s: states.append((s.total, s.done, s.failed, s.cached, s.best)))
    assert states[-1][:4] == (4, 4, 0, 0) and [s[1] for s in states] == sorted(s[1] for s in states)
    assert states[-1][4] and "P=1" in states[-1][4]          # P=8,3 does not fit: never the best
    states.clear()
    explore(iris_model, tmp_path, formats=["Q4.12"], parallels=["8,3"], synth="all", engine="serial",
            progress=lambda s: states.append((s.total, s.done, s.failed, s.cached, s.best)))
    assert states[-1] == (1, 1, 1, 0, None)


def test_a_synthesis_sweep_without_a_terminal_logs_a_line_per_run(iris_model, tmp_path, capsys):
    rc = main(["explore", str(iris_model), "--formats", "Q4.12", "--parallel", "8,3", "--synth", "--seeds",
               "default,1", "--engine", "serial", "--out", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert rc == 0 and (summary["runs"], summary["failed"]) == (2, 2)
    assert "explore synthesis: 2/2 done, 0 running, 2 failed, 0 cached" in captured.err
