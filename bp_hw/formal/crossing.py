"""The board top's clock-domain crossing (:class:`~bp_hw.boards.crossing.StreamCrossing`) under any two clocks.

The proof has one clock; the crossing's two domains are given enables the solver picks at every step
(``tick_i``, ``tick_o``: the sending domain ticks, the receiving one, both or neither), so every
interleaving of two unrelated clocks' edges is a trace. Signals that come from a domain's registers
change only after that domain's ticks: assumed of the environment (``i.valid``, ``i.payload``,
``o.ready``), and true of the crossing by construction.

:class:`CrossingStreams` drives the crossing from free inputs (the sender keeps the stream contract,
assumed) and asserts:

* ``o`` keeps the contract: once ``o.valid`` is high at a receiving tick without ``o.ready``, valid and
  payload hold until the transfer;
* transfers out <= transfers in, and at most one in flight;
* the payload of the watched transfer out (the solver picks which input transfer to watch) is that of
  the input transfer with the same count: nothing lost, duplicated or reordered, whatever the clocks.

Covers: a transfer out, a stalled output taken, a stalled input. The metastability of the
synchronisers is not modelled (each synchroniser stage is a register of its domain).

``mutant="acknowledge_on_sight"`` builds a crossing whose receiver acknowledges a transfer as soon
as it sees it, taken or not: the sender may then overwrite a payload still offered, and the proof
must reject it.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cover, DomainRenamer, Elaboratable, EnableInserter, Module, ResetSignal, Signal
from amaranth.lib.cdc import FFSynchronizer

from ..boards.crossing import StreamCrossing
from .streams import Counter

__all__ = ["MUTANTS", "CrossingStreams"]

MUTANTS = {"acknowledge_on_sight": "crossing"}


class _AcknowledgeOnSight(StreamCrossing):
    """Broken on purpose: the receiving side acknowledges a transfer when it sees it, not when it is taken."""

    def elaborate(self, platform):
        m = Module()
        held = Signal.like(self.i.payload)
        req, ack, req_o, ack_i, pending = Signal(), Signal(), Signal(), Signal(), Signal()
        m.submodules.req_sync = FFSynchronizer(req, req_o, o_domain=self._o_domain)
        m.submodules.ack_sync = FFSynchronizer(ack, ack_i, o_domain=self._i_domain)
        m.d.comb += self.i.ready.eq(req == ack_i)
        with m.If(self.i.valid & self.i.ready):
            m.d[self._i_domain] += [held.eq(self.i.payload), req.eq(~req)]
        m.d.comb += [self.o.valid.eq((req_o != ack) | pending), self.o.payload.eq(held)]
        with m.If(req_o != ack):
            m.d[self._o_domain] += [ack.eq(req_o), pending.eq(~self.o.ready)]
        with m.Elif(self.o.ready):
            m.d[self._o_domain] += pending.eq(0)
        return m


def _from_registers(m, tick, value, name: str):
    """Assume ``value`` changes only in the step after ``tick`` (it comes from that domain's registers)."""
    before, ticked = Signal(len(value), name=f"{name}_prev"), Signal(name=f"{name}_ticked")
    m.d.sync += [before.eq(value), ticked.eq(tick)]
    started = Signal(name=f"{name}_started")
    m.d.sync += started.eq(1)
    m.d.comb += Assume(~started | ticked | (value == before), f"{name} changes only after its clock's edge")


class CrossingStreams(Elaboratable):
    """The formal wrapper around one :class:`StreamCrossing` of ``width`` payload bits.

    Free inputs (:attr:`ports`): ``tick_i``, ``tick_o`` (the two clocks' edges), ``i_valid``,
    ``i_payload``, ``o_ready`` and ``pick`` (the input transfer to watch)."""

    def __init__(self, width: int, *, limit: int = 63, mutant: str | None = None):
        if mutant is not None and mutant not in MUTANTS:
            raise ValueError(f"unknown mutant {mutant!r}; choose from {sorted(MUTANTS)}")
        self.width, self.limit, self.mutant = width, limit, mutant
        self.crossing = (_AcknowledgeOnSight if mutant else StreamCrossing)(width, "cross_i", "cross_o")
        self.tick_i, self.tick_o = Signal(), Signal()
        self.i_valid, self.i_payload, self.o_ready, self.pick = Signal(), Signal(width), Signal(), Signal()
        self.ports = (self.tick_i, self.tick_o, self.i_valid, self.i_payload, self.o_ready, self.pick)

    def elaborate(self, platform):
        m = Module()
        x = self.crossing
        ticked = EnableInserter({"cross_i": self.tick_i, "cross_o": self.tick_o})(x)
        m.submodules.crossing = DomainRenamer({"cross_i": "sync", "cross_o": "sync"})(ticked)
        m.d.comb += Assume(~ResetSignal(), "reset stays low: registers start at their initial values")
        m.d.comb += [x.i.valid.eq(self.i_valid), x.i.payload.eq(self.i_payload), x.o.ready.eq(self.o_ready)]
        _from_registers(m, self.tick_i, self.i_valid, "i_valid")
        _from_registers(m, self.tick_i, self.i_payload, "i_payload")
        _from_registers(m, self.tick_o, self.o_ready, "o_ready")

        # the sender keeps the contract at its ticks (assumed); the crossing's output keeps it (asserted)
        in_fire = self.tick_i & x.i.valid & x.i.ready
        out_fire = self.tick_o & x.o.valid & x.o.ready
        i_stalled, i_before = Signal(), Signal(self.width)
        with m.If(self.tick_i):
            m.d.sync += [i_stalled.eq(x.i.valid & ~x.i.ready), i_before.eq(x.i.payload)]
        m.d.comb += Assume(~i_stalled | (x.i.valid & (x.i.payload == i_before)), "i: valid and payload hold")
        o_stalled, o_before = Signal(), Signal(self.width)
        with m.If(self.tick_o):
            m.d.sync += [o_stalled.eq(x.o.valid & ~x.o.ready), o_before.eq(x.o.payload)]
        m.d.comb += Assert(~o_stalled | (x.o.valid & (x.o.payload == o_before)),
                           "o: valid and payload hold until the transfer")

        n_in = Counter(m, in_fire, self.limit, "transfers_in").value
        n_out = Counter(m, out_fire, self.limit, "transfers_out").value
        full = n_in == self.limit
        m.d.comb += [Assert(full | (n_out <= n_in), "no transfer out without one in"),
                     Assert(full | (n_in <= n_out + 1), "at most one transfer in flight")]

        armed = Signal()
        index, payload = Signal.like(n_in), Signal(self.width)
        with m.If(in_fire & self.pick & ~armed):
            m.d.sync += [armed.eq(1), index.eq(n_in), payload.eq(x.i.payload)]
        watched = armed & out_fire & (n_out == index)
        m.d.comb += Assert(full | ~watched | (x.o.payload == payload), "the watched transfer comes out unchanged")
        m.d.comb += [Cover(out_fire & (n_out == 2), "a third transfer out"),
                     Cover(o_stalled & out_fire, "a stalled output taken"),
                     Cover(self.tick_i & x.i.valid & ~x.i.ready & (n_out > 0), "a stalled input after a transfer")]
        return m
