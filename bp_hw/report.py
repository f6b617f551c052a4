"""The flow's report: ``report.json`` and a self-contained ``report.html`` (images embedded)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from .fileio import write_json, write_text
from .plan.manifest import MANIFEST_NAME, read_manifest

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1050px;color:#222;
line-height:1.45;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:2px solid #e3e6ea;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.6rem 0 1rem} th,td{border:1px solid #d5d9de;padding:.3rem .6rem;text-align:right}
th{background:#f3f5f7} td:first-child,th:first-child{text-align:left}
.ok{color:#fff;background:#2e7d32;border-radius:4px;padding:.1rem .5rem}
.bad{color:#fff;background:#c62828;border-radius:4px;padding:.1rem .5rem}
.skip{color:#fff;background:#757575;border-radius:4px;padding:.1rem .5rem}
img{max-width:100%;border:1px solid #e3e6ea;margin:.4rem 0} code{background:#f3f5f7;padding:0 .25rem}
.muted{color:#666}
"""


def _img(path: Path, alt: str) -> str:
    if not path.is_file():
        return f'<p class="muted">({alt}: no image)</p>'
    mime = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}.get(path.suffix, "image/png")
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{data}">'


class _Raw(str):
    """A table cell that is already HTML (not escaped)."""


def _table(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else html.escape(_fmt(c))}</td>" for c in row)
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _badge(status: str) -> _Raw:
    cls = {"ok": "ok", "failed": "bad"}.get(status, "skip")
    return _Raw(f'<span class="{cls}">{html.escape(status)}</span>')


