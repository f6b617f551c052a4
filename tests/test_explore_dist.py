"""bp-hw explore on Dask distributed: a 2-worker LocalCluster gives the serial sweep's results, and a
worker killed in the middle of a sweep does not lose a point (Dask reschedules its run)."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed", reason="the dist extra (pip install -e \".[dist]\") is not installed")
cloudpickle = pytest.importorskip("cloudpickle", reason="comes with distributed")

from bp_hw.cli import main  # noqa: E402
from bp_hw.explore import explore, run_point  # noqa: E402

# The slow point function below lives in this test module, which the workers cannot import: ship it by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

FORMATS = ["Q4.12", "Q3.9", "Q2.6", "auto:6"]
FIGURES = ("status", "luts", "ffs", "dsps", "brams", "interval_cycles", "latency_cycles", "fits")


def slow_point(task, marks: str, delay: float):
    """The estimate run, made slow enough to be caught mid-run; leaves a mark of where it started."""
    Path(marks, f"{task['key']}.{os.getpid()}").touch()
    time.sleep(delay)
    return run_point(task)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as c:
        yield c


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("explore_dist") / "model.npz"
    assert main(["train", "--data", "iris", "--epochs", "30", "--out", str(path)]) == 0
    return path


def _figures(out: Path) -> dict:
    return {r["key"]: {k: r.get(k) for k in FIGURES} for r in json.loads((out / "explore.json").read_text())["runs"]}


def test_a_sweep_on_a_two_worker_cluster_matches_the_serial_one(iris_model, cluster, tmp_path, capsys):
    serial = explore(iris_model, tmp_path / "s", formats=FORMATS, parallels=["1", "8,3"], engine="serial")
    rc = main(["explore", str(iris_model), "--formats", ",".join(FORMATS), "--parallel", "1;8,3",
               "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "d"), "--json"])
    dist = json.loads(capsys.readouterr().out)
    assert rc == 0 and (dist["engine"], dist["workers"], dist["computed"]) == ("dask", 2, 8)
    workers = {r["worker"] for r in json.loads((tmp_path / "d" / "explore.json").read_text())["runs"]}
    assert len(workers) == 2                             # both workers took runs
    assert _figures(tmp_path / "d") == _figures(tmp_path / "s")
    assert dist["pareto"] == serial["pareto"]
    again = explore(iris_model, tmp_path / "d", formats=FORMATS, parallels=["1", "8,3"],
                    scheduler=cluster.scheduler_address)
    assert (again["computed"], again["cached"]) == (0, 8)


def test_a_worker_killed_mid_sweep_loses_no_point(iris_model, cluster, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    with distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    killed = []

    def progress(state):
        if state.done < 2 or killed:
            return
        finished = {p.stem for p in (tmp_path / "x" / "cache").glob("*.json")}
        if any(p.name.endswith(f".{victim}") and p.name.split(".")[0] not in finished for p in marks.iterdir()):
            os.kill(victim, signal.SIGKILL)               # the victim is in the middle of a run
            killed.append(victim)

    s = explore(iris_model, tmp_path / "x", formats=FORMATS, parallels=["1", "8,3"], engine="dask",
                scheduler=cluster.scheduler_address, progress=progress,
                point_fn=functools.partial(slow_point, marks=str(marks), delay=0.8))
    assert killed, "the sweep ended before a worker could be killed"
    assert (s["runs"], s["computed"], s["failed"]) == (8, 8, 0)
    runs = json.loads((tmp_path / "x" / "explore.json").read_text())["runs"]
    finished_on = {r["key"]: int(r["worker"].rsplit(":", 1)[1]) for r in runs}
    rescheduled = [k for k in finished_on if Path(marks, f"{k}.{victim}").exists() and finished_on[k] != victim]
    assert rescheduled, "no run that the killed worker had started was finished elsewhere"
    assert _figures(tmp_path / "x") == _figures_of_serial(iris_model, tmp_path)


def _figures_of_serial(model, tmp_path):
    explore(model, tmp_path / "ref", formats=FORMATS, parallels=["1", "8,3"], engine="serial")
    return _figures(tmp_path / "ref")
