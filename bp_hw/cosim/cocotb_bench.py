"""The cocotb test that drives :mod:`bp_hw.cosim.harness` (either body); loaded by the simulator, not imported.

All streaming, stalling, read-back and logging happens inside the Verilog
harness, so Python only (optionally) starts the clock and waits for ``done``:
nothing in Python runs per clock cycle.

Environment (set by :func:`bp_hw.cosim.runner.run_harness`):
``BP_HW_CLOCK``   ``cocotb`` to drive ``clk`` from cocotb's clock (otherwise the harness does it);
``BP_HW_PERIOD``  clock period in ns;
``BP_HW_TIMING``  file to write the in-simulator wall time of the run to.
"""

from __future__ import annotations

import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

__all__ = ["run_harness"]


@cocotb.test()
async def run_harness(dut):
    """Let the harness run its input file through the DUT and wait until it raises ``done``."""
    start = time.perf_counter()
    if os.environ.get("BP_HW_CLOCK") == "cocotb":
        period = int(os.environ.get("BP_HW_PERIOD", "10"))
        Clock(dut.clk, period, unit="ns").start(start_high=False)
    if str(dut.done.value) != "1":
        await RisingEdge(dut.done)
    timing = os.environ.get("BP_HW_TIMING")
    if timing:
        with open(timing, "w") as f:
            f.write(f"{time.perf_counter() - start:.6f}\n")
