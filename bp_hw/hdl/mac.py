"""The multiply-accumulate lane."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..plan.hardware import MAC_LATENCY

__all__ = ["MACLane"]


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

    Latency: :attr:`LATENCY` = 4 enabled cycles from operands to ``acc``/``done``:
    operand registers, product register (together they map onto a DSP block with
    its input and output registers), accumulator, carry resolution.

    The accumulator is split into a low half and a high half with the carry
    between them registered (a carry-save step), so its longest carry chain is
    half the accumulator; the last cycle adds the pending carry into the high
    half. The sum is the same integer either way.
    """

    LATENCY = MAC_LATENCY

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
        n = self.lanes_in
        prod_width = self.w_shape.width + self.a_shape.width + 1

        def stage(*signals):
            """Register ``signals`` (with the clock enable); return the registered copies."""
            regs = []
            for sig in signals:
                reg = Signal.like(sig)
                with m.If(self.en):
                    m.d.sync += reg.eq(sig)
                regs.append(reg)
            return regs

        # stage 1: operand registers; stage 2: products
        w = [stage(self.w[k])[0] for k in range(n)]
        a = [stage(self.a[k])[0] for k in range(n)]
        v1, first1, last1, bias1 = stage(self.valid, self.first, self.last, self.bias)
        prods = [Signal(signed(prod_width), name=f"prod{k}") for k in range(n)]
        with m.If(self.en):
            for k in range(n):
                m.d.sync += prods[k].eq(w[k] * a[k])
        v2, first2, last2, bias2 = stage(v1, first1, last1, bias1)

        # stage 3: split accumulator, value = hi * 2^L + lo + cy * 2^L
        total = prods[0]
        for p in prods[1:]:
            total = total + p
        base = (bias2.as_signed() << self.bias_shift) if self.bias_shape.signed else (bias2 << self.bias_shift)
        low = max(1, self.acc_width // 2)
        high = self.acc_width - low
        lo = Signal(unsigned(low))
        hi = Signal(signed(high))
        cy = Signal()
        t = Signal(signed(self.acc_width))
        b = Signal(signed(self.acc_width))
        m.d.comb += [t.eq(total), b.eq(base)]
        prev_lo = Mux(first2, b.as_unsigned()[:low], lo)
        prev_hi = Mux(first2, (b >> low), hi)
        prev_cy = Mux(first2, 0, cy)
        lo_sum = Signal(unsigned(low + 1))
        m.d.comb += lo_sum.eq(prev_lo + t.as_unsigned()[:low])
        done3 = Signal()
        with m.If(self.en):
            with m.If(v2):
                m.d.sync += [lo.eq(lo_sum[:low]), cy.eq(lo_sum[low]),
                             hi.eq(prev_hi + (t >> low) + prev_cy)]
            m.d.sync += done3.eq(v2 & last2)

        # stage 4: resolve the pending carry
        with m.If(self.en):
            m.d.sync += [self.acc.eq(Cat(lo, (hi + cy)[:high]).as_signed()), self.done.eq(done3)]
        return m
