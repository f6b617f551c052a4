"""cocotb bench for one MAC lane (bp_hw.hdl.mac.MACLane): dot products of a real layer, random stalls.

Environment: ``BP_QMODEL`` (quantized model JSON), ``BP_LAYER``, ``BP_LANES_IN``,
``BP_SAMPLES``, ``BP_STALL``, ``BP_SEED``. Expected sums come from
``QLayer.accumulate``. One ``await`` per clock: inputs are driven and registered
outputs read on the falling edge.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from bench import Params, start
from bp_hw.fixed.packing import pack_word


@cocotb.test()
async def mac_lane_matches_accumulate(dut):
    params = Params(samples=40)
    layer, n, stall, rng = params.layer, params.samples, params.stall, params.rng
    p = int(os.environ["BP_LANES_IN"])
    fmt = layer.in_fmt
    a = rng.integers(fmt.min_int, fmt.max_int + 1, size=(n, layer.fan_in))
    a[0] = fmt.max_int  # extremes: the accumulator's width rule is exercised
    a[1] = fmt.min_int
    expected = layer.accumulate(a)  # (n, fan_out)

    chunks = -(-layer.fan_in // p)
    ww, aw, bw = layer.weight_fmt.width, fmt.width, layer.bias_fmt.width
    # One entry per cycle with valid operands: (w word, a word, bias, first, last); zero-padded chunks.
    ops = []
    for s in range(n):
        for j in range(layer.fan_out):
            for c in range(chunks):
                idx = list(range(c * p, min((c + 1) * p, layer.fan_in)))
                w = [layer.weights[j, i] for i in idx] + [0] * (p - len(idx))
                x = [a[s, i] for i in idx] + [0] * (p - len(idx))
                ops.append((pack_word(w, ww), pack_word(x, aw), pack_word([layer.biases[j]], bw),
                            int(c == 0), int(c == chunks - 1)))

    await start(dut, {"en": 0, "valid": 0})

    got: list[int] = []
    k = 0
    for _ in range(4 * len(ops) + 100):  # bounded: a stuck lane fails instead of hanging
        await FallingEdge(dut.clk)
        en = int(rng.random() >= stall)
        # done/acc are registered: a result is consumed on an enabled edge, as the layer does.
        if en and int(dut.done.value):
            got.append(dut.acc.value.to_signed())
        bubble = rng.random() < stall / 2  # valid low with the clock enabled: must not accumulate
        offer = k < len(ops) and not bubble
        dut.en.value = en
        dut.valid.value = int(offer)
        if offer:
            w, x, b, first, last = ops[k]
            dut.w.value, dut.a.value, dut.bias.value = w, x, b
            dut.first.value, dut.last.value = first, last
            if en:
                k += 1
        if len(got) == expected.size:
            break
    got_arr = np.array(got, dtype=np.int64)
    assert got_arr.size == expected.size, f"{got_arr.size} sums for {expected.size} neurons"
    bad = np.flatnonzero(got_arr != expected.ravel())
    assert not len(bad), (f"{len(bad)} wrong sums; first: sample {bad[0] // layer.fan_out} neuron "
                          f"{bad[0] % layer.fan_out}: got {got_arr[bad[0]]}, expected {expected.ravel()[bad[0]]}")
