"""The sweep: designs x seeds -> cached runs on an engine -> points, Pareto front, explore.json and the plot."""

from __future__ import annotations

import csv
import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import BpHwError
from ..fileio import atomic_path, write_json
from ..fixed.folding import Folding
from ..plan.boards import Board, board as lookup_board
from ..plan.hardware import parse_parallel
from .cache import ResultCache, run_key, tool_versions
from .engine import make_engine, make_task, run_point
from .pareto import best_point, fold_runs, pareto_front
from .plot import plot
from .points import DEFAULT_FORMATS, Design, Point, load_source, qmodel_text, quantize_design

__all__ = ["Progress", "evaluate", "explore", "EXPLORE_FOLDER"]

#: Where ``bp-hw explore FLOW_DIR`` writes when no --out is given (next to the flow's numbered steps).
EXPLORE_FOLDER = "6_explore"


@dataclass
class Progress:
    """What the progress bar shows; handed to the ``progress`` callback after every result and tick."""

    total: int = 0
    done: int = 0          # finished runs, cached ones included
    cached: int = 0
    failed: int = 0
    running: int = 0
    best: str | None = None
    phase: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def computed(self) -> int:
        return self.done - self.cached


def evaluate(model, tr, te, fmt: str, parallel: str, lut_bits: int, board: Board) -> Point:
    """One estimate point in this process: quantize, score the integer model, plan the hardware and
    estimate it on ``board`` at the board's default clock."""
    quant = quantize_design(model, tr, te, fmt, lut_bits)
    task = _task("estimate", quant, parallel, board.name, None)
    return fold_runs(Design(fmt, lut_bits, parallel, board.name), quant, [run_point(task)], board.default_mhz)


def _digest(quant: dict) -> str:
    if "sha256" not in quant:
        quant["sha256"] = hashlib.sha256(qmodel_text(quant["qmodel"]).encode()).hexdigest()
    return quant["sha256"]


def _task(kind, quant, parallel, board, seed, timeout=None, keep_root=None):
    key = run_key(kind, _digest(quant), parallel, board, seed)
    keep = str(Path(keep_root) / key) if keep_root else None
    return make_task(kind, key, quant["qmodel"].to_dict(), parallel, board, seed, timeout, keep)


def _boards(board) -> list[str]:
    names = [board] if isinstance(board, str) else list(board)
    for name in names:
        lookup_board(name)
    if not names:
        raise BpHwError("explore needs at least one board")
    return names


def _run_all(tasks: list[dict], engine_spec: dict, cache: ResultCache, resume: bool, state: Progress,
             on_change: Callable, point_fn, results: dict[str, dict]) -> tuple[str, int] | None:
    """Put every task's result into ``results`` (by key): from the cache, else computed on the engine
    (and then cached at once, so an interrupted sweep keeps what it finished). Returns the engine's name
    and worker count, or None when nothing had to be computed."""
    todo = []
    for task in tasks:
        hit = cache.get(task["key"]) if resume else None
        if hit is not None:
            results[task["key"]] = {**hit, "cached": True}
            state.done += 1
            state.cached += 1
            on_change(task["key"])
        else:
            todo.append(task)
    on_change()
    if not todo:
        return None

    def on_result(task, result):
        result = {**result, "cached": False}
        cache.put({k: v for k, v in result.items() if k != "cached"})
        results[task["key"]] = result
        state.done += 1
        state.failed += result.get("status") != "ok"
        state.running = max(0, state.running - 1)     # until the engine's next tick counts again
        on_change(task["key"])

    def on_tick(running):
        state.running = running
        on_change()

    with make_engine(**engine_spec) as engine:
        engine.run(point_fn or run_point, todo, on_result, on_tick)
    state.running = 0
    return engine.name, engine.workers


