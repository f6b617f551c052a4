"""Formal proof times for designs larger than CI's (issue #18: CI proves the iris designs).

For each design, a random Q4.12 sigmoid MLP goes through the real quantizer (as in bench_synth.py).
Its plan at the given P is what `bp-hw generate` builds, and
:func:`bp_hw.formal.suite.build_jobs` gives the proofs `bp-hw prove BUILD` runs. Each job runs
``--repeat`` times; a row gives its mode, depth, result (every run's, which must agree) and median
seconds. The board top's proofs (the crossing, the link) are the same for every build, so they are
left out unless ``--board`` is given.

    python benchmarks/bench_formal.py                                    # the default set
    python benchmarks/bench_formal.py --designs digits-P8.2 --repeat 3 --mutants --out f.json
    python benchmarks/bench_formal.py --designs digits-P16.10 --proofs stream-covers
    python benchmarks/bench_formal.py --list
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from bp_hw.fixed import QuantConfig, quantize_model
from bp_hw.formal.sby import check_tools, run_job
from bp_hw.formal.suite import build_jobs
from bp_hw.modelfile import FloatModel
from bp_hw.plan.hardware import make_plan

#: name: (layer sizes, P), inference designs (a training design's bounded depth, infer_cycles + 50, is
#: 130 on iris at P = 1, 2,442 on digits 64-32-10: CI proves iris's)
DESIGNS = {
    "iris-P1": ([4, 8, 3], "1"),
    "iris-P8.3": ([4, 8, 3], "8,3"),
    "digits-P16.10": ([64, 32, 10], "16,10"),      # bounded depth 254 (latency 246)
    "digits-P8.2": ([64, 32, 10], "8,2"),          # 510
    "digits-P1": ([64, 32, 10], "1"),              # 2461: out of a bounded proof's reach
    "mnist-P16.2": ([784, 32, 10], "16,2"),        # 2542: likewise
}
DEFAULT = ["digits-P16.10"]


def _qmodel(sizes, seed=0):
    rng = np.random.default_rng(seed)
    model = FloatModel(layers=sizes, weights=[rng.normal(0, 1, (o, i)) / np.sqrt(i) for i, o in zip(sizes, sizes[1:])],
                       biases=[rng.normal(0, 0.3, o) for o in sizes[1:]], activations=["sigmoid"] * (len(sizes) - 1),
                       loss="mse", norm_mean=np.zeros(sizes[0]), norm_std=np.ones(sizes[0]),
                       n_classes=max(2, sizes[-1]))
    X = np.random.default_rng(seed + 1).normal(0, 1, (64, sizes[0]))
    return quantize_model(model, QuantConfig(format="Q4.12"), X)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default=",".join(DEFAULT), help=f"comma-separated, of: {', '.join(DESIGNS)}")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each proof (the table gives the median)")
    ap.add_argument("--mutants", action="store_true", help="also the broken designs (each must FAIL)")
    ap.add_argument("--board", action="store_true", help="also the board top's proofs (the same for every build)")
    ap.add_argument("--proofs", help="comma-separated proof names to run (default: all of each design's)")
    ap.add_argument("--out", type=Path, help="write every run's result here as JSON")
    ap.add_argument("--list", action="store_true", help="list the designs and exit")
    args = ap.parse_args()
    if args.list:
        for name, (sizes, parallel) in DESIGNS.items():
            print(f"{name}: {'-'.join(map(str, sizes))} P={parallel}")
        return 0
    names = args.designs.split(",")
    unknown = [n for n in names if n not in DESIGNS]
    if unknown or args.repeat < 1:
        print(f"unknown design(s) {unknown}; see --list" if unknown else "--repeat must be at least 1", file=sys.stderr)
        return 2
    check_tools()
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            sizes, parallel = DESIGNS[name]
            plan = make_plan(_qmodel(sizes), parallel)
            jobs = build_jobs(plan, mutants=args.mutants, board=args.board)
            if args.proofs:
                jobs = [j for j in jobs if j.name in args.proofs.split(",")]
            for job in jobs:
                runs = [run_job(job, Path(work) / name / str(k)) for k in range(args.repeat)]
                row = {"design": name, "proof": job.name, "mode": job.mode, "depth": job.depth,
                       "expect": job.expect, "status": sorted({r.status for r in runs}),
                       "ok": all(r.ok for r in runs), "steps": [r.step for r in runs],
                       "seconds": [round(r.seconds, 2) for r in runs],
                       "median_seconds": round(statistics.median(r.seconds for r in runs), 2)}
                ok &= row["ok"]
                rows.append(row)
                print(f"{name} {job.name}: {'/'.join(row['status'])} ({job.mode} {job.depth}, "
                      f"median {row['median_seconds']} s)", file=sys.stderr, flush=True)
    if args.out:
        args.out.write_text(json.dumps({"repeat": args.repeat, "rows": rows}, indent=1))
    print("| design | proof | mode | depth | result | median seconds |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        step = f" (step {r['steps'][0]})" if r["steps"][0] is not None else ""
        verdict = ("FAIL as expected" if r["expect"] == "fail" else "/".join(r["status"])) if r["ok"] else \
            f"{'/'.join(r['status'])}, expected {r['expect'].upper()}"
        print(f"| {r['design']} | {r['proof']} | {r['mode']} | {r['depth']} | {verdict}{step} | {r['median_seconds']} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
