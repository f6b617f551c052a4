"""Stream properties of the inference network (:class:`~bp_hw.hdl.network.Network`) of a plan.

:class:`NetworkStreams` drives the network from free inputs (the solver picks ``i.valid``, the input
payload and ``o.ready`` every cycle; the input keeps the stream contract, assumed) and asserts:

* ``o`` keeps the contract: a stalled ``o.valid`` and ``o.payload`` hold until the transfer;
* no output without an input: vectors out <= vectors in, at every cycle (with beats in, a vector is
  in at its last beat);
* the same for every layer engine's output stream inside the network (between two layers joined
  by a stream: a memory link hands on rows, and the counts stop there): it holds while stalled, and
  each layer hands on no more vectors than the one before it did;
* with ``latency=True`` ``o.ready`` is held high (assumed) and one input transfer that meets an empty
  network (every earlier vector out), chosen by the solver, is watched: its output (the one whose
  count matches) transfers at most ``plan.latency`` cycles after it, so it is not lost, duplicated,
  reordered or late. The manifest states that latency. (Behind earlier samples it need not hold: on
  iris at P = 8,3 the second layer's 8-cycle interval is longer than the first's 4, samples queue
  between them, and the proof without the empty-network condition fails at step 37.)

The layers' arithmetic is cut (:data:`CUT`). Covers show the properties are not vacuous: an output transfer, a stalled output, a stalled input
with a vector inside (an input stalled after an output can be out of a bounded run's reach: on digits
64-32-10 at P = 16,10 the first layer takes a vector every 128 cycles),
and (with ``latency``) the watched output arriving exactly ``plan.latency`` cycles after its input.

``mutant`` builds a deliberately broken network for the proofs to reject (:data:`MUTANTS`): the
network with an output stage that forgets a stalled payload or hands an output twice, or (for the
latency property) a manifest whose latency is one cycle short.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Mux, ResetSignal, Signal

from ..hdl.network import Network
from ..plan.hardware import HardwarePlan
from .streams import Counter, keeps_contract

__all__ = ["CUT", "MUTANTS", "NetworkStreams"]

#: The cut points of the stream proofs (Yosys selections): every layer's MAC lanes, rescale,
#: activation and constant weight and bias memories give free values, so the proofs hold whatever
#: the arithmetic computes (its values are the neuron proof's and co-simulation's business).
CUT = ("top.net.layer*/mac* top.net.layer*/rescale* top.net.layer*/act* top.net.layer*/wrom* top.net.layer*/brom*",)

#: The broken variants, and the property each must break.
MUTANTS = {
    "forgets_payload": "stream",    # a stalled output's payload changes (its low bit flips) while stalled
    "duplicates": "stream",         # an output transferred is offered once more
    "short_latency": "latency",     # the bound checked is plan.latency - 1
}


class NetworkStreams(Elaboratable):
    """The formal wrapper around one inference :class:`Network`.

    Free inputs (:attr:`ports`): ``i_valid``, ``i_payload`` (the input beat's bits), ``o_ready``, and
    ``pick`` (the solver's choice of the input transfer to watch). ``limit`` bounds the counters
    (a proof of ``depth`` cycles sees fewer than ``depth`` transfers)."""

    def __init__(self, plan: HardwarePlan, *, latency: bool = False, limit: int = 255, mutant: str | None = None):
        if plan.training is not None:
            raise ValueError("NetworkStreams takes an inference plan")
        if mutant is not None and mutant not in MUTANTS:
            raise ValueError(f"unknown mutant {mutant!r}; choose from {sorted(MUTANTS)}")
        self.plan = plan
        self.latency = latency
        self.limit = limit
        self.mutant = mutant
        self.net = Network(plan, primitives=False)
        self.i_valid = Signal()
        self.i_payload = Signal(len(self.net.i.payload.as_value()))
        self.o_ready = Signal()
        self.pick = Signal()
        self.ports = (self.i_valid, self.i_payload, self.o_ready, self.pick)

    def elaborate(self, platform):
        m = Module()
        m.submodules.net = net = self.net
        m.d.comb += Assume(~ResetSignal(), "reset stays low: registers start at their initial values")
        m.d.comb += [net.i.valid.eq(self.i_valid), net.i.payload.eq(self.i_payload)]
        if self.plan.load is not None:
            m.d.comb += net.ld.valid.eq(0)      # the weights' contents are whatever the solver picks
        in_fire = net.i.valid & net.i.ready
        keeps_contract(m, net.i.valid, net.i.ready, net.i.payload.as_value(), "i", assume=True)

        # the checked output: the network's, or a broken stage after it
        o_valid, o_payload = Signal(), Signal(len(net.o.payload.as_value()))
        m.d.comb += net.o.ready.eq(self.o_ready)
        if self.mutant == "forgets_payload":
            stalled = Signal()
            m.d.sync += stalled.eq(net.o.valid & ~self.o_ready)
            m.d.comb += [o_valid.eq(net.o.valid), o_payload.eq(net.o.payload.as_value() ^ stalled)]
        elif self.mutant == "duplicates":
            again = Signal()
            m.d.sync += again.eq(net.o.valid & self.o_ready & ~again)
            m.d.comb += [o_valid.eq(net.o.valid | again), o_payload.eq(net.o.payload.as_value()),
                         net.o.ready.eq(self.o_ready & ~again)]
        else:
            m.d.comb += [o_valid.eq(net.o.valid), o_payload.eq(net.o.payload.as_value())]
        out_fire = o_valid & self.o_ready
        stalled_out = keeps_contract(m, o_valid, self.o_ready, o_payload, "o")

        # vectors in: a vector's last beat
        beats = self.plan.inp.beats
        if beats > 1:
            beat = Signal(range(beats))
            with m.If(in_fire):
                m.d.sync += beat.eq(Mux(beat == beats - 1, 0, beat + 1))
            vec_in = in_fire & (beat == beats - 1)
        else:
            vec_in = in_fire
        n_in = Counter(m, vec_in, self.limit, "vectors_in").value
        n_out = Counter(m, out_fire, self.limit, "vectors_out").value
        m.d.comb += Assert((n_out <= n_in) | (n_in == self.limit), "no output without an input")
        # the same between the layers: each engine's o that the next layer takes as a stream (not a
        # memory link, which hands on rows) keeps the contract and hands on no more vectors than it took
        upstream = n_in     # vectors into the layer, where counted (None just past a memory link)
        for l, (engine, mem) in enumerate(zip(net.engines[:-1], net.mem_links)):
            if mem:
                upstream = None
                continue
            keeps_contract(m, engine.o.valid, engine.o.ready, engine.o.payload.as_value(), f"layer{l}.o")
            n_l = Counter(m, engine.o.valid & engine.o.ready, self.limit, f"layer{l}_out").value
            if upstream is not None:
                m.d.comb += Assert((n_l <= upstream) | (upstream == self.limit),
                                   f"layer {l}: no output without an input")
            upstream = n_l
        if len(net.engines) > 1 and upstream is not None:
            m.d.comb += Assert((n_out <= upstream) | (upstream == self.limit),
                               "the last layer: no output without an input")
        m.d.comb += [Cover(out_fire, "an output transfer"), Cover(stalled_out & out_fire, "a stalled output taken"),
                     Cover(net.i.valid & ~net.i.ready & (n_in > n_out), "a stalled input with a vector inside")]

        if self.latency:
            bound = self.plan.latency - (self.mutant == "short_latency")
            m.d.comb += Assume(self.o_ready, "o.ready held high")
            armed, done = Signal(), Signal()
            index = Signal.like(n_in)
            timer = Signal(range(bound + 2))
            # the watched input meets an empty network (every earlier vector out): plan.latency is the
            # latency when nothing stalls; behind earlier samples a slower later layer makes it wait
            with m.If(vec_in & self.pick & ~armed & (n_in == n_out)):
                m.d.sync += [armed.eq(1), index.eq(n_in), timer.eq(1)]
            with m.If(armed & ~done & (timer <= bound)):
                m.d.sync += timer.eq(timer + 1)
            watched_out = armed & ~done & out_fire & (n_out == index)
            with m.If(watched_out):
                m.d.sync += done.eq(1)
            m.d.comb += [
                Assert(~armed | done | (timer <= bound), "the watched input's output within the latency"),
                Cover(watched_out & (timer == bound), "the watched output exactly at the latency"),
            ]
        return m
