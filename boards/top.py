"""Board top-levels: the board clock through a PLL, a power-on reset, the UART wrapper, two LEDs.

The boards are those of the registry (:data:`bp_hw.plan.boards.BOARDS`);
:class:`BoardTop` is what gets built for one of them, with its family's PLL
(:mod:`bp_hw.boards.families`).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer

from bp_hw.errors import BpHwError
from bp_hw.hdl.uart import uart_divisor
from bp_hw.plan.boards import Board

from .crossing import NETWORK_DOMAIN, NetworkCrossing, TrainCrossing
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
    """The clocks and UART timing of a board top: the PLL's setting, the network's frequency it makes
    (``f_sync``), the link's own slower clock (``f_link``), the UART divisor at ``baud`` and the link's
    idle timeout, both in link cycles."""
    pll: object
    f_sync: float
    f_link: float
    baud: int
    divisor: int
    idle_timeout: int


def link_clock(board: Board, clock_hz: float, baud: int | None = None) -> LinkClock:
    """What :class:`BoardTop` makes of ``clock_hz`` and ``baud`` on ``board`` (one line on a bad rate):
    the network's clock from the PLL, the link's from the family's ``link_clock``."""
    baud = board.uart_baud if baud is None else int(baud)
    fam = family(board.family)
    pll = fam.solve_pll(board.board_clock_hz, clock_hz)
    f_link = fam.link_clock(pll, baud)
    try:
        divisor = uart_divisor(f_link, baud)
    except ValueError as exc:
        raise BpHwError(str(exc)) from None
    return LinkClock(pll, pll.f_out, f_link, baud, divisor,
                     max(20 * divisor, int(IDLE_TIMEOUT_S * f_link)))


class BoardTop(Elaboratable):
    """The network on a board: PLL clock, reset, :class:`NetworkUART` on the board's USB UART.

    The network runs in its own clock domain (:data:`~bp_hw.boards.crossing.NETWORK_DOMAIN`, the
    PLL's output at ``clock_hz``) behind a :class:`~bp_hw.boards.crossing.NetworkCrossing` (a training
    network behind a :class:`~bp_hw.boards.crossing.TrainCrossing`); the link runs in ``sync`` at the
    family's link clock (the 12 MHz board clock on the iCEBreaker, the PLL's CLKOS near 48 MHz on the
    ULX3S), so the link's routing does not set the network's Fmax.

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
        Requested network clock; the PLL gets as close as it can and :attr:`f_sync` holds the
        result (the timing constraint nextpnr derives). :attr:`f_link` is the link's clock (the
        UART divisor and idle timeout count its cycles).
    baud : int or None
        UART rate; ``None`` is the board's ``uart_baud``.

    Ports: the board's pins (clock, ``uart`` 0, ``led`` 0 and 1), requested
    from the platform. Both domains are held in reset until the PLL locks
    and for 15 us after (iCE40 block RAMs read as zero for ~3 us after
    configuration). LED 0 blinks at ~0.5-1 Hz (the link clock runs); LED 1 lights after
    any framing, overrun or CRC error on the link. Latency: that of
    :class:`NetworkUART`, plus the crossings' (:class:`~bp_hw.boards.crossing.NetworkCrossing`).
    """

    def __init__(self, network, spec: FrameSpec, board: Board, clock_hz: float, baud: int | None = None):
        self.network = network
        self.spec = spec
        self.board = board
        self.family = family(board.family)
        clock = link_clock(board, clock_hz, baud)
        self.pll, self.f_sync, self.f_link, self.baud = clock.pll, clock.f_sync, clock.f_link, clock.baud
        self.divisor, self.idle_timeout = clock.divisor, clock.idle_timeout

    def elaborate(self, platform):
        check_board_clock(self.board, platform)
        m = Module()
        # No explicit clock constraint: nextpnr derives the PLL output's from the
        # board clock's and the PLL dividers (a constraint on the Amaranth clock
        # signal would name a net that no longer exists after synthesis).
        m.domains.sync = cd_sync = ClockDomain("sync")
        m.domains += (cd_net := ClockDomain(NETWORK_DOMAIN))
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        lock = Signal()
        clk_pin = platform.request(platform.default_clk, dir="-")
        pll_clk = cd_net.clk
        self.family.add_pll(m, clk_pin, self.pll, pll_clk, lock, link_clk=cd_sync.clk, baud=self.baud)

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
        # The network's reset is the PLL domain's; the link's is the same, released on its own clock.
        m.d.comb += cd_net.rst.eq(rst)
        m.submodules.link_reset = ResetSynchronizer(rst, domain="sync")

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx_buf = io.Buffer("o", uart.tx)
        if isinstance(self.spec, TrainFrameSpec):
            link = TrainUART(TrainCrossing(self.network), self.spec, self.divisor, self.idle_timeout)
        else:
            link = NetworkUART(NetworkCrossing(self.network), self.spec, self.divisor, self.idle_timeout)
        m.submodules.link = link
        m.d.comb += [link.rx.eq(rx_buf.i), tx_buf.o.eq(link.tx)]

        leds = []
        for k in range(2):
            m.submodules[f"led{k}"] = led = io.Buffer("o", platform.request("led", k, dir="-"))
            leds.append(led)
        # Free-running counter: its top bit toggles every ~0.7-1.4 s. (A compare
        # against f/2 made a 25-bit equality that limited Fmax on iCE40.)
        blink = Signal(max(1, int(self.f_link).bit_length()))
        heartbeat = blink[-1]
        error_seen = Signal()
        m.d.sync += blink.eq(blink + 1)
        with m.If(link.frame_error):
            m.d.sync += error_seen.eq(1)
        m.d.comb += [leds[0].o.eq(heartbeat), leds[1].o.eq(error_seen)]
        return m
