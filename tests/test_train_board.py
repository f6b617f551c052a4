"""The training board's link (TrainUART around TrainNetwork behind its TrainCrossing, two clocks) in
Amaranth's simulator, bit by bit:
parameter writes and reads, train and infer frames back to back, a train frame sent again (answered,
not trained twice), a bad CRC that must train nothing;
every answer against FixedTrainer, the spec of on-chip training."""

import copy

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from bp_hw.boards.frame import INFO, NAK, FrameSpec, TrainFrameSpec
from bp_hw.boards.serial_sim import receive_bytes, send_bytes
from bp_hw.boards.crossing import NETWORK_DOMAIN, TrainCrossing
from bp_hw.boards.train_wrapper import TrainUART
from bp_hw.fixed.packing import flat_params, unflat_params
from bp_hw.fixed.trainer import FixedTrainer, targets_for
from bp_hw.hdl.backprop import TrainNetwork
from bp_hw.plan import make_plan
from bp_hw.plan.hardware import train_spec_of
from bp_hw.train_start import seeded_qmodel

DIVISOR = 4
IDLE = 2048


def _spec(plan) -> TrainFrameSpec:
    q, tp = plan.qmodel, plan.training
    return TrainFrameSpec(q.sizes[0], q.sizes[-1], q.input_fmt.width, q.output_fmt.width, tp.target_fmt.width,
                          tp.access_depth, tp.access_width, q.input_fmt.signed, q.output_fmt.signed)


def _session(plan, data: bytes, n_reply: int) -> bytes:
    spec = _spec(plan)
    dut = TrainUART(TrainCrossing(TrainNetwork(plan)), spec, DIVISOR, IDLE)
    got = []

    async def host(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(5)
        await send_bytes(ctx, dut.rx, data, DIVISOR)

    async def listen(ctx):
        got.append(await receive_bytes(ctx, dut.tx, n_reply, DIVISOR,
                                       timeout_cycles=10 * DIVISOR * len(data) + 4 * IDLE))
    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.domains.net = ClockDomain(NETWORK_DOMAIN)
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-6)                                # the link's clock
    sim.add_clock(0.3e-6, domain=NETWORK_DOMAIN)       # the network's, faster as on a board
    sim.add_testbench(host)
    sim.add_testbench(listen)
    sim.run()
    return got[0]


@pytest.fixture(scope="module")
def xor_plan():
    q = seeded_qmodel("xor", [2, 2, 1])[0]
    return make_plan(q, 1, train=True)


def test_training_board_answers_as_the_fixed_point_trainer(xor_plan):
    plan, q = xor_plan, xor_plan.qmodel
    spec = _spec(plan)
    start = flat_params(q).copy()
    start[0] += 3                                     # the board starts from the parameters we write
    X = q.quantize_inputs(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float))[0]
    T = targets_for(q, np.array([0, 1, 1, 0]))
    order = [1, 2, 3, 0, 1]
    bad = bytearray(spec.encode_train(X[0], T[0], seq=90))
    bad[4] ^= 0x10
    data = bytes([INFO]) + spec.encode_write(0, start, seq=1)
    data += b"".join(spec.encode_train(X[k], T[k], seq=10 + i) for i, k in enumerate(order))
    last = len(order) - 1
    data += spec.encode_train(X[order[last]], T[order[last]], seq=10 + last)   # sent again: not trained twice
    data += bytes(bad) + spec.encode_infer(X[3], seq=20) + spec.encode_read(0, spec.params, seq=21)
    n = len(spec.info_response()) + 4 + (len(order) + 2) * spec.response_length + 2 + spec.read_length(spec.params)
    r = _session(plan, data, n)

    ref = copy.deepcopy(q)
    for L, (W, b) in zip(ref.layers, unflat_params(q, start)):
        L.weights[...] = W
        L.biases[...] = b
    trainer = FixedTrainer(ref, train_spec_of(plan.training.spec_dict), plan.parallel)
    want = [trainer.step(X[k], T[k]).outputs for k in order]
    want.append(trainer.model.predict(X[3:4])[0])

    assert TrainFrameSpec.decode_info(r[:len(spec.info_response())]) == spec
    at = len(spec.info_response())
    assert FrameSpec.decode_ack(r[at:at + 4]) == 1
    at += 4
    for i in [*range(len(order)), last]:
        seq, y = spec.decode_response(r[at:at + spec.response_length])
        assert seq == 10 + i
        np.testing.assert_array_equal(y, want[i])
        at += spec.response_length
    assert r[at:at + 2] == bytes([NAK, 90])           # the damaged train frame trained nothing ...
    at += 2
    seq, y = spec.decode_response(r[at:at + spec.response_length])
    assert seq == 20
    np.testing.assert_array_equal(y, want[-1])
    at += spec.response_length
    seq, params = spec.decode_read(r[at:], spec.params)
    assert seq == 21
    np.testing.assert_array_equal(params, flat_params(trainer.model))    # ... as the read-back shows
