"""Integer-model throughput against the float forward pass, same network, same run.

    python benchmarks/bench_fixed.py [--samples 20000] [--repeats 7] [--format Q4.12] [--json]

A 64-32-10 network (sigmoid hidden, sigmoid output, random weights, seed 0),
quantized at ``--format`` with a 10-bit sigmoid LUT. Each repeat times one
batched call over ``--samples`` inputs; the figures are medians of the
repeats, in samples per second, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np

from bp_hw.fixed import QuantConfig, quantize_model
from bp_hw.modelfile import FloatModel


def network(sizes=(64, 32, 10), seed=0) -> FloatModel:
    rng = np.random.default_rng(seed)
    sizes = list(sizes)
    ws = [rng.normal(0, 1 / np.sqrt(m), (n, m)) for m, n in zip(sizes, sizes[1:])]
    bs = [rng.normal(0, 0.1, n) for n in sizes[1:]]
    return FloatModel(layers=sizes, weights=ws, biases=bs, activations=["sigmoid"] * (len(sizes) - 1), loss="mse",
                      norm_mean=np.zeros(sizes[0]), norm_std=np.ones(sizes[0]), n_classes=sizes[-1])


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--format", default="Q4.12")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    fm = network()
    X = np.random.default_rng(1).normal(0, 1, (args.samples, 64))
    q, _ = quantize_model(fm, QuantConfig(format=args.format, lut_bits=10), X[:1000])
    X_int, _ = q.quantize_inputs(X)
    X_norm = fm.normalize(X)

    t_float = median_seconds(lambda: fm.forward(X_norm), args.repeats)
    t_int = median_seconds(lambda: q.predict(X_int), args.repeats)
    t_trace = median_seconds(lambda: q.predict(X_int, trace=True), args.repeats)
    res = {
        "network": "64-32-10 sigmoid", "format": args.format, "samples": args.samples, "repeats": args.repeats,
        "float_samples_per_s": args.samples / t_float,
        "integer_samples_per_s": args.samples / t_int,
        "integer_traced_samples_per_s": args.samples / t_trace,
        "integer_over_float": t_float / t_int,
        "numpy": np.__version__, "python": platform.python_version(), "machine": platform.machine(),
    }
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['network']}, {args.format}, {args.samples} samples, median of {args.repeats}:")
        print(f"  float forward     {res['float_samples_per_s']:>12,.0f} samples/s")
        print(f"  integer model     {res['integer_samples_per_s']:>12,.0f} samples/s")
        print(f"  integer (traced)  {res['integer_traced_samples_per_s']:>12,.0f} samples/s")
        print(f"  integer / float   {res['integer_over_float']:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
