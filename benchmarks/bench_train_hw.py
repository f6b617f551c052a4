"""Cycles per training sample of the on-chip training design vs inference, and long runs in the simulator.

Table mode (default): for each network and P, the plan's cycles per
training / inference sample of :class:`~bp_hw.hdl.backprop.TrainNetwork`
(``make_plan(q, P, train=spec).training``), both checked by measurement in
Amaranth's simulator (gaps between input transfers with back-to-back samples,
``--samples`` of each mode, outputs and final weights bit-exact against
:meth:`~bp_hw.fixed.trainer.FixedTrainer.run`), and the ratios to (a) this
design in infer mode and (b) the pipelined inference design's
``standalone_latency`` (one inference, input presented to output taken) at the same P.

Long runs: ``--run xor`` trains xor 2-4-1 (seeded initialisation, Q4.12, lr 2^-1)
until the four patterns are right; ``--run iris`` trains iris 4-8-3 for
``--epochs`` epochs; both compare every output and, at every epoch end, every
weight and bias with the spec, and report simulation speed.

    python benchmarks/bench_train_hw.py [--samples 4]
    python benchmarks/bench_train_hw.py --run xor
    python benchmarks/bench_train_hw.py --run iris --epochs 50 --parallel 8,3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bp_hw.fixed import QuantConfig, quantize_model
from bp_hw.fixed.trainer import FixedTrainer, TrainSpec, epoch_order, targets_for
from bp_hw.hdl.backprop import TrainNetwork
from bp_hw.hdl.pysim import run_training
from bp_hw.plan.hardware import make_plan

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hw_cycles import model_of  # noqa: E402

CASES = [
    ([2, 4, 1], ["1", "4,1", "8,4"]),
    ([4, 8, 3], ["1", "2,1", "4,3", "8,3", "16,6", "32,24"]),
    ([16, 16, 4], ["1", "4,2", "16,4", "32,16"]),
    ([64, 32, 10], ["1", "4,2", "32,10"]),
]


def table(samples: int):
    print("| network | P | multipliers | infer cycles | train cycles | measured (train / infer) | "
          "train / infer | pipelined latency | train / latency | pipelined II | exact |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for sizes, pars in CASES:
        q, _ = quantize_model(model_of(sizes), QuantConfig(format="Q4.12"))
        rng = np.random.default_rng(1)
        X, _ = q.quantize_inputs(rng.normal(0, 1, (samples, sizes[0])))
        T = targets_for(q, rng.integers(0, max(2, sizes[-1]), samples))
        X2, T2 = np.concatenate([X, X]), np.concatenate([T, T])
        train = np.r_[np.ones(samples), np.zeros(samples)].astype(np.int64)
        for par in pars:
            plan = make_plan(q, par, train=TrainSpec(update_rounding="stochastic"))
            tp, inference = plan.training, make_plan(q, par)
            run = run_training(TrainNetwork(plan), X2, T2, train, readback=[2 * samples - 1])
            outputs, snaps = FixedTrainer(q, tp.spec, plan.parallel).run(X2, T2, train, [2 * samples - 1])
            exact = np.array_equal(run.outputs, outputs) and np.array_equal(run.snapshots[2 * samples - 1],
                                                                            snaps[2 * samples - 1])
            gaps = np.diff(run.in_cycles)
            m_train, m_infer = int(np.median(gaps[:samples - 1])), int(np.median(gaps[samples:]))
            lat = inference.standalone_latency
            print(f"| {'-'.join(map(str, sizes))} | {par} | {tp.multipliers} | {tp.infer_cycles} | "
                  f"{tp.train_cycles} | {m_train} / {m_infer} | {tp.train_cycles / tp.infer_cycles:.2f} | "
                  f"{lat} | {tp.train_cycles / lat:.2f} | {inference.interval} | {exact} |", flush=True)


def initial(data, layers, fmt="Q4.12", seed=0):
    """The seeded initialisation of on-chip training (xavier weights, quantized)."""
    from bp_hw.train_start import seeded_qmodel
    return seeded_qmodel(data, layers, seed, fmt)


def long_run(data: str, epochs: int, parallel: str, rounding: str):
    from bp_hw.fixed.trainer import FixedTrainer
    layers = [2, 4, 1] if data == "xor" else [4, 8, 3]
    q, tr, te = initial(data, layers)
    X, _ = q.quantize_inputs(tr.X)
    T = targets_for(q, tr.y)
    n = len(X)
    spec = TrainSpec(update_rounding=rounding)
    if data == "xor":   # as many epochs as the spec needs to get all four right (at most `epochs`)
        ref = FixedTrainer(q, spec)
        for e in range(epochs):
            ref.epoch(X, T, epoch_order(n, 0, e))
            if np.array_equal(ref.model.classify(ref.model.predict(X)), tr.y):
                break
        epochs = e + 1
    # per epoch: the training samples in the epoch's order, then the training set in infer mode
    idx = np.concatenate([np.r_[epoch_order(n, 0, e), np.arange(n)] for e in range(epochs)])
    train = np.tile(np.r_[np.ones(n), np.zeros(n)], epochs).astype(np.int64)
    ends = [2 * n * e + n - 1 for e in range(epochs)]
    Xt, _ = q.quantize_inputs(te.X)
    Xs = np.concatenate([X[idx], Xt])          # then the test set, infer only
    Ts = np.concatenate([T[idx], targets_for(q, te.y)])
    train = np.r_[train, np.zeros(len(Xt), dtype=np.int64)]
    plan = make_plan(q, parallel, train=spec)
    tp = plan.training
    t0 = time.perf_counter()
    run = run_training(TrainNetwork(plan), Xs, Ts, train, readback=ends)
    seconds = time.perf_counter() - t0
    outputs, snaps = FixedTrainer(q, spec, plan.parallel).run(Xs, Ts, train, ends)
    out_mm = int(np.any(run.outputs != outputs, axis=1).sum())
    w_mm = int(sum(np.count_nonzero(run.snapshots[s] != snaps[s]) for s in ends))
    last_train = run.outputs[len(idx) - n:len(idx)]
    test_out = run.outputs[len(idx):]
    summary = {
        "data": data, "parallel": plan.parallel, "update_rounding": rounding, "epochs": epochs,
        "samples": int(len(Xs)), "train_samples": int(train.sum()), "output_mismatches": out_mm,
        "weight_mismatches": w_mm, "weights_checked": len(ends) * tp.access_depth,
        "train_accuracy": float((q.classify(last_train) == tr.y).mean()),
        "test_accuracy": float((q.classify(test_out) == te.y).mean()),
        "cycles_per_train_sample": tp.train_cycles, "cycles_per_infer_sample": tp.infer_cycles,
        "simulated_cycles": int(run.cycles), "seconds": round(seconds, 1),
        "cycles_per_second": int(run.cycles / seconds), "samples_per_second": round(len(Xs) / seconds, 1),
    }
    print(json.dumps(summary, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=4, help="samples of each mode per table row")
    ap.add_argument("--run", choices=["xor", "iris"], help="a long training run instead of the table")
    ap.add_argument("--epochs", type=int, default=None, help="iris: epochs (50); xor: at most (5000)")
    ap.add_argument("--parallel", default="1")
    ap.add_argument("--update-rounding", default="nearest-even")
    args = ap.parse_args()
    if args.run:
        epochs = args.epochs or (5000 if args.run == "xor" else 50)
        long_run(args.run, epochs, args.parallel, args.update_rounding)
    else:
        table(args.samples)


if __name__ == "__main__":
    main()
