"""cocotb bench for a generated network's streams (bp_hw.hdl.network.Network) against ``QModel.predict``.

Environment: ``BP_QMODEL``, ``BP_SAMPLES`` (vectors), ``BP_STALL``, ``BP_SEED``.
Python drives both streams with random stalls (input ``valid`` withheld, output
``ready`` withheld), one ``await`` per clock: on each falling edge it reads
``i.ready`` and ``o.valid``/``o.payload`` (the network computes them from
flip-flops only, as :class:`~bp_hw.hdl.layer.LayerEngine` documents, so they
hold until the next rising edge whatever this bench drives), decides the
transfers of that edge and drives the next values. An independent check of the
Verilog harness, which does the same without Python per cycle.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from bench import Params, start
from bp_hw.cosim.verify import random_vectors
from bp_hw.fixed.packing import pack_word, unpack_word


@cocotb.test()
async def network_stream_matches_model(dut):
    params = Params(samples=300)
    q, n, stall, rng = params.qmodel, params.samples, params.stall, params.rng
    x = random_vectors(q.input_fmt, n, q.sizes[0], seed=int(rng.integers(1 << 30)))
    words = [pack_word(row, q.input_fmt.width) for row in x]
    out_fmt = q.output_fmt

    await start(dut, {"i__valid": 0, "o__ready": 0})
    got, sent = [], 0
    for _ in range(200 * n + 200):  # bounded: a stuck design fails instead of hanging
        await FallingEdge(dut.clk)
        ready, out_valid, out_word = int(dut.i__ready.value), int(dut.o__valid.value), int(dut.o__payload.value)
        offer = sent < n and rng.random() >= stall
        take = rng.random() >= stall
        dut.i__valid.value = int(offer)
        if offer:
            dut.i__payload.value = words[sent]
        dut.o__ready.value = int(take)
        # what the coming rising edge transfers
        if offer and ready:
            sent += 1
        if take and out_valid:
            got.append(unpack_word(out_word, out_fmt.width, q.sizes[-1], out_fmt.signed))
        if len(got) == n:
            break
    assert sent == n, f"the network accepted {sent} of {n} inputs"
    got = np.array(got, dtype=np.int64)
    expected = q.predict(x)
    assert got.shape == expected.shape, f"{len(got)} outputs for {n} inputs"
    bad = np.flatnonzero((got != expected).any(axis=1))
    assert not len(bad), f"{len(bad)} vectors wrong, first {bad[0]}: got {got[bad[0]]}, expected {expected[bad[0]]}"
