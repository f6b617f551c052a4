"""The layer engine: one fully connected layer with ``P`` MAC lanes."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..plan.hardware import LayerPlan, slot_stride
from .activation import ActivationUnit
from .arith import shape_of
from .mac import MACLane
from .pipeline import delay
from .rescale import Rescale
from .spram import SinglePortRAM

__all__ = ["slot_signature", "weight_load_signature", "LayerEngine"]


def slot_signature(groups: int, width: int) -> wiring.Signature:
    """A producer's output slots in block RAM, as seen by the consumer (the producer's side).

    ``valid``/``ready`` hand over a whole vector as a stream does; while ``valid``
    is high the consumer reads word ``addr`` (one neuron group of ``width`` bits)
    with ``en``, and the data appears on ``data`` one cycle later.
    """
    return wiring.Signature({"valid": Out(1), "ready": In(1), "addr": In(range(max(groups, 2))),
                             "en": In(1), "data": Out(width)})


def weight_load_signature(lanes: int, depth: int, width: int) -> wiring.Signature:
    """Writes into the lane weight memories loaded at run time: ``we[p]`` writes ``data`` at word
    ``addr`` of lane ``p``'s memory at the clock edge (the network decodes its load port into this)."""
    return wiring.Signature({"we": Out(lanes), "addr": Out(range(max(depth, 2))), "data": Out(width)})


