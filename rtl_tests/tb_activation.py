"""cocotb bench for the activation unit (bp_hw.hdl.activation.ActivationUnit) against ``QLayer.activate``.

Environment: ``BP_QMODEL``, ``BP_LAYER``, ``BP_SAMPLES``, ``BP_STALL``, ``BP_SEED``.
The z values cover the whole z format's edges, the LUT's range and random values.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from bench import Params, start


@cocotb.test()
async def activation_matches_model(dut):
    params = Params(samples=3000)
    layer, n, stall, rng = params.layer, params.samples, params.stall, params.rng
    zf = layer.z_fmt
    edges = [zf.min_int, zf.min_int + 1, -1, 0, 1, zf.max_int - 1, zf.max_int]
    near = rng.integers(-(1 << (zf.frac_bits + 3)), 1 << (zf.frac_bits + 3), size=n // 2)  # |z| < 8: the LUT range
    z = np.clip(np.concatenate([edges, near, rng.integers(zf.min_int, zf.max_int + 1, size=n - n // 2)]),
                zf.min_int, zf.max_int).astype(np.int64)
    expected = np.asarray(layer.activate(z)[0], dtype=np.int64)
    mask = (1 << zf.width) - 1

    await start(dut, {"en": 0, "valid": 0})

    got: list[int] = []
    k = 0
    signed = layer.out_fmt.signed
    for _ in range(4 * len(z) + 100):
        await FallingEdge(dut.clk)
        en = int(rng.random() >= stall)
        if en and int(dut.y_valid.value):
            got.append(dut.y.value.to_signed() if signed else dut.y.value.to_unsigned())
        offer = k < len(z)
        dut.en.value = en
        dut.valid.value = int(offer)
        if offer:
            dut.z.value = int(z[k]) & mask
            if en:
                k += 1
        if len(got) == len(z):
            break
    got_arr = np.array(got, dtype=np.int64)
    assert got_arr.size == z.size, f"{got_arr.size} results for {z.size} inputs"
    bad = np.flatnonzero(got_arr != expected)
    assert not len(bad), f"{len(bad)} wrong; first z={z[bad[0]]}: got {got_arr[bad[0]]}, expected {expected[bad[0]]}"
