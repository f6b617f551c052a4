"""The cocotb test of :mod:`bp_hw.cosim.train_harness`; loaded by the simulator, not imported.

The harness makes its own clock (``BP_HW_CLOCK`` other than ``cocotb``) and
does all streaming, dumping and logging; Python only waits for ``done``.
``BP_HW_TIMING`` names a file for the in-simulator wall time.
"""

from __future__ import annotations

import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge


@cocotb.test()
async def train_stream(dut):
    """Run the training harness until it raises ``done``."""
    start = time.perf_counter()
    if os.environ.get("BP_HW_CLOCK") == "cocotb":
        Clock(dut.clk, int(os.environ.get("BP_HW_PERIOD", "10")), unit="ns").start(start_high=False)
    if str(dut.done.value) != "1":
        await RisingEdge(dut.done)
    timing = os.environ.get("BP_HW_TIMING")
    if timing:
        with open(timing, "w") as f:
            f.write(f"{time.perf_counter() - start:.6f}\n")
