"""Example of the per-block bench pattern: the toy pipeline through a classic cocotb bench."""

from __future__ import annotations

import json

import pytest
from amaranth.back import verilog

from bp_hw.cosim.toy import PipelineToy, random_coeffs

pytestmark = pytest.mark.slow


def test_toy_pipeline(cocotb_bench):
    coeffs = random_coeffs(3, 4, seed=2)
    text = verilog.convert(PipelineToy(coeffs, latency=2), name="rtl_toy_pipeline")
    cocotb_bench(text, "rtl_toy_pipeline", "tb_toy_stream",
                 env={"TOY_COEFFS": json.dumps(coeffs.tolist()), "TOY_VECTORS": "300", "TOY_STALL": "0.3"})
