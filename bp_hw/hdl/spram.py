"""A single-port RAM: iCE40UP SPRAM primitives, or the behavioural RAM that means the same."""

from __future__ import annotations

import math

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["SPRAM_DEPTH", "SPRAM_WIDTH", "SinglePortRAM"]

#: One SB_SPRAM256KA: 16K words of 16 bits.
SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16


class SinglePortRAM(wiring.Component):
    """``depth`` words of ``width`` bits behind one address: a write (``we``) or a read (``en``) per
    cycle, never both.

    With ``primitive=True`` the RAM is ``ceil(width / 16)`` ``SB_SPRAM256KA`` side by side
    (``CHIPSELECT = en | we``, ``WREN = we``; ``depth`` at most 16K); with ``False``, an
    ``amaranth.lib.memory.Memory`` with the same behaviour where it is defined (a read returns the
    word at ``addr`` one cycle later and ``rdata`` holds while ``en`` is low; during a write the
    primitive's ``rdata`` is undefined, so the datapath does not read then).

    Ports: ``addr`` (In), ``wdata`` (In, ``width``), ``we`` (In), ``en`` (In), ``rdata`` (Out,
    ``width``). Latency: one cycle from ``addr``/``en`` to ``rdata``.
    """

    def __init__(self, depth: int, width: int, *, primitive: bool):
        if primitive and depth > SPRAM_DEPTH:
            raise ValueError(f"an SPRAM memory holds at most {SPRAM_DEPTH} words, not {depth}")
        self.depth, self.width, self.primitive = depth, width, primitive
        super().__init__({"addr": In(range(max(depth, 2))), "wdata": In(width), "we": In(1), "en": In(1),
                          "rdata": Out(width)})

    def elaborate(self, platform):
        m = Module()
        if not self.primitive:
            ram = Memory(shape=unsigned(self.width), depth=self.depth, init=[])
            m.submodules.ram = ram
            wp = ram.write_port()
            rp = ram.read_port(domain="sync")
            m.d.comb += [wp.addr.eq(self.addr), rp.addr.eq(self.addr), wp.data.eq(self.wdata),
                         wp.en.eq(self.we), rp.en.eq(self.en & ~self.we), self.rdata.eq(rp.data)]
            return m
        tiles = math.ceil(self.width / SPRAM_WIDTH)
        wdata = Signal(tiles * SPRAM_WIDTH)
        rdata = Signal(tiles * SPRAM_WIDTH)
        m.d.comb += [wdata.eq(self.wdata), self.rdata.eq(rdata[:self.width])]
        for k in range(tiles):
            m.submodules[f"tile{k}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=Cat(self.addr, Const(0, 14 - len(self.addr))),
                i_DATAIN=wdata[k * SPRAM_WIDTH:(k + 1) * SPRAM_WIDTH], i_MASKWREN=Const(0b1111, 4),
                i_WREN=self.we, i_CHIPSELECT=self.en | self.we, i_CLOCK=ClockSignal(),
                i_STANDBY=Const(0, 1), i_SLEEP=Const(0, 1), i_POWEROFF=Const(1, 1),
                o_DATAOUT=rdata[k * SPRAM_WIDTH:(k + 1) * SPRAM_WIDTH])
        return m
