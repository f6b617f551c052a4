"""Drive a :class:`~bp_hw.hdl.backprop.TrainNetwork` in Amaranth's Python simulator.

:func:`run_training` streams samples ``(x, t, train)`` through ``i`` (with
optional random stalls on both streams), collects ``o``, records the cycle
of every input transfer, and reads every weight and bias back through the
access port at chosen points (when the design is idle). The host-side flat
parameter vector follows the access port's address map
(:func:`flat_params`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from ..fixed.qmodel import QModel


def flat_params(qmodel: QModel) -> np.ndarray:
    """Every weight (row-major) then every bias, layer by layer: the access port's address order."""
    return np.concatenate([np.concatenate([L.weights.reshape(-1), L.biases]) for L in qmodel.layers])


def unflat_params(qmodel: QModel, flat) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` per layer from a flat vector in address order."""
    out, pos = [], 0
    flat = np.asarray(flat, dtype=np.int64)
    for L in qmodel.layers:
        W = flat[pos:pos + L.macs].reshape(L.fan_out, L.fan_in)
        pos += L.macs
        out.append((W, flat[pos:pos + L.fan_out]))
        pos += L.fan_out
    return out


def load_params(qmodel: QModel, flat) -> QModel:
    """A copy of ``qmodel`` holding the parameters ``flat`` (address order)."""
    q = QModel.from_dict(qmodel.to_dict())
    for L, (W, b) in zip(q.layers, unflat_params(qmodel, flat)):
        L.weights, L.biases = W.copy(), b.copy()
    return q


def reference_run(qmodel: QModel, spec, parallel, X, T, train=None, readback=()):
    """What :func:`run_training` must see, from the spec (:class:`FixedTrainer`).

    Returns ``(outputs, snapshots)``: every sample's forward outputs and the
    flat parameters after each sample in ``readback``.
    """
    from ..fixed.trainer import FixedTrainer
    from .backprop import train_spec_of
    from .network import parse_parallel
    trainer = FixedTrainer(qmodel, train_spec_of(spec), parse_parallel(parallel, len(qmodel.layers)))
    X = np.asarray(X, dtype=np.int64)
    T = np.asarray(T, dtype=np.int64)
    train = np.ones(len(X), dtype=np.int64) if train is None else np.asarray(train)
    readback = set(int(s) for s in readback)
    outputs, snapshots = [], {}
    for s in range(len(X)):
        if train[s]:
            outputs.append(trainer.step(X[s], T[s]).outputs)
        else:
            outputs.append(trainer.model.predict(X[s:s + 1])[0])
        if s in readback:
            snapshots[s] = flat_params(trainer.model)
    return np.array(outputs, dtype=np.int64).reshape(len(X), -1), snapshots


@dataclass
class TrainRun:
    outputs: np.ndarray                      # (n, n_out) forward outputs, in order
    in_cycles: np.ndarray                    # cycle of every input transfer
    out_cycles: np.ndarray                   # cycle of every output transfer
    snapshots: dict = field(default_factory=dict)   # sample index -> flat params read after it
    cycles: int = 0                          # total simulated cycles
    initial: np.ndarray | None = None        # params read before the first sample (when asked)


def run_training(dut, X, T, train=None, readback=(), stall_in: float = 0.0, stall_out: float = 0.0,
                 seed: int = 0, read_initial: bool = False, load=None, max_cycles: int | None = None,
                 vcd: str | None = None) -> TrainRun:
    """Stream samples through ``dut`` and read its parameters back after the samples in ``readback``.

    ``train`` (default all ones) is the per-sample mode bit; ``load`` (a flat
    parameter vector) is written through the access port before the first
    sample; ``read_initial`` reads the parameters before it (after ``load``).
    """
    X = np.asarray(X, dtype=np.int64)
    T = np.asarray(T, dtype=np.int64)
    n = X.shape[0]
    train = np.ones(n, dtype=np.int64) if train is None else np.asarray(train, dtype=np.int64)
    readback = set(int(s) for s in readback)
    n_out = T.shape[1]
    rng_in = np.random.default_rng(seed)
    rng_out = np.random.default_rng(seed + 1)
    cycle = [0]
    outputs, in_cycles, out_cycles = [], [], []
    run = TrainRun(np.zeros((0, n_out)), np.zeros(0), np.zeros(0))
    depth = dut.access_depth
    lat = dut.READ_LATENCY
    limit = max_cycles or (n + 10) * 50_000

    # a free-running counter in the simulated design: cheaper than a Python process woken every cycle
    top = Module()
    top.submodules.dut = dut
    counter = Signal(40)
    top.d.sync += counter.eq(counter + 1)
    sim = Simulator(top)
    sim.add_clock(1e-8)

    def now(ctx):
        cycle[0] = ctx.get(counter)
        return cycle[0]

    async def wait_idle(ctx, count):
        while len(outputs) < count or ctx.get(dut.busy):
            await ctx.tick()
            if now(ctx) > limit:
                raise TimeoutError(f"no progress after {limit} cycles ({len(outputs)}/{n} outputs)")

    async def read_all(ctx):
        vals = []
        for a in range(depth + lat):
            if a < depth:
                ctx.set(dut.wacc.addr, a)
            await ctx.tick()
            if a + 1 >= lat:
                vals.append(ctx.get(dut.wacc.rdata))
        return np.array(vals[:depth], dtype=np.int64)

    async def write_all(ctx, flat):
        for a, v in enumerate(np.asarray(flat, dtype=np.int64)):
            ctx.set(dut.wacc.addr, a)
            ctx.set(dut.wacc.wdata, int(v))
            ctx.set(dut.wacc.we, 1)
            await ctx.tick()
        ctx.set(dut.wacc.we, 0)

    async def source(ctx):
        if load is not None:
            await write_all(ctx, load)
        if read_initial:
            await wait_idle(ctx, 0)
            run.initial = await read_all(ctx)
        for s in range(n):
            while stall_in and rng_in.random() < stall_in:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            ctx.set(dut.i.payload, {"x": [int(v) for v in X[s]], "t": [int(v) for v in T[s]],
                                    "train": int(train[s])})
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            in_cycles.append(now(ctx))
            if s in readback:
                ctx.set(dut.i.valid, 0)
                await wait_idle(ctx, s + 1)
                run.snapshots[s] = await read_all(ctx)
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        while len(outputs) < n:
            ready = not (stall_out and rng_out.random() < stall_out)
            ctx.set(dut.o.ready, int(ready))
            if ready:
                (payload,) = await ctx.tick().sample(dut.o.payload).until(dut.o.valid)
            else:
                await ctx.tick()
                continue
            outputs.append([int(payload[k]) for k in range(n_out)])
            out_cycles.append(now(ctx))
            if cycle[0] > limit:
                raise TimeoutError(f"no progress after {limit} cycles ({len(outputs)}/{n} outputs)")

    sim.add_testbench(source)
    sim.add_testbench(sink)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    run.outputs = np.array(outputs, dtype=np.int64).reshape(-1, n_out)
    run.in_cycles = np.array(in_cycles)
    run.out_cycles = np.array(out_cycles)
    run.cycles = max([0, *in_cycles, *out_cycles])
    return run
