"""cocotb bench for the toy pipeline: one await per clock at most, checked in bulk with numpy.

Parameters come from the environment: ``TOY_COEFFS`` (JSON n_out x n_in),
``TOY_VECTORS``, ``TOY_SEED``, ``TOY_STALL``.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from bp_hw.cosim.hexio import pack_hex
from bp_hw.cosim.toy import random_inputs, toy_expected


def _sign(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) else value


@cocotb.test()
async def toy_stream_matches_model(dut):
    coeffs = np.array(json.loads(os.environ["TOY_COEFFS"]))
    n = int(os.environ.get("TOY_VECTORS", "200"))
    stall = float(os.environ.get("TOY_STALL", "0.3"))
    rng = random.Random(int(os.environ.get("TOY_SEED", "1")))
    x = random_inputs(n, coeffs.shape[1], 16, seed=int(os.environ.get("TOY_SEED", "1")))
    words = [int(line, 16) for line in pack_hex(x, 16).split()]

    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    dut.rst.value = 1
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    got: list[int] = []
    sent = 0
    for _ in range(50 * n + 100):  # bounded: a stuck DUT fails instead of hanging
        offer = sent < n and rng.random() >= stall
        dut.i__valid.value = int(offer)
        if offer:
            dut.i__payload.value = words[sent]
        dut.o__ready.value = int(rng.random() >= stall)
        await ReadOnly()
        if offer and dut.i__ready.value:
            sent += 1
        if dut.o__valid.value and dut.o__ready.value:
            got.append(int(dut.o__payload.value))
        await RisingEdge(dut.clk)
        if len(got) >= n:
            break

    assert sent == n, f"DUT accepted {sent} of {n} inputs"
    out = np.array([[_sign((w >> (16 * j)) & 0xFFFF, 16) for j in range(coeffs.shape[0])] for w in got])
    expected = toy_expected(coeffs, x, 16)
    assert out.shape == expected.shape, f"{len(got)} outputs for {n} inputs"
    bad = np.flatnonzero(np.any(out != expected, axis=1))
    assert not len(bad), f"{len(bad)} mismatches, first at {bad[0]}: {out[bad[0]]} != {expected[bad[0]]}"
