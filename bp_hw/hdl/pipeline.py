"""Delay lines: a value carried beside a pipeline's data, register by register."""

from __future__ import annotations

from amaranth.hdl import Signal, Value

__all__ = ["delay"]


def delay(m, value, cycles: int, name: str = "delayed", en=None) -> Value:
    """``value`` ``cycles`` clock cycles later, through a chain of ``sync`` registers added to ``m``.

    With ``en`` the registers hold while it is low (a pipeline's clock enable),
    and the delay counts enabled cycles. ``cycles = 0`` returns ``value`` itself.
    """
    value = Value.cast(value)
    for stage in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_{stage + 1}")
        if en is None:
            m.d.sync += reg.eq(value)
        else:
            with m.If(en):
                m.d.sync += reg.eq(value)
        value = reg
    return value
