"""The board link's deframer (:class:`~bp_hw.boards.uart_wrapper.NetworkUART`): an answer is queued as a
result only for a frame whose CRC is right, and the network is handed that frame's payload.

The proof feeds bytes straight into the link's receive FIFO (:class:`ByteFeed` in place of the UART
receiver: any byte in any cycle, the solver's choice) behind a one-element network that echoes its
input a cycle later (:class:`EchoNetwork`), so that a frame is ``A5 seq x crc_lo crc_hi``. A monitor
keeps the last five bytes the deframer took from the FIFO (and whether each was a flushed zero) and
asserts, where the link queues an answer to an infer frame as good (its tag's ``ok``):

* the five bytes are a frame: ``A5`` first, none flushed, the CRC-16 of ``seq x`` (the spec's
  :func:`~bp_hw.boards.frame.crc16_byte`, through :func:`~bp_hw.boards.link_core.crc16_update`) is the
  received CRC, low byte first;
* the answer carries the frame's ``seq``, and the network is offered the frame's ``x``.

Covers: a frame answered as good, a frame refused (bad CRC), a good frame after a refused one.
``mutant="ignores_crc"`` builds a link whose CRC check always passes: the proof must reject it.
"""

# No "from __future__ import annotations": wiring.Component reads its port annotations as objects.

from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Elaboratable, Module, ResetSignal, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..boards.frame import CRC_INIT, SYNC_REQUEST, FrameSpec
from ..boards.link_core import IDLE_TICK_BITS, crc16_update
from ..boards.uart_wrapper import _INFER, NetworkUART

__all__ = ["MUTANTS", "DIVISOR", "ByteFeed", "EchoNetwork", "LinkFrames"]

MUTANTS = {"ignores_crc": "the link's CRC comparison always passes"}
#: UART divisor of the proof's link (its transmitter sends the answers; the receiver is replaced).
DIVISOR = 4
#: Bytes of the proof's receive FIFO (a board's holds 512 or more): the deframer never reads the FIFO's
#: depth, which only decides when bytes are dropped (a full FIFO), and a 512-byte memory slows the
#: solver several times over.
RX_FIFO = 4


class _ProofSpec(FrameSpec):
    """The frames of a one-element network with a :data:`RX_FIFO`-byte receive FIFO."""

    @property
    def rx_fifo(self) -> int:
        return RX_FIFO


#: One byte element in, one out: a request frame is five bytes.
SPEC = _ProofSpec(n_in=1, n_out=1, in_width=8, out_width=8, in_signed=False, out_signed=False)
FRAME = SPEC.request_length


class ByteFeed(wiring.Component):
    """The UART receiver's ports with bytes from :attr:`valid` and :attr:`byte` (driven by the proof)."""

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    frame_error: Out(1)
    overrun: Out(1)

    def __init__(self):
        super().__init__()
        self.valid, self.byte = Signal(), Signal(8)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.o.valid.eq(self.valid), self.o.payload.eq(self.byte)]
        return m


class EchoNetwork(wiring.Component):
    """A network of one 8-bit element: ``o`` is ``i`` one cycle later (a register, held while stalled)."""

    i: In(stream.Signature(data.ArrayLayout(unsigned(8), 1)))
    o: Out(stream.Signature(data.ArrayLayout(unsigned(8), 1)))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        with m.If(self.i.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        return m


class _IgnoresCRC(NetworkUART):
    """Broken on purpose: every CRC compares equal."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.core.crc_ok.eq(1)   # the later assignment in the same module wins
        return m


class LinkFrames(Elaboratable):
    """The formal wrapper. Free inputs (:attr:`ports`): the byte feed's ``valid`` and ``byte`` (a byte
    received in this cycle). The answers leave through the link's UART transmitter, which the suite
    cuts (:data:`~bp_hw.formal.suite.LINK_CUT`: its ``ready`` a free value)."""

    def __init__(self, mutant: str | None = None):
        if mutant is not None and mutant not in MUTANTS:
            raise ValueError(f"unknown mutant {mutant!r}; choose from {sorted(MUTANTS)}")
        self.mutant = mutant
        self.feed = ByteFeed()
        idle = 2 << IDLE_TICK_BITS     # the shortest idle timeout the link takes (beyond the proof's depth)
        self.uart = (_IgnoresCRC if mutant else NetworkUART)(EchoNetwork(), SPEC, DIVISOR, idle, self.feed)
        self.ports = (self.feed.valid, self.feed.byte)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += Assume(~ResetSignal(), "reset stays low: registers start at their initial values")
        # elaborated here, not by the hierarchy, so that its link's signals can be read below
        m.submodules.link = self.uart.elaborate(platform)
        self.uart._MustUse__used = True     # (as Amaranth marks what it elaborates itself)
        core, net = self.uart.core, self.uart.network

        # the last FRAME bytes taken by the deframer, oldest first, and whether each was a flushed zero
        window = [Signal(8, name=f"w{k}") for k in range(FRAME)]
        flushed = [Signal(name=f"w{k}_flushed") for k in range(FRAME)]
        with m.If(core.take):
            m.d.sync += [window[-1].eq(core.byte), flushed[-1].eq(core.flush)]
            m.d.sync += [window[k].eq(window[k + 1]) for k in range(FRAME - 1)]
            m.d.sync += [flushed[k].eq(flushed[k + 1]) for k in range(FRAME - 1)]
        crc = Const(CRC_INIT, 16)
        for b in window[1:-2]:
            crc = crc16_update(crc, b)
        frame_ok = (window[0] == SYNC_REQUEST) & ~Cat(*flushed).any() & (Cat(window[-2], window[-1]) == crc)

        tag = core.tag_in
        queued = core.tag_push & (tag.kind == _INFER)
        good = queued & tag.ok
        m.d.comb += [Assert(~good | frame_ok, "an answer queued as good: its frame's CRC is right"),
                     Assert(~good | (tag.seq == window[1]), "... the answer carries the frame's seq"),
                     Assert(~good | (net.i.valid & (net.i.payload.as_value() == window[2])),
                            "... the network is offered the frame's x")]
        refused = Signal()
        with m.If(queued & ~tag.ok):
            m.d.sync += refused.eq(1)
        m.d.comb += [Cover(good, "a frame answered as good"), Cover(queued & ~tag.ok, "a frame refused"),
                     Cover(good & refused, "a good frame after a refused one")]
        return m
