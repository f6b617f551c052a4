"""The multiply-accumulate lane and its two stages: the products and the accumulator.

:class:`MACLane` (the inference layer's lane) is a :class:`ProductStage`
followed by an :class:`Accumulator`. The training layer instantiates the same
two stages directly: its multipliers are shared by three passes, so it feeds
the product stage through operand multiplexers and takes the products both
into accumulators (forward pass, error pass) and into the update rounding.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..plan.hardware import DSP_CELL_RETIME_LATENCY, MAC_LATENCY, PRODUCT_LATENCY, mac_latency, product_latency
from .dsp import DSPMultiplier
from .pipeline import delay

__all__ = ["ProductStage", "Accumulator", "MACLane"]


class ProductStage(wiring.Component):
    """``lanes`` multipliers, ``p[k] = a[k] * b[k]``, with registered operands and registered products.

    Parameters
    ----------
    a_shape, b_shape : Shape
        Operand shapes.
    lanes : int
        Multipliers side by side.

    Ports
    -----
    en : In(1)
        Clock enable: every register holds while low.
    a : In(ArrayLayout(a_shape, lanes)), b : In(ArrayLayout(b_shape, lanes))
        Operands (may come through multiplexers: they are registered first).
    p : Out(ArrayLayout(prod_shape, lanes))
        The exact products (:attr:`prod_shape`: wide enough for any operands).

    in_logic : bool
        Build each product from shifted partial products (an adder tree in LUTs) instead of a
        ``*`` that synthesis maps onto a DSP block: for layers the device has no DSPs left for.
    cell : str or None
        The plan's DSP cell (``"MULT18X18D"`` on ECP5, where yosys does not fold fabric registers into
        the block): each product is one such block with its own operand and product registers
        (:class:`~bp_hw.hdl.dsp.DSPMultiplier`), then a fabric register
        (:data:`~bp_hw.plan.hardware.DSP_CELL_RETIME_LATENCY`: the route from the block gets a cycle
        of its own). ``None``: registers and a ``*`` that synthesis maps.
    primitive : bool
        With a ``cell``: instantiate it (synthesis, Verilog); ``False`` builds registers and a ``*`` in
        its place, with the same cycles (Amaranth's simulator cannot run instances).

    Latency: :attr:`latency` enabled cycles (:func:`~bp_hw.plan.hardware.product_latency`). On a DSP
    block (:attr:`LATENCY` = 2) the operand registers and the product registers, reset-less so that
    synthesis folds them into the block's own input and output registers (their enable becomes the
    block's hold inputs); 3 with a ``cell``: the block's own two, the fabric register. In logic, 3:
    the operand registers, a register halfway down the adder tree, the product registers.
    """

    LATENCY = PRODUCT_LATENCY

    def __init__(self, a_shape, b_shape, lanes: int = 1, in_logic: bool = False, cell: str | None = None,
                 primitive: bool = True):
        self.a_shape, self.b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        self.lanes = lanes
        self.in_logic = in_logic
        if in_logic and cell is not None:
            raise ValueError("products in logic take no DSP cell")
        self.cell = cell
        self.primitive = primitive
        self.latency = product_latency(in_logic, cell)
        #: the shape of an exact product of the two operand shapes
        self.prod_shape = (Const(0, self.a_shape) * Const(0, self.b_shape)).shape()
        super().__init__({
            "en": In(1),
            "a": In(data.ArrayLayout(self.a_shape, lanes)),
            "b": In(data.ArrayLayout(self.b_shape, lanes)),
            "p": Out(data.ArrayLayout(self.prod_shape, lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        for k in range(self.lanes):
            if self.cell is not None:
                if self.primitive:
                    m.submodules[f"mul{k}"] = mul = DSPMultiplier(self.a_shape, self.b_shape, self.cell)
                    m.d.comb += [mul.en.eq(self.en), mul.a.eq(self.a[k]), mul.b.eq(self.b[k])]
                    block_p = mul.p
                else:
                    a = Signal(self.a_shape, name=f"a{k}", reset_less=True)
                    b = Signal(self.b_shape, name=f"b{k}", reset_less=True)
                    block_p = Signal(self.prod_shape, name=f"block_p{k}", reset_less=True)
                    with m.If(self.en):
                        m.d.sync += [a.eq(self.a[k]), b.eq(self.b[k]), block_p.eq(a * b)]
                m.d.comb += self.p[k].eq(delay(m, block_p, DSP_CELL_RETIME_LATENCY, f"p{k}", en=self.en))
                continue
            # no reset: yosys folds reset-less registers (with their enable) into a DSP block's
            # operand and output registers; a register with a synchronous reset stays in logic
            a = Signal(self.a_shape, name=f"a{k}", reset_less=True)
            b = Signal(self.b_shape, name=f"b{k}", reset_less=True)
            p = Signal(self.prod_shape, name=f"p{k}", reset_less=True)
            with m.If(self.en):
                m.d.sync += [a.eq(self.a[k]), b.eq(self.b[k])]
            if self.in_logic:
                terms = _partial_products(a, b)
                levels = (len(terms) - 1).bit_length()       # adder levels of the balanced tree
                half = []
                for j, term in enumerate(_add_levels(terms, levels // 2)):
                    reg = Signal(term.shape(), name=f"sum{k}_{j}", reset_less=True)
                    with m.If(self.en):
                        m.d.sync += reg.eq(term)
                    half.append(reg)
                product = _add_levels(half, levels - levels // 2)[0]
            else:
                product = a * b
            with m.If(self.en):
                m.d.sync += p.eq(product)
            m.d.comb += self.p[k].eq(p)
        return m


def _partial_products(a: Signal, b: Signal) -> list:
    """``a << j`` for the set bits ``j`` of ``b`` (the sign bit of a signed ``b`` weighs
    ``-2**(n-1)``), 0 for the others: their sum is ``a * b`` with no multiplication operator, so
    synthesis keeps it out of DSP blocks."""
    n = len(b)
    terms = []
    for j in range(n):
        shifted = (a.as_signed() if a.shape().signed else a.as_unsigned()) << j
        term = Mux(b[j], shifted, 0)
        if j == n - 1 and b.shape().signed:
            term = -term
        terms.append(term)
    return terms


def _add_levels(terms: list, levels: int) -> list:
    """``levels`` levels of a balanced adder tree: neighbours summed pairwise, level by level."""
    for _ in range(levels):
        terms = [terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k] for k in range(0, len(terms), 2)]
    return terms


class Accumulator(wiring.Component):
    """Sums ``lanes`` products a cycle over the cycles of one dot product (``first`` .. ``last``)::

        acc = (bias << bias_shift) + sum_cycles sum_k p[k]

    with no rounding, as :meth:`bp_hw.fixed.qmodel.QLayer.accumulate` (``acc_width``
    from the caller's width rule, so that it cannot overflow).

    Parameters
    ----------
    prod_shape : Shape
        Shape of each product.
    lanes : int
        Products summed per cycle.
    acc_width : int
    bias_shape : Shape or None
        ``None``: no bias port, the sum starts from 0.
    bias_shift : int

    Ports
    -----
    en : In(1)
        Clock enable: every register holds while low.
    valid, first, last : In(1)
        ``p`` is a real term / the dot product's first / its last.
    p : In(ArrayLayout(prod_shape, lanes))
    bias : In(bias_shape)
        Sampled with ``first`` (only with a ``bias_shape``).
    acc : Out(signed(acc_width)), done : Out(1)
        ``done`` is high for one enabled cycle when ``acc`` holds a complete sum;
        ``acc`` then holds it until the next sum's first term.

    Latency: :attr:`LATENCY` = 2 enabled cycles from the last term to ``acc``/``done``.
    The accumulator is split into a low and a high half with the carry between
    them registered (a carry-save step), so its longest carry chain is half the
    accumulator; the second cycle adds the pending carry into the high half. :attr:`lo`,
    :attr:`hi`, :attr:`cy` are that state (:mod:`bp_hw.formal.accumulator` proves its range).
    """

    LATENCY = MAC_LATENCY - PRODUCT_LATENCY

    def __init__(self, prod_shape, lanes: int, acc_width: int, bias_shape=None, bias_shift: int = 0):
        self.prod_shape = Shape.cast(prod_shape)
        self.lanes = lanes
        self.acc_width = acc_width
        self.bias_shape = None if bias_shape is None else Shape.cast(bias_shape)
        self.bias_shift = bias_shift
        ports = {"en": In(1), "valid": In(1), "first": In(1), "last": In(1),
                 "p": In(data.ArrayLayout(self.prod_shape, lanes))}
        if self.bias_shape is not None:
            ports["bias"] = In(self.bias_shape)
        super().__init__({**ports, "acc": Out(signed(acc_width)), "done": Out(1)})
        # the running sum = hi * 2^L + lo + cy * 2^L (L = low_bits); read by the formal proof of its range
        self.low_bits = max(1, acc_width // 2)
        self.lo = Signal(unsigned(self.low_bits))
        self.hi = Signal(signed(acc_width - self.low_bits))
        self.cy = Signal()

    def elaborate(self, platform):
        m = Module()
        total = self.p[0]
        for k in range(1, self.lanes):
            total = total + self.p[k]
        # value = hi * 2^L + lo + cy * 2^L
        low = self.low_bits
        high = self.acc_width - low
        lo, hi, cy = self.lo, self.hi, self.cy
        t = Signal(signed(self.acc_width))
        b = Signal(signed(self.acc_width))
        m.d.comb += t.eq(total)
        if self.bias_shape is not None:
            bias = self.bias.as_signed() if self.bias_shape.signed else self.bias
            m.d.comb += b.eq(bias << self.bias_shift)
        prev_lo = Mux(self.first, b.as_unsigned()[:low], lo)
        prev_hi = Mux(self.first, (b >> low), hi)
        prev_cy = Mux(self.first, 0, cy)
        lo_sum = Signal(unsigned(low + 1))
        m.d.comb += lo_sum.eq(prev_lo + t.as_unsigned()[:low])
        done1 = Signal()
        with m.If(self.en):
            with m.If(self.valid):
                m.d.sync += [lo.eq(lo_sum[:low]), cy.eq(lo_sum[low]), hi.eq(prev_hi + (t >> low) + prev_cy)]
            m.d.sync += done1.eq(self.valid & self.last)
            # resolve the pending carry
            m.d.sync += [self.acc.eq(Cat(lo, (hi + cy)[:high]).as_signed()), self.done.eq(done1)]
        return m


class MACLane(wiring.Component):
    """``P_in`` multipliers feeding one accumulator: one neuron's dot product, a chunk per cycle.

    Computes, over the cycles of one neuron (``first`` on the first chunk,
    ``last`` on the last)::

        acc = (bias << bias_shift) + sum_chunks sum_k w[k] * a[k]

    exactly as :meth:`bp_hw.fixed.qmodel.QLayer.accumulate` (no rounding, and
    ``acc_width`` from the quantized model so it cannot overflow): a
    :class:`ProductStage` then an :class:`Accumulator`.

    Parameters
    ----------
    w_shape, a_shape : Shape
        Weight and activation shapes (from the layer's formats).
    bias_shape : Shape
    bias_shift : int
    acc_width : int
    lanes_in : int
        ``P_in``, products summed per cycle.
    in_logic : bool
        Products in LUTs instead of DSP blocks (:class:`ProductStage`).
    cell : str or None, primitive : bool
        The plan's DSP cell per product and whether to instantiate it (:class:`ProductStage`).

    Ports
    -----
    en : In(1)
        Clock enable: the lane holds every register while low.
    valid, first, last : In(1)
        The operands are a real chunk / the neuron's first / its last chunk.
    w : In(ArrayLayout(w_shape, P_in)), a : In(ArrayLayout(a_shape, P_in))
        Operands; expected to come straight from registers (the weight ROM's
        read port and the layer's operand register).
    bias : In(bias_shape)
        Sampled with ``first``.
    acc : Out(signed(acc_width)), done : Out(1)
        ``done`` is high for one enabled cycle when ``acc`` holds a complete sum.

    Latency: :attr:`latency` enabled cycles from operands to ``acc``/``done``
    (:func:`~bp_hw.plan.hardware.mac_latency`): the product stage's (:attr:`LATENCY` = 2 on DSP
    blocks, 3 in logic), with ``P_in > 1`` one more for the registered sum of the products (so
    that the accumulator's carry chains do not follow the products' adder in the same cycle), the
    accumulator's 2 (split accumulation, carry resolution).
    """

    LATENCY = MAC_LATENCY

    def __init__(self, w_shape, a_shape, bias_shape, bias_shift: int, acc_width: int, lanes_in: int = 1,
                 in_logic: bool = False, cell: str | None = None, primitive: bool = True):
        self.in_logic = in_logic
        self.cell = cell
        self.primitive = primitive
        self.latency = mac_latency(in_logic, lanes_in, cell)
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
        m.submodules.products = prods = ProductStage(self.w_shape, self.a_shape, self.lanes_in, self.in_logic,
                                                     self.cell, self.primitive)
        m.d.comb += [prods.en.eq(self.en), prods.a.eq(self.w), prods.b.eq(self.a)]
        if self.lanes_in == 1:
            acc = Accumulator(prods.prod_shape, 1, self.acc_width, self.bias_shape, self.bias_shift)
            m.d.comb += acc.p.eq(prods.p)
            ahead = prods.latency
        else:
            total = prods.p[0]
            for k in range(1, self.lanes_in):
                total = total + prods.p[k]
            terms = Signal(total.shape(), name="terms", reset_less=True)
            with m.If(self.en):
                m.d.sync += terms.eq(total)
            acc = Accumulator(terms.shape(), 1, self.acc_width, self.bias_shape, self.bias_shift)
            m.d.comb += acc.p[0].eq(terms)
            ahead = prods.latency + 1
        m.submodules.acc = acc
        m.d.comb += [acc.en.eq(self.en), self.acc.eq(acc.acc), self.done.eq(acc.done)]
        # the sideband follows the operands through the product stage (and the sum)
        side = delay(m, Cat(self.valid, self.first, self.last, self.bias), ahead, "side", en=self.en)
        m.d.comb += [acc.valid.eq(side[0]), acc.first.eq(side[1]), acc.last.eq(side[2]),
                     acc.bias.eq(side[3:])]
        return m
