"""The board top's clock-domain crossings (boards/crossing.py) in Amaranth's simulator, two clocks.

Every transfer sent through a StreamCrossing comes out once, in order, with random stalls on both
sides and either clock the faster; a crossing that acknowledges a transfer before it is taken lets
the sender overwrite it, and the same check sees transfers lost. NetworkCrossing keeps a load word ahead of the
beat sent after it and splits them by the tag.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import ClockDomain, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from bp_hw.boards.crossing import NETWORK_DOMAIN, NetworkCrossing, StreamCrossing

WIDTH = 12


def _run_crossing(crossing, i_period, o_period, n, seed):
    """Send ``n`` random words through ``crossing`` (i in ``a``, o in ``b``) with random stalls; return
    (sent, received)."""
    m = Module()
    m.domains.a = ClockDomain("a")
    m.domains.b = ClockDomain("b")
    m.submodules.x = crossing
    rng = random.Random(seed)
    sent = [rng.randrange(1 << WIDTH) for _ in range(n)]
    received = []
    sim = Simulator(m)
    sim.add_clock(i_period, domain="a")
    sim.add_clock(o_period, domain="b")

    async def source(ctx):
        for word in sent:
            while rng.random() < 0.3:
                await ctx.tick("a")
            ctx.set(crossing.i.valid, 1)
            ctx.set(crossing.i.payload, word)
            await ctx.tick("a").until(crossing.i.ready)
            ctx.set(crossing.i.valid, 0)

    async def sink(ctx):
        ticks = 0
        while len(received) < n and ticks < 60 * n:
            ready = rng.random() < 0.6
            ctx.set(crossing.o.ready, ready)
            _, _, valid, payload = await ctx.tick("b").sample(crossing.o.valid, crossing.o.payload)
            ticks += 1
            if valid and ready:
                received.append(payload)

    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    return sent, received


def _same_stream(sent, received) -> str | None:
    """None when ``received`` is ``sent``; else what differs (lost, duplicated or reordered)."""
    if received == sent:
        return None
    if len(received) < len(sent):
        return f"{len(sent) - len(received)} transfers lost"
    first = next(k for k, (a, b) in enumerate(zip(sent, received)) if a != b)
    return f"transfer {first}: sent {sent[first]}, received {received[first]}"


@pytest.mark.parametrize("i_period,o_period", [(83e-9, 20e-9), (20e-9, 83e-9), (21e-9, 20e-9)],
                         ids=["slow-to-fast", "fast-to-slow", "near-equal"])
def test_every_transfer_crosses_once_in_order(i_period, o_period):
    sent, received = _run_crossing(StreamCrossing(WIDTH, "a", "b"), i_period, o_period, 200, seed=7)
    assert _same_stream(sent, received) is None


class _AcknowledgeOnSight(StreamCrossing):
    """Broken on purpose: the receiving side acknowledges a transfer as soon as it sees it, taken or
    not, so the sender may overwrite the payload the receiver has not taken yet."""

    def elaborate(self, platform):
        m = Module()
        held, req, ack, req_o, ack_i = Signal(WIDTH), Signal(), Signal(), Signal(), Signal()
        m.submodules.req_sync = FFSynchronizer(req, req_o, o_domain="b")
        m.submodules.ack_sync = FFSynchronizer(ack, ack_i, o_domain="a")
        m.d.comb += self.i.ready.eq(req == ack_i)
        with m.If(self.i.valid & self.i.ready):
            m.d.a += [held.eq(self.i.payload), req.eq(~req)]
        pending = Signal()
        m.d.comb += [self.o.valid.eq((req_o != ack) | pending), self.o.payload.eq(held)]
        with m.If(req_o != ack):
            m.d.b += [ack.eq(req_o), pending.eq(~self.o.ready)]
        with m.Elif(self.o.ready):
            m.d.b += pending.eq(0)
        return m


def test_a_crossing_that_acknowledges_before_the_transfer_is_caught():
    sent, received = _run_crossing(_AcknowledgeOnSight(WIDTH, "a", "b"), 20e-9, 20e-9, 200, seed=7)
    assert _same_stream(sent, received) is not None


class _Recorder(wiring.Component):
    """A stand-in network: takes beats and load words (always ready), records their order, echoes
    each beat on ``o``."""

    def __init__(self):
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(8)),
                          "ld": In(stream.Signature(data.StructLayout({"data": 6, "addr": 3})))})
        self.log = []

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.ld.ready.eq(1), self.i.ready.eq(~self.o.valid | self.o.ready)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(self.i.payload)]
        return m


def test_network_crossing_keeps_loads_ahead_of_the_beats_after_them():
    net = _Recorder()
    top = NetworkCrossing(net)
    m = Module()
    m.domains.sync = ClockDomain("sync")
    m.domains.net = ClockDomain(NETWORK_DOMAIN)
    m.submodules.top = top
    sim = Simulator(m)
    sim.add_clock(83e-9, domain="sync")
    sim.add_clock(20e-9, domain=NETWORK_DOMAIN)
    events, outputs = [], []
    plan = [("ld", (k, 40 + k)) for k in range(5)] + [("i", 9), ("ld", (6, 33)), ("i", 10), ("i", 11)]

    async def host(ctx):
        for kind, value in plan:
            port = top.ld if kind == "ld" else top.i
            ctx.set(port.valid, 1)
            if kind == "ld":
                ctx.set(port.payload, {"addr": value[0], "data": value[1]})
            else:
                ctx.set(port.payload, value)
            await ctx.tick().until(port.ready)
            ctx.set(port.valid, 0)

    async def watch(ctx):
        async for _, _, ldv, ldp, iv, ip, ir in ctx.tick(NETWORK_DOMAIN).sample(
                net.ld.valid, net.ld.payload, net.i.valid, net.i.payload, net.i.ready):
            if ldv:
                events.append(("ld", (ldp.addr, ldp.data)))
            if iv and ir:
                events.append(("i", ip))

    async def collect(ctx):
        ctx.set(top.o.ready, 1)
        while len(outputs) < 3:
            _, _, valid, payload = await ctx.tick().sample(top.o.valid, top.o.payload)
            if valid:
                outputs.append(payload)

    sim.add_testbench(host, background=True)
    sim.add_testbench(watch, background=True)
    sim.add_testbench(collect)
    sim.run()
    assert events == plan
    assert outputs == [9, 10, 11]
