"""The board links' deframers: a frame is acted on only when its CRC is right, and then with its own
contents. Proved by k-induction, for all time and bytes arriving in any pattern.

The proof feeds bytes straight into the link's receive FIFO (:class:`ByteFeed` in place of the UART
receiver: any byte in any cycle, the solver's choice) behind a one-element network that echoes its
input a cycle later, so that an infer frame is ``A5 seq x crc_lo crc_hi``. A monitor
(:class:`_Monitor`) keeps the last bytes the deframer took from the FIFO (and whether each was a
flushed zero), the frame's first byte, and the CRC-16 of the bytes since it (the spec's
:func:`~bp_hw.boards.link_core.crc16_update`), and asserts:

* inference link (:class:`LinkFrames`, :class:`~bp_hw.boards.uart_wrapper.NetworkUART`): an answer
  queued as good has a frame with the right CRC behind it, carries its ``seq``, and the network is
  offered its ``x``; a load frame's words go onto the load port only after its CRC checked out;
* training link (:class:`TrainLinkFrames`, :class:`~bp_hw.boards.train_wrapper.TrainUART`): a sample
  is offered only for an infer or train frame whose CRC is right, with that frame's ``x``, ``t`` and
  ``train``; parameter writes and reads are requested only after their frame's CRC checked out.

Alongside, invariants of each deframer state (what it holds, stated on the bytes taken) make the
properties inductive. Covers show each is reached (a good frame, a refused one, a good one after a
refused one, a load word committed; a train and an infer sample, a write, a read). :data:`MUTANTS`
and :data:`TRAIN_MUTANTS` are links whose CRC check passes for every frame, or for one kind of
frame: the proof must reject each.
"""

# No "from __future__ import annotations": wiring.Component reads its port annotations as objects.

from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Elaboratable, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..boards.crossing import access_request_layout
from ..boards.frame import CRC_INIT, LOAD, READ, SYNC_REQUEST, TRAIN, WRITE, FrameSpec, TrainFrameSpec
from ..boards.link_core import IDLE_TICK_BITS, crc16_update
from ..boards.train_wrapper import TrainUART
from ..boards.uart_wrapper import _INFER, NetworkUART

__all__ = ["MUTANTS", "TRAIN_MUTANTS", "DIVISOR", "ByteFeed", "EchoNetwork", "LoadEchoNetwork", "TrainEchoNetwork",
           "LinkFrames", "TrainLinkFrames"]

#: The broken links (name: the head byte of the frames whose CRC always passes, None for every frame).
MUTANTS = {"ignores_crc": None, "loads_ignore_crc": LOAD}
TRAIN_MUTANTS = {"ignores_crc": None, "writes_ignore_crc": WRITE}
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


class _ProofTrainSpec(TrainFrameSpec):
    """The training frames of a 1-1 network with a :data:`RX_FIFO`-byte receive FIFO."""

    rx_fifo = property(lambda self: RX_FIFO)


#: Address bits of the training proof's parameters (all of the addresses in use).
TRAIN_ADDR_WIDTH = 2
#: The load image of the proof's network: words of this many bits at addresses of this many, all of
#: the addresses in use.
LOAD_WIDTH, LOAD_ADDR_WIDTH = 8, 4
#: One byte element in, one out, and a load image: an infer request frame is five bytes.
SPEC = _ProofSpec(n_in=1, n_out=1, in_width=8, out_width=8, in_signed=False, out_signed=False,
                  load_words=1 << LOAD_ADDR_WIDTH, load_addr_width=LOAD_ADDR_WIDTH, load_width=LOAD_WIDTH)
FRAME = SPEC.request_length


def _crc(m, data_bytes):
    """The frame CRC of ``data_bytes`` (8-bit values), a signal of ``m`` (each step's CRC a signal of
    its own: a CRC step reads each input bit many times, and nested expressions would be copied out
    for every read)."""
    crc = Const(CRC_INIT, 16)
    for b in data_bytes:
        step = Signal(16)
        m.d.comb += step.eq(crc16_update(crc, b))
        crc = step
    return crc


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