def _learning_curve(summary: dict, out: Path) -> Path | None:
    """Plot the on-chip learning curve from a training simulation's per-epoch history."""
    hist = summary.get("history") or {}
    acc = hist.get("accuracy") or hist.get("train_accuracy")
    if not acc:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.2))
    epochs = range(1, len(acc) + 1)
    ax.plot(epochs, acc, label="hardware accuracy (train)")
    if hist.get("test_accuracy"):
        ax.plot(epochs, hist["test_accuracy"], label="hardware accuracy (test)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("On-chip learning (simulated hardware, bit-exact with the fixed-point trainer)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_report(flow) -> dict:
    """Write ``report.json`` and ``report.html`` for a :class:`~bp_hw.flow.Flow` that has run."""
    out = flow.out
    by = {r.step: r for r in flow.results}
    report = {"summary": flow.summary(), "config": flow.config.tables,
              "steps": {r.step: {"status": r.status, "seconds": round(r.seconds, 3), "summary": r.summary,
                                 "reason": r.reason} for r in flow.results}}
    manifest = None
    if (flow.build_dir / MANIFEST_NAME).is_file():
        manifest = read_manifest(flow.build_dir)
        report["manifest"] = manifest.to_json()
    write_json(out / "report.json", report)

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>bp-hw flow report</title>"
             f"<style>{_CSS}</style></head><body>",
             "<h1>bp-hw flow report</h1>",
             f"<p class='muted'>Output folder <code>{html.escape(str(out))}</code>; re-run with "
             f"<code>bp-hw flow {html.escape(str(out / 'config.toml'))} --out DIR</code></p>"]
    parts.append(_table(["step", "status", "seconds", "note"],
                        [[r.step, _badge(r.status), round(r.seconds, 1), r.reason or ""] for r in flow.results]))

    tr = by.get("train")
    if tr and tr.summary:
        s = tr.summary
        parts.append("<h2>Training (float reference)</h2>")
        parts.append(_table(["data", "layers", "optimizer", "epochs", "train accuracy", "test accuracy", "final loss"],
                            [[s.get("data"), s.get("layers"), s.get("optimizer"), s.get("epochs"),
                              s.get("train_accuracy"), s.get("test_accuracy"), s.get("final_loss")]]))
        poor = flow.no_better_than_chance
        if poor:
            parts.append(f'<p><span class="bad">no better than chance</span> The float model\'s test accuracy '
                         f'{_fmt(poor["accuracy"])} is no better than guessing ({_fmt(poor["chance"])}): '
                         f'the steps below check the hardware against a model that has not learnt the task. '
                         f'Change the <code>[train]</code> options (epochs, lr, activation).</p>')
        parts.append(_img(flow.folder("train") / "loss.png", "training loss curve"))

    q = by.get("quantize")
    if q and q.summary:
        s = q.summary
        acc = s.get("accuracy", {})
        parts.append("<h2>Quantization: float vs fixed</h2>")
        rows = []
        for split in ("train", "test"):
            rows.append([split, acc.get("float", {}).get(split), acc.get("fixed", {}).get(split),
                         acc.get("decision_agreement", {}).get(split)])
        parts.append(_table(["split", "float accuracy", "fixed accuracy", "same decision"], rows))
        layer_rows = [[lay.get("layer"), lay.get("activation"), lay.get("max_abs_error"), lay.get("mean_abs_error"),
                       lay.get("lut_max_error"), lay.get("error_bound"), lay.get("within_bound"),
                       lay.get("z_saturations")] for lay in s.get("layers", [])]
        parts.append(_table(["layer", "activation", "max |error|", "mean |error|", "LUT max error", "bound",
                             "within bound", "z saturations"], layer_rows))
        sat = s.get("saturations", {})
        parts.append(f"<p>Saturations: weights {sat.get('weights')}, biases {sat.get('biases')}, inputs "
                     f"{sat.get('inputs')}, z {_fmt(sat.get('z'))}.</p>")
        parts.append(_img(flow.folder("quantize") / "error.png", "per-layer error and LUT error"))

    if manifest:
        parts.append("<h2>Architecture</h2>")
        m = manifest
        parts.append(f"<p>Module <code>{html.escape(m.name)}</code> ({m.kind}), sizes {_fmt(m.sizes)}, "
                     f"latency <b>{m.latency_cycles}</b> cycles, initiation interval "
                     f"<b>{m.interval_cycles}</b> cycles (ideal {m.ideal_interval_cycles}), "
                     f"{m.multipliers} multipliers.</p>")
        rows = [[lay.index, f"{lay.fan_in}→{lay.fan_out}", lay.activation, lay.parallel, lay.weight_format,
                 lay.out_format, lay.acc_width, lay.cycles_per_sample, lay.latency_cycles] for lay in m.layers]
        parts.append(_table(["layer", "shape", "activation", "P", "weights", "activations", "acc bits",
                             "cycles/sample", "latency"], rows))
        parts.append(_table(["memory", "count", "depth", "width", "placement"],
                            [[x.name, x.count, x.depth, x.width, x.placement] for x in m.memories]))
        parts.append(_img(flow.build_dir / "datapath.svg", "the planned datapath"))

    s_res = by.get("simulate")
    if s_res:
        parts.append("<h2>Co-simulation: hardware vs integer model</h2>")
        if s_res.summary:
            s = s_res.summary
            mism = s.get("mismatches", s.get("output_mismatches"))
            exact = mism == 0 and s_res.status == "ok"
            label = "bit-exact" if exact else "MISMATCH"
            parts.append(f'<p>Verdict: <span class="{"ok" if exact else "bad"}">{label}</span> '
                         f'({_fmt(mism)} mismatches)</p>')
            # verified_per_second is None for runs too short for it to be more than the start-up.
            keys = [k for k in ("simulator", "vectors", "samples", "mismatches", "output_mismatches",
                                "weight_mismatches", "accuracy", "cycles_per_inference", "cycles_per_sample",
                                "verified_per_second", "sim_cycles_per_second", "cycles_per_second",
                                "startup_seconds", "build_seconds") if s.get(k) is not None]
            parts.append(_table(keys, [[s.get(k) for k in keys]]))
            curve = _learning_curve(s, flow.folder("simulate") / "learning.png")
            if curve:
                parts.append(_img(curve, "on-chip learning curve"))
        else:
            parts.append(f"<p>{_badge(s_res.status)} {html.escape(s_res.reason or '')}</p>")

    y = by.get("synth")
    if y:
        parts.append("<h2>Synthesis</h2>")
        if y.summary:
            s = y.summary
            interval = manifest.interval_cycles if manifest else None
            per_s = (s.get("fmax_mhz") * 1e6 / interval) if (s.get("fmax_mhz") and interval) else None
            parts.append(_table(["board", "device", "LUTs/LCs", "FFs", "DSPs", "BRAMs", "SPRAMs", "Fmax MHz",
                                 "clock MHz", "timing met", "inferences/s at Fmax"],
                                [[s.get("board"), s.get("device"), s.get("luts"), s.get("ffs"), s.get("dsps"),
                                  s.get("brams"), s.get("sprams"), s.get("fmax_mhz"), s.get("clock_mhz"),
                                  s.get("timing_met"), per_s]]))
            if s.get("bitstream"):
                parts.append(f"<p>Bitstream: <code>{html.escape(str(s['bitstream']))}</code></p>")
        else:
            parts.append(f"<p>{_badge(y.status)} {html.escape(y.reason or '')}</p>")

    parts.append("</body></html>")
    write_text(out / "report.html", "\n".join(parts))
    return report


