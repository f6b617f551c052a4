"""No accumulator overflows: the guard-bit rule proved on one layer's accumulator, for every operand.

:class:`AccumulatorRange` builds the :class:`~bp_hw.hdl.mac.Accumulator` exactly as the layer's
:class:`~bp_hw.hdl.mac.MACLane` does (``acc_width`` and ``bias_shift`` from the
:class:`~bp_hw.fixed.qmodel.QLayer`, the bias format, one term a cycle: the product, or with
``P_in > 1`` the sum of ``P_in`` products) and lets the solver choose, every cycle, the clock enable,
the chunk valid, the bias over its whole format, and each product anywhere between the smallest and
the largest product of the weight and input formats (every product the multipliers can give, and
more: an over-approximation that keeps the solver off the multipliers, whose exactness the neuron
proof and co-simulation cover). A sequencer in the wrapper marks each neuron's ``chunks`` terms
``first`` .. ``last`` as the engine's does. Asserted:

* the exact dot product ``(b << bias_shift) + sum of the terms`` (in a register two bits wider than
  the rule) stays inside ``signed(acc_width)`` at every partial sum, and
* when the accumulator says ``done``, its ``acc`` equals that exact sum: the split accumulator (low
  half, high half, registered carry) never wrapped.

Mutant ``no_guard_bits``: the accumulator ``guard_bits`` narrower (the product width alone), which
the proof must reject.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Const, Cover, Elaboratable, Module, Mux, ResetSignal, Signal, Value, signed
from amaranth.lib.data import ArrayLayout

from ..fixed.qmodel import guard_bits
from ..hdl.arith import shape_of
from ..hdl.mac import Accumulator
from ..plan.hardware import LayerPlan

__all__ = ["MUTANTS", "AccumulatorRange"]

MUTANTS = {"no_guard_bits": "accumulator"}


class AccumulatorRange(Elaboratable):
    """The formal wrapper around layer ``plan``'s accumulator. Free inputs (:attr:`ports`): ``en``,
    ``valid``, ``p`` (``P_in`` products), ``bias``."""

    def __init__(self, plan: LayerPlan, mutant: str | None = None):
        if mutant is not None and mutant not in MUTANTS:
            raise ValueError(f"unknown mutant {mutant!r}; choose from {sorted(MUTANTS)}")
        self.plan = plan
        layer = self.layer = plan.layer
        self.k = k = plan.fold.lanes_in
        self.acc_width = layer.acc_width - (guard_bits(layer.fan_in) if mutant == "no_guard_bits" else 0)
        w_fmt, a_fmt = layer.weight_fmt, layer.in_fmt
        corners = [w * a for w in (w_fmt.min_int, w_fmt.max_int) for a in (a_fmt.min_int, a_fmt.max_int)]
        self.p_min, self.p_max = min(corners), max(corners)
        self.prod_shape = (Const(0, shape_of(w_fmt)) * Const(0, shape_of(a_fmt))).shape()
        self.term_shape = sum([Const(0, self.prod_shape)] * k).shape() if k > 1 else self.prod_shape
        self.bias_shape = shape_of(layer.bias_fmt)
        self.acc = Accumulator(self.term_shape, 1, self.acc_width, self.bias_shape, layer.bias_shift)
        self.en, self.valid = Signal(), Signal()
        self.p = Signal(ArrayLayout(self.prod_shape, k))
        self.bias = Signal(self.bias_shape)
        self.ports = (self.en, self.valid, self.p.as_value(), self.bias)

    def elaborate(self, platform):
        m = Module()
        m.submodules.acc = acc = self.acc
        layer, chunks, k = self.layer, self.plan.fold.chunks, self.k
        m.d.comb += Assume(~ResetSignal(), "reset stays low: registers start at their initial values")
        for j in range(k):
            m.d.comb += Assume((self.p[j] >= self.p_min) & (self.p[j] <= self.p_max),
                               f"product {j} inside [{self.p_min}, {self.p_max}]")
        c = Signal(range(max(chunks, 2)))
        first, last = c == 0, c == chunks - 1
        issue = self.en & self.valid
        with m.If(issue):
            m.d.sync += c.eq(Mux(last, 0, c + 1))
        term = sum(Value.cast(self.p[j]) for j in range(k))
        m.d.comb += [acc.en.eq(self.en), acc.valid.eq(self.valid), acc.first.eq(first), acc.last.eq(last),
                     acc.p[0].eq(term), acc.bias.eq(self.bias)]

        # the exact running sum, two bits wider than the layer's rule asks; the chunks it holds: c
        wide = signed(layer.acc_width + 2)
        total, start, exact = Signal(wide), Signal(wide), Signal(wide)
        m.d.comb += [start.eq(Mux(first, self.bias << layer.bias_shift, total)), exact.eq(start + term)]
        with m.If(issue):
            m.d.sync += total.eq(exact)
        held = Signal(wide)         # the running sum one enabled cycle ago: what `acc` shows
        with m.If(self.en):
            m.d.sync += held.eq(total)
        low = acc.low_bits
        state = Signal(wide)
        m.d.comb += state.eq((acc.hi << low) + acc.lo + (acc.cy << low))
        fmt = layer.bias_fmt
        b_lo, b_hi = fmt.min_int << layer.bias_shift, fmt.max_int << layer.bias_shift
        lo, hi = -(1 << (self.acc_width - 1)), (1 << (self.acc_width - 1)) - 1
        chunks_in = Mux(c == 0, chunks, c)      # terms summed in `total` (a whole neuron when c is 0)
        m.d.comb += [
            Assert(c < chunks, "the chunk counter inside the neuron"),
            Assert(state == total, "the split accumulator holds the exact running sum"),
            Assert(acc.acc == held, "acc shows the running sum one enabled cycle later"),
            # the guard-bit rule: the exact partial sums stay inside the accumulator's range
            Assert((total >= b_lo + chunks_in * (k * self.p_min)) & (total <= b_hi + chunks_in * (k * self.p_max)),
                   "the running sum inside the bias and products' bounds"),
            Assert(~issue | ((exact >= lo) & (exact <= hi)), f"every partial sum inside signed({self.acc_width})"),
            Cover(acc.done, "a dot product done"),
            Cover(acc.done & (acc.acc < 0), "a negative dot product done"),
            Cover(acc.done & (acc.acc > (hi >> 1)), "a dot product above half the range"),
        ]
        return m
