"""What each FPGA family needs from the flow: its PLL, its yosys options, its nextpnr cell names.

A board (:mod:`bp_hw.plan.boards`) names a device, the device its family; the
board top (:mod:`bp_hw.boards.top`) and synthesis (:mod:`bp_hw.synth`,
:mod:`bp_hw.synth_report`) look the family up in :data:`FAMILIES`. Supporting a
new family is one :class:`Family` entry here (and its devices and boards in the
registry).

The PLL solvers search the divider space for the output frequency closest to
the target within the documented VCO/PFD limits (the same limits as
icestorm's ``icepll`` and prjtrellis' ``ecppll``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from amaranth.hdl import Instance, Module, Signal
from amaranth.lib import io

from bp_hw.errors import BpHwError

__all__ = ["ICE40PLL", "ECP5PLL", "ice40_pll", "ecp5_pll", "ice40_link_clock", "ecp5_link_clock", "ecp5_clkos_div",
           "Family", "FAMILIES", "family"]


@dataclass(frozen=True)
class ICE40PLL:
    """SB_PLL40 in SIMPLE feedback: f_out = f_in * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ)."""
    f_in: float
    divr: int
    divf: int
    divq: int
    filter_range: int

    @property
    def f_pfd(self) -> float:
        return self.f_in / (self.divr + 1)

    @property
    def f_vco(self) -> float:
        return self.f_pfd * (self.divf + 1)

    @property
    def f_out(self) -> float:
        return self.f_vco / (1 << self.divq)


def ice40_pll(f_in: float, f_target: float) -> ICE40PLL:
    """Closest SB_PLL40 SIMPLE-feedback setting; :class:`BpHwError` if none reaches within 5 %."""
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10e6 <= f_pfd <= 133e6:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533e6 <= f_vco <= 1066e6:
                continue
            for divq in range(1, 7):
                f_out = f_vco / (1 << divq)
                if not 16e6 <= f_out <= 275e6:
                    continue
                err = abs(f_out - f_target)
                if best is None or err < best[0]:
                    best = (err, divr, divf, divq, f_pfd)
    if best is None or best[0] > 0.05 * f_target:
        raise BpHwError(f"the iCE40 PLL cannot make {f_target/1e6:g} MHz from {f_in/1e6:g} MHz "
                        f"(range 16-275 MHz); choose another --clock-mhz")
    _, divr, divf, divq, f_pfd = best
    # Loop filter range from the PFD frequency (iCE40 sysCLOCK PLL design guide, as in icepll).
    bounds = [17e6, 26e6, 44e6, 66e6, 101e6]
    filter_range = 1 + sum(f_pfd >= b for b in bounds)
    return ICE40PLL(f_in, divr, divf, divq, filter_range)


@dataclass(frozen=True)
class ECP5PLL:
    """EHXPLLL with CLKOP feedback: f_out = f_in / CLKI_DIV * CLKFB_DIV, f_vco = f_out * CLKOP_DIV."""
    f_in: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def f_out(self) -> float:
        return self.f_in / self.clki_div * self.clkfb_div

    @property
    def f_vco(self) -> float:
        return self.f_out * self.clkop_div


def ecp5_pll(f_in: float, f_target: float) -> ECP5PLL:
    """Closest EHXPLLL setting; :class:`BpHwError` if none reaches within 5 %."""
    best = None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if not 3.125e6 <= f_pfd <= 400e6:
            continue
        for clkfb_div in range(1, 81):
            f_out = f_pfd * clkfb_div
            if not 3.125e6 <= f_out <= 400e6:
                continue
            for clkop_div in range(1, 129):
                f_vco = f_out * clkop_div
                if not 400e6 <= f_vco <= 800e6:
                    continue
                err = abs(f_out - f_target)
                if best is None or err < best[0] - 1e-3:
                    best = (err, clki_div, clkfb_div, clkop_div)
                break  # the smallest divider that reaches the VCO range is enough
    if best is None or best[0] > 0.05 * f_target:
        raise BpHwError(f"the ECP5 PLL cannot make {f_target/1e6:g} MHz from {f_in/1e6:g} MHz; "
                        f"choose another --clock-mhz")
    _, clki_div, clkfb_div, clkop_div = best
    return ECP5PLL(f_in, clki_div, clkfb_div, clkop_div)


def ice40_link_clock(p: ICE40PLL, baud: int) -> float:
    """The iCE40 board top's link clock: the board clock itself (SB_PLL40_2_PAD passes it through on
    its port A), whatever the baud rate (:func:`~bp_hw.hdl.uart.uart_divisor` checks the rate)."""
    return p.f_in


#: The ECP5 link clock aims here: 16 cycles a bit at 3 Mbaud, a quarter of the usual network clock.
ECP5_LINK_TARGET_HZ = 48e6


def ecp5_link_clock(p: ECP5PLL, baud: int) -> float:
    """The ECP5 board top's link clock: the PLL's CLKOS, the VCO divided by :func:`ecp5_clkos_div`."""
    return p.f_vco / ecp5_clkos_div(p, baud)


def ecp5_clkos_div(p: ECP5PLL, baud: int) -> int:
    """CLKOS divider: a clock of at least 8 cycles a bit at ``baud`` whose rate error is least (every
    error up to 0.5 % counts as equal), then the one nearest :data:`ECP5_LINK_TARGET_HZ`."""
    best = None
    for div in range(1, 129):
        f = p.f_vco / div
        cycles = round(f / baud)
        if cycles < 8 or f > 200e6:
            continue
        error = abs(f / cycles - baud) / baud
        key = (max(error, 0.005), abs(f - ECP5_LINK_TARGET_HZ))
        if best is None or key < best[0]:
            best = (key, div)
    if best is None:
        raise BpHwError(f"the ECP5 PLL cannot make a link clock of 8 or more cycles a bit at {baud} baud; "
                        f"choose a lower --baud")
    return best[1]


def _ice40_pll_primitive(m: Module, clk_pin, p: ICE40PLL, clk_out: Signal, lock: Signal, link_clk: Signal,
                         baud: int) -> None:
    # SB_PLL40_2_PAD takes the clock straight from the pin (no input buffer), passes it through on port
    # A (the link clock) and gives the PLL's on port B.
    m.submodules.pll = Instance(
        "SB_PLL40_2_PAD",
        p_FEEDBACK_PATH="SIMPLE", p_DIVR=p.divr, p_DIVF=p.divf, p_DIVQ=p.divq, p_FILTER_RANGE=p.filter_range,
        p_PLLOUT_SELECT_PORTB="GENCLK", i_PACKAGEPIN=clk_pin.io, i_RESETB=1, i_BYPASS=0,
        o_PLLOUTGLOBALA=link_clk, o_PLLOUTGLOBALB=clk_out, o_LOCK=lock)


def _ecp5_pll_primitive(m: Module, clk_pin, p: ECP5PLL, clk_out: Signal, lock: Signal, link_clk: Signal,
                        baud: int) -> None:
    m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_pin)
    div = ecp5_clkos_div(p, baud)
    clkos = dict(p_OUTDIVIDER_MUXB="DIVB", p_CLKOS_ENABLE="ENABLED", p_CLKOS_DIV=div,
                 p_CLKOS_CPHASE=div - 1, p_CLKOS_FPHASE=0,
                 a_FREQUENCY_PIN_CLKOS=f"{p.f_vco / div / 1e6:.6f}", i_ENCLKOS=0, o_CLKOS=link_clk)
    m.submodules.pll = Instance(
        "EHXPLLL",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
        p_CLKI_DIV=p.clki_div, p_CLKFB_DIV=p.clkfb_div, p_CLKOP_DIV=p.clkop_div,
        p_CLKOP_CPHASE=p.clkop_div - 1, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
        a_FREQUENCY_PIN_CLKI=f"{p.f_in/1e6:g}", a_FREQUENCY_PIN_CLKOP=f"{p.f_out/1e6:.6f}",
        i_CLKI=clk_buf.i, i_CLKFB=clk_out, i_RST=0, i_STDBY=0,
        i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
        i_PLLWAKESYNC=0, i_ENCLKOP=0,
        o_CLKOP=clk_out, o_LOCK=lock, **clkos)


@dataclass(frozen=True)
class Family:
    """One FPGA family's part of the flow.

    ``solve_pll(f_in, f_target)`` returns PLL settings with ``f_out``;
    ``add_pll(m, clk_pin, settings, clk_out, lock, link_clk, baud)`` instantiates the PLL in
    ``m`` from the board clock's pin (requested with ``dir="-"``); it drives the network's clock
    ``clk_out`` and the board link's ``link_clk``, ``link_clock(settings, baud)`` Hz (a clock a few
    times slower than the network's, with a whole number of cycles per UART bit).
    ``pll_primitive`` is the PLL cell. ``synth_opts`` go to the yosys ``synth_*`` command. ``cells`` name the
    nextpnr bel types of the report (``luts``, ``ffs``, ``dsps``, ``brams``,
    ``sprams``; ``None`` if the family reports none) and ``ff_prefix`` the yosys
    cells counted as flip-flops when nextpnr does not report them.
    """

    name: str
    pll_primitive: str
    solve_pll: Callable
    add_pll: Callable
    link_clock: Callable
    cells: dict
    ff_prefix: str
    synth_opts: str | None = None


FAMILIES = {
    # -dsp: multipliers onto SB_MAC16 (synth_ice40 leaves them in LUTs otherwise).
    "ice40": Family("ice40", "SB_PLL40_2_PAD", ice40_pll, _ice40_pll_primitive, ice40_link_clock,
                    {"luts": "ICESTORM_LC", "ffs": None, "dsps": "ICESTORM_DSP", "brams": "ICESTORM_RAM",
                     "sprams": "ICESTORM_SPRAM"}, ff_prefix="SB_DFF", synth_opts="-dsp"),
    "ecp5": Family("ecp5", "EHXPLLL", ecp5_pll, _ecp5_pll_primitive, ecp5_link_clock,
                   {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D", "brams": "DP16KD",
                    "sprams": None}, ff_prefix="TRELLIS_FF"),
}


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise BpHwError(f"the flow has no support for the FPGA family {name!r} (PLL, synthesis options); "
                        f"known: {', '.join(FAMILIES)}") from None
