"""The rescale stage: ``z = overflow(round_shift(acc, shift, rounding), z_fmt, overflow)``, pipelined."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..fixed.qformat import QFormat
from ..plan.hardware import RESCALE_LATENCY
from .arith import overflow, round_parts, shape_of

__all__ = ["Rescale"]


class Rescale(wiring.Component):
    """The layer's one lossy step (:meth:`bp_hw.fixed.qmodel.QLayer.rescale`), three registers deep.

    Parameters
    ----------
    acc_width : int
        Width of the signed input.
    shift : int
        Bits dropped (``<= 0``: an exact left shift).
    rounding, overflow_mode : str
        Modes of :mod:`bp_hw.fixed.rounding` (deterministic rounding only).
    fmt : QFormat
        The result's format.

    Ports
    -----
    en : In(1)           clock enable; every register holds while low
    acc : In(signed(acc_width))
    z : Out(fmt shape)   ``acc`` rescaled, :attr:`LATENCY` enabled cycles later

    Latency: :attr:`LATENCY` = 3 (rounding decision with the truncated value; the add, with
    the saturation decisions taken from the truncated value beside it; the selection), so no
    stage has more than one carry chain in series.
    """

    LATENCY = RESCALE_LATENCY

    def __init__(self, acc_width: int, shift: int, rounding: str, overflow_mode: str, fmt: QFormat):
        self.shift, self.rounding, self.overflow_mode, self.fmt = shift, rounding, overflow_mode, fmt
        super().__init__({"en": In(1), "acc": In(signed(acc_width)), "z": Out(shape_of(fmt))})

    def elaborate(self, platform):
        m = Module()
        q_expr, up_expr = round_parts(self.acc, self.shift, self.rounding)
        q = Signal(q_expr.shape())
        up = Signal()
        r = Signal(signed(len(q) + 1))
        with m.If(self.en):
            m.d.sync += [q.eq(q_expr), up.eq(up_expr), r.eq(q + up)]
        if self.overflow_mode == "wrap":
            with m.If(self.en):
                m.d.sync += self.z.eq(overflow(r, self.fmt, self.overflow_mode))
            return m
        # overflow()'s clamp of r = q + up (up in {0, 1}), decided from q in the add's cycle
        lo, hi = self.fmt.min_int, self.fmt.max_int
        if self.overflow_mode == "symmetric" and self.fmt.signed:
            lo = -hi
        above, below = Signal(), Signal()
        with m.If(self.en):
            m.d.sync += [above.eq((q > hi) | ((q == hi) & up)), below.eq((q < lo) & ~((q == lo - 1) & up))]
            m.d.sync += self.z.eq(overflow(Mux(above, hi, Mux(below, lo, r)), self.fmt, "wrap"))
        return m
