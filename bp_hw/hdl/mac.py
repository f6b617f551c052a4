"""The multiply-accumulate lane."""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


class MACLane(wiring.Component):
    """``P_in`` multipliers feeding one accumulator: one neuron's dot product, a chunk per cycle.

    Computes, over the cycles of one neuron (``first`` on the first chunk,
    ``last`` on the last)::

        acc = (bias << bias_shift) + sum_chunks sum_k w[k] * a[k]

    exactly as :meth:`bp_hw.fixed.qmodel.QLayer.accumulate` (no rounding, and
    ``acc_width`` from the quantized model so it cannot overflow).

    Parameters
    ----------
    w_shape, a_shape : Shape
        Weight and activation shapes (from the layer's formats).
    bias_shape : Shape
    bias_shift : int
    acc_width : int
    lanes_in : int
        ``P_in``, products summed per cycle.

    Ports
    -----
    en : In(1)
        Clock enable: the lane holds every register while low.
    valid, first, last : In(1)
        The operands are a real chunk / the neuron's first / its last chunk.
    w : In(ArrayLayout(w_shape, P_in)), a : In(ArrayLayout(a_shape, P_in))
        Operands; expected to come straight from registers (the weight ROM's
        read port and the layer's operand register) so that the multiplier
        sees registered inputs and maps onto a DSP block.
    bias : In(bias_shape)
        Sampled with ``first``.
    acc : Out(signed(acc_width)), done : Out(1)
        ``done`` is high for one enabled cycle when ``acc`` holds a complete sum.

    Latency: 2 enabled cycles from operands to ``acc``/``done`` (product
    register, then accumulator register).
    """

    LATENCY = 2

    def __init__(self, w_shape, a_shape, bias_shape, bias_shift: int, acc_width: int, lanes_in: int = 1):
        self.w_shape = Shape.cast(w_shape)
        self.a_shape = Shape.cast(a_shape)
        self.bias_shape = Shape.cast(bias_shape)
        self.bias_shift = bias_shift
        self.acc_width = acc_width
        self.lanes_in = lanes_in
        super().__init__({
            "en": In(1), "valid": In(1), "first": In(1), "last": In(1),
            "w": In(data.ArrayLayout(self.w_shape, lanes_in)),
            "a": In(data.ArrayLayout(self.a_shape, lanes_in)),
            "bias": In(self.bias_shape),
            "acc": Out(signed(acc_width)), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        prod_width = self.w_shape.width + self.a_shape.width + 1
        prods = [Signal(signed(prod_width), name=f"prod{k}") for k in range(self.lanes_in)]
        p_valid = Signal()
        p_first = Signal()
        p_last = Signal()
        p_bias = Signal(self.bias_shape)
        with m.If(self.en):
            for k in range(self.lanes_in):
                m.d.sync += prods[k].eq(self.w[k] * self.a[k])
            m.d.sync += [p_valid.eq(self.valid), p_first.eq(self.first), p_last.eq(self.last),
                         p_bias.eq(self.bias)]
        total = prods[0]
        for p in prods[1:]:
            total = total + p
        base = (p_bias.as_signed() << self.bias_shift) if self.bias_shape.signed else \
            (p_bias << self.bias_shift)
        with m.If(self.en):
            with m.If(p_valid):
                with m.If(p_first):
                    m.d.sync += self.acc.eq(base + total)
                with m.Else():
                    m.d.sync += self.acc.eq(self.acc + total)
            m.d.sync += self.done.eq(p_valid & p_last)
        return m
