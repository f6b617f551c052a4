"""Convergence of on-chip training: MSE vs cross-entropy, and mini-batches B = 1 vs B = 8.

Every figure is :class:`~bp_hw.fixed.trainer.FixedTrainer` (the spec the hardware
matches bit for bit, as the co-simulation tests show) from the seeded
initialisation of ``bp_hw.train_start.seeded_qmodel`` (Q4.12, sigmoid layers,
xavier weights, the split and the per-epoch sample order from the seed).
Accuracy = classification of the test split by the integer model with the
trained weights, after every epoch; each cell is the median over ``--seeds``.

``--study cost``: iris 4-8-3 and digits 64-32-10, cost ``mse`` and
``cross-entropy`` at several learning rates, B = 1.
``--study batch``: iris 4-8-3, B = 1 and 8 (and the learning rates given), and
what the batch costs in hardware from the plan: cycles per training sample and
the RAM bits of weights, biases and the gradient sums at P = 1 and 8,3.

    python benchmarks/bench_train_convergence.py --study cost [--seeds 0,1,2] [--json-out cost.json]
    python benchmarks/bench_train_convergence.py --study batch [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bp_hw.fixed.trainer import FixedTrainer, TrainSpec, epoch_order, targets_for
from bp_hw.plan.hardware import make_plan
from bp_hw.train_start import seeded_qmodel

LAYERS = {"iris": [4, 8, 3], "digits": [64, 32, 10]}


def curve(data: str, spec: TrainSpec, epochs: int, seed: int) -> dict:
    """Test (and train) accuracy after every epoch of one run."""
    q, tr, te = seeded_qmodel(data, LAYERS[data], seed)
    X, _ = q.quantize_inputs(tr.X)
    Xt, _ = q.quantize_inputs(te.X)
    T = targets_for(q, tr.y)
    t = FixedTrainer(q, spec)
    test, train = [], []
    t0 = time.perf_counter()
    for e in range(epochs):
        t.epoch(X, T, epoch_order(len(X), seed, e))
        test.append(float((t.model.classify(t.model.predict(Xt)) == te.y).mean()))
        train.append(float((t.model.classify(t.model.predict(X)) == tr.y).mean()))
    return {"test": test, "train": train, "saturations": int(t.saturations),
            "seconds": round(time.perf_counter() - t0, 1)}


def first_epoch(acc: list, level: float):
    return next((e + 1 for e, a in enumerate(acc) if a >= level), None)


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def study_cost(seeds, out_rows):
    plan = [("iris", 50, ["2^-1", "2^-2", "2^-3"], 0.9), ("digits", 30, ["2^-2", "2^-3", "2^-4"], 0.97)]
    print("| data | cost | lr | test acc after 5 / 10 / all epochs | best test acc | epochs to 90 % (iris) / 97 % (digits) test | "
          "final train acc | s per run |")
    print("|---|---|---|---|---|---|---|---|")
    for data, epochs, lrs, level in plan:
        for cost in ("mse", "cross-entropy"):
            for lr in lrs:
                runs = [curve(data, TrainSpec(lr=lr, cost=cost), epochs, s) for s in seeds]
                med = lambda k, e: statistics.median(r[k][e] for r in runs)  # noqa: E731
                row = {"data": data, "cost": cost, "lr": lr, "epochs": epochs, "seeds": seeds,
                       "test_5": med("test", 4), "test_10": med("test", 9), "test_final": med("test", -1),
                       "best_test": statistics.median(max(r["test"]) for r in runs),
                       "epochs_to_level": median_or_none([first_epoch(r["test"], level) for r in runs]),
                       "reached": sum(first_epoch(r["test"], level) is not None for r in runs),
                       "train_final": med("train", -1),
                       "seconds": statistics.median(r["seconds"] for r in runs),
                       "curves": [r["test"] for r in runs]}
                out_rows.append(row)
                reach = (f"{row['epochs_to_level']:g} ({row['reached']}/{len(seeds)} runs)"
                         if row["epochs_to_level"] is not None else f"never (0/{len(seeds)})")
                print(f"| {data} {'-'.join(map(str, LAYERS[data]))} | {cost} | {lr} | "
                      f"{row['test_5']:.3f} / {row['test_10']:.3f} / {row['test_final']:.3f} | "
                      f"{row['best_test']:.3f} | {reach} | {row['train_final']:.3f} | {row['seconds']:.0f} |",
                      flush=True)


def ram_bits(plan) -> dict:
    kinds = {}
    for m in plan.memories:
        kinds[m.kind] = kinds.get(m.kind, 0) + m.bits
    return kinds


def study_batch(seeds, out_rows, epochs=50):
    q, _, _ = seeded_qmodel("iris", LAYERS["iris"], 0)
    print("| P | B | cycles / train sample | cycles / infer sample | weight + bias RAM bits | gradient-sum RAM bits |")
    print("|---|---|---|---|---|---|")
    for par in ("1", "8,3"):
        for batch in (1, 8):
            tp = make_plan(q, par, train=TrainSpec(batch=batch))
            bits = ram_bits(tp)
            row = {"parallel": par, "batch": batch, "train_cycles": tp.training.train_cycles,
                   "infer_cycles": tp.training.infer_cycles,
                   "param_bits": bits.get("weights", 0) + bits.get("biases", 0), "sum_bits": bits.get("grad_sums", 0)}
            out_rows.append(row)
            print(f"| {par} | {batch} | {row['train_cycles']} | {row['infer_cycles']} | {row['param_bits']} | "
                  f"{row['sum_bits']} |", flush=True)
    print()
    print(f"| B | lr | test acc after {epochs} epochs (median, range) | train acc | epochs to 90 % test | updates |")
    print("|---|---|---|---|---|---|")
    for batch, lr in ((1, "2^-1"), (8, "2^-1"), (8, "2^0")):
        runs = [curve("iris", TrainSpec(lr=lr, batch=batch), epochs, s) for s in seeds]
        finals = [r["test"][-1] for r in runs]
        row = {"batch": batch, "lr": lr, "epochs": epochs, "seeds": seeds, "test_final": statistics.median(finals),
               "test_range": [min(finals), max(finals)],
               "train_final": statistics.median(r["train"][-1] for r in runs),
               "epochs_to_90": median_or_none([first_epoch(r["test"], 0.9) for r in runs]),
               "updates": epochs * 105 // batch, "curves": [r["test"] for r in runs]}
        out_rows.append(row)
        reach = f"{row['epochs_to_90']:g}" if row["epochs_to_90"] is not None else "never"
        print(f"| {batch} | {lr} | {row['test_final']:.3f} ({min(finals):.3f}-{max(finals):.3f}) | "
              f"{row['train_final']:.3f} | {reach} | {row['updates']} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", choices=["cost", "batch"], required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    (study_cost if args.study == "cost" else study_batch)(seeds, rows)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
