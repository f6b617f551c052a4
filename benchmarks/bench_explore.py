"""Design-space exploration with synthesis: serial against a Dask LocalCluster, in one run.

Trains the iris model (``bp-hw train --data iris``, seed 0), then runs the same
sweep twice, each into a fresh cache: once with ``engine="serial"`` (one run
after the other in this process's children) and once on a LocalCluster of
``--workers`` processes. Every run is keyed by its content hash, so the two
sweeps' runs pair up by key: the script checks that each pair has the same
LUTs, FFs, DSPs, BRAMs and Fmax (same seeds, same tools), prints the wall
times and their ratio, then reruns the cluster sweep to show it computes 0
runs, and with ``--add-format`` adds a format to show only its runs are
computed.

    python benchmarks/bench_explore.py                      # 4 formats x 2 P x 3 seeds = 24 runs, 2 workers
    python benchmarks/bench_explore.py --formats Q2.6 --parallel 1 --seeds default   # a quick check

Needs the dist extra (pip install -e ".[dist]"). The load average before and
after is printed: on a shared machine the ratio depends on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bp_hw.cli import main as cli
from bp_hw.explore import explore, parse_list, parse_seeds

FIGURES = ("status", "luts", "ffs", "dsps", "brams", "fmax_mhz")


def _runs(out: Path) -> dict:
    return {r["key"]: r for r in json.loads((out / "explore.json").read_text())["runs"]}


def _sweep(model, out, args, engine, formats):
    t0 = time.perf_counter()
    summary = explore(model, out, formats=formats, parallels=parse_list(args.parallel, ";"), board=args.board,
                      synth="all", seeds=parse_seeds(args.seeds), engine=engine, workers=args.workers,
                      cache_dir=out / "cache", timeout=args.timeout)
    return summary, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formats", default="Q4.12,Q3.9,Q2.6,auto:6")
    ap.add_argument("--parallel", default="1;2,3")
    ap.add_argument("--seeds", default="default,1,2")
    ap.add_argument("--board", default="icebreaker")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--add-format", help="a format to add in a last sweep (only its runs are computed)")
    ap.add_argument("--out", help="folder to keep the sweeps in (default: a temporary one)")
    args = ap.parse_args(argv)

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_explore_"))
    root.mkdir(parents=True, exist_ok=True)
    model = root / "model.npz"
    if not model.is_file() and cli(["train", "--data", "iris", "--out", str(model)]) != 0:
        return 1
    formats = parse_list(args.formats)
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}", flush=True)
    serial, t_serial = _sweep(model, root / "serial", args, "serial", formats)
    print(f"serial: {serial['runs']} runs, {serial['computed']} computed, {serial['failed']} failed, "
          f"{t_serial:.1f} s; load {os.getloadavg()}", flush=True)
    dist, t_dist = _sweep(model, root / "dask", args, "dask", formats)
    print(f"dask x{dist['workers']}: {dist['runs']} runs, {dist['computed']} computed, {dist['failed']} failed, "
          f"{t_dist:.1f} s; load {os.getloadavg()}", flush=True)

    a, b = _runs(root / "serial"), _runs(root / "dask")
    same = [k for k in a if k in b and all(a[k].get(f) == b[k].get(f) for f in FIGURES)]
    print(f"\nsame figures in both sweeps: {len(same)} of {len(a)} runs (keys in both: {len(a.keys() & b.keys())})")
    print(f"wall time: serial {t_serial:.1f} s, dask x{dist['workers']} {t_dist:.1f} s, "
          f"ratio parallel/serial {t_dist / t_serial:.3f}\n")
    print(f"{'format':<8} {'P':<5} {'seed':>7} {'LUTs':>5} {'FFs':>5} {'DSP':>3} {'BRAM':>4} {'Fmax':>7} {'same':>5}")
    for k, r in a.items():
        seed = "default" if r.get("seed") is None else r["seed"]
        fmt = "/".join(d["format"] for d in r["designs"])
        print(f"{fmt:<8} {r['parallel']:<5} {seed:>7} {r.get('luts') or '-':>5} {r.get('ffs') or '-':>5} "
              f"{r.get('dsps') or '-':>3} {r.get('brams') or '-':>4} {r.get('fmax_mhz') or '-':>7} "
              f"{'yes' if k in same else 'NO':>5}")
    print("\nPareto front (serial):")
    from bp_hw.explore import format_table
    print(format_table(serial["pareto"]))

    again, t_again = _sweep(model, root / "dask", args, "dask", formats)
    print(f"\nrerun of the dask sweep: {again['computed']} computed, {again['cached']} cached, {t_again:.1f} s")
    if args.add_format:
        more, t_more = _sweep(model, root / "dask", args, "dask", formats + [args.add_format])
        print(f"with {args.add_format} added: {more['computed']} computed, {more['cached']} cached, {t_more:.1f} s")
    print(f"load average after: {os.getloadavg()}")
    return 0 if len(same) == len(a) else 1


if __name__ == "__main__":
    sys.exit(main())
