"""Drive a streaming component in Amaranth's Python simulator (tests, cycle benchmarks).

:func:`run_stream` pushes input vectors through a component's ``i`` stream
and collects its ``o`` stream, optionally with random valid/ready stalls,
and records the clock cycle of every transfer so that latency and initiation
interval can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator


@dataclass
class StreamRun:
    outputs: np.ndarray          # (n, n_out) int64, in arrival order
    in_cycles: np.ndarray        # cycle of each input transfer
    out_cycles: np.ndarray       # cycle of each output transfer
    taps: dict                   # name -> (n, width) int64 vectors seen on each tap, in order

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


def run_stream(dut, inputs, stall_in: float = 0.0, stall_out: float = 0.0, seed: int = 0,
               max_cycles: int | None = None, tap_names=(), vcd: str | None = None) -> StreamRun:
    """Stream ``inputs`` (n, n_in) through ``dut.i`` -> ``dut.o``; each cycle the source withholds
    ``valid`` with probability ``stall_in`` and the sink withholds ``ready`` with ``stall_out``."""
    inputs = np.asarray(inputs, dtype=np.int64)
    n, n_in = inputs.shape
    n_out = dut.o.payload.shape().length
    rng_in = np.random.default_rng(seed)
    rng_out = np.random.default_rng(seed + 1)
    cycle = [0]
    outputs, in_cycles, out_cycles = [], [], []
    taps = {name: [] for name in tap_names}
    limit = max_cycles or (n + 10) * 10_000

    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def clock(ctx):
        async for _ in ctx.tick():
            cycle[0] += 1

    async def source(ctx):
        for vec in inputs:
            while stall_in and rng_in.random() < stall_in:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            ctx.set(dut.i.payload, [int(v) for v in vec])
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            in_cycles.append(cycle[0])
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        while len(outputs) < n:
            ready = not (stall_out and rng_out.random() < stall_out)
            ctx.set(dut.o.ready, int(ready))
            _, _, valid, payload, *tap_vals = await ctx.tick().sample(
                dut.o.valid, dut.o.payload, *[x for name in tap_names for x in
                                              (getattr(dut, name).valid, getattr(dut, name).payload)])
            for t, name in enumerate(tap_names):
                if tap_vals[2 * t]:
                    width = getattr(dut, name).payload.shape().length
                    taps[name].append(_ints(tap_vals[2 * t + 1], width))
            if valid and ready:
                outputs.append(_ints(payload, n_out))
                out_cycles.append(cycle[0])
            if cycle[0] > limit:
                raise TimeoutError(f"no progress after {limit} cycles ({len(outputs)}/{n} outputs)")

    sim.add_process(clock)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return StreamRun(np.array(outputs, dtype=np.int64).reshape(-1, n_out), np.array(in_cycles),
                     np.array(out_cycles), {k: np.array(v, dtype=np.int64) for k, v in taps.items()})
