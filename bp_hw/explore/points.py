"""The points of a sweep: what a design is, its quantized model, and one design's result.

A *design* is (format, LUT bits, parallelism, board). A *run* is one design at
one placement seed: the unit of work the engine schedules and the cache keys
(:mod:`.cache`). A :class:`Point` is a design's result, its seeds folded into
median and range (:mod:`.pareto`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BpHwError

__all__ = ["DEFAULT_FORMATS", "Design", "Point", "quant_config_for", "load_source", "quantize_design",
           "qmodel_text", "format_table", "parse_list", "parse_seeds"]

DEFAULT_FORMATS = ["Q4.12", "Q3.9", "Q2.6", "auto:12", "auto:10", "auto:8", "auto:6"]


@dataclass(frozen=True)
class Design:
    format: str
    lut_bits: int
    parallel: str
    board: str

    @property
    def label(self) -> str:
        return f"{self.format} lut{self.lut_bits} P={self.parallel} {self.board}"


@dataclass
class Point:
    """One design's figures. With several placement seeds, LUTs/FFs/Fmax are medians over the seeds
    that succeeded and ``fmax_min_mhz``/``fmax_max_mhz`` their range."""

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
    board: str = "icebreaker"
    status: str = "ok"                    # "ok" | "failed" (every run of the design failed)
    reason: str | None = None
    seeds: list = field(default_factory=list)
    seeds_ok: int = 0
    fmax_mhz: float | None = None         # median over seeds (synthesis only)
    fmax_min_mhz: float | None = None
    fmax_max_mhz: float | None = None


def quant_config_for(fmt: str, lut_bits: int):
    """``Q4.12`` / ``fixed<8,3>`` or ``auto:N`` -> a QuantConfig."""
    from ..fixed import QuantConfig
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
    from ..data import load_dataset, split_dataset
    from ..modelfile import load_model
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


def quantize_design(model, tr, te, fmt: str, lut_bits: int) -> dict:
    """Quantize for one (format, LUT size): the quantized model and its accuracies (cheap; done on the client)."""
    from ..fixed import quantize_model
    q, _ = quantize_model(model, quant_config_for(fmt, lut_bits), tr.X)
    return {"qmodel": q, "accuracy": float(np.mean(q.predict_classes(te.X) == te.y)),
            "train_accuracy": float(np.mean(q.predict_classes(tr.X) == tr.y)),
            "bits": max(max(layer.weight_fmt.width, layer.out_fmt.width) for layer in q.layers)}


def qmodel_text(qmodel) -> str:
    """The exact text ``QModel.save`` writes (``qmodel.json``): its sha256 is the manifest's ``qmodel_sha256``."""
    return json.dumps(qmodel.to_dict(), indent=2, sort_keys=False) + "\n"


def format_table(points: list[dict]) -> str:
    head = f"{'format':<10} {'P':<8} {'board':<11} {'lut':>4} {'bits':>4} {'acc':>6} {'LUTs':>6} {'DSP':>4} " \
           f"{'BRAM':>5} {'II':>6} {'Fmax':>14} {'inf/s':>10} {'fits':>5}"
    lines = [head]
    for p in points:
        if p.get("fmax_mhz"):
            fmax = f"{p['fmax_mhz']:.1f}"
            if p.get("seeds_ok", 0) > 1:
                fmax += f" ({p['fmax_min_mhz']:.0f}-{p['fmax_max_mhz']:.0f})"
        else:
            fmax = "-"
        lines.append(f"{p['format']:<10} {p['parallel']:<8} {p.get('board', ''):<11} {p['lut_bits']:>4} "
                     f"{p['bits']:>4} {p['accuracy']:>6.3f} {p['luts']:>6} {p['dsps']:>4} {p['brams']:>5} "
                     f"{p['interval_cycles']:>6} {fmax:>14} {p['inferences_per_s']:>10.3g} {str(p['fits']):>5}")
    return "\n".join(lines)


def parse_list(text: str | None, sep: str = ",") -> list[str] | None:
    if not text:
        return None
    return [t.strip() for t in text.split(sep) if t.strip()]


def parse_seeds(text: str | None) -> list[int | None]:
    """``"default,1,2"`` -> ``[None, 1, 2]`` (``default``: nextpnr's own seed)."""
    seeds: list[int | None] = []
    for item in parse_list(text) or ["default"]:
        if item == "default":
            seeds.append(None)
            continue
        try:
            seeds.append(int(item))
        except ValueError:
            raise BpHwError(f"placement seed {item!r}: use integers or 'default', e.g. --seeds default,1,2") from None
    if len(set(seeds)) != len(seeds):
        raise BpHwError(f"placement seeds repeat in {text!r}")
    return seeds
