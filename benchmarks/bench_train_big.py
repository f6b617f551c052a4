"""Bigger networks trained on chip in Verilator: digits 64-32-10 and MNIST 784-32-10, against float.

The training design (``bp-hw generate --train``, seeded xavier initialisation,
standard normalisation from the training split, Q4.12, SGD with B = 1, MSE) is
trained in Verilog co-simulation by :func:`bp_hw.cosim.train_verify.verify_training`:
every output and, after every epoch, every weight and bias compared with
:class:`~bp_hw.fixed.trainer.FixedTrainer`. The on-chip test accuracy comes from
the weights read back from the simulated chip.

The float side is the reference trainer's network (``bp_hw.reference``) from
the same initial weights, on the same normalised split, with the same
learning rate, one sample per step in the same per-epoch order
(:func:`~bp_hw.fixed.trainer.epoch_order`): only the arithmetic differs.

    python benchmarks/bench_train_big.py --data digits --parallel 1 --epochs 10
    python benchmarks/bench_train_big.py --data mnist --parallel 16,2 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bp_hw.cosim.train_verify import verify_training
from bp_hw.data import one_hot_targets
from bp_hw.fixed.trainer import TrainSpec, epoch_order, parse_lr
from bp_hw.hdl.emit import generate
from bp_hw.reference import Network, init_weights
from bp_hw.train_start import seeded_qmodel

LAYERS = {"digits": [64, 32, 10], "mnist": [784, 32, 10], "iris": [4, 8, 3]}


def float_run(data: str, lr: str, epochs: int, seed: int = 0) -> list[float]:
    """Test accuracy after every epoch of the float network trained like the chip."""
    q, tr, te = seeded_qmodel(data, LAYERS[data], seed)
    eta_int, eta_frac = parse_lr(lr)
    eta = eta_int / 2 ** eta_frac
    W, B = init_weights(LAYERS[data], "xavier", seed)
    net = Network([w.copy() for w in W], [b.copy() for b in B], ["sigmoid"] * (len(W)), "mse")
    X = (tr.X - q.norm_mean) / q.norm_std
    Xt = (te.X - q.norm_mean) / q.norm_std
    T = one_hot_targets(tr.y, LAYERS[data][-1], "sigmoid")
    acc = []
    for e in range(epochs):
        for i in epoch_order(len(X), seed, e):
            grads = net.gradients(X[i:i + 1], T[i:i + 1])
            for l in range(len(W)):
                net.weights[l] -= eta * grads[2 * l]
                net.biases[l] -= eta * grads[2 * l + 1]
        out = net.forward(Xt)[-1][1]
        acc.append(float((out.argmax(axis=1) == te.y).mean()))
    return acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits", choices=sorted(LAYERS))
    ap.add_argument("--parallel", default="1")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", default="2^-2")
    ap.add_argument("--simulator", default="verilator")
    ap.add_argument("--out", default="build/bench_train_big")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    q, _, _ = seeded_qmodel(args.data, LAYERS[args.data])
    build = Path(args.out) / f"{args.data}_p{args.parallel.replace(',', '_')}"
    t0 = time.perf_counter()
    manifest = generate(q, args.parallel, build, train=TrainSpec(lr=args.lr), device="LFE5U-85F")
    gen_s = time.perf_counter() - t0
    s = verify_training(build, args.data, epochs=args.epochs, simulator=args.simulator)
    t0 = time.perf_counter()
    fl = float_run(args.data, args.lr, args.epochs)
    float_s = time.perf_counter() - t0
    row = {"data": args.data, "sizes": q.sizes, "parallel": manifest.parallel, "lr": args.lr, "epochs": args.epochs,
           "samples": s["samples"], "output_mismatches": s["output_mismatches"],
           "weight_mismatches": s["weight_mismatches"], "chip_test_accuracy": s["test_accuracy"],
           "chip_test_history": s["history"]["test_accuracy"], "float_test_accuracy": fl[-1], "float_history": fl,
           "points_below_float": round(100 * (fl[-1] - s["test_accuracy"]), 2),
           "cycles_per_sample": s["cycles_per_sample"], "cycles_per_sample_manifest": s["cycles_per_sample_manifest"],
           "simulated_cycles": s["cycles"], "generate_s": round(gen_s, 1), "build_s": s["build_seconds"],
           "sim_run_s": s["run_seconds"], "spec_s": s["spec_seconds"], "float_s": round(float_s, 1),
           "cycles_per_second": s["cycles_per_second"]}
    print(json.dumps(row))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(row, indent=1) + "\n")
    return 0 if s["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
