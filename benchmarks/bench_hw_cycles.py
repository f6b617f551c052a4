"""Measured vs ideal cycles per inference of the generated hardware (Amaranth's simulator).

Ideal initiation interval = max over layers of ceil(MACs_l / lanes_l) (the plan's
``ideal_interval``). The measured interval is the median gap between consecutive
outputs while inputs stream in back to back and the output is always ready;
latency is input transfer to output transfer of the first sample, next to the
plan's figure.

    python benchmarks/bench_hw_cycles.py [--samples 40]
"""

from __future__ import annotations

import argparse

import numpy as np

from bp_hw.fixed import QuantConfig, quantize_model
from bp_hw.hdl.network import Network
from bp_hw.hdl.pysim import run_stream
from bp_hw.modelfile import FloatModel
from bp_hw.plan.hardware import make_plan

CASES = [
    ([4, 8, 3], ["1", "2,1", "4,3", "8,3", "16,6", "32,24"]),
    ([2, 4, 1], ["1", "4,1", "8,4"]),
    ([16, 16, 4], ["1", "4,2", "16,4", "32,16"]),
    ([64, 32, 10], ["1", "4,2", "32,10"]),
]


def model_of(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return FloatModel(layers=sizes, weights=[rng.normal(0, 1, (o, i)) / np.sqrt(i) for i, o in zip(sizes, sizes[1:])],
                      biases=[rng.normal(0, 0.3, o) for o in sizes[1:]], activations=["sigmoid"] * (len(sizes) - 1),
                      loss="mse", norm_mean=np.zeros(sizes[0]), norm_std=np.ones(sizes[0]), n_classes=max(2, sizes[-1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=40)
    args = ap.parse_args()
    print(f"{'network':<12} {'P':<8} {'mults':>5} {'ideal II':>8} {'meas II':>8} {'ratio':>6} "
          f"{'latency':>8} {'plan lat':>8} {'exact':>6}")
    for sizes, pars in CASES:
        model = model_of(sizes)
        X_raw = np.random.default_rng(1).normal(0, 1, (args.samples, sizes[0]))
        q, _ = quantize_model(model, QuantConfig(format="Q4.12"), X_raw)
        X, _ = q.quantize_inputs(X_raw)
        expected = q.predict(X)
        for par in pars:
            plan = make_plan(q, par)
            ideal = plan.ideal_interval
            run = run_stream(Network(plan), X)
            exact = np.array_equal(run.outputs, expected)
            print(f"{'-'.join(map(str, sizes)):<12} {par:<8} {plan.multipliers:>5} {ideal:>8} {run.interval:>8.1f} "
                  f"{run.interval / ideal:>6.3f} {run.latency:>8} {plan.latency:>8} {str(exact):>6}")


if __name__ == "__main__":
    main()
