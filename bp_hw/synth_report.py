"""Reading what yosys and nextpnr report: utilisation per cell type and Fmax.

nextpnr's ``--report FILE.json`` (nextpnr 0.6+) holds::

    {"utilization": {"<bel type>": {"used": N, "available": M}, ...},
     "fmax": {"<clock net>": {"achieved": MHz, "constraint": MHz}, ...},
     "critical_paths": [{"from": "posedge clk", "to": ..., "path": [
         {"type": "clk-to-q" | "routing" | "logic" | "setup", "delay": ns,
          "from": {"cell", "port", "loc"}, "to": {...}, "net": ...}, ...]}, ...]}

The bel types the summary needs are the family's ``cells``
(:data:`bp_hw.boards.families.FAMILIES`): iCE40 ``ICESTORM_LC``,
``ICESTORM_DSP``, ``ICESTORM_RAM`` (+ ``ICESTORM_SPRAM``); ECP5
``TRELLIS_COMB``, ``TRELLIS_FF``, ``MULT18X18D``, ``DP16KD``. Flip-flops:
iCE40 logic cells pair a LUT and a FF and nextpnr does not count the FFs, so
they come from yosys' ``stat -json`` (the family's ``ff_prefix``, ``SB_DFF*``).
"""

from __future__ import annotations

import json
from pathlib import Path

from .boards.families import family as lookup_family
from .errors import BpHwError

__all__ = ["parse_nextpnr_report", "parse_yosys_stat", "critical_path_summary"]


def _load(path: Path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BpHwError(f"{what} {path} was not written; see the synthesis log next to it") from None
    except json.JSONDecodeError as exc:
        raise BpHwError(f"{what} {path} is not valid JSON ({exc})") from None


def parse_yosys_stat(path: str | Path) -> dict:
    """Cell counts by type of the synthesized top (``tee -o FILE stat -json``)."""
    stat = _load(path, "yosys statistics")
    design = stat.get("design") or {}
    cells = design.get("num_cells_by_type")
    if cells is None:  # older yosys: per-module only
        cells = {}
        for mod in stat.get("modules", {}).values():
            for name, n in mod.get("num_cells_by_type", {}).items():
                cells[name] = cells.get(name, 0) + n
    return {k: int(v) for k, v in cells.items() if not k.startswith("$scopeinfo")}


def parse_nextpnr_report(path: str | Path, family: str, yosys_cells: dict | None = None) -> dict:
    """Summary fields (``luts``, ``ffs``, ``dsps``, ``brams``, ``fmax_mhz`` ...) from a nextpnr report."""
    report = _load(path, "nextpnr report")
    util = report.get("utilization", {})
    fam = lookup_family(family)
    names = fam.cells

    def used(bel):
        return int(util.get(bel, {}).get("used", 0)) if bel else 0

    if names["ffs"]:
        ffs = used(names["ffs"])
    else:
        ffs = sum(n for cell, n in (yosys_cells or {}).items() if cell.startswith(fam.ff_prefix))
    # The network's clock is the fastest constraint (a board top's link has a slower clock of its own);
    # timing is met when every clock meets its constraint.
    clocks = {net: {"achieved_mhz": v.get("achieved"), "constraint_mhz": v.get("constraint")}
              for net, v in report.get("fmax", {}).items()}
    main = max(clocks.items(), key=lambda kv: kv[1]["constraint_mhz"] or 0.0, default=(None, {}))
    fmax = main[1].get("achieved_mhz")
    constraint = main[1].get("constraint_mhz")
    met = bool(clocks) and all(c["achieved_mhz"] and c["constraint_mhz"] and c["achieved_mhz"] >= c["constraint_mhz"]
                               for c in clocks.values())
    return {
        "luts": used(names["luts"]), "ffs": ffs, "dsps": used(names["dsps"]), "brams": used(names["brams"]),
        "sprams": used(names["sprams"]),
        "fmax_mhz": round(fmax, 2) if fmax else None,
        "constraint_mhz": round(constraint, 3) if constraint else None,
        "timing_met": met,
        "clocks": clocks,
        "utilisation": {bel: {"used": int(v.get("used", 0)), "available": int(v.get("available", 0))}
                        for bel, v in sorted(util.items()) if v.get("used")},
        "critical_path": critical_path_summary(report, main[0]),
    }


def critical_path_summary(report: dict, clock: str | None = None) -> dict | None:
    """The slowest path (within ``clock``'s domain when given: a path that starts and ends on its
    edges): total delay, logic/routing split, and its first and last cells."""
    paths = report.get("critical_paths") or []
    if clock is not None:
        within = [p for p in paths if p.get("from") == f"posedge {clock}" and p.get("to") == f"posedge {clock}"]
        paths = within or paths
    best = None
    for p in paths:
        steps = p.get("path", [])
        total = sum(s.get("delay", 0.0) for s in steps)
        if best is None or total > best[0]:
            best = (total, p, steps)
    if best is None:
        return None
    total, p, steps = best
    cells = [s["from"].get("cell") for s in steps if s.get("from")] + [steps[-1]["to"].get("cell")] if steps else []
    return {"from": p.get("from"), "to": p.get("to"), "delay_ns": round(total, 3),
            "logic_ns": round(sum(s["delay"] for s in steps if s.get("type") in ("logic", "clk-to-q", "setup")), 3),
            "routing_ns": round(sum(s["delay"] for s in steps if s.get("type") == "routing"), 3),
            "start": cells[0] if cells else None, "end": cells[-1] if cells else None}
