"""The board links' idle timer, and the deframers' way out of a frame the line stopped sending: a
frame cut off never holds a link for more than the timeout. Proved by k-induction, for all time.

The link (:class:`~bp_hw.boards.link_core.LinkCore`, inside the product's
:class:`~bp_hw.boards.uart_wrapper.NetworkUART` or :class:`~bp_hw.boards.train_wrapper.TrainUART`,
bytes from a :class:`~bp_hw.formal.link.ByteFeed` in any pattern) counts ticks of
``2**IDLE_TICK_BITS`` cycles from the last byte received; ``stuck`` is the timer expired with the
receive FIFO and the byte register empty. The monitor counts :attr:`LinkTimeout.quiet`, the cycles
since the last byte (0 the cycle after it), and asserts:

* the timer expires no later than :attr:`LinkTimeout.latest` (``ticks * 2**IDLE_TICK_BITS``) cycles
  after the last byte, and not earlier than :attr:`LinkTimeout.earliest` (one tick less, plus one):
  the link's idle timeout rounded up to whole ticks, less up to one tick;
* once ``stuck`` (the line quiet, nothing left to take), every state of the deframer that waits
  for a byte leaves the wait the next cycle: it gives the frame up and returns to the hunt state
  (where the answer queue has room for the refusal), or, in an infer frame's payload and CRC (the
  inference link), starts completing the frame with zeros, and the zeros complete it: the
  deframer is back in its hunt state within :data:`FLUSH_CYCLES` cycles where the network takes its
  input and the answer queue has room;
* a frame is given up, or its zeros started, only once ``stuck``: never while its bytes may still
  come.

So after any byte sequence a deframer is back in its hunt state at most ``latest + 1 + FLUSH_CYCLES``
cycles after the last byte, plus the cycles the network or the host hold it up (a full answer
queue, a sample the network has not taken, a load waiting for the samples in flight).

Invariants that make it inductive: the timer's prescaler and tick against the monitor's count
(:meth:`LinkTimeout.elaborate`: the count of ticks since the last byte is a closed formula of the
prescaler and ``quiet``), and the deframer's own (those of :mod:`bp_hw.formal.link`, where a flush
is concerned).
"""

# No "from __future__ import annotations": as in bp_hw.formal.link.

from amaranth.hdl import Assert, Cover, Elaboratable, Module, Mux, Signal, signed

from ..boards.link_core import IDLE_TICK_BITS
from ..boards.train_wrapper import TrainUART
from ..boards.uart_wrapper import NetworkUART
from .link import DIVISOR, SPEC, TRAIN_SPEC, ByteFeed, LoadEchoNetwork, TrainEchoNetwork, _elaborate_link

__all__ = ["FLUSH_CYCLES", "NOT_WAITING", "SHORT_TICK_BITS", "TIMER_MUTANTS",
           "LinkTimeout"]

#: The deframer states that do not wait for a byte (the hunt state, and those waiting for the network
#: or the transmitter); every other state waits for one and has a way out on ``stuck``.
NOT_WAITING = {False: {"HUNT", "L_WAIT", "L_COMMIT", "L_ACK"},
               True: {"HUNT", "S_PAD", "W_WAIT", "W_ISSUE", "W_ACK", "R_WAIT", "R_ISSUE", "R_DRAIN"}}
#: An infer frame's states where ``stuck`` starts the zeros (inference link).
FLUSHED = ("PAYLOAD", "CRC0", "CRC1")
#: Cycles from the zeros starting to the hunt state, counting only cycles where nothing holds the
#: deframer up (the network takes the frame's input, the answer queue has room).
FLUSH_CYCLES = 6
#: The count at most in each of FLUSHED (the invariants that carry it: a byte of zeros is two cycles,
#: the deframer wanting it and taking it).
FLUSH_STEPS = (1, 3, 5)
#: The covers and the broken links run on a link with ticks of 2**SHORT_TICK_BITS cycles (its
#: shortest idle timeout at the proof's UART divisor is then 80 cycles, five ticks): the board's
#: timer expires a thousand cycles and more after the last byte, out of a bounded run's reach. The
#: proof itself is of the board's timer.
SHORT_TICK_BITS = 4
#: The broken links: one whose deframer never sees the line go quiet (``stuck`` held low), one that
#: sees it a tick early.
TIMER_MUTANTS = ("never_gives_up", "early_timeout")


def _break_timer(link, m):
    """Break ``link`` (elaborated into ``m``) as its ``mutant`` says (the later assignment wins)."""
    core = link.core
    if link.mutant == "never_gives_up":
        m.d.comb += core.stuck.eq(0)
    elif link.mutant == "early_timeout":
        m.d.comb += core.stuck.eq((core.idle_timer["count"] <= 0) & ~core.rx_fifo.r_rdy & ~core.cur_valid)


