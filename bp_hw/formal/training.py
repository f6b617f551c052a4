"""The training design writes its parameters only where and when it should.

:class:`TrainWrites` drives a :class:`~bp_hw.hdl.backprop.TrainNetwork` from free inputs: samples (any
vector, any target, train or infer; the input keeps the stream contract, assumed), ``o.ready``, and
the weight access port (any address, any data, a write in any cycle, busy or not). Asserted for
every layer ``l``, on the RAM write enables the layer reports (:attr:`TrainLayer.ram_writes`):

* a weight or bias RAM of layer ``l`` is written only inside layer ``l``'s backward window (from
  its ``bwd_start`` to its ``upd_done``: the update, after the error pass for ``l > 0``), or two
  cycles after an access write that the network took (no sample in the datapath: ``busy`` low, or
  high only for the writes of the two cycles before) at an address of layer ``l``
  (``plan.training.address_map()``: ``bases[l]`` up to the layer's size), so an access write
  presented while the network is busy changes nothing;
* the network's output keeps the stream contract.

Covers: the last layer's update write, an access write to each layer, an output taken.

The arithmetic and the memories are cut (every ``$mul`` cell and every memory's read data are free
values; the write enables observed are the layers' own signals, before the memories): which RAM is
written when is decided by the sequencers alone, so the property holds whatever the data are.

Mutant ``neighbour_window``: layer ``l``'s writes checked against layer ``l + 1``'s window (for the
last layer, layer 0's), which the proof must reject.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, ResetSignal, Signal

from ..hdl.backprop import TrainNetwork
from ..plan.hardware import HardwarePlan
from .streams import keeps_contract

__all__ = ["CUT", "MUTANTS", "TrainWrites"]

MUTANTS = {"neighbour_window": "training"}
#: The cut points of the training proof (Yosys selections).
CUT = ("t:$mul", "t:$mem_v2")


class TrainWrites(Elaboratable):
    """The formal wrapper. Free inputs (:attr:`ports`): ``i_valid``, ``i_payload``, ``o_ready``,
    ``addr``, ``we``, ``wdata``."""

    def __init__(self, plan: HardwarePlan, mutant: str | None = None):
        if plan.training is None:
            raise ValueError("TrainWrites takes a training plan")
        if mutant is not None and mutant not in MUTANTS:
            raise ValueError(f"unknown mutant {mutant!r}; choose from {sorted(MUTANTS)}")
        self.plan = plan
        self.mutant = mutant
        self.net = TrainNetwork(plan, primitives=False)
        self.i_valid, self.o_ready, self.we = Signal(), Signal(), Signal()
        self.i_payload = Signal(len(self.net.i.payload.as_value()))
        self.addr = Signal.like(self.net.wacc.addr)
        self.wdata = Signal.like(self.net.wacc.wdata)
        self.ports = (self.i_valid, self.i_payload, self.o_ready, self.addr, self.we, self.wdata)

    def elaborate(self, platform):
        m = Module()
        m.submodules.net = net = self.net
        engines = net.engines
        m.d.comb += Assume(~ResetSignal(), "reset stays low: registers start at their initial values")
        m.d.comb += [net.i.valid.eq(self.i_valid), net.i.payload.eq(self.i_payload), net.o.ready.eq(self.o_ready),
                     net.wacc.addr.eq(self.addr), net.wacc.we.eq(self.we), net.wacc.wdata.eq(self.wdata)]
        keeps_contract(m, net.i.valid, net.i.ready, net.i.payload.as_value(), "i", assume=True)
        keeps_contract(m, net.o.valid, net.o.ready, net.o.payload.as_value(), "o")

        # access writes are taken while no sample is in the datapath: busy low, or busy only with the
        # writes taken in the two cycles before (no sample can start while a write is on its way)
        w1, w2 = Signal(name="write_1"), Signal(name="write_2")
        taken_any = self.we & (~net.busy | w1 | w2)
        m.d.sync += [w1.eq(taken_any), w2.eq(w1)]
        # per layer: inside its backward window; an access write taken two cycles ago at its addresses
        windows, landing = [], []
        for l, eng in enumerate(engines):
            inside = Signal(name=f"window{l}")
            with m.If(eng.bwd_start):
                m.d.sync += inside.eq(1)
            with m.Elif(eng.upd_done):
                m.d.sync += inside.eq(0)
            windows.append(inside | eng.bwd_start | eng.upd_done)
            base, size = net.bases[l], eng.size
            taken = taken_any & (self.addr >= base) & (self.addr < base + size)
            t1, t2 = Signal(name=f"access{l}_1"), Signal(name=f"access{l}_2")
            m.d.sync += [t1.eq(taken), t2.eq(t1)]
            landing.append(t2)
        n = len(engines)
        for l, eng in enumerate(engines):
            window = windows[(l + 1) % n] if self.mutant == "neighbour_window" else windows[l]
            m.d.comb += [
                Assert((eng.ram_writes == 0) | window | landing[l],
                       f"layer {l}'s RAMs written only in its update or by an access write to it"),
                Cover(landing[l] & (eng.ram_writes != 0), f"layer {l} written by an access write"),
            ]
        # the last layer updates first: within the suite's horizon (the earlier layers' updates follow)
        m.d.comb += Cover(windows[-1] & (engines[-1].ram_writes != 0), "the last layer written by its update")
        m.d.comb += Cover(net.o.valid & net.o.ready, "an output taken")
        return m