_EXPLORE_BEGIN, _EXPLORE_END = "<!-- bp-hw explore -->", "<!-- /bp-hw explore -->"


def explore_section(summary: dict, plot_path: Path) -> str:
    """The design-space exploration section of the report: the Pareto front and the plot."""
    seeds = summary.get("seeds") or [None]
    synth = summary.get("synth")
    parts = [_EXPLORE_BEGIN, "<h2>Design-space exploration</h2>",
             f"<p>{summary['points']} designs, {summary['runs']} runs ({summary['computed']} computed, "
             f"{summary['cached']} cached, {summary['failed']} failed) on {html.escape(str(summary['engine']))} "
             f"with {summary['workers']} worker(s); resources from "
             f"{'synthesis (' + html.escape(synth) + ')' if synth else 'the fast estimate'}"
             + (f", Fmax the median over the placement seeds {html.escape(_fmt(seeds))}" if synth else "")
             + f". Float accuracy {_fmt(summary['float_accuracy'])}. Command: <code>bp-hw explore</code>, "
             f"all points in <code>{html.escape(str(summary['json']))}</code>.</p>"]
    rows = [[p["format"], p["parallel"], p["board"], p["lut_bits"], p["bits"], p["accuracy"], p["luts"], p["dsps"],
             p["brams"], p["interval_cycles"],
             None if p.get("fmax_mhz") is None else (f"{p['fmax_mhz']:.1f}" + (
                 f" ({p['fmax_min_mhz']:.1f} to {p['fmax_max_mhz']:.1f})" if p.get("seeds_ok", 0) > 1 else "")),
             p["inferences_per_s"]] for p in summary["pareto"]]
    parts.append(_table(["format", "P", "board", "LUT bits", "bits", "accuracy", "LUTs", "DSPs", "BRAMs", "II",
                         "Fmax MHz (range)", "inferences/s"], rows))
    parts.append(_img(Path(plot_path), "design space: accuracy vs resources vs throughput"))
    parts.append(_EXPLORE_END)
    return "\n".join(parts)


def embed_explore(flow_dir: str | Path, summary: dict, plot_path: Path) -> Path:
    """Put (or replace) the exploration section in a flow's ``report.html`` and its summary in ``report.json``."""
    import json
    flow_dir = Path(flow_dir)
    page = (flow_dir / "report.html").read_text()
    section = explore_section(summary, plot_path)
    if _EXPLORE_BEGIN in page and _EXPLORE_END in page:
        head, rest = page.split(_EXPLORE_BEGIN, 1)
        page = head + section + rest.split(_EXPLORE_END, 1)[1]
    else:
        head, sep, tail = page.rpartition("</body>")
        page = (head + section + "\n" + sep + tail) if sep else page + section
    write_text(flow_dir / "report.html", page)
    if (flow_dir / "report.json").is_file():
        report = json.loads((flow_dir / "report.json").read_text())
        report["explore"] = {k: v for k, v in summary.items() if k not in ("reference_q4_12",)}
        write_json(flow_dir / "report.json", report)
    return flow_dir / "report.html"