class _ShortTicksMixin:
    """A link whose idle timer ticks every ``2**tick_bits`` cycles, broken as ``mutant`` says
    (:data:`TIMER_MUTANTS`, or None)."""

    def __init__(self, *args, tick_bits, mutant):
        self.tick_bits, self.mutant = tick_bits, mutant     # before the link's checks read tick_bits
        super().__init__(*args)

    def elaborate(self, platform):
        m = super().elaborate(platform)
        _break_timer(self, m)
        return m


class _ShortLink(_ShortTicksMixin, NetworkUART):
    """The inference link on short ticks."""


class _ShortTrainLink(_ShortTicksMixin, TrainUART):
    """The training link on short ticks."""


class LinkTimeout(Elaboratable):
    """The formal wrapper: the inference link, or with ``train`` the training link, behind the echo
    network of :mod:`bp_hw.formal.link`. Free inputs (:attr:`ports`): the byte feed, and the load or
    access port's ``ready``; the transmitter is cut (:data:`~bp_hw.formal.suite.LINK_CUT`)."""

    def __init__(self, train: bool = False, short: bool = False, mutant: str | None = None):
        if mutant is not None and mutant not in TIMER_MUTANTS:
            raise ValueError(f"unknown mutant {mutant!r}; choose from {sorted(TIMER_MUTANTS)}")
        short = short or mutant is not None      # the broken links run bounded: on the short ticks
        self.train, self.short, self.mutant = train, short, mutant
        self.tick_bits = SHORT_TICK_BITS if short else IDLE_TICK_BITS
        idle = max(20 * DIVISOR, 2 << self.tick_bits)   # the shortest idle timeout the link takes
        self.feed = ByteFeed()
        self.network = TrainEchoNetwork() if train else LoadEchoNetwork()
        args = (self.network, TRAIN_SPEC if train else SPEC, DIVISOR, idle, self.feed)
        if short:
            self.uart = (_ShortTrainLink if train else _ShortLink)(*args, tick_bits=self.tick_bits, mutant=mutant)
        else:
            self.uart = (TrainUART if train else NetworkUART)(*args)
        self.ports = (self.feed.valid, self.feed.byte, self.network.acc_ready if train else self.network.ld_ready)
        self.ticks = -(-idle >> self.tick_bits)
        tick_cycles = 1 << self.tick_bits
        #: Cycles after the last byte (``quiet``) by which the timer has expired, and before which it has not.
        self.latest = self.ticks * tick_cycles
        self.earliest = self.latest - tick_cycles + 1
        self.quiet = Signal(range(self.latest + 2))

    def elaborate(self, platform):
        m = Module()
        _elaborate_link(m, self.uart, self.feed, None, platform)
        core, fsm = self.uart.core, self.uart.deframer
        timer = core.idle_timer
        assert timer["ticks"] == self.ticks, "the proof's tick count is the link's"
        prescale, tick, count, tick_bits = timer["prescale"], timer["tick"], timer["count"], timer["tick_bits"]
        expired = count[-1]

        # the monitor: cycles since the last byte (saturating one past `latest`), and whether a byte came
        quiet, top = self.quiet, self.latest + 1
        seen = Signal()
        with m.If(self.feed.valid):
            m.d.sync += [quiet.eq(0), seen.eq(1)]
        with m.Elif(quiet != top):
            m.d.sync += quiet.eq(quiet + 1)

        # The ticks since the last byte: the timer ticks the cycle after its prescaler passes 0, so
        # `quiet` cycles after the byte it has ticked once for each x in [prescale - quiet, prescale - 1]
        # with x = 1 modulo the tick length: floor((prescale - 2) / L) - floor((prescale - quiet - 2) / L).
        s = Signal(signed(16))
        ticked = Signal(signed(16))
        m.d.comb += [s.eq(prescale), ticked.eq(((s - 2) >> tick_bits) - ((s - quiet - 2) >> tick_bits))]
        expect = Mux(ticked >= self.ticks, -1, self.ticks - 1 - ticked)
        m.d.comb += [
            Assert((quiet <= top) & (count >= -1), "invariant: the counts in range"),
            Assert(tick == (prescale == 1), "invariant: the timer ticks the cycle after its prescaler passes 0"),
            Assert(~seen | (quiet == top) | (count == expect), "invariant: the timer has counted the ticks since "
                   "the last byte"),
            Assert(~seen | (quiet != top) | expired, "invariant: the timer stays expired while the line is quiet"),
            Assert(seen | (quiet == top) | (prescale == quiet[:tick_bits]), "invariant: before any byte the "
                   "prescaler counts from reset"),
            Assert(seen | (count == Mux(quiet >= 2, -1, 0)), "invariant: before any byte the timer expires at the "
                   "first tick"),
            Assert((quiet < self.latest) | expired, f"the timer has expired {self.latest} cycles after the last byte"),
            Assert(~seen | (quiet >= self.earliest) | ~expired, f"... and not before {self.earliest}"),
            Cover(seen & (quiet == self.earliest) & expired),
            Cover(seen & (quiet == self.latest - 1) & ~expired),
        ]

        # Every byte wait ends on stuck: the next cycle the deframer is in its hunt state (it refused the
        # frame, where the answer queue had room) or completing the frame with zeros.
        state = {name: fsm.state == code for name, code in fsm.encoding.items()}
        m.d.comb += Assert(~core.cur_ready | core.cur_valid, "invariant: a byte offered is held")
        prev = Signal.like(fsm.state)
        was_stuck, had_room, was_take = Signal(), Signal(), Signal()
        # stuck as the proof sees it: the timer expired, nothing in the FIFO or the byte register (the
        # link's own `stuck` is what a broken link gets wrong)
        stuck = expired & ~core.rx_fifo.r_rdy & ~core.cur_valid
        m.d.sync += [prev.eq(fsm.state), was_stuck.eq(stuck), had_room.eq(core.room), was_take.eq(core.take)]
        flushed = () if self.train else FLUSHED
        waiting = [n for n in fsm.encoding if n not in NOT_WAITING[self.train]]
        assert set(NOT_WAITING[self.train]) <= set(fsm.encoding), "the proof names the link's states"
        refused = 0
        for name in waiting:
            left = Signal(name=f"left_{name}")
            m.d.comb += left.eq(was_stuck & ~was_take & (prev == fsm.encoding[name]))
            if name in flushed:
                m.d.comb += Assert(~left | core.flush, f"stuck in {name}: the frame is completed with zeros")
            else:
                m.d.comb += Assert(~left | ~had_room | state["HUNT"], f"stuck in {name}: the frame is refused")
                refused = refused | (left & state["HUNT"])
                gave_up = ~was_take & (prev == fsm.encoding[name]) & state["HUNT"]
                m.d.comb += Assert(~gave_up | was_stuck, f"{name} gives a frame up only once the line is quiet")
        m.d.comb += Cover(refused)
        if not self.train:
            # ... and the zeros complete it: count the cycles of a flush where nothing holds it up
            flushing = Signal(range(FLUSH_CYCLES + 1))
            beat = self.uart.beat_state
            # what a flush waits for: the network to take the last frame's input (the payload), room for
            # the answer (the CRC's second byte)
            held = (state["PAYLOAD"] & beat["full"]) | (state["CRC1"] & ~core.room)
            was_flush = Signal()
            m.d.sync += was_flush.eq(core.flush)
            m.d.comb += Assert(~core.flush | was_flush | was_stuck, "zeros start only once the line is quiet")
            with m.If(~core.flush):
                m.d.sync += flushing.eq(0)
            with m.Elif(~held & (flushing != FLUSH_CYCLES)):
                m.d.sync += flushing.eq(flushing + 1)
            m.d.comb += [Assert((flushing < FLUSH_CYCLES) | ~core.flush,
                                f"the zeros complete a cut-off frame within {FLUSH_CYCLES} cycles"),
                         Cover(core.flush & state["CRC1"] & core.take)]
            m.d.comb += [Assert(~beat["release"] | beat["full"], "invariant: only a beat held is released"),
                         Assert(~core.flush | state["PAYLOAD"] | state["CRC0"] | state["CRC1"],
                                "invariant: zeros are fed only inside an infer frame"),
                         Assert(~(state["CRC0"] | state["CRC1"]) | (beat["full"] & ~beat["release"]),
                                "invariant: the CRC waits with the frame's beat held"),
                         Assert(~state["PAYLOAD"] | ((beat["byte"] == 0) & (beat["index"] == 0)),
                                "invariant: the payload starts at the first byte"),
                         Assert(~(core.flush & state["PAYLOAD"] & beat["full"]) | (flushing == 0),
                                "invariant: a flush held by the network has not started")]
            for name, bound in zip(FLUSHED, FLUSH_STEPS):
                m.d.comb += [Assert(~core.flush | ~state[name] | (flushing <= bound),
                                    f"invariant: flushing {name} at most {bound} cycles in"),
                             Assert(~core.flush | ~state[name] | (flushing != bound) | core.take,
                                    f"invariant: ... taking its zero at {bound}")]
        return m
