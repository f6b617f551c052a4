"""The one board registry: each board's device, clocks, UART and what its FPGA offers.

Synthesis, the fast estimate, ``explore``, the board tops and the docs read
these tables; nothing else lists a board or a device. Adding a board of a
family the flow already knows (iCE40, ECP5) is one :class:`Board` entry here
(and one in :data:`DEVICES` if its FPGA is new).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import BpHwError

__all__ = ["Device", "DEVICES", "Board", "BOARDS", "device", "board"]


@dataclass(frozen=True)
class Device:
    """What one FPGA offers to the flow."""

    name: str
    family: str                # "ice40" | "ecp5"
    luts: int                  # LUT4s (iCE40: logic cells = LUT4 + FF)
    ffs: int
    dsps: int                  # SB_MAC16 / MULT18X18D
    dsp_a_bits: int            # widest signed operand one DSP block multiplies
    dsp_b_bits: int
    brams: int                 # EBR blocks (SB_RAM40_4K / DP16KD)
    bram_shapes: tuple = ()    # (depth, width) configurations of one block
    sprams: int = 0            # iCE40UP SB_SPRAM256KA (16K x 16)
    spram_shape: tuple = (16384, 16)
    notes: str = ""

    @property
    def bram_bits(self) -> int:
        return max(d * w for d, w in self.bram_shapes)

    def bram_blocks(self, depth: int, width: int) -> int:
        """Block RAMs one ``depth x width`` memory takes (its best block configuration)."""
        if depth <= 0 or width <= 0:
            return 0
        return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in self.bram_shapes)

    def spram_blocks(self, depth: int, width: int) -> int:
        """SPRAM blocks one ``depth x width`` memory takes (side by side for width, stacked for depth)."""
        if depth <= 0 or width <= 0:
            return 0
        d, w = self.spram_shape
        return math.ceil(width / w) * math.ceil(depth / d)


DEVICES = {
    "iCE40UP5K": Device(
        "iCE40UP5K", "ice40", luts=5280, ffs=5280, dsps=8, dsp_a_bits=16, dsp_b_bits=16,
        brams=30, bram_shapes=((256, 16), (512, 8), (1024, 4), (2048, 2)), sprams=4,
        notes="5280 LCs, 8 SB_MAC16 (16x16), 30 EBR of 4 kbit, 4 SPRAM of 256 kbit"),
    "LFE5U-85F": Device(
        "LFE5U-85F", "ecp5", luts=83640, ffs=83640, dsps=156, dsp_a_bits=18, dsp_b_bits=18,
        brams=208, bram_shapes=((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
        notes="83640 LUT4s, 156 MULT18X18D, 208 DP16KD of 18 kbit"),
}


@dataclass(frozen=True)
class Board:
    """A board the flow can build for."""

    name: str
    device: str            # key of DEVICES
    platform_path: str     # "module:Class" of the amaranth-boards platform
    board_clock_hz: float  # the oscillator the PLL starts from
    default_mhz: float     # default --clock-mhz (the sync clock the PLL makes)
    bitstream: str         # file suffix of the bitstream the packer writes
    uart_baud: int = 115200
    uart: str = "uart 0 (the USB serial bridge)"
    leds: str = "led 0: heartbeat, led 1: link error seen"

    @property
    def fpga(self) -> Device:
        return DEVICES[self.device]

    @property
    def family(self) -> str:
        return self.fpga.family

    def platform(self):
        """The amaranth-boards platform object (imported on use: it pulls in the toolchain glue)."""
        import importlib
        module, cls = self.platform_path.split(":")
        return getattr(importlib.import_module(module), cls)()


BOARDS = {
    # The iCEBreaker's network clock is 50 MHz (50.25 made); its link runs on the 12 MHz board clock
    # (boards/crossing.py), 4 cycles a bit at 3 Mbaud. The default was 36 MHz while the link shared the
    # network's clock and limited the board top to 48 MHz (BENCHMARKS.md, "The board link at speed").
    "icebreaker": Board("icebreaker", "iCE40UP5K", "amaranth_boards.icebreaker:ICEBreakerPlatform",
                        board_clock_hz=12e6, default_mhz=50.0, bitstream="bin"),
    "ulx3s-85f": Board("ulx3s-85f", "LFE5U-85F", "amaranth_boards.ulx3s:ULX3S_85F_Platform",
                       board_clock_hz=25e6, default_mhz=120.0, bitstream="bit"),
}


def device(name: str) -> Device:
    """The device called ``name`` (a device name such as ``iCE40UP5K``, or a board name)."""
    if name in BOARDS:
        return BOARDS[name].fpga
    try:
        return DEVICES[name]
    except KeyError:
        raise BpHwError(f"unknown device {name!r}; known: {', '.join(DEVICES)} "
                        f"(or a board: {', '.join(BOARDS)})") from None


def board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise BpHwError(f"unknown board {name!r}; choose one of {', '.join(BOARDS)}") from None
