"""The activation unit: sigmoid/tanh lookup tables in ROM, ReLU and identity in logic."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .arith import round_shift, shape_of

__all__ = ["ActivationUnit"]


class ActivationUnit(wiring.Component):
    """``y = activation(z)`` for one neuron per enabled cycle, as the layer's integer model does.

    The table contents are the quantized model's (``QLayer.lut.table``), never
    recomputed. Direct lookup (optionally with a symmetric half table) reads
    one ROM word; interpolation reads two neighbouring words from the effective
    table (``lut.full_table()``) and adds the rounded slope term.

    Ports
    -----
    en : In(1)          clock enable; every register holds while low
    valid : In(1)       ``z`` carries a value
    z : In(z shape)     the rescaled pre-activation (``QLayer.z_fmt``)
    y : Out(out shape)  the activation (``QLayer.out_fmt``)
    y_valid : Out(1)

    Parameters
    ----------
    plan : LayerPlan or TrainLayerPlan
        The layer (``plan.layer``), its LUT plan (``plan.lut``: ROM words and
        address constants from :class:`~bp_hw.fixed.lut.ActivationLUT`) and latency.

    Latency (enabled cycles from ``z`` to ``y``): :attr:`latency` — 1 for
    ReLU/identity, 2 for a direct LUT, 3 with interpolation (the plan's
    ``activation_latency``).
    """

    def __init__(self, plan):
        self.plan = plan
        self.layer = layer = plan.layer
        self.lut = plan.lut
        self.latency = plan.activation_latency
        super().__init__({
            "en": In(1), "valid": In(1),
            "z": In(shape_of(layer.z_fmt)),
            "y": Out(shape_of(layer.out_fmt)), "y_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        layer = self.layer
        lut = layer.lut
        out_shape = shape_of(layer.out_fmt)
        if lut is None:
            with m.If(self.en):
                # an unsigned z is never negative: ReLU passes it (a compare would be constant)
                relu = layer.activation == "relu" and layer.z_fmt.signed
                value = Mux(self.z < 0, 0, self.z) if relu else self.z
                m.d.sync += [self.y.eq(value), self.y_valid.eq(self.valid)]
            return m

        lut = self.lut
        s = lut.index_shift
        word = unsigned(layer.out_fmt.width)
        z = self.z.as_signed()
        if not lut.interpolate:
            # idx = clamp(floor(z / 2^s) + index_offset, 0, index_max)
            t = (z >> s) if s >= 0 else (z << -s)
            t = t + lut.index_offset
            idx = Signal(unsigned(lut.addr_bits))
            m.d.comb += idx.eq(Mux(t < 0, 0, Mux(t > lut.index_max, lut.index_max, t)))
            mirror = Signal()
            v1 = Signal()
            half = lut.index_offset
            if lut.rom_depth == 1:
                # a one-entry table (symmetric, 1 address bit) is a constant: a memory would need a
                # zero-width address, which the Verilog back end writes as [-1:0]
                word_value = Const(lut.rom_words[0], word)
            else:
                m.submodules.rom = rom = Memory(shape=word, depth=lut.rom_depth, init=list(lut.rom_words))
                rd = rom.read_port(domain="sync")
                if lut.symmetric:   # the address rule of ActivationLUT.rom_address
                    m.d.comb += rd.addr.eq(Mux(idx >= half, idx - half, half - 1 - idx))
                else:
                    m.d.comb += rd.addr.eq(idx)
                m.d.comb += rd.en.eq(self.en)
                word_value = rd.data
            with m.If(self.en):
                m.d.sync += [mirror.eq(idx < half), v1.eq(self.valid)]
                data = word_value.as_signed() if layer.out_fmt.signed else word_value
                if lut.symmetric:
                    mirrored = lut.mirror_constant - data if lut.function == "sigmoid" else -data
                    m.d.sync += self.y.eq(Mux(mirror, mirrored, data))
                else:
                    m.d.sync += self.y.eq(data)
                m.d.sync += self.y_valid.eq(v1)
            return m

        # Interpolation on the effective table: y = T[k] + round_shift((T[k+1] - T[k]) * r, s)
        m.submodules.rom = rom = Memory(shape=word, depth=lut.rom_depth, init=list(lut.rom_words))
        rd0 = rom.read_port(domain="sync")
        rd1 = rom.read_port(domain="sync")
        lo, hi = lut.interp_z_min, lut.interp_z_max
        zc = Mux(z < lo, lo, Mux(z > hi, hi, z))
        u = Signal(unsigned(lut.addr_bits + s))
        m.d.comb += u.eq(zc - lo)
        k = u[s:]
        m.d.comb += [rd0.addr.eq(k), rd1.addr.eq(k + 1), rd0.en.eq(self.en), rd1.en.eq(self.en)]
        r1 = Signal(unsigned(s))
        v1 = Signal()
        base2 = Signal(out_shape)
        slope2 = Signal(range(-(1 << (layer.out_fmt.width + s + 1)), 1 << (layer.out_fmt.width + s + 1)))
        v2 = Signal()
        with m.If(self.en):
            m.d.sync += [r1.eq(u[:s]), v1.eq(self.valid)]
            d0 = rd0.data.as_signed() if layer.out_fmt.signed else rd0.data
            d1 = rd1.data.as_signed() if layer.out_fmt.signed else rd1.data
            m.d.sync += [base2.eq(d0), slope2.eq((d1 - d0) * r1), v2.eq(v1)]
            m.d.sync += [self.y.eq(base2 + round_shift(slope2, s, layer.lut.rounding)), self.y_valid.eq(v2)]
        return m
