"""A picture of the datapath a plan describes, as SVG text (no plotting library needed).

One column per layer: its MAC lanes (``P_out x P_in``), where its weights,
biases and lookup table live, and how it hands vectors on (registers or
block-RAM slots); the streams at both ends. Training plans add the backward
pass (deltas and updates) under the layers. ``bp-hw generate`` writes it as
``datapath.svg`` into the build folder; the report and docs/architecture.md show it.
"""

from __future__ import annotations

from html import escape

from .hardware import HardwarePlan

__all__ = ["datapath_svg"]

_W, _H, _GAP = 240, 150, 90          # layer box, gap between boxes
_FONT = 'font-family="Helvetica,Arial,sans-serif"'
_PLACE = {"block": "block RAM", "spram": "SPRAM, loaded at run time", "logic": "logic", "auto": "tools decide",
          "const": "constant"}


def _text(x, y, s, size=12, anchor="middle", weight="normal"):
    return (f'<text x="{x}" y="{y}" {_FONT} font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}">{escape(str(s))}</text>')


def _arrow(x1, y1, x2, y2, label="", dashed=False):
    dash = ' stroke-dasharray="5,4"' if dashed else ""
    out = f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#333" marker-end="url(#arrow)"{dash}/>'
    if label:
        out += _text((x1 + x2) / 2, min(y1, y2) - 6, label, 10)
    return out


def datapath_svg(plan: HardwarePlan, name: str | None = None) -> str:
    """The SVG picture of ``plan`` (``name``: the design's, for the title)."""
    n = len(plan.layers)
    left = 150
    width = left + n * (_W + _GAP) + 60
    train = plan.training is not None
    height = 250 + (110 if train else 0)
    top = 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">',
             '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
             '<path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker></defs>',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    sizes = "-".join(str(s) for s in plan.sizes)
    head = f"{plan.kind} datapath {sizes}, P = {','.join(map(str, plan.parallel))}"
    if name:
        head = f"{name}: {head}"
    parts.append(_text(width / 2, 22, head, 14, weight="bold"))
    parts.append(_text(width / 2, 40, f"interval {plan.interval} cycles, latency {plan.latency} cycles, "
                                      f"{plan.multipliers} multipliers", 11))
    mid = top + _H / 2
    q = plan.qmodel
    in_label = (f"x: {q.sizes[0]} x {q.input_fmt.name}" if not train else
                f"x, t, train ({plan.inp.payload_width} bits)")
    parts.append(_text(left - 75, mid - 8, "in stream", 11))
    parts.append(_text(left - 75, mid + 18, in_label, 10))
    parts.append(_arrow(left - 140, mid, left, mid))
    for k, x in enumerate(plan.layers):
        bx = left + k * (_W + _GAP)
        L, f = x.layer, x.fold
        parts.append(f'<rect x="{bx}" y="{top}" width="{_W}" height="{_H}" rx="8" fill="#eef4fb" stroke="#36c"/>')
        parts.append(_text(bx + _W / 2, top + 18, f"layer {k}: {L.fan_in} -> {L.fan_out}, {L.activation}", 12,
                           weight="bold"))
        mems = {m.kind: m for m in (plan.training.layers[k].memories if train else x.memories)}
        w = mems["weights"]
        lines = [f"{f.lanes_out} x {f.lanes_in} MAC lanes, {f.groups} groups x {f.chunks} chunks",
                 f"weights: {w.count} x {w.depth} x {w.width} b, {_PLACE[w.placement]}",
                 f"biases: {_PLACE[mems['biases'].placement]}",
                 f"acc {L.acc_width} b, rescale >> {L.rescale_shift} ({L.rounding})"]
        if x.lut is not None:
            lut = mems["lut"]
            lines.append(f"{x.lut.function} LUT: {lut.count} x {lut.depth} words")
        lines.append(f"{L.weight_fmt.name} weights, {L.out_fmt.name} out")
        for j, line in enumerate(lines):
            parts.append(_text(bx + _W / 2, top + 40 + 17 * j, line, 10))
        if k < n - 1:
            bram = x.output_slots == "bram" and not train
            parts.append(_arrow(bx + _W, mid, bx + _W + _GAP, mid))
            parts.append(_text(bx + _W + _GAP / 2, mid + 16, "slots in" if bram else "vector", 9))
            parts.append(_text(bx + _W + _GAP / 2, mid + 28, "block RAM" if bram else "registers", 9))
    end = left + n * (_W + _GAP) - _GAP
    parts.append(_arrow(end, mid, end + 50, mid))
    parts.append(_text(end + 30, mid + 18, f"y: {q.sizes[-1]} x", 10))
    parts.append(_text(end + 30, mid + 30, q.output_fmt.name, 10))
    if train:
        by = top + _H + 70
        for k, x in enumerate(plan.training.layers):
            bx = left + k * (_W + _GAP)
            parts.append(f'<rect x="{bx}" y="{by}" width="{_W}" height="70" rx="8" fill="#fbf1e6" stroke="#c63"/>')
            fm = x.formats
            parts.append(_text(bx + _W / 2, by + 18, f"delta {fm.delta_fmt.name}, error {fm.err_fmt.name}", 10))
            parts.append(_text(bx + _W / 2, by + 35, f"update w -= round(g a >> {fm.weight_update_shift})", 10))
            parts.append(_text(bx + _W / 2, by + 52, f"{x.multipliers} multipliers, same lanes as forward", 10))
            parts.append(_arrow(bx + _W / 2, by, bx + _W / 2, top + _H + 4, dashed=True))
            if k > 0:
                parts.append(_arrow(bx, by + 35, bx - _GAP, by + 35, "error", dashed=True))
        parts.append(_text(left - 75, by + 35, "backward", 11))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
