"""The valid/ready contract as formal statements, for any stream a wrapper sees.

A producer that raises ``valid`` keeps it and the payload unchanged until the cycle of the transfer
(``valid & ready``). On a port the design drives, that is asserted; on a port the environment drives,
it is assumed (the solver then plays only producers that keep the contract).
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Signal

__all__ = ["held", "keeps_contract", "Counter"]


def held(m, valid, ready, payload, name: str):
    """Registers of the previous cycle: ``(stalled, payload)``, ``stalled`` = valid without ready."""
    stalled = Signal(name=f"{name}_stalled")
    before = Signal(len(payload), name=f"{name}_before")
    m.d.sync += [stalled.eq(valid & ~ready), before.eq(payload)]
    return stalled, before


def keeps_contract(m, valid, ready, payload, name: str, *, assume: bool = False):
    """``Assert`` (or, with ``assume``, ``Assume``) that a stalled ``valid`` and its payload hold."""
    stalled, before = held(m, valid, ready, payload, name)
    statement = Assume if assume else Assert
    m.d.comb += statement(~stalled | (valid & (payload == before)), f"{name}: valid and payload hold until the transfer")
    return stalled


class Counter:
    """Transfers counted in a register wide enough for ``limit`` of them (it stops there)."""

    def __init__(self, m, fire, limit: int, name: str):
        self.value = Signal(range(limit + 1), name=name)
        m.d.sync += self.value.eq(self.value + (fire & (self.value != limit)))
