"""Design-space exploration: formats x parallelism x LUT size for one trained model.

Each point is quantized with :func:`~bp_hw.fixed.quantizer.quantize_model`;
its accuracy comes from the integer model on the model's own test split, its
cycles from the hardware plan (:func:`bp_hw.plan.make_plan`: the same numbers
the manifest states and the simulator measures), and its resources from the
fast estimate of the plan on the board's device (:mod:`bp_hw.synth_estimate`,
:mod:`bp_hw.plan.boards`), or, with ``synth=True``, from real synthesis of the
Pareto points, one process per core. No hardware is built for the estimate.

A point is on the Pareto front when no other point is at least as good in
accuracy, LUTs and throughput and better in one of them.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import BpHwError
from .fileio import atomic_path, write_json
from .plan.boards import Board, board as lookup_board

__all__ = ["DEFAULT_FORMATS", "Point", "quant_config_for", "load_source", "evaluate", "pareto_front",
           "synthesize_points", "plot", "explore", "format_table", "parse_list"]

DEFAULT_FORMATS = ["Q4.12", "Q3.9", "Q2.6", "auto:12", "auto:10", "auto:8", "auto:6"]


@dataclass
class Point:
    format: str
    parallel: str
    lut_bits: int
    bits: int
    accuracy: float
    train_accuracy: float
    interval_cycles: int
    latency_cycles: int
    multipliers: int
    luts: int
    ffs: int
    dsps: int
    brams: int
    fits: bool
    inferences_per_s: float
    clock_mhz: float
    source: str = "estimate"
    pareto: bool = False


def quant_config_for(fmt: str, lut_bits: int):
    """``Q4.12`` / ``fixed<8,3>`` or ``auto:N`` -> a QuantConfig."""
    from .fixed import QuantConfig
    if fmt.lower().startswith("auto"):
        _, _, n = fmt.partition(":")
        try:
            bits = int(n)
        except ValueError:
            raise BpHwError(f"explore format {fmt!r}: write auto:N with N the bit width, e.g. auto:8") from None
        return QuantConfig(format="auto", bit_budget=bits, lut_bits=lut_bits)
    return QuantConfig(format=fmt, lut_bits=lut_bits)


def load_source(source: str | Path, data: str | None):
    """A flow folder or a model file -> (float model, train split, test split)."""
    from .data import load_dataset, split_dataset
    from .modelfile import load_model
    path = Path(source)
    if path.is_dir():
        model_path = path / "1_train" / "model.npz"
        if not model_path.is_file():
            raise BpHwError(f"{path} is not a flow folder (no 1_train/model.npz)")
    else:
        model_path = path
    model = load_model(model_path)
    cfg = model.config or {}
    ds = load_dataset(data or cfg.get("data", "iris"))
    if ds.X.shape[1] != model.layers[0]:
        raise BpHwError(f"data has {ds.X.shape[1]} features, the model takes {model.layers[0]}")
    tr, te = split_dataset(ds, float(cfg.get("test_fraction", 0.3)), int(cfg.get("seed", 0)))
    return model, tr, te


def evaluate(model, tr, te, fmt: str, parallel: str, lut_bits: int, board: Board) -> Point:
    """One point: quantize, score the integer model, plan the hardware and estimate it on ``board``
    at the board's default clock."""
    from .fixed import quantize_model
    from .plan.hardware import make_plan
    from .synth_estimate import estimate_resources
    q, _ = quantize_model(model, quant_config_for(fmt, lut_bits), tr.X)
    acc = float(np.mean(q.predict_classes(te.X) == te.y))
    train_acc = float(np.mean(q.predict_classes(tr.X) == tr.y))
    plan = make_plan(q, parallel, device=board.fpga)
    est = estimate_resources(plan, board.fpga)
    cap = est["capacity"]
    fits = all(est[k] <= cap[k] for k in ("luts", "dsps", "brams"))
    clock = board.default_mhz
    bits = max(max(layer.weight_fmt.width, layer.out_fmt.width) for layer in q.layers)
    return Point(format=fmt, parallel=parallel, lut_bits=lut_bits, bits=bits, accuracy=acc,
                 train_accuracy=train_acc, interval_cycles=plan.interval, latency_cycles=plan.latency,
                 multipliers=plan.multipliers, luts=int(est["luts"]), ffs=int(est["ffs"]), dsps=int(est["dsps"]),
                 brams=int(est["brams"]), fits=fits, inferences_per_s=clock * 1e6 / plan.interval,
                 clock_mhz=clock)


def pareto_front(points: list[Point]) -> list[Point]:
    """Mark and return the non-dominated points (accuracy up, LUTs down, throughput up)."""
    def dominates(a: Point, b: Point) -> bool:
        no_worse = a.accuracy >= b.accuracy and a.luts <= b.luts and a.inferences_per_s >= b.inferences_per_s
        better = a.accuracy > b.accuracy or a.luts < b.luts or a.inferences_per_s > b.inferences_per_s
        return no_worse and better
    front = []
    for p in points:
        p.pareto = not any(dominates(o, p) for o in points if o is not p)
        if p.pareto:
            front.append(p)
    return sorted(front, key=lambda p: (p.luts, -p.accuracy))


def _synth_point(args):
    build_dir, board = args
    from .synth import synthesize
    try:
        return synthesize(build_dir, board, log=lambda *a, **k: None)
    except BpHwError as exc:
        return {"error": str(exc)}


