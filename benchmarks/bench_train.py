#!/usr/bin/env python3
"""Training throughput of the numpy reference trainer, and of the same network in PyTorch.

A 64-32-10 sigmoid MLP, MSE loss (1/2 sum (t - o)^2, batch mean), plain SGD,
mini-batches of 32, a fresh random order every epoch. Throughput is training
samples per second over whole epochs (forward, backward, update, shuffling).

The numpy side is the trainer itself (``bp_hw.reference.Trainer.fit_epoch``).
When PyTorch is installed, the same network and batch run on the CPU in the
same process: float32 (PyTorch's default) and float64 (the reference's
precision), each with PyTorch's default thread count and with one thread.
Measurements are interleaved so that load from other processes hits every
contender alike; each figure is the median of ``--repeats``. Before timing, the
script checks that both implementations compute the same update (float64,
identical start weights and batches).

    python benchmarks/bench_train.py [--repeats 7] [--samples 4096] [--epochs 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

from bp_hw.data import one_hot_targets
from bp_hw.reference import TrainConfig, Trainer, init_weights

LAYERS = [64, 32, 10]


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 10-class data with 64 features (the shape of 8x8 digits)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, 64))
    y = rng.integers(0, 10, n)
    X = centres[y] + rng.normal(scale=1.5, size=(n, 64))
    return X, one_hot_targets(y, 10, "sigmoid")


def numpy_trainer(batch_size: int, lr: float, seed: int = 0) -> Trainer:
    cfg = TrainConfig(layers=LAYERS, activation="sigmoid", output_activation="sigmoid", loss="mse",
                      optimizer="sgd", lr=lr, batch_size=batch_size, seed=seed, init="xavier")
    w, b = init_weights(LAYERS, "xavier", seed)
    return Trainer(cfg, w, b)


class TorchRunner:
    """The same MLP, loss, optimizer and batching in PyTorch."""

    def __init__(self, torch, dtype, threads: int, batch_size: int, lr: float, X, T, weights=None):
        self.torch, self.threads, self.batch_size = torch, threads, batch_size
        nn = torch.nn
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(64, 32), nn.Sigmoid(), nn.Linear(32, 10), nn.Sigmoid()).to(dtype)
        if weights is not None:
            with torch.no_grad():
                for layer, (W, b) in zip((self.net[0], self.net[2]), weights):
                    layer.weight.copy_(torch.from_numpy(W))
                    layer.bias.copy_(torch.from_numpy(b))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=lr)
        self.X = torch.from_numpy(X).to(dtype)
        self.T = torch.from_numpy(T).to(dtype)

    def step(self, xb, tb):
        self.opt.zero_grad(set_to_none=True)
        o = self.net(xb)
        loss = 0.5 * ((o - tb) ** 2).sum() / xb.shape[0]
        loss.backward()
        self.opt.step()

    def fit_epoch(self):
        n, bs = self.X.shape[0], self.batch_size
        order = self.torch.randperm(n)
        Xs, Ts = self.X[order], self.T[order]
        for i in range(0, n, bs):
            self.step(Xs[i:i + bs], Ts[i:i + bs])


def check_same_update(torch, X, T, batch_size, lr, steps=20) -> float:
    """Largest weight difference after ``steps`` identical float64 SGD steps (should be ~1e-15)."""
    trainer = numpy_trainer(batch_size, lr)
    start = [(W.copy(), b.copy()) for W, b in zip(trainer.network.weights, trainer.network.biases)]
    runner = TorchRunner(torch, torch.float64, torch.get_num_threads(), batch_size, lr, X, T, weights=start)
    for i in range(steps):
        sl = slice(i * batch_size, (i + 1) * batch_size)
        trainer.step(X[sl], T[sl])
        runner.step(runner.X[sl], runner.T[sl])
    diffs = []
    for layer, W, b in zip((runner.net[0], runner.net[2]), trainer.network.weights, trainer.network.biases):
        diffs.append(np.abs(layer.weight.detach().numpy() - W).max())
        diffs.append(np.abs(layer.bias.detach().numpy() - b).max())
    return float(max(diffs))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=4096, help="training samples per epoch (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per timed repeat (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats; the median is reported (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = p.parse_args(argv)

    X, T = make_data(args.samples)
    work = args.samples * args.epochs

    contenders: dict[str, tuple] = {}  # name -> (setup, run one epoch)
    trainer = numpy_trainer(args.batch_size, args.lr)
    contenders["numpy (bp-hw reference, float64)"] = (lambda: None, lambda: trainer.fit_epoch(X, T))

    torch = None
    info = {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count(),
            "machine": platform.machine(), "network": "-".join(map(str, LAYERS)) + " sigmoid, MSE, SGD",
            "batch_size": args.batch_size, "samples_per_epoch": args.samples, "epochs_per_repeat": args.epochs,
            "repeats": args.repeats}
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
    if torch is not None:
        info["torch"] = torch.__version__
        default_threads = torch.get_num_threads()
        info["torch_default_threads"] = default_threads
        info["max_abs_weight_difference_after_20_float64_steps"] = check_same_update(
            torch, X, T, args.batch_size, args.lr)
        thread_options = sorted({default_threads, 1}, reverse=True)
        for dtype_name in ("float32", "float64"):
            for threads in thread_options:
                runner = TorchRunner(torch, getattr(torch, dtype_name), threads, args.batch_size, args.lr, X, T)
                name = f"pytorch {torch.__version__} CPU, {dtype_name}, {threads} thread{'s' * (threads > 1)}"
                contenders[name] = (lambda th=threads: torch.set_num_threads(th), runner.fit_epoch)

    # Warm up every contender (allocations, lazy initialisation), then interleave timed repeats.
    for setup, epoch in contenders.values():
        setup()
        epoch()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, (setup, epoch) in contenders.items():
            setup()
            t0 = time.perf_counter()
            for _ in range(args.epochs):
                epoch()
            times[name].append(time.perf_counter() - t0)
    if torch is not None:
        torch.set_num_threads(info["torch_default_threads"])

    rates = {name: work / statistics.median(ts) for name, ts in times.items()}
    numpy_name = next(iter(rates))
    result = {"info": info, "samples_per_second": {k: round(v) for k, v in rates.items()}}
    torch_names = [k for k in rates if k != numpy_name]
    if torch_names:
        best = max(torch_names, key=rates.get)
        result["fastest_pytorch"] = best
        result["numpy_over_fastest_pytorch"] = round(rates[numpy_name] / rates[best], 2)

    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{info['network']}, batch {args.batch_size}, {args.samples} samples x {args.epochs} epochs, "
          f"median of {args.repeats} (python {info['python']}, numpy {info['numpy']}, {info['cpus']} CPUs)")
    if "torch" in info:
        print(f"same update as PyTorch (float64, 20 steps): max |dW| = "
              f"{info['max_abs_weight_difference_after_20_float64_steps']:.1e}")
    width = max(map(len, rates))
    for name, rate in rates.items():
        print(f"  {name:<{width}}  {rate:>12,.0f} samples/s   {rate / rates[numpy_name]:6.2f}x numpy")
    if torch_names:
        print(f"numpy / fastest PyTorch = {result['numpy_over_fastest_pytorch']:.2f}  ({result['fastest_pytorch']})")
    elif args.no_torch:
        print("PyTorch skipped (--no-torch)")
    else:
        print("PyTorch is not installed: no comparison (pip install torch to add one)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