def explore(source, out_dir=None, data=None, formats=None, parallels=None, lut_bits=(10,), board="icebreaker",
            synth=False, seeds=None, engine="auto", workers=None, scheduler=None, resume=True, cache_dir=None,
            timeout=None, keep_builds=False, progress=None, point_fn=None) -> dict:
    """Run the sweep; write ``explore.json``, ``explore.csv`` and ``explore.png`` to ``out_dir``.

    ``synth``: False (estimate only), ``"all"`` (or True: synthesize every design at every seed) or
    ``"front"`` (synthesize the estimate's Pareto front). ``seeds``: nextpnr placement seeds
    (None = its default seed). Results are cached by content hash in ``cache_dir`` (default
    ``out_dir/cache``); with ``resume`` only the missing runs are computed. ``point_fn`` replaces
    :func:`run_point` (tests inject a slow one). When ``source`` is a flow folder its report.html gets the
    exploration section.
    """
    if synth is True:
        synth = "all"
    if synth not in (False, None, "all", "front"):
        raise BpHwError(f"synth must be 'all' or 'front', not {synth!r}")
    boards = _boards(board)
    targets = {b: lookup_board(b) for b in boards}
    flow_dir = Path(source) if Path(source).is_dir() else None
    if out_dir is None:
        if flow_dir is None:
            raise BpHwError("explore of a model file needs --out (only a flow folder has a default, DIR/6_explore)")
        out_dir = flow_dir / EXPLORE_FOLDER
    model, tr, te = load_source(source, data)
    float_acc = float(np.mean(model.predict_classes(te.X) == te.y))
    formats = formats or DEFAULT_FORMATS
    if not parallels:
        parallels = ["1", ",".join(str(n) for n in model.layers[1:])]
    for p in parallels:   # a setting the network cannot take is a bad input, not a failed run
        try:
            for l, (n_in, n_out, lanes) in enumerate(zip(model.layers, model.layers[1:],
                                                          parse_parallel(p, len(model.layers) - 1))):
                Folding.of(n_in, n_out, lanes, l)
        except BpHwError as exc:
            raise BpHwError(f"--parallel {p}: {exc}") from None
    seeds = list(seeds) if seeds else [None]
    out = Path(out_dir)
    cache = ResultCache(cache_dir or out / "cache")
    keep_root = out / "builds" if keep_builds else None
    t0 = time.monotonic()

    quants = {(f, b): quantize_design(model, tr, te, f, b) for f in formats for b in lut_bits}
    designs = [Design(f, b, p, board_name) for f in formats for b in lut_bits for p in parallels
               for board_name in boards]
    state = Progress()
    engine_spec = {"engine": engine, "synth": bool(synth), "workers": workers, "scheduler": scheduler}
    runs_of: dict[Design, list[str]] = {}
    engine_used: dict[str, tuple[str, int]] = {}
    results: dict[str, dict] = {}

    design_of: dict[str, list[Design]] = {}   # two formats may quantize alike: one run, two designs
    now: dict[Design, Point] = {}

    def on_change(key=None):
        if key is not None:     # a result arrived: refold its design and the best point so far
            for d in design_of[key]:
                now[d] = _fold(d, quants, runs_of, results, targets)
            best = best_point(list(now.values()), float_acc)
            state.best = None if best is None else f"{best.format} P={best.parallel} {best.inferences_per_s:.3g} inf/s"
        if progress:
            progress(state)

    def sweep(kind, chosen, seed_list, phase):
        tasks = []
        for d in chosen:
            keys = []
            for s in seed_list:
                t = _task(kind, quants[(d.format, d.lut_bits)], d.parallel, d.board, s, timeout, keep_root)
                if t["key"] not in design_of:
                    tasks.append(t)
                keys.append(t["key"])
                design_of.setdefault(t["key"], []).append(d)
            runs_of[d] = keys
        state.total += len(tasks)
        state.phase = phase
        # estimates take milliseconds: "auto" runs them here, a named engine or scheduler is used as asked
        local = kind == "estimate" and engine == "auto" and not scheduler
        spec = {**engine_spec, "engine": "serial"} if local else engine_spec
        used = _run_all(tasks, spec, cache, resume, state, on_change, point_fn, results)
        if used:
            engine_used[kind] = used
        return tasks

    all_tasks = []
    if synth == "front":
        all_tasks += sweep("estimate", designs, [None], "estimate")
        est_points = {d: _fold(d, quants, runs_of, results, targets) for d in designs}
        front_ids = {id(p) for p in pareto_front(list(est_points.values()))}
        chosen = [d for d in designs if id(est_points[d]) in front_ids]
        all_tasks += sweep("synth", chosen, seeds, "synthesis")
    else:
        all_tasks += sweep("synth" if synth else "estimate", designs, seeds if synth else [None],
                           "synthesis" if synth else "estimate")

    points = [_fold(d, quants, runs_of, results, targets) for d in designs]
    front = pareto_front(points)
    out.mkdir(parents=True, exist_ok=True)
    reference = [p for p in points if p.format.upper() == "Q4.12"]
    good = [p for p in points if p.status == "ok" and p.accuracy >= float_acc - 0.01 - 1e-12]
    smaller = sorted((p for p in good if p.bits < 16), key=lambda p: (p.bits, p.luts))
    unique = list({t["key"]: t for t in all_tasks})
    run_list = [{**results[k], "designs": [asdict(d) for d in design_of[k]]} for k in unique]
    best = best_point(points, float_acc)
    used = engine_used.get("synth") or engine_used.get("estimate") or ("none (all cached)", 0)
    summary = {
        "source": str(source), "board": boards[0] if len(boards) == 1 else boards, "boards": boards,
        "device": targets[boards[0]].device, "float_accuracy": float_acc,
        "synth": synth or None, "seeds": seeds, "points": len(points), "runs": len(run_list),
        "computed": sum(not r["cached"] for r in run_list), "cached": sum(bool(r["cached"]) for r in run_list),
        "failed": sum(r.get("status") != "ok" for r in run_list),
        "engine": used[0], "workers": used[1],
        "scheduler": scheduler, "seconds": round(time.monotonic() - t0, 2), "tools": tool_versions(),
        "pareto": [asdict(p) for p in front], "best": asdict(best) if best else None,
        "smallest_within_1_point": asdict(smaller[0]) if smaller else None,
        "reference_q4_12": [asdict(p) for p in reference],
        "json": str(out / "explore.json"), "plot": str(out / "explore.png"), "table": str(out / "explore.csv"),
        "cache": str(cache.folder),
    }
    write_json(out / "explore.json", {"summary": summary, "all": [asdict(p) for p in points],
                                      "runs": [{k: v for k, v in r.items() if k != "qmodel"} for r in run_list]})
    with atomic_path(out / "explore.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(asdict(points[0])))
            writer.writeheader()
            for p in points:
                writer.writerow(asdict(p))
    plot(points, float_acc, out / "explore.png", ", ".join(targets[b].device for b in boards))
    if flow_dir is not None and (flow_dir / "report.html").is_file():
        from ..report import embed_explore
        summary["report"] = str(embed_explore(flow_dir, summary, out / "explore.png"))
    return summary


def _fold(d: Design, quants, runs_of, results, targets) -> Point:
    """The design's point from its runs that have a result (all of them once the sweep is done)."""
    return fold_runs(d, quants[(d.format, d.lut_bits)], [results[k] for k in runs_of[d] if k in results],
                     targets[d.board].default_mhz)
