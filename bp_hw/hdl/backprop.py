"""On-chip training: the network that infers and learns one sample at a time, bit-exact with the spec.

The spec is :class:`bp_hw.fixed.trainer.FixedTrainer` (its module doc lists
every integer step); :class:`TrainNetwork` schedules those steps on one
:class:`~bp_hw.hdl.train_layer.TrainLayer` per layer and exposes the weights
through an access port.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..plan.hardware import HardwarePlan
from .arith import shape_of
from .pipeline import delay
from .train_layer import TrainLayer

__all__ = ["access_signature", "TrainNetwork"]


def access_signature(depth: int, width: int) -> wiring.Signature:
    """The weight access port as seen from the host: ``addr``, ``wdata``, ``we`` out, ``rdata`` in."""
    return wiring.Signature({"addr": Out(range(max(depth, 2))), "wdata": Out(signed(width)), "we": Out(1),
                             "rdata": In(signed(width))})


class TrainNetwork(wiring.Component):
    """The quantized MLP with on-chip backpropagation, one sample at a time (SGD).

    Each sample runs a forward pass (FWD) layer by layer; its outputs leave
    on ``o``; a training sample then runs, from the last layer down, the
    output delta, and per layer ``l`` the error of the layer below through
    the old weights (ERR, ``l > 0``) and the weight/bias update (UPD), with
    the delta of layer ``l - 1`` computed as soon as ERR(``l``) ends (UPD(``l``)
    overlaps it). Sample ``n + 1`` is accepted only when sample ``n``'s update
    is written, so it sees the new weights: exactly
    :meth:`FixedTrainer.step` (or, with ``train = 0``, :meth:`QModel.predict`).

    Parameters
    ----------
    plan : HardwarePlan
        A training plan (``make_plan(qmodel, P, train=spec)``): formats, LUTs and the
        initial weights (the RAM contents after reset), the learning rate and
        training formats, LFSR seeds, and ``P`` per layer (the same ``P`` serves the
        forward and both backward passes).
    primitives : bool
        The lanes' products in the plan's DSP cell (``dsp_cell`` of its layers, ``MULT18X18D`` on ECP5)
        with its own registers (synthesis, Verilog); ``False`` builds registers and a ``*`` with the same
        cycles (Amaranth's simulator cannot run instances).

    Ports
    -----
    i : In(stream.Signature(StructLayout({"x": ArrayLayout(in, n_in), "t": ArrayLayout(target, n_out), "train": 1})))
        Input vector, target (:attr:`target_fmt`: the output format, widened to ``Q2.f``
        if it cannot hold 1.0; values as the trainer's ``targets_for``) and mode
        (``train`` 1: learn from this sample; 0: infer only). Accepted only while idle
        and ``o`` is free (or being taken).
    o : Out(stream.Signature(ArrayLayout(out, n_out)))
        The forward outputs of every sample (before its update), in order, held until taken.
    wacc : In(access_signature(...))
        Weight access while no sample is in the datapath: when ``busy`` is low, and back to back after
        a write (``busy`` is then high only for the writes on their way); writes while a sample is
        being processed are ignored.
        Flat address map (``plan.training.address_map()``), layer by layer from :attr:`bases`:
        ``W_l[i, j]`` at ``bases[l] + i * fan_in + j``, then ``b_l[i]`` at ``bases[l] + fan_in * fan_out + i``.
        ``we`` writes the low bits of ``wdata`` (two's complement in the element's format).
        ``rdata`` is the element (sign-extended) at the ``addr`` presented
        ``plan.training.read_latency`` cycles earlier; one address per cycle, reads see every
        earlier write.
    busy : Out(1)
        A sample is being processed (or a write is on its way): no new input, no access.

    Reset (``rst``) returns the controller and the LFSRs to their initial state; the RAMs
    keep their contents (they start from the quantized model's weights at configuration).

    Multipliers: ``P`` per layer shared by FWD, ERR and UPD (operands from the RAM
    output or registers through a 2:1 multiplexer into the product stage's registers),
    plus the delta unit's two (sigmoid/tanh) and one more when ``eta_int != 1``
    (``plan.training.multipliers``).

    Cycles: ``plan.training.infer_cycles`` / ``train_cycles`` from one input transfer to
    the next when inputs are always there and ``o`` is always taken (the tests measure them).
    """

    def __init__(self, plan: HardwarePlan, primitives: bool = True):
        if plan.training is None:
            raise ValueError("an inference plan builds a Network, not a TrainNetwork")
        self.plan = plan
        tp = self.train_plan = plan.training
        self.qmodel = qmodel = plan.qmodel
        self.spec = tp.spec
        self.parallel = plan.parallel
        self.folds = [x.fold for x in tp.layers]
        self.formats = [x.formats for x in tp.layers]
        self.eta_int, self.eta_frac = tp.eta_int, tp.eta_frac
        self.spec_dict = tp.spec_dict
        self.access_width = tp.access_width
        self.bases = [x.access_base for x in tp.layers]
        self.access_depth = tp.access_depth
        self.engines = [TrainLayer(x, tp.access_width, tp.spec.update_rounding, tp.eta_frac, primitives)
                        for x in tp.layers]
        self.target_fmt = tp.target_fmt
        payload = data.StructLayout({
            "x": data.ArrayLayout(shape_of(qmodel.input_fmt), qmodel.sizes[0]),
            "t": data.ArrayLayout(shape_of(self.target_fmt), qmodel.sizes[-1]),
            "train": 1,
        })
        super().__init__({
            "i": In(stream.Signature(payload)),
            "o": Out(stream.Signature(data.ArrayLayout(shape_of(qmodel.output_fmt), qmodel.sizes[-1]))),
            "wacc": In(access_signature(self.access_depth, self.access_width)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        e = self.engines
        n = len(e)
        for l, eng in enumerate(e):
            m.submodules[f"layer{l}"] = eng

        x = Signal.like(self.i.payload.x)
        t = Signal.like(self.i.payload.t)
        train = Signal()
        go = Signal()
        fwd_pend = Signal()
        upd_pend = Signal(n)
        o_valid = Signal()
        o_data = Signal.like(self.o.payload)
        we1, we2 = Signal(), Signal()
        idle = Signal(init=1)      # registered: no sample in the datapath (next-state of the pending bits)
        m.d.comb += [self.busy.eq(~idle | we1 | we2), self.o.valid.eq(o_valid), self.o.payload.eq(o_data)]
        # a write being presented or on its way keeps the next sample out (it would land mid-pass)
        m.d.comb += self.i.ready.eq(idle & ~self.wacc.we & ~we1 & ~we2 & (~o_valid | self.o.ready))
        accept = self.i.valid & self.i.ready
        m.d.sync += go.eq(accept)
        # the payload registers follow the stream while idle and hold from the accepting edge on
        with m.If(idle):
            m.d.sync += [x.eq(self.i.payload.x), t.eq(self.i.payload.t), train.eq(self.i.payload.train)]

        # forward chain
        m.d.comb += e[0].fwd_start.eq(go)
        m.d.comb += e[0].a.eq(x)
        for l in range(1, n):
            m.d.comb += [e[l].fwd_start.eq(e[l - 1].fwd_done), e[l].a.eq(e[l - 1].y)]
        with m.If(self.o.ready & o_valid):
            m.d.sync += o_valid.eq(0)
        with m.If(e[-1].fwd_done):
            m.d.sync += [o_data.eq(e[-1].y), o_valid.eq(1)]

        # backward chain
        m.d.comb += [e[-1].t.eq(t), e[-1].delta_start.eq(e[-1].fwd_done & train)]
        for l in range(n):
            m.d.comb += e[l].bwd_start.eq(e[l].delta_done)
            if l > 0:
                m.d.comb += [e[l - 1].e_in.eq(e[l].e_out), e[l - 1].delta_start.eq(e[l].err_done)]

        batch = self.spec.batch
        if batch > 1:
            # training samples since reset, modulo B: the sample's place in its mini-batch, latched at accept
            count = Signal(range(batch))
            first, last = Signal(), Signal()
            with m.If(accept & self.i.payload.train):
                m.d.sync += [count.eq(count + 1), first.eq(count == 0), last.eq(count == batch - 1)]
            for eng in e:
                m.d.comb += [eng.batch_first.eq(first), eng.batch_last.eq(last)]

        # what is still to come of the current sample: its forward pass, each layer's update
        fwd_next = Signal()
        upd_next = Signal(n)
        m.d.comb += [fwd_next.eq(Mux(accept, 1, fwd_pend & ~e[-1].fwd_done)),
                     upd_next.eq(Mux(accept, self.i.payload.train.replicate(n),
                                     upd_pend & ~Cat(*[eng.upd_done for eng in e])))]
        m.d.sync += [fwd_pend.eq(fwd_next), upd_pend.eq(upd_next), idle.eq(~fwd_next & (upd_next == 0))]

        # weight access: s1 = layer decode (registered), s2 = element decode in the layer, s3 = RAM data
        acc = self.wacc
        hits = []
        for l, eng in enumerate(e):
            base, size = self.bases[l], eng.size
            hit = Signal(name=f"acc_hit{l}")
            off = Signal(range(size), name=f"acc_off{l}")
            inside = acc.addr < base + size
            if base:
                inside &= acc.addr >= base
            m.d.sync += [hit.eq(inside), off.eq(acc.addr - base)]
            m.d.comb += [eng.acc_hit.eq(hit), eng.acc_off.eq(off), eng.acc_we.eq(we1)]
            hits.append(hit)
        wdata1 = Signal.like(acc.wdata)
        m.d.sync += [we1.eq(acc.we & idle), wdata1.eq(acc.wdata), we2.eq(we1)]
        for eng in e:
            m.d.comb += eng.acc_wdata.eq(wdata1)
        # the layer's element is readable read_latency - 1 cycles after addr (the layers' operand registers included)
        hit4 = delay(m, Cat(*hits), self.train_plan.read_latency - 2, "acc_hit_read")
        rdata = Signal.like(acc.rdata)
        for l, eng in enumerate(e):
            with m.If(hit4[l]):
                m.d.sync += rdata.eq(eng.acc_rdata)
        m.d.comb += acc.rdata.eq(rdata)
        return m