class LoadEchoNetwork(EchoNetwork):
    """:class:`EchoNetwork` with a load port (``ld``) whose ``ready`` is :attr:`ld_ready` (free)."""

    ld: In(stream.Signature(data.StructLayout({"data": LOAD_WIDTH, "addr": LOAD_ADDR_WIDTH})))

    def __init__(self):
        super().__init__()
        self.ld_ready = Signal()

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.ld.ready.eq(self.ld_ready)
        return m


class TrainEchoNetwork(wiring.Component):
    """The ports of a :class:`~bp_hw.boards.crossing.TrainCrossing` for a 1-1 network of 8-bit values:
    ``o`` is ``i.x`` a cycle later; access requests are taken as :attr:`acc_ready` (free) says, and
    each read answered on ``rd`` the cycle after (with the low bits of its address)."""

    i: In(stream.Signature(data.StructLayout({"x": data.ArrayLayout(unsigned(8), 1),
                                               "t": data.ArrayLayout(unsigned(8), 1), "train": 1})))
    o: Out(stream.Signature(data.ArrayLayout(unsigned(8), 1)))
    acc: In(stream.Signature(access_request_layout(TRAIN_ADDR_WIDTH, 8)))
    rd: Out(stream.Signature(signed(8)))

    def __init__(self):
        super().__init__()
        self.acc_ready = Signal()

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        with m.If(self.i.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload.x)]
        m.d.comb += self.acc.ready.eq(self.acc_ready)
        m.d.sync += [self.rd.valid.eq(self.acc.valid & self.acc.ready & ~self.acc.payload.we),
                     self.rd.payload.eq(self.acc.payload.addr)]
        return m


class _Monitor:
    """What a deframer took, built into ``m``: the last ``n`` bytes (:attr:`window`, oldest first, and
    whether each was a flushed zero), the frame's first byte (:attr:`head`: the last byte taken in the
    deframer's hunt state), and the CRC-16 of the bytes taken since it (:attr:`crc`), of those less
    the last (:attr:`crc_less1`) and less the last two (:attr:`crc_less2`); :attr:`flushed_since`: a
    flushed zero among them. :attr:`ends_in_crc`: the last two bytes are the CRC of those before
    them, low byte first, none flushed. ``state[name]`` is the deframer's FSM being in ``name``;
    :meth:`entered` is high in the first cycle of a state and names the state before."""

    def __init__(self, m, core, fsm, n):
        self.m, self.core = m, core
        self.state = {name: fsm.state == code for name, code in fsm.encoding.items()}
        self.window = [Signal(8, name=f"w{k}") for k in range(n)]
        self.flushed = [Signal(name=f"w{k}_flushed") for k in range(n)]
        self.head = Signal(8)
        self.crc, self.crc_less1, self.crc_less2 = (Signal(16, init=CRC_INIT, name=f"mon_crc{k}") for k in range(3))
        self.flushed_since = Signal()
        w, f = self.window, self.flushed
        with m.If(core.take):
            m.d.sync += [w[-1].eq(core.byte), f[-1].eq(core.flush)]
            m.d.sync += [w[k].eq(w[k + 1]) for k in range(n - 1)]
            m.d.sync += [f[k].eq(f[k + 1]) for k in range(n - 1)]
            with m.If(self.state["HUNT"]):
                m.d.sync += [self.head.eq(core.byte), self.flushed_since.eq(0),
                             self.crc.eq(CRC_INIT), self.crc_less1.eq(CRC_INIT), self.crc_less2.eq(CRC_INIT)]
            with m.Else():
                m.d.sync += [self.crc.eq(crc16_update(self.crc, core.byte)), self.crc_less1.eq(self.crc),
                             self.crc_less2.eq(self.crc_less1), self.flushed_since.eq(self.flushed_since | core.flush)]
        self.ends_in_crc = (Cat(w[-2], w[-1]) == self.crc_less2) & ~self.flushed_since
        self.prev = Signal.like(fsm.state)
        m.d.sync += self.prev.eq(fsm.state)
        self._encoding = fsm.encoding
        self._fsm_state = fsm.state

    def entered(self, name, before):
        """Assert that state ``name`` is entered only from state ``before``; the entry's condition."""
        entry = self.state[name] & (self.prev != self._encoding[name])
        self.m.d.comb += Assert(~entry | (self.prev == self._encoding[before]), f"{name} is entered from {before} only")
        return entry

    def presented(self, port):
        """High where ``port`` (a stream) presents a new payload: valid, and not in the cycle before or
        taken then."""
        was_valid, was_taken = Signal(), Signal()
        self.m.d.sync += [was_valid.eq(port.valid), was_taken.eq(port.valid & port.ready)]
        return port.valid & (~was_valid | was_taken)

    def was(self, name):
        """The deframer was in state ``name`` in the cycle before."""
        return self.prev == self._encoding[name]

    def invariant(self, name, *conds, label=""):
        """Assert ``conds`` wherever the deframer is in state ``name``."""
        for k, c in enumerate(conds):
            self.m.d.comb += Assert(~self.state[name] | c, f"invariant{label}: {name} ({k})")

    def crc_invariants(self, data_states, crc1_states):
        """The link's running CRC against the monitor's: in ``data_states`` (a frame's bytes up to its
        CRC) the CRC of the bytes since the head; in ``crc1_states`` (the CRC's low byte taken) of those
        before it, and ``crc_lo`` that byte."""
        core = self.core
        for name in data_states:
            self.invariant(name, core.crc_settled == self.crc, label=" crc")
        for name in crc1_states:
            self.invariant(name, core.crc_settled == self.crc_less1, core.crc_lo == self.window[-1], label=" crc")

    def common(self):
        """The link core's own invariants."""
        self.m.d.comb += Assert(~self.core.cur_ready | self.core.cur_valid, "invariant: a byte offered is held")


