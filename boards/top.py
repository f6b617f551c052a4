"""Board top-levels: the board clock through a PLL, a power-on reset, the UART wrapper, two LEDs.

The boards are those of the registry (:data:`bp_hw.plan.boards.BOARDS`);
:class:`BoardTop` is what gets built for one of them, with its family's PLL
(:mod:`bp_hw.boards.families`).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from bp_hw.errors import BpHwError
from bp_hw.hdl.uart import uart_divisor
from bp_hw.plan.boards import Board

from .families import family
from .frame import FrameSpec, TrainFrameSpec
from .train_wrapper import TrainUART
from .uart_wrapper import NetworkUART

__all__ = ["BoardTop", "LinkClock", "link_clock", "check_board_clock", "IDLE_TIMEOUT_S"]

#: A frame that stops for this long half way is given up (NAK): far above any gap a USB UART leaves
#: inside one write, far below the host's timeout.
IDLE_TIMEOUT_S = 2e-3


def check_board_clock(board: Board, platform) -> None:
    """The PLL settings assume the registry's board clock: refuse a platform whose clock differs."""
    if platform.default_clk_frequency != board.board_clock_hz:
        raise BpHwError(f"board {board.name}: the registry says a {board.board_clock_hz / 1e6:g} MHz board clock, "
                        f"the platform {platform.default_clk_frequency / 1e6:g} MHz")


@dataclass(frozen=True)
class LinkClock:
    """The clock and UART timing of a board top: the PLL's setting, the ``sync`` frequency it makes,
    the UART divisor at ``baud`` and the link's idle timeout in cycles."""
    pll: object
    f_sync: float
    baud: int
    divisor: int
    idle_timeout: int


def link_clock(board: Board, clock_hz: float, baud: int | None = None) -> LinkClock:
    """What :class:`BoardTop` makes of ``clock_hz`` and ``baud`` on ``board`` (one line on a bad rate)."""
    baud = board.uart_baud if baud is None else int(baud)
    pll = family(board.family).solve_pll(board.board_clock_hz, clock_hz)
    try:
        divisor = uart_divisor(pll.f_out, baud)
    except ValueError as exc:
        raise BpHwError(str(exc)) from None
    return LinkClock(pll, pll.f_out, baud, divisor, max(20 * divisor, int(IDLE_TIMEOUT_S * pll.f_out)))


class BoardTop(Elaboratable):
    """The network on a board: PLL clock, reset, :class:`NetworkUART` on the board's USB UART.

    Parameters
    ----------
    network : wiring.Component
        The network (stream ports ``i``/``o``, and ``ld`` for a network with a load image; see DESIGN.md).
    spec : FrameSpec or TrainFrameSpec
        Its frames (``from_manifest`` of its build); a :class:`TrainFrameSpec` (a training build's
        :class:`~bp_hw.hdl.backprop.TrainNetwork`) gets the training link :class:`TrainUART`, a
        :class:`FrameSpec` the inference link :class:`NetworkUART`.
    board : bp_hw.plan.boards.Board
        The PLL starts from ``board.board_clock_hz``; ``board.family`` picks the PLL.
    clock_hz : float
        Requested ``sync`` frequency; the PLL gets as close as it can and
        :attr:`f_sync` holds the result (used for the UART divisor and the
        timing constraint).
    baud : int or None
        UART rate; ``None`` is the board's ``uart_baud``.

    Ports: the board's pins (clock, ``uart`` 0, ``led`` 0 and 1), requested
    from the platform. The ``sync`` domain is held in reset until the PLL locks
    and for 15 us after (iCE40 block RAMs read as zero for ~3 us after
    configuration). LED 0 blinks at ~0.5 Hz (the clock runs); LED 1 lights after
    any framing, overrun or CRC error on the link. Latency: that of
    :class:`NetworkUART`.
    """

    def __init__(self, network, spec: FrameSpec, board: Board, clock_hz: float, baud: int | None = None):
        self.network = network
        self.spec = spec
        self.board = board
        self.family = family(board.family)
        clock = link_clock(board, clock_hz, baud)
        self.pll, self.f_sync, self.baud = clock.pll, clock.f_sync, clock.baud
        self.divisor, self.idle_timeout = clock.divisor, clock.idle_timeout

    def elaborate(self, platform):
        check_board_clock(self.board, platform)
        m = Module()
        # No explicit clock constraint: nextpnr derives the PLL output's from the
        # board clock's and the PLL dividers (a constraint on the Amaranth clock
        # signal would name a net that no longer exists after synthesis).
        m.domains.sync = cd_sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        pll_clk = cd_sync.clk
        lock = Signal()
        clk_pin = platform.request(platform.default_clk, dir="-")
        self.family.add_pll(m, clk_pin, self.pll, pll_clk, lock)

        m.d.comb += ClockSignal("por").eq(pll_clk)

        lock_s = Signal()
        m.submodules.lock_sync = FFSynchronizer(lock, lock_s, o_domain="por")
        delay = int(15e-6 * self.f_sync)
        timer = Signal(range(delay + 1))
        with m.If(~lock_s):
            m.d.por += timer.eq(0)
        with m.Elif(timer != delay):
            m.d.por += timer.eq(timer + 1)
        # Registered, so that the reset net starts at a flip-flop, not at the comparator.
        rst = Signal(init=1)
        m.d.por += rst.eq(timer != delay)
        m.d.comb += cd_sync.rst.eq(rst)

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx_buf = io.Buffer("o", uart.tx)
        if isinstance(self.spec, TrainFrameSpec):
            link = TrainUART(self.network, self.spec, self.divisor, self.idle_timeout,
                             self.network.train_plan.read_latency)
        else:
            link = NetworkUART(self.network, self.spec, self.divisor, self.idle_timeout)
        m.submodules.link = link
        m.d.comb += [link.rx.eq(rx_buf.i), tx_buf.o.eq(link.tx)]

        leds = []
        for k in range(2):
            m.submodules[f"led{k}"] = led = io.Buffer("o", platform.request("led", k, dir="-"))
            leds.append(led)
        # Free-running counter: its top bit toggles every ~0.7-1.4 s. (A compare
        # against f/2 made a 25-bit equality that limited Fmax on iCE40.)
        blink = Signal(max(1, int(self.f_sync).bit_length()))
        heartbeat = blink[-1]
        error_seen = Signal()
        m.d.sync += blink.eq(blink + 1)
        with m.If(link.frame_error):
            m.d.sync += error_seen.eq(1)
        m.d.comb += [leds[0].o.eq(heartbeat), leds[1].o.eq(error_seen)]
        return m