class LayerEngine(wiring.Component):
    """One layer of the integer model, streaming whole vectors in and out.

    Each neuron's dot product runs through a :class:`~bp_hw.hdl.mac.MACLane`
    (``P_out`` lanes side by side, each with ``P_in`` multipliers), then the
    rescale (``QLayer.rescale``: rounding decision, add, saturate: a register each) and an
    :class:`~bp_hw.hdl.activation.ActivationUnit`. A sequencer issues one
    input chunk per cycle, group after group and sample after sample with no
    gap, so the initiation interval is ``groups * chunks = MACs / P`` cycles.

    The input vector is read *in place* from ``i.payload``, which the valid/ready
    contract keeps stable until the transfer: the engine starts issuing as soon
    as ``i.valid`` is high and raises ``i.ready`` on the sample's last chunk, so
    it keeps no copy of its input. Results go to one of two output slots
    (ping-pong): the next layer reads one while this one fills the other. The
    pipeline holds (clock enable low) only when a result meets a slot that has
    not been taken yet; that decision uses registered state only, so no
    combinational path runs from ``o.ready`` to ``i.ready``.

    Weights live in one ROM per lane, biases in one small ROM per lane, laid
    out as :mod:`bp_hw.fixed.packing` says and placed where the plan's
    memories say (block RAM, logic, or a constant for a single word).

    Parameters
    ----------
    plan : LayerPlan
        The layer's folding, memories, slot placement and activation (from
        :func:`bp_hw.plan.make_plan`).
    primitives : bool
        Weights placed in SPRAM become ``SB_SPRAM256KA`` instances and the products the plan's DSP
        cell (``plan.dsp_cell``, ``MULT18X18D`` on ECP5) with its own registers (synthesis, Verilog);
        ``False`` builds the equivalent behavioural RAM and registered ``*``, cycle for cycle
        (Amaranth's simulator cannot run instances).

    Ports
    -----
    i : In(stream.Signature(ArrayLayout(in shape, fan_in)))
        Input vectors; ``i.ready`` rises on the last chunk of each sample.
    o : Out(stream.Signature(ArrayLayout(out shape, fan_out)))
        Output vectors, held until taken.

    Timing (when nothing stalls): ``plan.interval`` = ``groups * chunks``
    cycles between samples; the output transfer follows the input transfer by
    ``plan.latency`` cycles: ROM read (one more, ``plan.word_latency``, where a chunk is picked out
    of a wider slot word: the word is registered first; one more, ``plan.operand_latency``, on
    devices whose block RAM outputs are slow), the MAC lane's ``plan.mac_latency`` (4 with one product
    on a DSP block; one more with the products in logic or from a DSP cell, one more with ``P_in > 1``), the
    rescale's 3, the activation, the output slot.
    """

    def __init__(self, plan: LayerPlan, primitives: bool = True):
        self.plan = plan
        self.primitives = primitives
        self.layer = layer = plan.layer
        self.index = plan.index
        self.fold = plan.fold
        self.act_latency = plan.activation_latency
        self.in_mem = plan.input_source != "payload"   # slots of the layer before, or the input buffer
        self.out_mem = plan.output_slots == "bram"
        self.tap = plan.monitor
        self.placement = {mem.kind: mem.placement for mem in plan.memories}
        self.loaded = next((mem for mem in plan.memories if mem.kind == "weights" and mem.loaded), None)
        ports = {}
        if self.loaded is not None:
            ports["wl"] = In(weight_load_signature(self.loaded.count, self.loaded.depth, self.loaded.width))
        if self.in_mem:
            r = plan.in_word_chunks
            ports["im"] = In(slot_signature(self.fold.chunks // r, r * self.fold.lanes_in * layer.in_fmt.width))
        else:
            ports["i"] = In(stream.Signature(data.ArrayLayout(shape_of(layer.in_fmt), layer.fan_in)))
        if self.out_mem:
            ports["om"] = Out(slot_signature(self.fold.groups, self.fold.lanes_out * layer.out_fmt.width))
        else:
            ports["o"] = Out(stream.Signature(data.ArrayLayout(shape_of(layer.out_fmt), layer.fan_out)))
        if self.tap:
            ports["mon"] = Out(wiring.Signature({"payload": Out(data.ArrayLayout(shape_of(layer.out_fmt),
                                                                                   layer.fan_out)),
                                                 "valid": Out(1)}))
        super().__init__(ports)

    @staticmethod
    def _rom(m, name, width, words, en, addr, placement):
        """A synchronous-read ROM (one cycle) placed as the plan says (``"block"``, ``"logic"``,
        ``"auto"``); ``"const"`` (a single word) is just a constant."""
        if placement == "const":
            return Const(words[0], unsigned(width))
        attrs = {"ram_style": placement} if placement in ("block", "logic") else {}
        rom = Memory(shape=unsigned(width), depth=len(words), init=words, attrs=attrs)
        m.submodules[name] = rom
        port = rom.read_port(domain="sync")
        m.d.comb += [port.en.eq(en), port.addr.eq(addr)]
        return port.data

    def _loaded_ram(self, m, lane, en, read_addr):
        """Lane ``lane``'s weight RAM, written through ``wl``: one address for the read and the write
        (a single-port memory, as SPRAM is); a write takes the address, so load while idle."""
        mem = self.loaded
        we = self.wl.we[lane]
        addr = Signal(range(max(mem.depth, 2)), name=f"wram{lane}_addr")
        m.d.comb += addr.eq(Mux(we, self.wl.addr, read_addr))
        ram = SinglePortRAM(mem.depth, mem.width, primitive=self.primitives and mem.placement == "spram")
        m.submodules[f"wram{lane}"] = ram
        m.d.comb += [ram.addr.eq(addr), ram.wdata.eq(self.wl.data), ram.we.eq(we), ram.en.eq(en & ~we)]
        return ram.rdata

    def elaborate(self, platform):
        m = Module()
        f, layer = self.fold, self.layer
        in_shape = shape_of(layer.in_fmt)
        out_shape = shape_of(layer.out_fmt)
        w_shape = shape_of(layer.weight_fmt)
        b_shape = shape_of(layer.bias_fmt)

        # -- output slots (ping-pong) and the clock enable
        slots = [] if self.out_mem else [Signal(data.ArrayLayout(out_shape, layer.fan_out), name=f"slot{k}")
                                         for k in range(2)]
        full = Signal(2)          # slot k holds a finished vector not yet taken
        wr = Signal()             # slot the results in flight go to
        rd = Signal()             # slot presented on `o`
        res_valid = Signal()      # a neuron group's activations are present
        res_last = Signal()       # ... and they are the sample's last group
        # The pipeline holds while a result meets a full slot. That condition is computed one
        # cycle ahead and registered, so the enable (which reaches every pipeline register)
        # comes straight from a flip-flop.
        stall = Signal()
        en = Signal()
        m.d.comb += en.eq(~stall)

        # -- sequencer (issue stage): reads the chunk straight from the held input payload
        g = Signal(range(max(f.groups, 2)))
        c = Signal(range(max(f.chunks, 2)))
        # "this is the sample's last chunk", kept in a register so that i.ready is nearly a flop
        at_last = Signal(init=int(f.cycles == 1))
        inp = self.im if self.in_mem else self.i
        issue = en & inp.valid
        last_chunk = c == f.chunks - 1
        last_group = g == f.groups - 1
        m.d.comb += inp.ready.eq(en & at_last)
        # the weight word of (g, c) is g * chunks + c: counted, so the memory address is a flip-flop
        w_addr = Signal(range(max(f.cycles, 2)))
        with m.If(issue):
            next_c = Mux(last_chunk, 0, c + 1)
            next_g = Mux(last_chunk, Mux(last_group, 0, g + 1), g)
            m.d.sync += [c.eq(next_c), g.eq(next_g), w_addr.eq(Mux(at_last, 0, w_addr + 1)),
                         at_last.eq((next_c == f.chunks - 1) & (next_g == f.groups - 1))]
        if not self.in_mem:
            chunks = data.View(data.ArrayLayout(data.ArrayLayout(in_shape, f.lanes_in), f.chunks),
                               self.i.payload.as_value())

        # Reading a chunk out of a wider slot word takes one more register (the RAM's output, then
        # the part select): the ROM reads and the flags follow the issue that much later.
        lead = self.plan.word_latency
        ahead = delay(m, Cat(issue, c == 0, last_chunk, g, last_group & last_chunk, w_addr), lead, "issued", en=en)
        i_issue, i_first, i_last = ahead[0], ahead[1], ahead[2]
        i_g = ahead[3:3 + len(g)]
        i_sample_last = ahead[3 + len(g)]
        i_w_addr = ahead[4 + len(g):]

        # -- operand stage: ROM reads (weights, biases) and the shared input chunk
        a1 = Signal(data.ArrayLayout(in_shape, f.lanes_in))
        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        s1_g = Signal.like(g)
        s1_sample_last = Signal()
        if self.in_mem:
            # the producer's slot RAM, read like a ROM (one cycle): chunk c is part c % r of its
            # word c // r (r = in_word_chunks), both counted
            r = self.plan.in_word_chunks
            if r == 1:
                m.d.comb += [self.im.addr.eq(c), a1.as_value().eq(self.im.data)]
            else:
                word = Signal(range(max(f.chunks // r, 2)))
                part = Signal(range(r))
                held = Signal(len(self.im.data))     # the word read, registered
                with m.If(issue):
                    m.d.sync += [part.eq(Mux(last_chunk | (part == r - 1), 0, part + 1)),
                                 word.eq(Mux(last_chunk, 0, word + (part == r - 1)))]
                with m.If(en):
                    m.d.sync += held.eq(self.im.data)
                part2 = delay(m, part, 2, "part", en=en)  # the part of the word now in `held`
                parts = data.View(data.ArrayLayout(data.ArrayLayout(in_shape, f.lanes_in), r), held)
                m.d.comb += [self.im.addr.eq(word), a1.as_value().eq(parts[part2].as_value())]
            m.d.comb += self.im.en.eq(en)
        with m.If(en):
            if not self.in_mem:
                chunk = chunks[c] if f.chunks > 1 else chunks[0]
                m.d.sync += a1.as_value().eq(chunk.as_value())
            m.d.sync += [s1_valid.eq(i_issue), s1_first.eq(i_first),
                         s1_last.eq(i_last), s1_g.eq(i_g), s1_sample_last.eq(i_sample_last)]

        # on devices with slow block RAM outputs every operand is registered once more
        # (plan.operand_latency) before the MAC lanes, next to its memory
        hold = self.plan.operand_latency
        a_op = delay(m, a1.as_value(), hold, "a_op", en=en)
        s_op = delay(m, Cat(s1_valid, s1_first, s1_last), hold, "s_op", en=en)
        lanes = []
        for lane in range(f.lanes_out):
            if self.loaded is not None:
                w_data = self._loaded_ram(m, lane, en, i_w_addr)
            else:
                w_data = self._rom(m, f"wrom{lane}", w_shape.width * f.lanes_in, self.plan.weight_words(lane), en,
                                   i_w_addr, self.placement["weights"])
            b_data = self._rom(m, f"brom{lane}", b_shape.width, self.plan.bias_words(lane), en, i_g,
                               self.placement["biases"])
            mac = MACLane(w_shape, in_shape, b_shape, layer.bias_shift, layer.acc_width, f.lanes_in,
                          in_logic=self.plan.logic_multipliers,
                          cell=self.plan.dsp_cell, primitive=self.primitives)
            m.submodules[f"mac{lane}"] = mac
            m.d.comb += [mac.en.eq(en), mac.valid.eq(s_op[0]), mac.first.eq(s_op[1]), mac.last.eq(s_op[2]),
                         mac.w.as_value().eq(delay(m, w_data, hold, f"w_op{lane}", en=en)),
                         mac.a.as_value().eq(a_op), mac.bias.eq(delay(m, b_data, hold, f"b_op{lane}", en=en))]
            lanes.append(mac)

        # sideband (result-valid, group, sample-last) follows the data through the pipeline
        assert lanes[0].latency == self.plan.mac_latency
        side = delay(m, Cat(s1_valid & s1_last, s1_g, s1_sample_last), hold + self.plan.mac_latency, "side", en=en)

        # -- rescale (rounding decision, add, saturate), then the activation
        z_valid = delay(m, lanes[0].done, Rescale.LATENCY, "z_valid", en=en)
        acts = []
        for lane, mac in enumerate(lanes):
            m.submodules[f"rescale{lane}"] = rs = Rescale(layer.acc_width, layer.rescale_shift, layer.rounding,
                                                          layer.overflow, layer.z_fmt)
            act = ActivationUnit(self.plan)
            m.submodules[f"act{lane}"] = act
            m.d.comb += [rs.en.eq(en), rs.acc.eq(mac.acc), act.en.eq(en), act.valid.eq(z_valid), act.z.eq(rs.z)]
            acts.append(act)
        before = delay(m, side, Rescale.LATENCY + self.act_latency - 1, "res_side", en=en)
        side = delay(m, before, 1, "res_side_last", en=en)
        res_g = side[1:1 + len(g)]
        m.d.comb += [res_valid.eq(side[0]), res_last.eq(side[-1])]

        # -- output: neuron groups fill slot `wr`; the sample's last group marks it full
        out = self.om if self.out_mem else self.o
        group_word = Cat(*[act.y for act in acts])
        if self.out_mem:
            slots_mem = next(mem for mem in self.plan.memories if mem.kind == "slots")
            stride_bits = (slot_stride(f.groups) - 1).bit_length()   # slot k's word g is at k * stride + g
            ram = Memory(shape=unsigned(len(group_word)), depth=slots_mem.depth, init=[],
                         attrs={"ram_style": "block"})
            m.submodules.slots = ram
            wp = ram.write_port()
            rp = ram.read_port(domain="sync")
            m.d.comb += [wp.addr.eq(Cat(res_g[:stride_bits], wr)), wp.data.eq(group_word),
                         wp.en.eq(en & res_valid),
                         rp.addr.eq(Cat(self.om.addr[:stride_bits], rd)),
                         rp.en.eq(self.om.en), self.om.data.eq(rp.data)]
        else:
            for neuron in range(layer.fan_out):
                grp, lane = divmod(neuron, f.lanes_out)
                hit = res_valid & (res_g == grp) if f.groups > 1 else res_valid
                for k in range(2):
                    with m.If(en & hit & (wr == k)):
                        m.d.sync += slots[k][neuron].eq(acts[lane].y)
        if self.tap:
            # a monitor for verification only: the vector of each sample, valid for one cycle
            work = Signal(data.ArrayLayout(out_shape, layer.fan_out))
            m.d.sync += self.mon.valid.eq(0)
            for neuron in range(layer.fan_out):
                grp, lane = divmod(neuron, f.lanes_out)
                hit = res_valid & (res_g == grp) if f.groups > 1 else res_valid
                with m.If(en & hit):
                    m.d.sync += [work[neuron].eq(acts[lane].y), self.mon.payload[neuron].eq(acts[lane].y)]
                with m.Elif(en & res_valid & res_last):
                    m.d.sync += self.mon.payload[neuron].eq(work[neuron])
            with m.If(en & res_valid & res_last):
                m.d.sync += self.mon.valid.eq(1)
        take = out.valid & out.ready
        done_slot = en & res_valid & res_last
        for k in range(2):
            with m.If(done_slot & (wr == k)):
                m.d.sync += full[k].eq(1)
            with m.Elif(take & (rd == k)):
                m.d.sync += full[k].eq(0)
        with m.If(done_slot):
            m.d.sync += wr.eq(~wr)
        # stall next cycle = the result then present meets a full slot. Both cases are computed
        # from flip-flops and the enable picks one last, so the loop through `stall` is short.
        # kept[k]: slot k is full and not being taken (a full slot is taken when ready and presented)
        kept = [full[k] & ~(out.ready & (rd == k)) for k in range(2)]
        held = res_valid & Mux(wr, kept[1], kept[0])        # holding: the same result, slot wr
        fills = res_valid & res_last                        # moving: this result fills slot wr and
        target = Mux(fills, Mux(wr, kept[0], kept[1]),      # the next one targets the other slot
                     Mux(wr, kept[1], kept[0]))
        m.d.sync += stall.eq(Mux(en, before[0] & target, held))
        with m.If(take):
            m.d.sync += rd.eq(~rd)
        m.d.comb += out.valid.eq(full.bit_select(rd, 1))
        if not self.out_mem:
            m.d.comb += self.o.payload.as_value().eq(Mux(rd, slots[1].as_value(), slots[0].as_value()))
        return m