def _ignore_crc(uart, m, head=None):
    """Break ``uart`` (elaborated into ``m``): its CRC comparison passes for every frame, or, with
    ``head``, for the frames that start with that byte (the later assignment in the same module wins)."""
    if head is None:
        m.d.comb += uart.core.crc_ok.eq(1)
        return
    first = Signal(8)
    with m.If(uart.core.take & (uart.deframer.state == uart.deframer.encoding["HUNT"])):
        m.d.sync += first.eq(uart.core.byte)
    with m.If(first == head):
        m.d.comb += uart.core.crc_ok.eq(1)


class _IgnoresCRCMixin:
    """A link broken on purpose (:data:`MUTANTS`, :data:`TRAIN_MUTANTS`): its CRC comparison passes for
    the frames starting with ``head`` (for every frame where ``head`` is None)."""

    def __init__(self, *args, head=None):
        super().__init__(*args)
        self.head = head

    def elaborate(self, platform):
        m = super().elaborate(platform)
        _ignore_crc(self, m, self.head)
        return m


class _IgnoresCRC(_IgnoresCRCMixin, NetworkUART):
    """The inference link, broken (:data:`MUTANTS`)."""


class _TrainIgnoresCRC(_IgnoresCRCMixin, TrainUART):
    """The training link, broken (:data:`TRAIN_MUTANTS`)."""


def _elaborate_link(m, uart, feed, pace, platform):
    # elaborated here, not by the hierarchy, so that the link's signals can be read by the proof
    m.submodules.link = uart.elaborate(platform)
    uart._MustUse__used = True     # (as Amaranth marks what it elaborates itself)
    m.d.comb += Assume(~ResetSignal(), "reset stays low: registers start at their initial values")
    if pace:
        phase = Signal(range(pace))
        m.d.sync += phase.eq(Mux(phase == pace - 1, 0, phase + 1))
        m.d.comb += Assume(feed.valid == (phase == 0), "a byte arrives every pace cycles")


