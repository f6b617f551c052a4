"""The input buffer: input vectors arriving as beats, held in block RAM for the first layer."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..plan.hardware import LayerPlan, slot_stride
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
        ``buffer`` memory (two slots of ``chunks`` words of ``P_in`` elements, ``slot_stride(chunks)``
        words apart).

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
        stride_bits = (slot_stride(chunks) - 1).bit_length()    # slot k's word c is at k * stride + c
        ram = Memory(shape=unsigned(self.memory.width), depth=self.memory.depth, init=[],
                     attrs={"ram_style": self.memory.placement})
        m.submodules.ram = ram
        wp = ram.write_port()
        rp = ram.read_port(domain="sync")

        full = Signal(2)          # slot k holds a whole vector not yet released
        wr = Signal()             # the slot being filled
        rd = Signal()             # the slot presented on `o`
        beat = Signal(range(max(chunks, 2)))
        # "beat is the vector's last" and "slot wr is free" (i.ready) are kept in registers, so
        # that the write decision is one gate from flip-flops
        last_beat = Signal(init=int(chunks == 1))
        ready = Signal(init=1)

        write = self.i.valid & ready
        m.d.comb += [self.i.ready.eq(ready),
                     wp.addr.eq(Cat(beat[:stride_bits], wr)),
                     wp.data.eq(self.i.payload.as_value()), wp.en.eq(write)]
        fill = write & last_beat
        with m.If(write):
            m.d.sync += [beat.eq(Mux(last_beat, 0, beat + 1)),
                         last_beat.eq(Mux(last_beat, chunks == 1, beat == chunks - 2))]

        release = self.o.valid & self.o.ready
        full_next = Signal(2)
        for k in range(2):
            m.d.comb += full_next[k].eq((fill & (wr == k)) | (full[k] & ~(release & (rd == k))))
        wr_next = wr ^ fill
        m.d.sync += [full.eq(full_next), wr.eq(wr_next), ready.eq(~full_next.bit_select(wr_next, 1))]
        with m.If(release):
            m.d.sync += rd.eq(~rd)
        m.d.comb += [self.o.valid.eq(full.bit_select(rd, 1)),
                     rp.addr.eq(Cat(self.o.addr[:stride_bits], rd)), rp.en.eq(self.o.en),
                     self.o.data.eq(rp.data)]
        return m
