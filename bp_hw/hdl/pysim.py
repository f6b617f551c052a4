"""Drive the generated components in Amaranth's Python simulator (tests, cycle benchmarks).

One bench kit, :class:`StreamBench`: the clock, a free-running cycle counter
inside the simulated design (cheaper than a Python process woken every
cycle), and the drivers of the valid/ready streams with optional random
stalls (the source withholds ``valid``, the sink withholds ``ready``). Two
bodies use it:

* :func:`run_stream` — inference: vectors through ``i`` -> ``o`` of a
  :class:`~bp_hw.hdl.network.Network` or a :class:`~bp_hw.hdl.layer.LayerEngine`,
  the taps sampled on the way;
* :func:`run_training` — a :class:`~bp_hw.hdl.backprop.TrainNetwork`: samples
  ``(x, t, train)`` in, forward outputs out, and every weight and bias read
  back through the access port at chosen points (in the address order of
  :func:`bp_hw.fixed.packing.flat_params`).

Both record the cycle of every transfer, so that latency, initiation
interval and cycles per sample can be measured against the plan. The
expected side is the integer model (``QModel.predict``) or
:meth:`bp_hw.fixed.trainer.FixedTrainer.run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

__all__ = ["StreamRun", "StreamBench", "run_stream", "run_training"]


@dataclass
class StreamRun:
    outputs: np.ndarray                               # (n, n_out) int64, in arrival order
    in_cycles: np.ndarray                             # cycle of each input transfer
    out_cycles: np.ndarray                            # cycle of each output transfer
    taps: dict = field(default_factory=dict)          # name -> (n, width) vectors seen on each tap, in order
    snapshots: dict = field(default_factory=dict)     # training: sample index -> flat params read after it
    initial: np.ndarray | None = None                 # training: params read before the first sample
    cycles: int = 0                                   # the last transfer's cycle

    @property
    def latency(self) -> int:
        """Cycles from the first input transfer to the first output transfer."""
        return int(self.out_cycles[0] - self.in_cycles[0])

    @property
    def interval(self) -> float:
        """Median cycles between consecutive outputs (steady state when nothing stalls)."""
        if len(self.out_cycles) < 2:
            return float("nan")
        return float(np.median(np.diff(self.out_cycles)))


def _ints(value, n: int) -> list[int]:
    return [int(value[k]) for k in range(n)]


class StreamBench:
    """``dut`` in a simulator with a clock, a cycle counter and drivers for its ``i`` and ``o`` streams.

    Cycle ``k`` is the ``k``-th clock edge; a transfer is recorded at the edge
    that completes it. :meth:`check` raises :class:`TimeoutError` past ``limit``
    cycles, so a design that stops answering fails instead of hanging.
    """

    def __init__(self, dut, *, stall_in: float = 0.0, stall_out: float = 0.0, seed: int = 0, limit: int):
        self.dut = dut
        self.stall_in, self.stall_out, self.limit = stall_in, stall_out, limit
        self.rng_in = np.random.default_rng(seed)
        self.rng_out = np.random.default_rng(seed + 1)
        self.n_out = dut.o.payload.shape().length
        self.outputs, self.in_cycles, self.out_cycles = [], [], []
        top = Module()
        top.submodules.dut = dut
        self.counter = Signal(40)
        top.d.sync += self.counter.eq(self.counter + 1)
        self.sim = Simulator(top)
        self.sim.add_clock(1e-8)

    def now(self, ctx) -> int:
        return ctx.get(self.counter)

    def check(self, ctx, want: int):
        if self.now(ctx) > self.limit:
            raise TimeoutError(f"no progress after {self.limit} cycles ({len(self.outputs)}/{want} outputs)")

    async def send(self, ctx, payload, record: bool = True):
        """One transfer on ``i``: ``valid`` withheld at random first, then ``payload`` held until taken
        (its cycle recorded in ``in_cycles`` unless ``record`` is false)."""
        i = self.dut.i
        while self.stall_in and self.rng_in.random() < self.stall_in:
            ctx.set(i.valid, 0)
            await ctx.tick()
        ctx.set(i.payload, payload)
        ctx.set(i.valid, 1)
        await ctx.tick().until(i.ready)
        if record:
            self.in_cycles.append(self.now(ctx))

    async def receive(self, ctx, n: int, watch=(), on_edge=None):
        """Take ``n`` outputs from ``o``, ``ready`` drawn afresh every cycle when the sink stalls.

        ``watch`` signals are sampled at every clock edge and handed to ``on_edge``;
        with none and no stalls, the sink sleeps until ``o.valid`` (or the limit).
        """
        o = self.dut.o
        while len(self.outputs) < n:
            if not watch and not self.stall_out:
                ctx.set(o.ready, 1)
                valid, payload = await ctx.tick().sample(o.valid, o.payload).until(
                    o.valid | (self.counter >= self.limit))
                ready = True
            else:
                ready = not (self.stall_out and self.rng_out.random() < self.stall_out)
                ctx.set(o.ready, int(ready))
                _, _, valid, payload, *seen = await ctx.tick().sample(o.valid, o.payload, *watch)
                if on_edge is not None:
                    on_edge(seen)
            if valid and ready:
                self.outputs.append(_ints(payload, self.n_out))
                self.out_cycles.append(self.now(ctx))
            self.check(ctx, n)

    def run(self, *testbenches, vcd: str | None = None) -> StreamRun:
        for tb in testbenches:
            self.sim.add_testbench(tb)
        if vcd:
            with self.sim.write_vcd(vcd):
                self.sim.run()
        else:
            self.sim.run()
        return StreamRun(np.array(self.outputs, dtype=np.int64).reshape(-1, self.n_out), np.array(self.in_cycles),
                         np.array(self.out_cycles), cycles=max([0, *self.in_cycles, *self.out_cycles]))


# -- inference ---------------------------------------------------------------------------------

def run_stream(dut, inputs, stall_in: float = 0.0, stall_out: float = 0.0, seed: int = 0,
               max_cycles: int | None = None, tap_names=(), vcd: str | None = None, load=None) -> StreamRun:
    """Stream ``inputs`` (n, n_in) through ``dut.i`` -> ``dut.o``; each cycle the source withholds
    ``valid`` with probability ``stall_in`` and the sink withholds ``ready`` with ``stall_out``.
    Where ``dut.i`` takes fewer elements than a vector has, each vector goes as consecutive beats
    (``in_cycles`` then records each vector's last beat).
    The vectors seen on the taps ``tap_names`` (``valid`` for one cycle each) land in ``taps``.
    ``load`` (``(addr, data)`` pairs, :meth:`~bp_hw.plan.hardware.LoadPlan.image`) goes through
    ``dut.ld`` first, one word per cycle."""
    inputs = np.asarray(inputs, dtype=np.int64)
    n = inputs.shape[0]
    per_beat = dut.i.payload.shape().length
    bench = StreamBench(dut, stall_in=stall_in, stall_out=stall_out, seed=seed,
                        limit=max_cycles or (n + 10) * 10_000)
    tap_ports = [getattr(dut, name) for name in tap_names]
    taps = {name: [] for name in tap_names}

    def on_edge(seen):
        for t, (name, port) in enumerate(zip(tap_names, tap_ports)):
            if seen[2 * t]:
                taps[name].append(_ints(seen[2 * t + 1], port.payload.shape().length))

    async def source(ctx):
        if load:
            for addr, word in load:
                ctx.set(dut.ld.payload, {"addr": addr, "data": word})
                ctx.set(dut.ld.valid, 1)
                await ctx.tick().until(dut.ld.ready)
            ctx.set(dut.ld.valid, 0)
            await ctx.tick().repeat(2)   # the last word is written two edges after its transfer
        for vec in inputs:
            beats = [vec[k:k + per_beat] for k in range(0, len(vec), per_beat)]
            for b, beat in enumerate(beats):
                await bench.send(ctx, [int(v) for v in beat], record=b == len(beats) - 1)
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        await bench.receive(ctx, n, [x for port in tap_ports for x in (port.valid, port.payload)], on_edge)

    run = bench.run(source, sink, vcd=vcd)
    run.taps = {k: np.array(v, dtype=np.int64) for k, v in taps.items()}
    return run


# -- training ----------------------------------------------------------------------------------

def run_training(dut, X, T, train=None, readback=(), stall_in: float = 0.0, stall_out: float = 0.0,
                 seed: int = 0, read_initial: bool = False, load=None, max_cycles: int | None = None,
                 vcd: str | None = None) -> StreamRun:
    """Stream samples through a TrainNetwork ``dut`` and read its parameters back after the samples in
    ``readback`` (into ``snapshots``, once the design is idle).

    ``train`` (default all ones) is the per-sample mode bit; ``load`` (a flat
    parameter vector) is written through the access port before the first
    sample; ``read_initial`` reads the parameters before it (after ``load``) into ``initial``.
    """
    X = np.asarray(X, dtype=np.int64)
    T = np.asarray(T, dtype=np.int64)
    n = X.shape[0]
    train = np.ones(n, dtype=np.int64) if train is None else np.asarray(train, dtype=np.int64)
    readback = {int(s) for s in readback}
    tp = dut.plan.training
    depth, lat = tp.access_depth, tp.read_latency
    bench = StreamBench(dut, stall_in=stall_in, stall_out=stall_out, seed=seed, limit=max_cycles or (n + 10) * 50_000)
    acc = dut.wacc
    snapshots, initial = {}, []

    async def wait_idle(ctx, count):
        while len(bench.outputs) < count or ctx.get(dut.busy):
            await ctx.tick()
            bench.check(ctx, n)

    async def read_all(ctx):
        vals = []
        for a in range(depth + lat):
            if a < depth:
                ctx.set(acc.addr, a)
            await ctx.tick()
            if a + 1 >= lat:
                vals.append(ctx.get(acc.rdata))
        return np.array(vals[:depth], dtype=np.int64)

    async def write_all(ctx, flat):
        for a, v in enumerate(np.asarray(flat, dtype=np.int64)):
            ctx.set(acc.addr, a)
            ctx.set(acc.wdata, int(v))
            ctx.set(acc.we, 1)
            await ctx.tick()
        ctx.set(acc.we, 0)

    async def source(ctx):
        if load is not None:
            await write_all(ctx, load)
        if read_initial:
            await wait_idle(ctx, 0)
            initial.append(await read_all(ctx))
        for s in range(n):
            await bench.send(ctx, {"x": [int(v) for v in X[s]], "t": [int(v) for v in T[s]],
                                   "train": int(train[s])})
            if s in readback:
                ctx.set(dut.i.valid, 0)
                await wait_idle(ctx, s + 1)
                snapshots[s] = await read_all(ctx)
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        await bench.receive(ctx, n)

    run = bench.run(source, sink, vcd=vcd)
    run.snapshots = snapshots
    run.initial = initial[0] if initial else None
    return run
