"""Synthesis figures: utilisation, Fmax, cycles and inferences per second, MAC utilisation.

For each design x board (x placement seed): networks from the generator
(random Q4.12 sigmoid MLPs through the real quantizer), each wrapped with the
board's UART top-level, run through yosys + nextpnr (YoWASP) exactly as
``bp-hw synth`` does. The boards are the registry's (bp_hw.plan.boards).

    python benchmarks/bench_synth.py                       # the default set, nextpnr's default seed
    python benchmarks/bench_synth.py --designs gen-4-8-3-P1 --boards icebreaker --seeds default,1,2
    python benchmarks/bench_synth.py --list

With several seeds each seed is a row, and a last row per design and board
gives the median Fmax.

MAC utilisation = achieved MACs per cycle (MAC operations per inference /
initiation interval) over the DSP blocks used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bp_hw.errors import BpHwError
from bp_hw.plan.boards import BOARDS, board as lookup_board
from bp_hw.plan.manifest import read_manifest
from bp_hw.synth import synthesize
from bp_hw.synth_estimate import estimate_resources


def _generated(sizes, parallel, seed=0):
    def build(out):
        from bp_hw.fixed import QuantConfig, quantize_model
        from bp_hw.hdl.emit import generate
        from bp_hw.modelfile import FloatModel
        rng = np.random.default_rng(seed)
        model = FloatModel(layers=sizes, weights=[rng.normal(0, 1, (o, i)) / np.sqrt(i)
                                                  for i, o in zip(sizes, sizes[1:])],
                           biases=[rng.normal(0, 0.3, o) for o in sizes[1:]],
                           activations=["sigmoid"] * (len(sizes) - 1), loss="mse",
                           norm_mean=np.zeros(sizes[0]), norm_std=np.ones(sizes[0]), n_classes=max(2, sizes[-1]))
        X = np.random.default_rng(seed + 1).normal(0, 1, (64, sizes[0]))
        q, _ = quantize_model(model, QuantConfig(format="Q4.12"), X)
        generate(q, parallel, out, name="net_" + "_".join(map(str, sizes)))
    return build


DESIGNS = {
    "gen-4-8-3-P1": _generated([4, 8, 3], "1"),
    "gen-4-8-3-P4.3": _generated([4, 8, 3], "4,3"),   # P = 4 lanes, then 3
    "gen-64-32-10-P1": _generated([64, 32, 10], "1"),
}
DEFAULT = ["gen-4-8-3-P1", "gen-64-32-10-P1"]


def measure(design: str, board: str, workdir: Path, seed: int | None) -> dict:
    build = workdir / design
    if not (build / "manifest.json").exists():
        DESIGNS[design](build)
    manifest = read_manifest(build)
    row = {"design": design, "board": board, "seed": "default" if seed is None else seed}
    try:
        s = synthesize(build, board, seed=seed)
    except BpHwError as exc:
        est = estimate_resources(manifest, lookup_board(board).fpga)
        return {**row, "error": str(exc), "estimate": {k: est[k] for k in ("luts", "dsps", "brams")}}
    interval = manifest.interval_cycles
    ops = manifest.mac_ops_per_inference
    row.update({k: s[k] for k in ("device", "luts", "ffs", "dsps", "brams", "fmax_mhz", "clock_mhz", "timing_met")})
    row.update({
        "estimate_luts": s["estimate"]["luts"], "estimate_brams": s["estimate"]["brams"],
        "interval_cycles": interval, "latency_cycles": manifest.latency_cycles,
        "inferences_per_s": round(s["fmax_mhz"] * 1e6 / interval) if s["fmax_mhz"] else None,
        "mac_utilisation": round(ops / interval / s["dsps"], 3) if s["dsps"] else None,
        "synth_seconds": s["seconds"]["total"],
        "critical_path": f"{s['critical_path']['start']} -> {s['critical_path']['end']}"
                         if s.get("critical_path") else None,
    })
    return row


def _seeds(text: str) -> list[int | None]:
    try:
        return [None if t.strip() == "default" else int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes integers or 'default' separated by commas, not {text!r}")


def _print_row(row: dict, seconds: float) -> None:
    label = f"{row['design']:<18} {row['board']:<11} {str(row['seed']):>7}"
    if "error" in row:
        print(f"{label} does not fit / failed: {row['error']}", flush=True)
        return
    print(f"{label} {row['luts']:>6} {row['estimate_luts']:>6} {row['ffs']:>5} {row['dsps']:>3} {row['brams']:>4} "
          f"{row['estimate_brams']:>5} {row['fmax_mhz']:>7.2f} {row['interval_cycles']:>5} "
          f"{row['inferences_per_s']:>12,} {row['mac_utilisation']:>8.3f} {seconds:>7.1f}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default=",".join(DEFAULT), help=f"comma-separated, from: {', '.join(DESIGNS)}")
    ap.add_argument("--boards", default=",".join(BOARDS), help=f"comma-separated, from: {', '.join(BOARDS)}")
    ap.add_argument("--seeds", type=_seeds, default=[None],
                    help="comma-separated nextpnr placement seeds, 'default' for nextpnr's own (default: default)")
    ap.add_argument("--json", action="store_true", help="one JSON object per row instead of the table")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(DESIGNS))
        return 0
    designs = [d for d in args.designs.split(",") if d]
    unknown = [d for d in designs if d not in DESIGNS]
    if unknown:
        ap.error(f"unknown design(s) {unknown}; --list shows them")
    boards = [b for b in args.boards.split(",") if b]
    unknown = [b for b in boards if b not in BOARDS]
    if unknown:
        ap.error(f"unknown board(s) {unknown}; choose from {', '.join(BOARDS)}")
    header = (f"{'design':<18} {'board':<11} {'seed':>7} {'LUTs':>6} {'(est)':>6} {'FFs':>5} {'DSP':>3} {'BRAM':>4} "
              f"{'(est)':>5} {'Fmax':>7} {'II':>5} {'inf/s @Fmax':>12} {'MAC util':>8} {'synth s':>7}")
    if not args.json:
        print(header)
    with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
        for design in designs:
            for board in boards:
                fmax = []
                for seed in args.seeds:
                    start = time.monotonic()
                    row = measure(design, board, Path(tmp), seed)
                    if row.get("fmax_mhz"):
                        fmax.append(row["fmax_mhz"])
                    if args.json:
                        print(json.dumps(row), flush=True)
                    else:
                        _print_row(row, time.monotonic() - start)
                if len(args.seeds) > 1 and fmax:
                    median = round(statistics.median(fmax), 2)
                    if args.json:
                        print(json.dumps({"design": design, "board": board, "seeds": len(fmax),
                                          "fmax_mhz_median": median, "fmax_mhz": fmax}), flush=True)
                    else:
                        print(f"{design:<18} {board:<11} {'median':>7} Fmax {median:.2f} MHz over {len(fmax)} seeds "
                              f"({min(fmax):.2f} to {max(fmax):.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
