"""The design-space plot: accuracy against LUTs, colour = throughput, the Pareto front joined."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fileio import atomic_path
from .points import Point

__all__ = ["plot"]


def plot(points: list[Point], float_acc: float, path: Path, device: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8.5, 5))
    live = [p for p in points if p.status == "ok" and p.fits]
    big = [p for p in points if p.status == "ok" and not p.fits]
    dead = [p for p in points if p.status != "ok"]
    if live:
        thr = np.array([p.inferences_per_s for p in live])
        sc = ax.scatter([p.luts for p in live], [p.accuracy for p in live], c=np.log10(thr), cmap="viridis",
                        s=[40 + 12 * p.multipliers for p in live], alpha=0.8, edgecolors="none")
        cb = fig.colorbar(sc, ax=ax)
        cb.set_label("log10 inferences/s" + (" (median Fmax)" if any(p.fmax_mhz for p in live) else ""))
    if big:
        ax.scatter([p.luts for p in big], [p.accuracy for p in big], facecolors="none", edgecolors="gray",
                   s=[40 + 12 * p.multipliers for p in big], label=f"does not fit ({len(big)})")
    if dead:
        ax.scatter([p.luts for p in dead], [p.accuracy for p in dead], marker="x", color="gray",
                   label=f"failed ({len(dead)})")
    front = sorted((p for p in points if p.pareto), key=lambda p: p.luts)
    ax.plot([p.luts for p in front], [p.accuracy for p in front], "r--", lw=1, label="Pareto front")
    boards = len({p.board for p in points}) > 1
    for p in front:
        ax.annotate(f"{p.format} P={p.parallel}" + (f" {p.board}" if boards else ""), (p.luts, p.accuracy),
                    fontsize=7, xytext=(4, -10), textcoords="offset points")
    ax.axhline(float_acc, color="gray", lw=1, label=f"float accuracy {float_acc:.3f}")
    ax.axhline(float_acc - 0.01, color="gray", lw=1, ls=":", label="float - 1 point")
    ax.set_xlabel(f"LUTs ({'synthesis' if any(p.source == 'synthesis' for p in points) else 'estimate'}, {device})")
    ax.set_ylabel("test accuracy (integer model)")
    ax.set_title("Design space: accuracy vs resources vs throughput (marker size = multipliers)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
