"""PLL settings for the board clocks: iCE40 SB_PLL40 and ECP5 EHXPLLL.

The solvers search the divider space for the output frequency closest to the
target within the documented VCO/PFD limits (the same limits as icestorm's
``icepll`` and prjtrellis' ``ecppll``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bp_hw.errors import BpHwError

__all__ = ["ICE40PLL", "ECP5PLL", "ice40_pll", "ecp5_pll"]


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
