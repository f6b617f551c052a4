"""The quantization error figure: per-layer error distributions and the LUT against its function.

matplotlib (Agg) is imported when a figure is drawn, never at module import,
so that the rest of ``bp_hw.fixed`` stays numpy-only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fileio import atomic_path
from .lut import FUNCTIONS
from .qmodel import QModel


def _distinct_luts(qmodel: QModel) -> list[tuple[list[int], object]]:
    seen = []
    for l, layer in enumerate(qmodel.layers):
        if layer.lut is None:
            continue
        for layers, lut in seen:
            if lut.to_dict() == layer.lut.to_dict():
                layers.append(l)
                break
        else:
            seen.append(([l], layer.lut))
    return seen


def write_error_plot(path, qmodel: QModel, report: dict, title: str = "") -> None:
    """Write the figure of :func:`bp_hw.fixed.report.compare`'s ``report`` to ``path`` (png, svg, pdf)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    layers = report["layers"]
    luts = _distinct_luts(qmodel)
    n_cols = max(len(layers), 2)
    n_rows = 1 + len(luts)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.6 * n_cols, 3.6 * n_rows), squeeze=False,
                             constrained_layout=True)

    for ax in axes[0]:
        ax.set_visible(False)
    for lay, ax in zip(layers, axes[0]):
        ax.set_visible(True)
        err = np.asarray(lay["errors"]).ravel()
        top = max(float(err.max()) if err.size else 0.0, lay["error_bound"], 1e-12)
        bins = np.linspace(0.0, top * 1.02, 40)
        ax.hist(err, bins=bins, color="tab:blue", alpha=0.85, label=f"|fixed - float| ({err.size} values)")
        ax.axvline(lay["error_bound"], color="tab:red", ls="--", lw=1.5,
                   label=f"bound max {lay['error_bound']:.3g}")
        if lay.get("lut_max_error") is not None:
            ax.axvline(lay["lut_max_error"], color="tab:green", ls=":", lw=1.5,
                       label=f"LUT error {lay['lut_max_error']:.3g}")
        ax.set_yscale("log")
        ax.set_xlabel("absolute error" + (" (logits)" if "logits" in lay["compared_with"] else ""))
        ax.set_ylabel("count")
        l_idx = lay["layer"]
        q = qmodel.layers[l_idx]
        ax.set_title(f"layer {l_idx} ({lay['activation']}, out {q.out_fmt}): max {lay['max_abs_error']:.3g}, "
                     f"mean {lay['mean_abs_error']:.2g}", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(True, alpha=0.3)

    for row, (lut_layers, lut) in enumerate(luts, start=1):
        f = FUNCTIONS[lut.function]
        fmt = lut.in_fmt
        lo = max(fmt.min_int, -int(lut.in_range * 1.25 * 2 ** fmt.frac_bits))
        hi = min(fmt.max_int, int(lut.in_range * 1.25 * 2 ** fmt.frac_bits))
        z = np.arange(lo, hi + 1, max(1, (hi - lo) // 20000), dtype=np.int64)
        x = fmt.to_float(z)
        y, _ = lut.lookup(z)
        yr = lut.out_fmt.to_float(y)
        which = f"layers {', '.join(map(str, lut_layers))}: {lut.function}, {1 << lut.addr_bits} entries" \
                f"{' symmetric' if lut.symmetric else ''}{' interpolated' if lut.interpolate else ''}, " \
                f"[-{lut.in_range:g}, {lut.in_range:g}), {lut.in_fmt} -> {lut.out_fmt}"
        ax = axes[row][0]
        ax.plot(x, f(x), color="black", lw=1.0, label=f"true {lut.function}")
        ax.step(x, yr, where="post", color="tab:orange", lw=1.0, label="LUT output")
        ax.set_xlabel("z")
        ax.set_ylabel(lut.function)
        ax.set_title(which, fontsize=8)
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(True, alpha=0.3)
        # Zoom on the steepest part, where the staircase is visible at all.
        zoom = ax.inset_axes([0.56, 0.1, 0.41, 0.42])
        half = 6 * lut.bin_width
        sel = np.abs(x) <= half
        zoom.plot(x[sel], f(x[sel]), color="black", lw=0.8)
        zoom.step(x[sel], yr[sel], where="post", color="tab:orange", lw=1.0)
        zoom.set_title(f"zoom |z| <= {half:.3g} (6 bins)", fontsize=6)
        zoom.tick_params(labelsize=6)
        zoom.grid(True, alpha=0.3)
        ax2 = axes[row][1]
        e = yr - f(x)
        max_err = lut.max_abs_error()
        ax2.plot(x, e, color="tab:purple", lw=0.6, label="LUT - true")
        ax2.axhline(max_err, color="tab:red", ls="--", lw=1.0, label=f"max |error| {max_err:.3g}")
        ax2.axhline(-max_err, color="tab:red", ls="--", lw=1.0)
        ax2.axvspan(-lut.in_range, lut.in_range, color="tab:gray", alpha=0.08, label="table range")
        ax2.set_xlabel("z")
        ax2.set_ylabel("error")
        ax2.set_title(f"LUT error over every {fmt} input shown (output step {lut.out_fmt.step:.3g})", fontsize=8)
        ax2.legend(fontsize=7, loc="lower right", framealpha=0.95)
        ax2.grid(True, alpha=0.3)
        for ax3 in axes[row][2:]:
            ax3.set_visible(False)

    if title:
        fig.suptitle(title, fontsize=11)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=(path.suffix.lower().lstrip(".") or "png"), dpi=110)
    finally:
        plt.close(fig)