class LinkFrames(Elaboratable):
    """The formal wrapper of the inference link. Free inputs (:attr:`ports`): the byte feed's ``valid``
    and ``byte`` (a byte received in this cycle) and the load port's ``ready``. The answers leave
    through the link's UART transmitter, which the suite cuts (:data:`~bp_hw.formal.suite.LINK_CUT`:
    its ``ready`` a free value). ``mutant`` is one of :data:`MUTANTS`; ``pace`` assumes a byte exactly
    every that many cycles (for the broken links' bounded runs: a narrower search, not a proof)."""

    def __init__(self, mutant: str | None = None, pace: int | None = None):
        self.pace = pace
        if mutant is not None and mutant not in MUTANTS:
            raise ValueError(f"unknown mutant {mutant!r}; choose from {sorted(MUTANTS)}")
        self.mutant = mutant
        self.feed = ByteFeed()
        self.network = LoadEchoNetwork()
        idle = 2 << IDLE_TICK_BITS     # the shortest idle timeout the link takes
        args = (self.network, SPEC, DIVISOR, idle, self.feed)
        self.uart = _IgnoresCRC(*args, head=MUTANTS[mutant]) if mutant else NetworkUART(*args)
        self.ports = (self.feed.valid, self.feed.byte, self.network.ld_ready)

    def elaborate(self, platform):
        m = Module()
        _elaborate_link(m, self.uart, self.feed, self.pace, platform)
        core, net = self.uart.core, self.network
        mon = _Monitor(m, core, self.uart.deframer, FRAME)
        window, flushed, state = mon.window, mon.flushed, mon.state
        frame_ok = ((window[0] == SYNC_REQUEST) & ~Cat(*flushed).any()
                    & (Cat(window[-2], window[-1]) == _crc(m, window[1:-2])))

        tag = core.tag_in
        queued = core.tag_push & (tag.kind == _INFER)
        good = queued & tag.ok
        m.d.comb += [Assert(~good | frame_ok, "an answer queued as good: its frame's CRC is right"),
                     Assert(~good | (tag.seq == window[1]), "... the answer carries the frame's seq"),
                     Assert(~good | (net.i.valid & (net.i.payload.as_value() == window[2])),
                            "... the network is offered the frame's x")]
        # load frames: committed (the words onto ld) only after a good CRC
        wait = mon.entered("L_WAIT", "L_CRC1")
        mon.entered("L_COMMIT", "L_WAIT")
        m.d.comb += [Assert(~wait | ((mon.head == LOAD) & mon.ends_in_crc), "a load frame is committed only "
                            "with its CRC right"),
                     Assert(~mon.presented(net.ld) | mon.was("L_COMMIT"), "load words are put on ld only "
                            "while committing")]

        # Invariants: what the deframer holds in each state, stated on the bytes it took, so that
        # k-induction closes: proved with the properties, they carry them across any stretch of cycles
        # without a byte (each byte's own handling is a few cycles, inside the induction length).
        beat = self.uart.beat_state
        mon.common()
        m.d.comb += [Assert(~beat["release"] | beat["full"], "invariant: only a beat held is released"),
                     Assert(~core.flush | state["PAYLOAD"] | state["CRC0"] | state["CRC1"],
                            "invariant: zeros are fed only inside an infer frame"),
                     Assert(state["HUNT"] | ~mon.flushed_since | core.flush,
                            "invariant: a frame with a flushed byte is still being flushed")]
        mon.crc_invariants(["SEQ", "PAYLOAD", "CRC0", "L_SEQ", "L_ADDR", "L_COUNT", "L_DATA", "L_CRC0"],
                           ["CRC1", "L_CRC1"])
        mon.invariant("SEQ", window[-1] == SYNC_REQUEST, ~flushed[-1], mon.head == SYNC_REQUEST, mon.crc == CRC_INIT)
        mon.invariant("PAYLOAD", mon.head == SYNC_REQUEST, mon.crc == _crc(m, window[-1:]))
        mon.invariant("CRC0", mon.head == SYNC_REQUEST, mon.crc == _crc(m, window[-2:]), ~flushed[-1] | mon.flushed_since)
        mon.invariant("CRC1", mon.head == SYNC_REQUEST, mon.crc_less1 == _crc(m, window[-3:-1]),
                      ~(flushed[-2] | flushed[-1]) | mon.flushed_since)
        mon.invariant("PAYLOAD", window[-2] == SYNC_REQUEST, ~flushed[-2], ~flushed[-1], core.seq == window[-1],
                      beat["byte"] == 0, beat["index"] == 0)
        mon.invariant("CRC0", window[-3] == SYNC_REQUEST, ~flushed[-3], ~flushed[-2], core.seq == window[-2],
                      beat["full"], ~beat["release"], net.i.payload.as_value() == window[-1])
        mon.invariant("CRC1", window[-4] == SYNC_REQUEST, ~flushed[-4], ~flushed[-3], core.seq == window[-3],
                      beat["full"], ~beat["release"], net.i.payload.as_value() == window[-2])
        for name in ("L_SEQ", "L_ADDR", "L_COUNT", "L_DATA", "L_CRC0", "L_CRC1"):
            mon.invariant(name, mon.head == LOAD)

        refused = Signal()
        with m.If(queued & ~tag.ok):
            m.d.sync += refused.eq(1)
        m.d.comb += [Cover(good, "a frame answered as good"), Cover(queued & ~tag.ok, "a frame refused"),
                     Cover(good & refused, "a good frame after a refused one"),
                     Cover(net.ld.valid & net.ld.ready, "a load word committed")]
        return m


