"""On-chip training in Verilog co-simulation: the full xor and iris runs, checked bit for bit.

For each case the script makes the seeded initial model (xavier init, seed 0,
normalisation from the training split, quantized to Q4.12), saves it, runs
``bp-hw generate q.json --train --parallel P --out <dir>``, and then trains in
simulation with :func:`bp_hw.cosim.train_verify.verify_training` — every output
and, after every epoch (or every sample), every weight and bias compared with
:class:`~bp_hw.fixed.trainer.FixedTrainer`. It prints one markdown table row per
run (and the JSON summaries with ``--json-out``).

    python benchmarks/bench_train_cosim.py                    # xor 5000 epochs, iris 50, Verilator (+ Icarus short)
    python benchmarks/bench_train_cosim.py --only iris --plot curves.png
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from bp_hw.cli import main as cli
from bp_hw.cosim.tools import available_simulators
from bp_hw.cosim.train_verify import verify_training

DESIGNS = {"xor": [2, 4, 1], "iris": [4, 8, 3]}

# (label, data, simulator, epochs, options)
RUNS = [
    ("xor", "xor", "verilator", 5000, {}),
    ("iris", "iris", "verilator", 50, {}),
    ("iris", "iris", "verilator", 50, {"every_sample": True, "stall": 0.2}),
    ("xor", "xor", "icarus", 200, {"every_sample": True, "stall": 0.2}),
    ("iris", "iris", "icarus", 2, {}),
]


def make_design(data: str, out: Path, parallel: str, fmt: str = "Q4.12", seed: int = 0) -> Path:
    from bp_hw.train_start import seeded_qmodel
    q, _, _ = seeded_qmodel(data, DESIGNS[data], seed, fmt)
    out.mkdir(parents=True, exist_ok=True)
    q.save(out / "q.json")
    build = out / "build"
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the table
        rc = cli(["generate", str(out / "q.json"), "--train", "--parallel", parallel, "--out", str(build)])
    if rc:
        raise SystemExit(f"bp-hw generate failed for {data}")
    return build


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/bench_train_cosim", help="work folder (designs and simulator builds)")
    ap.add_argument("--parallel", default="1")
    ap.add_argument("--only", choices=sorted(DESIGNS), help="only this data set")
    ap.add_argument("--json-out", help="write every run's summary to this JSON file")
    ap.add_argument("--plot", help="write the iris/xor learning curves (hardware weights) to this image")
    args = ap.parse_args()
    sims = available_simulators()
    out = Path(args.out)
    builds = {}
    results = []
    print("| data | simulator | epochs | read-back | stall | samples | output mism. | weight mism. | "
          "train acc | test acc | converged epoch | cycles/sample (manifest) | sim cycles | build s | run s | "
          "spec s | cycles/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, data, sim, epochs, opts in RUNS:
        if args.only and data != args.only:
            continue
        if sim not in sims:
            print(f"({sim} not available: skipped {label})", file=sys.stderr)
            continue
        if data not in builds:
            builds[data] = make_design(data, out / f"{data}_p{args.parallel.replace(',', '_')}", args.parallel)
        t0 = time.perf_counter()
        s = verify_training(builds[data], data, epochs=epochs, simulator=sim, **opts)
        s["wall_seconds"] = round(time.perf_counter() - t0, 2)
        results.append(s)
        print(f"| {data} {'-'.join(map(str, s['sizes']))} | {sim} | {epochs} | "
              f"{'every sample' if s['every_sample'] else 'every epoch'} | {s['stall']} | {s['samples']} | "
              f"{s['output_mismatches']} | {s['weight_mismatches']} | {s['accuracy']:.4f} | {s['test_accuracy']:.4f} | "
              f"{s['converged_epoch']} | {s['cycles_per_sample']:g} ({s['cycles_per_sample_manifest']}) | "
              f"{s['cycles']} | {s['build_seconds']:.1f} | {s['run_seconds']:.1f} | {s['spec_seconds']:.1f} | "
              f"{s['cycles_per_second']:.3g} |", flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1) + "\n")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        for ax, data in zip(axes, ("xor", "iris")):
            run = next((r for r in results if r["data"] == data and r["simulator"] == "verilator"), None)
            if run is None:
                continue
            h = run["history"]
            n = len(h["accuracy"]) if data == "iris" else min(len(h["accuracy"]), 400)
            ax.plot(range(1, n + 1), h["accuracy"][:n], label="train")
            ax.plot(range(1, n + 1), h["test_accuracy"][:n], label="test", ls="--")
            ax.set(title=f"{data}: on-chip training (Verilator, weights read back)", xlabel="epoch",
                   ylabel="accuracy", ylim=(0, 1.05))
            ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
    bad = [r for r in results if not r["ok"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