def synthesize_points(points, model, tr, board: str, out: Path, progress=None) -> None:
    """Generate and synthesize ``points`` in parallel (one process per core); update them in place."""
    from .fixed import quantize_model
    from .hdl.emit import generate
    jobs = []
    for k, p in enumerate(points):
        q, _ = quantize_model(model, quant_config_for(p.format, p.lut_bits), tr.X)
        build = out / "builds" / f"point{k}"
        generate(q, p.parallel, build, name=f"point{k}", taps=False, images=False)
        jobs.append((str(build), board))
    with ProcessPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        for p, res in zip(points, pool.map(_synth_point, jobs)):
            if "error" in res:
                p.source = f"synthesis failed: {res['error']}"
                continue
            p.luts, p.ffs, p.dsps, p.brams = (int(res.get(k) or 0) for k in ("luts", "ffs", "dsps", "brams"))
            if res.get("fmax_mhz"):
                p.clock_mhz = float(res["fmax_mhz"])
                p.inferences_per_s = p.clock_mhz * 1e6 / p.interval_cycles
            p.source = "synthesis"
            if progress:
                progress()


def plot(points: list[Point], float_acc: float, path: Path, device: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8.5, 5))
    thr = np.array([p.inferences_per_s for p in points])
    sc = ax.scatter([p.luts for p in points], [p.accuracy for p in points], c=np.log10(thr), cmap="viridis",
                    s=[40 + 12 * p.multipliers for p in points], alpha=0.8, edgecolors="none")
    front = sorted((p for p in points if p.pareto), key=lambda p: p.luts)
    ax.plot([p.luts for p in front], [p.accuracy for p in front], "r--", lw=1, label="Pareto front")
    for p in front:
        ax.annotate(f"{p.format} P={p.parallel}", (p.luts, p.accuracy), fontsize=7, xytext=(4, -10),
                    textcoords="offset points")
    ax.axhline(float_acc, color="gray", lw=1, label=f"float accuracy {float_acc:.3f}")
    ax.axhline(float_acc - 0.01, color="gray", lw=1, ls=":", label="float - 1 point")
    cb = fig.colorbar(sc, ax=ax)
    cb.set_label("log10 inferences/s")
    ax.set_xlabel(f"LUTs ({'synthesis' if any(p.source == 'synthesis' for p in points) else 'estimate'}, {device})")
    ax.set_ylabel("test accuracy (integer model)")
    ax.set_title("Design space: accuracy vs resources vs throughput (marker size = multipliers)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def explore(source, out_dir, data=None, formats=None, parallels=None, lut_bits=(10,), board="icebreaker",
            synth=False, progress=None) -> dict:
    """Run the sweep; write ``explore.json``, ``explore.csv`` and ``explore.png`` to ``out_dir``."""
    target = lookup_board(board)
    device = target.device
    model, tr, te = load_source(source, data)
    float_acc = float(np.mean(model.predict_classes(te.X) == te.y))
    formats = formats or DEFAULT_FORMATS
    if not parallels:
        parallels = ["1", ",".join(str(n) for n in model.layers[1:])]
    points = []
    combos = [(f, p, b) for f in formats for p in parallels for b in lut_bits]
    for fmt, par, bits in combos:
        points.append(evaluate(model, tr, te, fmt, par, bits, target))
        if progress:
            progress()
    front = pareto_front(points)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if synth:
        synthesize_points(front, model, tr, board, out)
        front = pareto_front(points)
    reference = [p for p in points if p.format.upper() == "Q4.12"]
    ref_bits = 16
    good = [p for p in points if p.accuracy >= float_acc - 0.01 - 1e-12]
    smaller = sorted((p for p in good if p.bits < ref_bits), key=lambda p: (p.bits, p.luts))
    summary = {
        "source": str(source), "board": board, "device": device, "float_accuracy": float_acc,
        "points": len(points), "pareto": [asdict(p) for p in front],
        "smallest_within_1_point": asdict(smaller[0]) if smaller else None,
        "reference_q4_12": [asdict(p) for p in reference],
        "plot": str(out / "explore.png"), "table": str(out / "explore.csv"),
    }
    write_json(out / "explore.json", {"summary": summary, "all": [asdict(p) for p in points]})
    with atomic_path(out / "explore.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(asdict(points[0])))
            writer.writeheader()
            for p in points:
                writer.writerow(asdict(p))
    plot(points, float_acc, out / "explore.png", device)
    return summary


def format_table(points: list[dict]) -> str:
    head = f"{'format':<10} {'P':<8} {'lut':>4} {'bits':>4} {'acc':>6} {'LUTs':>6} {'DSP':>4} {'BRAM':>5} " \
           f"{'II':>6} {'inf/s':>10} {'fits':>5}"
    lines = [head]
    for p in points:
        lines.append(f"{p['format']:<10} {p['parallel']:<8} {p['lut_bits']:>4} {p['bits']:>4} {p['accuracy']:>6.3f} "
                     f"{p['luts']:>6} {p['dsps']:>4} {p['brams']:>5} {p['interval_cycles']:>6} "
                     f"{p['inferences_per_s']:>10.3g} {str(p['fits']):>5}")
    return "\n".join(lines)


def parse_list(text: str | None, sep: str = ",") -> list[str] | None:
    if not text:
        return None
    return [t.strip() for t in text.split(sep) if t.strip()]

