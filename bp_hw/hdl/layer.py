"""The layer engine: one fully connected layer with ``P`` MAC lanes."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..fixed.folding import Folding
from ..fixed.qmodel import QLayer
from .activation import ActivationUnit
from .arith import overflow, round_shift, shape_of
from .mac import MACLane


class LayerEngine(wiring.Component):
    """One layer of the integer model, streaming whole vectors in and out.

    Each neuron's dot product runs through a :class:`~bp_hw.hdl.mac.MACLane`
    (``P_out`` lanes side by side, each with ``P_in`` multipliers), then the
    rescale (``QLayer.rescale``: round, saturate) and an
    :class:`~bp_hw.hdl.activation.ActivationUnit`. A sequencer issues one
    input chunk per cycle, group after group and sample after sample with no
    gap, so the initiation interval is ``groups * chunks = MACs / P`` cycles.

    Weights live in one ROM per lane (word ``g * chunks + c`` holds the
    ``P_in`` weights of neuron ``g * P_out + lane`` for inputs
    ``c * P_in ..``), biases in one ROM per lane (word ``g``).

    Pipeline (enabled cycles): issue -> ROM read and operand register ->
    product -> accumulator -> rescale -> activation (1-3) -> output register.
    The whole pipeline holds (clock enable low) only when a finished vector
    meets an output register the consumer has not taken yet.

    Ports
    -----
    i : In(stream.Signature(ArrayLayout(in shape, fan_in)))
        Input vectors; accepted when idle or while the last chunk of the
        current sample issues.
    o : Out(stream.Signature(ArrayLayout(out shape, fan_out)))
        Output vectors, held until taken.

    Latency: :attr:`latency` = ``cycles + 5 + activation latency`` from the
    clock edge that transfers an input to the edge that transfers its output
    (``o.valid`` rises one cycle earlier), when the consumer is ready.
    Initiation interval: :attr:`interval` = ``cycles``.
    """

    def __init__(self, layer: QLayer, parallel: int = 1, index: int = 0):
        self.layer = layer
        self.index = index
        self.fold = Folding.of(layer.fan_in, layer.fan_out, parallel, index)
        self.act_latency = ActivationUnit.latency_of(layer)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(shape_of(layer.in_fmt), layer.fan_in))),
            "o": Out(stream.Signature(data.ArrayLayout(shape_of(layer.out_fmt), layer.fan_out))),
        })

    @property
    def interval(self) -> int:
        return self.fold.cycles

    @property
    def latency(self) -> int:
        # issue, operand, MAC (2), rescale, activation, output register, hand-over
        return self.fold.cycles + 1 + MACLane.LATENCY + 1 + self.act_latency + 1

    def weight_words(self, lane: int) -> list[int]:
        """ROM contents of a lane: packed ``P_in`` weights per word (lowest input in the low bits)."""
        f, layer = self.fold, self.layer
        ww = layer.weight_fmt.width
        mask = (1 << ww) - 1
        words = []
        for g in range(f.groups):
            neuron = g * f.lanes_out + lane
            for c in range(f.chunks):
                word = 0
                for k in range(f.lanes_in):
                    word |= (int(layer.weights[neuron, c * f.lanes_in + k]) & mask) << (k * ww)
                words.append(word)
        return words

    def bias_words(self, lane: int) -> list[int]:
        f, layer = self.fold, self.layer
        mask = (1 << layer.bias_fmt.width) - 1
        return [int(layer.biases[g * f.lanes_out + lane]) & mask for g in range(f.groups)]

    @staticmethod
    def _rom(m, name, width, words, en, addr):
        """A synchronous-read ROM (one cycle); a single word is just a constant (no zero-width address)."""
        if len(words) == 1:
            return Const(words[0], unsigned(width))
        rom = Memory(shape=unsigned(width), depth=len(words), init=words)
        m.submodules[name] = rom
        port = rom.read_port(domain="sync")
        m.d.comb += [port.en.eq(en), port.addr.eq(addr)]
        return port.data

    def elaborate(self, platform):
        m = Module()
        f, layer = self.fold, self.layer
        in_shape = shape_of(layer.in_fmt)
        out_shape = shape_of(layer.out_fmt)
        w_shape = shape_of(layer.weight_fmt)
        b_shape = shape_of(layer.bias_fmt)

        # -- clock enable: hold everything while a finished vector cannot be handed over
        en = Signal()
        res_valid = Signal()      # activation results of a neuron group are present
        res_last = Signal()       # ... and they are the sample's last group
        o_valid = Signal()
        m.d.comb += [en.eq(~(res_valid & res_last & o_valid & ~self.o.ready)), self.o.valid.eq(o_valid)]

        # -- sequencer (issue stage)
        x = Signal(data.ArrayLayout(data.ArrayLayout(in_shape, f.lanes_in), f.chunks))
        busy = Signal()
        g = Signal(range(max(f.groups, 2)))
        c = Signal(range(max(f.chunks, 2)))
        issue_last_chunk = c == f.chunks - 1
        issue_last = busy & (g == f.groups - 1) & issue_last_chunk
        m.d.comb += self.i.ready.eq(en & (~busy | issue_last))
        accept = self.i.valid & self.i.ready
        with m.If(en):
            with m.If(busy):
                with m.If(issue_last_chunk):
                    m.d.sync += c.eq(0)
                    with m.If(g == f.groups - 1):
                        m.d.sync += [g.eq(0), busy.eq(0)]
                    with m.Else():
                        m.d.sync += g.eq(g + 1)
                with m.Else():
                    m.d.sync += c.eq(c + 1)
            with m.If(accept):
                m.d.sync += [x.as_value().eq(self.i.payload.as_value()), busy.eq(1)]

        # -- operand stage: ROM reads (weights, biases) and the shared input chunk
        a1 = Signal(data.ArrayLayout(in_shape, f.lanes_in))
        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        s1_g = Signal.like(g)
        s1_sample_last = Signal()
        with m.If(en):
            m.d.sync += [a1.as_value().eq(x[c].as_value()), s1_valid.eq(busy), s1_first.eq(busy & (c == 0)),
                         s1_last.eq(busy & issue_last_chunk), s1_g.eq(g), s1_sample_last.eq(issue_last)]

        lanes = []
        for lane in range(f.lanes_out):
            w_addr = g * f.chunks + c if f.cycles > 1 else None
            w_data = self._rom(m, f"wrom{lane}", w_shape.width * f.lanes_in, self.weight_words(lane), en, w_addr)
            b_data = self._rom(m, f"brom{lane}", b_shape.width, self.bias_words(lane), en, g)
            mac = MACLane(w_shape, in_shape, b_shape, layer.bias_shift, layer.acc_width, f.lanes_in)
            m.submodules[f"mac{lane}"] = mac
            m.d.comb += [mac.en.eq(en), mac.valid.eq(s1_valid), mac.first.eq(s1_first), mac.last.eq(s1_last),
                         mac.w.as_value().eq(w_data), mac.a.as_value().eq(a1.as_value()),
                         mac.bias.eq(b_data)]
            lanes.append(mac)

        # sideband delayed to the accumulator's output (MACLane.LATENCY enabled cycles)
        side = Cat(s1_g, s1_sample_last)
        for _ in range(MACLane.LATENCY):
            nxt = Signal.like(side)
            with m.If(en):
                m.d.sync += nxt.eq(side)
            side = nxt

        # -- rescale stage: z = overflow(round_shift(acc, shift), z_fmt)
        z_valid = Signal()
        z_side = Signal.like(side)
        acts = []
        for lane, mac in enumerate(lanes):
            z = Signal(shape_of(layer.z_fmt), name=f"z{lane}")
            with m.If(en):
                m.d.sync += z.eq(overflow(round_shift(mac.acc, layer.rescale_shift, layer.rounding),
                                          layer.z_fmt, layer.overflow))
            act = ActivationUnit(layer)
            m.submodules[f"act{lane}"] = act
            m.d.comb += [act.en.eq(en), act.valid.eq(z_valid), act.z.eq(z)]
            acts.append(act)
        with m.If(en):
            m.d.sync += [z_valid.eq(lanes[0].done), z_side.eq(side)]
        side = z_side
        for _ in range(self.act_latency):
            nxt = Signal.like(side)
            with m.If(en):
                m.d.sync += nxt.eq(side)
            side = nxt
        res_g = side[:len(g)]
        m.d.comb += [res_valid.eq(acts[0].y_valid), res_last.eq(side[len(g)])]

        # -- output: collect neuron groups, hand over whole vectors
        work = Signal(data.ArrayLayout(out_shape, layer.fan_out))
        y = Signal(data.ArrayLayout(out_shape, layer.fan_out))
        m.d.comb += self.o.payload.as_value().eq(y.as_value())
        final = []
        for neuron in range(layer.fan_out):
            grp, lane = divmod(neuron, f.lanes_out)
            hit = res_valid & (res_g == grp) if f.groups > 1 else res_valid
            value = acts[lane].y
            with m.If(en & hit):
                m.d.sync += work[neuron].eq(value)
            final.append((grp, value, work[neuron]))
        with m.If(o_valid & self.o.ready):
            m.d.sync += o_valid.eq(0)
        with m.If(en & res_valid & res_last):
            for neuron, (grp, value, old) in enumerate(final):
                # the last group arrives now; earlier groups come from the work registers
                m.d.sync += y[neuron].eq(value if grp == f.groups - 1 else old)
            m.d.sync += o_valid.eq(1)
        return m
