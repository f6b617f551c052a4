"""Board top-levels: the board clock through a PLL, a power-on reset, the UART wrapper, two LEDs.

:data:`BOARDS` lists the supported boards; :class:`BoardTop` is what gets
built for one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from bp_hw.errors import BpHwError
from bp_hw.hdl.uart import uart_divisor

from .clocks import ecp5_pll, ice40_pll
from .uart_wrapper import NetworkUART

__all__ = ["BoardTarget", "BOARDS", "BoardTop", "board_target"]


@dataclass(frozen=True)
class BoardTarget:
    """A board the flow can build for."""
    name: str
    family: str            # "ice40" | "ecp5"
    device: str            # key of bp_hw.synth_estimate.DEVICES
    platform_path: str     # "module:Class" of the amaranth-boards platform
    default_mhz: float     # default --clock-mhz
    bitstream: str         # file suffix of the bitstream nextpnr's packer writes

    def platform(self):
        import importlib
        module, cls = self.platform_path.split(":")
        return getattr(importlib.import_module(module), cls)()


BOARDS = {
    "icebreaker": BoardTarget("icebreaker", "ice40", "iCE40UP5K",
                              "amaranth_boards.icebreaker:ICEBreakerPlatform", 50.0, "bin"),
    "ulx3s-85f": BoardTarget("ulx3s-85f", "ecp5", "LFE5U-85F",
                             "amaranth_boards.ulx3s:ULX3S_85F_Platform", 120.0, "bit"),
}


def board_target(name: str) -> BoardTarget:
    try:
        return BOARDS[name]
    except KeyError:
        raise BpHwError(f"unknown board {name!r}; choose one of {', '.join(BOARDS)}") from None


class BoardTop(Elaboratable):
    """The network on a board: PLL clock, reset, :class:`NetworkUART` on the board's USB UART.

    Parameters
    ----------
    network : wiring.Component
        The network (stream ports ``i``/``o``, see DESIGN.md).
    target : BoardTarget
    clock_hz : float
        Requested ``sync`` frequency; the PLL gets as close as it can and
        :attr:`f_sync` holds the result (used for the UART divisor and the
        timing constraint).
    baud : int

    The ``sync`` domain is held in reset until the PLL locks and for 15 us
    after (iCE40 block RAMs read as zero for ~3 us after configuration).
    LED 0 blinks at ~0.5 Hz (the clock runs); LED 1 lights after any framing,
    overrun or CRC error on the link.
    """

    def __init__(self, network, target: BoardTarget, clock_hz: float, baud: int = 115200):
        self.network = network
        self.target = target
        self.baud = baud
        if target.family == "ice40":
            self.pll = ice40_pll(12e6, clock_hz)
        else:
            self.pll = ecp5_pll(25e6, clock_hz)
        self.f_sync = self.pll.f_out
        try:
            self.divisor = uart_divisor(self.f_sync, baud)
        except ValueError as exc:
            raise BpHwError(str(exc)) from None

    def elaborate(self, platform):
        m = Module()
        # No explicit clock constraint: nextpnr derives the PLL output's from the
        # board clock's and the PLL dividers (a constraint on the Amaranth clock
        # signal would name a net that no longer exists after synthesis).
        m.domains.sync = cd_sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        pll_clk = cd_sync.clk
        lock = Signal()
        if self.target.family == "ice40":
            clk_port = platform.request(platform.default_clk, dir="-")
            p = self.pll
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_DIVR=p.divr, p_DIVF=p.divf, p_DIVQ=p.divq,
                p_FILTER_RANGE=p.filter_range,
                i_PACKAGEPIN=clk_port.io, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=pll_clk, o_LOCK=lock)
        else:
            clk_port = platform.request(platform.default_clk, dir="-")
            m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_port)
            p = self.pll
            m.submodules.pll = Instance(
                "EHXPLLL",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_CLKI_DIV=p.clki_div, p_CLKFB_DIV=p.clkfb_div, p_CLKOP_DIV=p.clkop_div,
                p_CLKOP_CPHASE=p.clkop_div - 1, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
                a_FREQUENCY_PIN_CLKI=f"{p.f_in/1e6:g}", a_FREQUENCY_PIN_CLKOP=f"{p.f_out/1e6:.6f}",
                i_CLKI=clk_buf.i, i_CLKFB=pll_clk, i_RST=0, i_STDBY=0,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
                i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_CLKOP=pll_clk, o_LOCK=lock)

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
        m.submodules.link = link = NetworkUART(self.network, self.divisor)
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