#: The training link's proof: a 1-1 network of 8-bit values, a train frame is six bytes.
TRAIN_SPEC = _ProofTrainSpec(n_in=1, n_out=1, in_width=8, out_width=8, target_width=8,
                             params=1 << TRAIN_ADDR_WIDTH, param_width=8, in_signed=False, out_signed=False)
TRAIN_FRAME = TRAIN_SPEC.request_length


class TrainLinkFrames(Elaboratable):
    """The formal wrapper of the training link (:class:`~bp_hw.boards.train_wrapper.TrainUART`) behind
    a :class:`TrainEchoNetwork`. Free inputs (:attr:`ports`): the byte feed and the access port's
    ``ready``; the transmitter is cut as for :class:`LinkFrames`.

    Asserted: a sample is offered to the network only for an infer or train frame whose CRC is right,
    with that frame's ``x`` (and ``t``, and ``train`` for a train frame); parameter writes and reads
    are issued only after their frame's CRC checks out."""

    def __init__(self, mutant: str | None = None, pace: int | None = None):
        self.pace = pace
        if mutant is not None and mutant not in TRAIN_MUTANTS:
            raise ValueError(f"unknown mutant {mutant!r}; choose from {sorted(TRAIN_MUTANTS)}")
        self.mutant = mutant
        self.feed = ByteFeed()
        self.network = TrainEchoNetwork()
        idle = 2 << IDLE_TICK_BITS
        args = (self.network, TRAIN_SPEC, DIVISOR, idle, self.feed)
        self.uart = _TrainIgnoresCRC(*args, head=TRAIN_MUTANTS[mutant]) if mutant else TrainUART(*args)
        self.ports = (self.feed.valid, self.feed.byte, self.network.acc_ready)

    def elaborate(self, platform):
        m = Module()
        _elaborate_link(m, self.uart, self.feed, self.pace, platform)
        core, net = self.uart.core, self.network
        mon = _Monitor(m, core, self.uart.deframer, TRAIN_FRAME)
        w, state = mon.window, mon.state
        sample = self.uart.sample_state
        offered = Signal()
        m.d.sync += offered.eq(sample["offer"])
        new = sample["offer"] & ~offered
        train = net.i.payload.train
        x, t = net.i.payload.x.as_value(), net.i.payload.t.as_value()
        as_train = (mon.head == TRAIN) & (x == w[-4]) & (t == w[-3])
        as_infer = (mon.head == SYNC_REQUEST) & (x == w[-3]) & (t == 0)
        m.d.comb += [Assert(~new | mon.ends_in_crc, "a sample offered: its frame's CRC is right"),
                     Assert(~new | Mux(train, as_train, as_infer), "... its x, t and train are the frame's")]
        for name, before, head, kind in (("W_WAIT", "W_CRC1", WRITE, "writes"), ("R_WAIT", "P_CRC1", READ, "reads")):
            entry = mon.entered(name, before)
            m.d.comb += Assert(~entry | ((mon.head == head) & mon.ends_in_crc),
                               f"parameter {kind} are issued only with their frame's CRC right")
        mon.entered("W_ISSUE", "W_WAIT")
        mon.entered("R_ISSUE", "R_WAIT")
        acc = net.acc
        request = mon.presented(acc)
        m.d.comb += [Assert(~request | ~acc.payload.we | mon.was("W_ISSUE"), "parameter writes are requested "
                            "only while issuing a write frame's"),
                     Assert(~request | acc.payload.we | mon.was("R_ISSUE"), "parameter reads are requested "
                            "only while issuing a read frame's")]

        # Invariants (as for LinkFrames)
        mon.common()
        m.d.comb += Assert(~core.flush & ~mon.flushed_since, "invariant: the training link feeds no zeros")
        nbyte, shreg, training, offer = sample["nbyte"], sample["shreg"], sample["training"], sample["offer"]
        mon.crc_invariants(["S_SEQ", "S_DATA", "S_PAD", "S_CRC0", "W_SEQ", "P_ADDR", "P_COUNT", "W_DATA", "W_CRC0",
                            "R_SEQ", "R_ADDR", "R_COUNT", "P_CRC0"], ["S_CRC1", "W_CRC1", "P_CRC1"])
        sample_head = Mux(training, mon.head == TRAIN, mon.head == SYNC_REQUEST)
        mon.invariant("S_SEQ", sample_head)
        for name in ("S_DATA", "S_PAD", "S_CRC0", "S_CRC1"):    # S_SEQ waits for the sample before to go
            mon.invariant(name, sample_head, ~offer)
        for name in ("W_SEQ", "P_ADDR", "P_COUNT", "W_DATA", "W_CRC0", "W_CRC1"):
            mon.invariant(name, mon.head == WRITE)
        for name in ("R_SEQ", "R_ADDR", "R_COUNT"):
            mon.invariant(name, mon.head == READ)
        for name in ("P_CRC0", "P_CRC1"):
            mon.invariant(name, mon.head == READ)
        mon.invariant("S_SEQ", w[-1] == mon.head, nbyte == 0, mon.crc == CRC_INIT)
        mon.invariant("S_DATA", ((nbyte == 0) & (mon.crc == _crc(m, w[-1:])))
                      | (training & (nbyte == 1) & (shreg[8:] == w[-1]) & (mon.crc == _crc(m, w[-2:]))))
        mon.invariant("S_PAD", ~training, nbyte == 1, shreg[8:] == w[-1], mon.crc == _crc(m, w[-2:]))
        mon.invariant("S_CRC0", mon.crc == Mux(training, _crc(m, w[-3:]), _crc(m, w[-2:])))
        mon.invariant("S_CRC1", mon.crc_less1 == Mux(training, _crc(m, w[-4:-1]), _crc(m, w[-3:-1])))
        full_x = Mux(training, w[-2], w[-1])
        full_t = Mux(training, w[-1], 0)
        mon.invariant("S_CRC0", nbyte == 2, shreg == Cat(full_x, full_t))
        mon.invariant("S_CRC1", nbyte == 2, shreg == Cat(Mux(training, w[-3], w[-2]), Mux(training, w[-2], 0)))

        m.d.comb += [Cover(new & train, "a train sample offered"), Cover(new & ~train, "an infer sample offered"),
                     Cover(acc.valid & acc.ready & acc.payload.we, "a parameter written"),
                     Cover(net.rd.valid, "a parameter read")]
        return m
