"""The network: layer engines chained by valid/ready streams, several samples in flight."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..plan.hardware import HardwarePlan
from .arith import shape_of
from .input_buffer import InputBuffer
from .layer import LayerEngine

__all__ = ["Network"]


class Network(wiring.Component):
    """The quantized MLP as pipelined hardware.

    Layer ``l`` is a :class:`~bp_hw.hdl.layer.LayerEngine` with ``parallel[l]``
    lanes; each layer's output slots are the next layer's input buffer, so
    different samples occupy different layers at once. Where the producer's
    ``P_out`` equals the consumer's ``P_in`` the slots are a block RAM read one
    word (neuron group) per cycle (:attr:`mem_links`); elsewhere they are
    registers read through a multiplexer.

    Ports
    -----
    i : In(stream.Signature(ArrayLayout(input shape, n_in or P_in)))
        Input vectors (``QModel.input_fmt``, element ``k`` in bits ``[k W, (k+1) W)``), whole
        (input mode ``vector``) or as ``chunks`` beats of the first layer's ``P_in`` elements
        (``beats``: an :class:`~bp_hw.hdl.input_buffer.InputBuffer` holds them for the first layer).
    o : Out(stream.Signature(ArrayLayout(output shape, n_out)))
        Output vectors (``QModel.output_fmt``), in input order; nothing is lost
        or duplicated under back-pressure on either side.
    tap<l> : Out(Signature(payload: ArrayLayout(..., fan_out_l), valid: 1)), with ``taps=True``
        A copy of layer ``l``'s output vector, ``valid`` for one cycle per sample
        (when it is handed on, or, for slots in block RAM, from monitor registers that
        exist only with ``taps=True`` and do not touch the datapath): co-simulation uses it to name the first
        layer and neuron that differ from the integer model.

    ld : In(stream.Signature(StructLayout(data, addr))), when ``plan.load`` is set
        Writes of the weight memories loaded at run time (SPRAM): one packed word per transfer,
        always ready, written two cycles after the transfer (``plan.load``:
        :class:`~bp_hw.plan.hardware.LoadPlan` says the address map). Load before streaming inputs;
        an input transfer waits out the cycle in which the last load write is still pending.

    Parameters
    ----------
    plan : HardwarePlan
        An inference plan (:func:`bp_hw.plan.make_plan`); ``plan.taps`` adds the tap ports.
    primitives : bool
        SPRAM weights as ``SB_SPRAM256KA`` instances (default; for Verilog and synthesis) or as the
        equivalent behavioural RAM (``False``: Amaranth's simulator).

    Latency: ``plan.latency`` cycles from the edge that transfers an input to
    the edge that transfers its output, when nothing stalls (``plan.standalone_latency``
    from presenting it to an idle network); steady-state initiation interval
    ``plan.interval`` = the slowest layer's ``MACs / P`` cycles
    (:class:`~bp_hw.plan.hardware.HardwarePlan`; the tests measure them).
    """

    def __init__(self, plan: HardwarePlan, primitives: bool = True):
        if plan.training is not None:
            raise ValueError("a training plan builds a TrainNetwork, not a Network")
        self.plan = plan
        self.qmodel = qmodel = plan.qmodel
        self.parallel = plan.parallel
        self.mem_links = plan.mem_links
        self.engines = [LayerEngine(x, primitives) for x in plan.layers]
        self.buffer = InputBuffer(plan.layers[0]) if plan.layers[0].input_source == "buffer" else None
        self.taps = plan.taps
        ports = {
            "i": In(stream.Signature(data.ArrayLayout(shape_of(qmodel.input_fmt), plan.inp.vector.elements))),
            "o": Out(stream.Signature(data.ArrayLayout(shape_of(qmodel.output_fmt), qmodel.sizes[-1]))),
        }
        self.load = plan.load
        if self.load is not None:
            ld = self.load
            ports["ld"] = In(stream.Signature(data.StructLayout({"data": ld.data_width, "addr": ld.addr_width})))
        if self.taps:
            for l, layer in enumerate(qmodel.layers):
                ports[f"tap{l}"] = Out(wiring.Signature({
                    "payload": Out(data.ArrayLayout(shape_of(layer.out_fmt), layer.fan_out)),
                    "valid": Out(1)}))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        for l, engine in enumerate(self.engines):
            m.submodules[f"layer{l}"] = engine
        if self.buffer is not None:
            m.submodules.input_buffer = self.buffer
            wiring.connect(m, wiring.flipped(self.i), self.buffer.i)
            wiring.connect(m, self.buffer.o, self.engines[0].im)
        elif self.load is not None:
            # A load write takes its RAM's one address for a cycle: the first layer, which issues in the
            # cycle of an input transfer, must not start a sample then (its first weight read would be lost).
            first, busy = self.engines[0].i, Signal()
            m.d.sync += busy.eq(self.ld.valid)
            m.d.comb += [first.payload.eq(self.i.payload), first.valid.eq(self.i.valid & ~busy),
                         self.i.ready.eq(first.ready & ~busy)]
        else:
            wiring.connect(m, wiring.flipped(self.i), self.engines[0].i)
        for up, down, mem in zip(self.engines, self.engines[1:], self.mem_links):
            if mem:
                wiring.connect(m, up.om, down.im)
            else:
                wiring.connect(m, up.o, down.i)
        wiring.connect(m, self.engines[-1].o, wiring.flipped(self.o))
        if self.load is not None:
            self._decode_load(m)
        if self.taps:
            for l, engine in enumerate(self.engines):
                tap = getattr(self, f"tap{l}")
                if engine.out_mem:
                    m.d.comb += [tap.payload.eq(engine.mon.payload), tap.valid.eq(engine.mon.valid)]
                else:
                    m.d.comb += [tap.payload.eq(engine.o.payload), tap.valid.eq(engine.o.valid & engine.o.ready)]
        return m

    def _decode_load(self, m):
        """The load port, registered once, decoded into each engine's ``wl`` writes."""
        ld = self.load
        valid = Signal()
        word = Signal(data.StructLayout({"data": ld.data_width, "addr": ld.addr_width}))
        m.d.comb += self.ld.ready.eq(1)
        m.d.sync += [valid.eq(self.ld.valid), word.eq(self.ld.payload)]
        index = word.addr[ld.word_bits:]
        for mem in ld.memories:
            engine = self.engines[mem.layer]
            m.d.comb += engine.wl.we[mem.lane].eq(valid & (index == mem.index))
        for engine in self.engines:
            if engine.loaded is not None:
                m.d.comb += [engine.wl.addr.eq(word.addr[:ld.word_bits]), engine.wl.data.eq(word.data)]
