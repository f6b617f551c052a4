"""The input buffer: input vectors arriving as beats, held in block RAM for the first layer."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..plan.hardware import LayerPlan
from .arith import shape_of
from .layer import slot_signature

__all__ = ["InputBuffer"]


class InputBuffer(wiring.Component):
    """Ping-pong vector slots in block RAM, written one beat per transfer and read by the first layer.

    A vector arrives as ``chunks`` beats of ``P_in`` elements (the first layer's input chunk), so
    beat ``c`` is word ``c`` of the slot being filled; after the vector's last beat (counted) the
    slot is handed to the layer through the same slot interface a producer layer's slots offer
    (:func:`~bp_hw.hdl.layer.slot_signature`), which reads it once per neuron group. While the layer
    works on one slot the next vector fills the other.

    Parameters
    ----------
    plan : LayerPlan
        The first layer's plan (``input_source == "buffer"``): its folding and input format, and the
        ``buffer`` memory (``2 * chunks`` words of ``P_in`` elements).

    Ports
    -----
    i : In(stream.Signature(ArrayLayout(input shape, P_in)))
        Beats; ``i.ready`` is low only while both slots hold a vector the layer has not finished.
    o : Out(slot_signature(chunks, P_in * width))
        The filled slot: ``valid`` the cycle after its last beat's transfer, word ``addr`` read with
        ``en`` (one cycle), released by ``ready``.

    Latency: one cycle from the transfer of a vector's last beat to ``o.valid``; a vector takes
    ``chunks`` beats, one per cycle at most.
    """

    def __init__(self, plan: LayerPlan):
        if plan.input_source != "buffer":
            raise ValueError("the input buffer feeds a layer whose input_source is 'buffer'")
        self.plan = plan
        self.fold = plan.fold
        self.memory = next(mem for mem in plan.memories if mem.kind == "buffer")
        shape = shape_of(plan.layer.in_fmt)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(shape, self.fold.lanes_in))),
            "o": Out(slot_signature(self.fold.chunks, self.memory.width)),
        })

    def elaborate(self, platform):
        m = Module()
        chunks = self.fold.chunks
        ram = Memory(shape=unsigned(self.memory.width), depth=self.memory.depth, init=[],
                     attrs={"ram_style": self.memory.placement})
        m.submodules.ram = ram
        wp = ram.write_port()
        rp = ram.read_port(domain="sync")

        full = Signal(2)          # slot k holds a whole vector not yet released
        wr = Signal()             # the slot being filled
        rd = Signal()             # the slot presented on `o`
        beat = Signal(range(max(chunks, 2)))
        last_beat = beat == chunks - 1

        write = self.i.valid & self.i.ready
        m.d.comb += [self.i.ready.eq(~full.bit_select(wr, 1)),
                     wp.addr.eq(wr * chunks + beat if chunks > 1 else wr),
                     wp.data.eq(self.i.payload.as_value()), wp.en.eq(write)]
        fill = write & last_beat
        with m.If(write):
            m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))
        with m.If(fill):
            m.d.sync += wr.eq(~wr)

        release = self.o.valid & self.o.ready
        for k in range(2):
            with m.If(fill & (wr == k)):
                m.d.sync += full[k].eq(1)
            with m.Elif(release & (rd == k)):
                m.d.sync += full[k].eq(0)
        with m.If(release):
            m.d.sync += rd.eq(~rd)
        m.d.comb += [self.o.valid.eq(full.bit_select(rd, 1)),
                     rp.addr.eq(rd * chunks + self.o.addr if chunks > 1 else rd), rp.en.eq(self.o.en),
                     self.o.data.eq(rp.data)]
        return m
