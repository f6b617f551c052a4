"""Running the runs of a sweep: the point function and the engines that schedule it.

:func:`run_point` computes one run from a task (a plain dict: the quantized
model, P, board, seed, kind) and returns its result dict. It never raises for
a failure a sweep must survive (a tool error, a design that does not fit, a
timeout): the result then has ``status: "failed"`` and a ``reason``.

Engines, all with the same ``run(fn, tasks, on_result, on_tick)``:

* :class:`SerialEngine` - in this process, one after the other;
* :class:`PoolEngine` - a local process pool (what runs without the ``dist`` extra);
* :class:`DaskEngine` - Dask distributed: a ``LocalCluster`` of ``workers``
  processes, or the scheduler at ``address``. A worker that dies mid-run has its
  tasks rescheduled by Dask on the others.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait as wait_futures
from pathlib import Path
from typing import Callable

from ..errors import BpHwError

__all__ = ["run_point", "make_task", "SerialEngine", "PoolEngine", "DaskEngine", "make_engine", "DIST_HINT"]

DIST_HINT = 'Dask is not installed; pip install -e ".[dist]"'


def make_task(kind: str, key: str, qmodel_dict: dict, parallel: str, board: str, seed: int | None,
              timeout: float | None = None, keep_dir: str | None = None) -> dict:
    from .cache import code_digest
    return {"kind": kind, "key": key, "qmodel": qmodel_dict, "parallel": parallel, "board": board, "seed": seed,
            "timeout": timeout, "keep_dir": keep_dir, "code": code_digest(kind)}


def _where() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_point(task: dict) -> dict:
    """One run. ``estimate``: the plan and the fast estimate (milliseconds, no Amaranth). ``synth``:
    generate the design and run ``bp-hw synth`` on it in a child process (killed at ``timeout``)."""
    from ..fixed.qmodel import QModel
    from ..plan.boards import board as lookup_board
    from ..plan.hardware import make_plan
    from ..synth_estimate import estimate_resources, fit_problems
    from .cache import code_digest

    start = time.monotonic()
    base = {"key": task["key"], "kind": task["kind"], "parallel": task["parallel"], "board": task["board"],
            "seed": task["seed"], "worker": _where()}

    def failed(reason: str, **extra) -> dict:
        return {**base, **extra, "status": "failed", "reason": reason,
                "seconds": round(time.monotonic() - start, 2)}

    if code_digest(task["kind"]) != task["code"]:
        return failed("the worker runs other bp-hw code than the client; install the same bp-hw on every worker")
    try:
        target = lookup_board(task["board"])
        q = QModel.from_dict(task["qmodel"])
        plan = make_plan(q, task["parallel"], device=target.fpga)
        est = estimate_resources(plan, target.fpga)
    except BpHwError as exc:
        return failed(str(exc))
    cap = est["capacity"]
    estimate = {k: int(est[k]) for k in ("luts", "ffs", "dsps", "brams")}
    shape = {"interval_cycles": plan.interval, "latency_cycles": plan.latency, "multipliers": plan.multipliers,
             "estimate": estimate, "fits": all(est[k] <= cap[k] for k in ("luts", "dsps", "brams"))}
    if task["kind"] == "estimate":
        return {**base, **shape, **estimate, "status": "ok", "reason": None, "fmax_mhz": None,
                "seconds": round(time.monotonic() - start, 2)}

    problems = fit_problems(est)
    if problems:
        return failed(f"does not fit {target.device} (estimate): " + "; ".join(problems), **shape)
    keep = task.get("keep_dir")
    tmp = None if keep else tempfile.TemporaryDirectory(prefix="bp_hw_explore_")
    build = Path(keep) if keep else Path(tmp.name) / "build"
    try:
        from ..hdl.emit import generate
        try:
            generate(q, task["parallel"], build, name="explore_point", taps=False, images=False,
                     device=task["board"])
        except BpHwError as exc:
            return failed(f"generate: {exc}", **shape)
        timeout = task.get("timeout")
        left = None if timeout is None else max(1.0, timeout - (time.monotonic() - start))
        argv = [sys.executable, "-m", "bp_hw.cli", "synth", str(build), "--board", task["board"], "--json"]
        if task["seed"] is not None:
            argv += ["--seed", str(task["seed"])]
        code, out, err = _run_killable(argv, left)
        if code is None:
            return failed(f"timeout after {timeout:g} s", **shape)
        summary = _last_json(out)
        if summary is None:      # exit 1 with a summary is a missed clock target, still a measurement
            last = [ln for ln in err.splitlines() if ln.strip()]
            return failed(last[-1][:300] if last else f"bp-hw synth exit status {code}", **shape)
        return {**base, **shape, "status": "ok", "reason": None,
                **{k: summary.get(k) for k in ("luts", "ffs", "dsps", "brams", "sprams", "fmax_mhz",
                                                "clock_mhz", "timing_met")},
                "tool_seconds": summary.get("seconds"), "seconds": round(time.monotonic() - start, 2),
                "build": str(build) if keep else None}
    finally:
        if tmp is not None:
            tmp.cleanup()


def _run_killable(argv, timeout):
    """Run ``argv`` in its own process group; on timeout kill the whole group (the YoWASP tools are
    children of ``bp-hw synth``). Returns (exit status or None on timeout, stdout, stderr)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, "", ""
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return proc.returncode, out, err


