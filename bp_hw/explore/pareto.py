"""From runs to designs (seeds folded into median and range) and the Pareto front over the designs."""

from __future__ import annotations

import statistics

from .points import Design, Point

__all__ = ["fold_runs", "pareto_front", "best_point"]


def fold_runs(design: Design, quant: dict, runs: list[dict], clock_mhz: float) -> Point:
    """One design's :class:`Point` from its runs (one per seed): medians over the runs that succeeded.

    Throughput is inferences/s at the median measured Fmax (synthesis), else at the board's clock.
    A design whose every run failed keeps the estimate's figures when it has them, with ``status: failed``.
    """
    ok = [r for r in runs if r.get("status") == "ok"]
    any_run = ok[0] if ok else next((r for r in runs if "interval_cycles" in r), None)
    seeds = [r.get("seed") for r in runs]
    synth = any(r.get("kind") == "synth" for r in runs)
    fields = dict(format=design.format, parallel=design.parallel, lut_bits=design.lut_bits, bits=quant["bits"],
                  accuracy=quant["accuracy"], train_accuracy=quant["train_accuracy"], board=design.board,
                  seeds=seeds, seeds_ok=len(ok))
    if any_run is None:
        return Point(**fields, interval_cycles=0, latency_cycles=0, multipliers=0, luts=0, ffs=0, dsps=0, brams=0,
                     fits=False, inferences_per_s=0.0, clock_mhz=clock_mhz, status="failed",
                     reason=runs[0].get("reason") if runs else "not run", source="synthesis" if synth else "estimate")
    shape = dict(interval_cycles=int(any_run["interval_cycles"]), latency_cycles=int(any_run["latency_cycles"]),
                 multipliers=int(any_run["multipliers"]))
    if not ok:
        est = any_run["estimate"]
        return Point(**fields, **shape, **{k: est[k] for k in ("luts", "ffs", "dsps", "brams")},
                     fits=bool(any_run.get("fits")), inferences_per_s=clock_mhz * 1e6 / shape["interval_cycles"],
                     clock_mhz=clock_mhz, status="failed", reason=runs[0].get("reason"),
                     source="synthesis" if synth else "estimate")
    res = {k: int(statistics.median_low([int(r.get(k) or 0) for r in ok])) for k in ("luts", "ffs", "dsps", "brams")}
    fmaxes = [float(r["fmax_mhz"]) for r in ok if r.get("fmax_mhz")]
    if fmaxes:
        fmax = float(statistics.median(fmaxes))
        clock = fmax
        extra = dict(fmax_mhz=round(fmax, 3), fmax_min_mhz=min(fmaxes), fmax_max_mhz=max(fmaxes))
    else:
        clock, extra = clock_mhz, {}
    fits = all(r.get("fits", True) for r in ok) if not synth else True
    reason = None
    if len(ok) < len(runs):
        bad = next(r for r in runs if r.get("status") != "ok")
        reason = f"{len(runs) - len(ok)} of {len(runs)} seeds failed: {bad.get('reason')}"
    return Point(**fields, **shape, **res, fits=fits, inferences_per_s=clock * 1e6 / shape["interval_cycles"],
                 clock_mhz=clock, source="synthesis" if synth else "estimate", reason=reason, **extra)


def pareto_front(points: list[Point]) -> list[Point]:
    """Mark and return the non-dominated points (accuracy up, LUTs down, throughput up). Failed points and
    points that do not fit are never on the front."""
    def dominates(a: Point, b: Point) -> bool:
        no_worse = a.accuracy >= b.accuracy and a.luts <= b.luts and a.inferences_per_s >= b.inferences_per_s
        better = a.accuracy > b.accuracy or a.luts < b.luts or a.inferences_per_s > b.inferences_per_s
        return no_worse and better
    live = [p for p in points if p.status == "ok" and p.fits]
    live_ids = {id(p) for p in live}
    front = []
    for p in points:
        p.pareto = id(p) in live_ids and not any(dominates(o, p) for o in live if o is not p)
        if p.pareto:
            front.append(p)
    return sorted(front, key=lambda p: (p.luts, -p.accuracy))


def best_point(points: list[Point], float_acc: float) -> Point | None:
    """The best point so far: the fastest design that fits and is within 1 point of float (fewer LUTs on a tie)."""
    good = [p for p in points if p.status == "ok" and p.fits and p.accuracy >= float_acc - 0.01 - 1e-12]
    return max(good, key=lambda p: (p.inferences_per_s, -p.luts), default=None)
