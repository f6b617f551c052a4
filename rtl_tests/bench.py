"""Shared set-up of the per-block cocotb benches (``tb_*.py``): parameters, clock and reset.

Each bench drives its block one clock at a time on the falling edge (one
``await`` per cycle) and compares in bulk with the integer model at the end.
"""

from __future__ import annotations

import os

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from bp_hw.fixed.qmodel import QModel

__all__ = ["Params", "start"]

RESET_CYCLES = 3


class Params:
    """The bench's parameters from the environment: ``BP_QMODEL`` (the quantized model's JSON),
    ``BP_LAYER``, ``BP_SAMPLES``, ``BP_STALL`` (probability of a stalled cycle), ``BP_SEED``."""

    def __init__(self, samples: int, stall: float = 0.3):
        env = os.environ
        self.qmodel = QModel.load(env["BP_QMODEL"])
        self.layer_index = int(env.get("BP_LAYER", "0"))
        self.samples = int(env.get("BP_SAMPLES", str(samples)))
        self.stall = float(env.get("BP_STALL", str(stall)))
        self.rng = np.random.default_rng(int(env.get("BP_SEED", "1")))

    @property
    def layer(self):
        return self.qmodel.layers[self.layer_index]


async def start(dut, idle: dict[str, int]) -> None:
    """Start a 10 ns clock, hold reset for :data:`RESET_CYCLES` cycles with the inputs ``idle``
    (name -> value), release it on a falling edge."""
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    dut.rst.value = 1
    for name, value in idle.items():
        getattr(dut, name).value = value
    for _ in range(RESET_CYCLES):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