def _last_json(text: str):
    import json
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return None
    try:
        obj = json.loads(lines[-1])
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _crashed(task: dict, exc: BaseException) -> dict:
    """The result of a run whose function raised something unexpected (a bug, a lost worker): recorded."""
    return {"key": task["key"], "kind": task["kind"], "parallel": task["parallel"], "board": task["board"],
            "seed": task["seed"], "status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:300]}


OnResult = Callable[[dict, dict], None]
OnTick = Callable[[int], None]


class SerialEngine:
    name = "serial"
    workers = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, fn, tasks: list[dict], on_result: OnResult, on_tick: OnTick) -> None:
        for task in tasks:
            on_tick(1)
            try:
                result = fn(task)
            except Exception as exc:  # recorded, as the other engines do: one bad run never stops a sweep
                result = _crashed(task, exc)
            on_result(task, result)


class PoolEngine:
    """A local process pool: each run in a worker process, ``workers`` at a time."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool = None

    def __enter__(self):
        self._pool = ProcessPoolExecutor(max_workers=self.workers)
        return self

    def __exit__(self, *exc):
        self._pool.shutdown(cancel_futures=True)
        return False

    def run(self, fn, tasks, on_result, on_tick) -> None:
        pending = {self._pool.submit(fn, t): t for t in tasks}
        while pending:
            done, _ = wait_futures(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for fut in done:
                task = pending.pop(fut)
                exc = fut.exception()
                on_result(task, _crashed(task, exc) if exc is not None else fut.result())
            on_tick(min(self.workers, sum(1 for f in pending if f.running())))


class DaskEngine:
    """Dask distributed: the scheduler at ``address``, or a LocalCluster of ``workers`` processes with one
    thread each (a run is one CPU-bound process tree)."""

    name = "dask"

    def __init__(self, workers: int | None = None, address: str | None = None):
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise BpHwError(DIST_HINT) from None
        self.address = address
        self.workers = workers
        self._cluster = None
        self.client = None

    def __enter__(self):
        from distributed import Client, LocalCluster
        if self.address:
            try:
                self.client = Client(self.address, timeout="20s")
            except OSError as exc:
                raise BpHwError(f"cannot reach the Dask scheduler at {self.address}: {exc}") from None
        else:
            n = max(1, self.workers or os.cpu_count() or 1)
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=40)
            self.client = Client(self._cluster)
        self.workers = len(self.client.scheduler_info()["workers"]) or self.workers
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
        return False

    def run(self, fn, tasks, on_result, on_tick) -> None:
        from distributed import wait
        # pure=False: identical inputs are deduplicated by our own keys, and a failed run may be retried.
        futures = {self.client.submit(fn, t, key=f"bp-hw-run-{t['key']}", pure=False): t for t in tasks}
        pending = set(futures)
        try:
            while pending:
                try:
                    done = wait(pending, timeout=1.0, return_when="FIRST_COMPLETED").done
                except TimeoutError:
                    done = set()
                for fut in done:
                    pending.discard(fut)
                    task = futures[fut]
                    if fut.status == "finished":
                        on_result(task, fut.result())
                    elif fut.status == "cancelled":
                        on_result(task, _crashed(task, RuntimeError("cancelled by the scheduler")))
                    else:   # an exception in the run, or KilledWorker after too many lost workers
                        on_result(task, _crashed(task, fut.exception()))
                keys = {f.key for f in pending}
                on_tick(sum(1 for ks in self.client.processing().values() for k in ks if k in keys))
        finally:
            for fut in pending:
                fut.cancel()


def make_engine(engine: str, synth: bool, workers: int | None, scheduler: str | None):
    """``auto``: Dask when a scheduler is named or synthesis runs and Dask is installed, else a local pool
    for synthesis and this process for estimates (a cluster start-up costs more than they do)."""
    if scheduler and engine not in ("auto", "dask"):
        raise BpHwError(f"--scheduler needs the dask engine, not --engine {engine}")
    if engine == "auto":
        if scheduler:
            engine = "dask"
        elif not synth:
            engine = "serial"
        else:
            try:
                import distributed  # noqa: F401
                engine = "dask"
            except ImportError:
                engine = "local"
    if engine == "serial":
        return SerialEngine()
    if engine == "local":
        return PoolEngine(workers)
    if engine == "dask":
        return DaskEngine(workers, scheduler)
    raise BpHwError(f"unknown engine {engine!r}; use auto, serial, local or dask")
