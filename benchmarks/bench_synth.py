"""Synthesis figures: utilisation, Fmax, cycles and inferences per second, MAC utilisation.

For each design x board: the toy layer (bp_hw.boards.toy) and networks from the
generator (random Q4.12 sigmoid MLPs through the real quantizer), each wrapped
with the board's UART top-level, run through yosys + nextpnr (YoWASP) exactly
as ``bp-hw synth`` does.

    python benchmarks/bench_synth.py                       # the default set
    python benchmarks/bench_synth.py --designs toy-4x3 --boards icebreaker
    python benchmarks/bench_synth.py --list

MAC utilisation = achieved MACs per cycle (MAC operations per inference /
initiation interval) over the DSP blocks used.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bp_hw.boards.toy import ToyConfig, write_toy_build
from bp_hw.errors import BpHwError
from bp_hw.synth import read_manifest, synthesize
from bp_hw.synth_estimate import estimate_resources


def _toy(config):
    return lambda out: write_toy_build(out, config)


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
    "toy-4x3": _toy(ToyConfig()),
    "toy-64x10-P2": _toy(ToyConfig(n_in=64, n_out=10, lanes=2)),
    "gen-4-8-3-P1": _generated([4, 8, 3], "1"),
    "gen-4-8-3-P4.3": _generated([4, 8, 3], "4,3"),   # P = 4 lanes, then 3
    "gen-64-32-10-P1": _generated([64, 32, 10], "1"),
}
DEFAULT = ["toy-4x3", "gen-4-8-3-P1", "gen-64-32-10-P1"]
BOARDS = ["icebreaker", "ulx3s-85f"]


def mac_ops(manifest: dict) -> int:
    if "mac_ops_per_inference" in manifest:
        return int(manifest["mac_ops_per_inference"])
    return sum(int(layer["fan_in"]) * int(layer["fan_out"]) for layer in manifest["layers"])


def measure(design: str, board: str, workdir: Path, seed: int | None) -> dict:
    build = workdir / design
    if not (build / "manifest.json").exists():
        DESIGNS[design](build)
    manifest = read_manifest(build)
    row = {"design": design, "board": board}
    try:
        s = synthesize(build, board, seed=seed)
    except BpHwError as exc:
        est = estimate_resources(manifest, {"icebreaker": "iCE40UP5K", "ulx3s-85f": "LFE5U-85F"}[board])
        return {**row, "error": str(exc), "estimate": {k: est[k] for k in ("luts", "dsps", "brams")}}
    interval = int(manifest["interval_cycles"])
    ops = mac_ops(manifest)
    row.update({k: s[k] for k in ("device", "luts", "ffs", "dsps", "brams", "fmax_mhz", "clock_mhz", "timing_met")})
    row.update({
        "estimate_luts": s["estimate"]["luts"], "estimate_brams": s["estimate"]["brams"],
        "interval_cycles": interval, "latency_cycles": manifest.get("latency_cycles"),
        "inferences_per_s": round(s["fmax_mhz"] * 1e6 / interval) if s["fmax_mhz"] else None,
        "mac_utilisation": round(ops / interval / s["dsps"], 3) if s["dsps"] else None,
        "synth_seconds": s["seconds"]["total"],
        "critical_path": f"{s['critical_path']['start']} -> {s['critical_path']['end']}"
                         if s.get("critical_path") else None,
    })
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default=",".join(DEFAULT), help=f"comma-separated, from: {', '.join(DESIGNS)}")
    ap.add_argument("--boards", default=",".join(BOARDS))
    ap.add_argument("--seed", type=int, default=None, help="nextpnr seed")
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
    header = (f"{'design':<18} {'board':<11} {'LUTs':>6} {'(est)':>6} {'FFs':>5} {'DSP':>3} {'BRAM':>4} "
              f"{'Fmax':>7} {'II':>5} {'inf/s @Fmax':>12} {'MAC util':>8} {'synth s':>7}")
    if not args.json:
        print(header)
    with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
        for design in designs:
            for board in args.boards.split(","):
                start = time.monotonic()
                row = measure(design, board, Path(tmp), args.seed)
                if args.json:
                    print(json.dumps(row), flush=True)
                elif "error" in row:
                    print(f"{design:<18} {board:<11} does not fit / failed: {row['error']}", flush=True)
                else:
                    print(f"{design:<18} {board:<11} {row['luts']:>6} {row['estimate_luts']:>6} {row['ffs']:>5} "
                          f"{row['dsps']:>3} {row['brams']:>4} {row['fmax_mhz']:>7.2f} {row['interval_cycles']:>5} "
                          f"{row['inferences_per_s']:>12,} {row['mac_utilisation']:>8.3f} "
                          f"{time.monotonic() - start:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
