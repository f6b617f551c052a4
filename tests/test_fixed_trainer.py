"""The fixed-point trainer (the on-chip training spec): backprop semantics, rounding, convergence."""

from __future__ import annotations

import numpy as np
import pytest

from bp_hw.errors import BpHwError
from bp_hw.fixed.rounding import round_shift
from bp_hw.fixed.trainer import FixedTrainer, TrainSpec, epoch_order, parse_lr, targets_for
from bp_hw.train_start import seeded_qmodel
from bp_hw.reference import Network


def initial_qmodel(data, layers, seed=0, fmt="Q4.12"):
    return seeded_qmodel(data, layers, seed, fmt)


def test_parse_lr():
    assert parse_lr("2^-3") == (1, 3)
    assert parse_lr("2^(-1)") == (1, 1)
    assert parse_lr(0.25) == (1, 2)
    eta_int, f = parse_lr("0.3", 12)
    assert abs(eta_int / 2 ** f - 0.3) <= 2 ** -13 and eta_int % 2 == 1
    for bad in ("2^3", "-0.1", "fast", "0"):
        with pytest.raises(BpHwError):
            parse_lr(bad)


def test_one_step_follows_float_backprop():
    """The integer update approximates eta * dE/dW of the float chain rule on the same weights."""
    q, tr, _ = initial_qmodel("iris", [4, 8, 3])
    X, _ = q.quantize_inputs(tr.X[:1])
    T = targets_for(q, tr.y[:1])
    trainer = FixedTrainer(q, TrainSpec(lr="2^-1"))
    before = [(layer.weights.copy(), layer.biases.copy()) for layer in trainer.model.layers]
    trainer.step(X[0], T[0])
    # the float network on the same (dequantized) weights and inputs
    Wf = [layer.weight_fmt.to_float(w) for (w, _), layer in zip(before, q.layers)]
    Bf = [layer.bias_fmt.to_float(b) for (_, b), layer in zip(before, q.layers)]
    net = Network(Wf, Bf, ["sigmoid", "sigmoid"], "mse")
    grads = net.gradients(q.input_fmt.to_float(X), q.output_fmt.to_float(T))
    for l, layer in enumerate(trainer.model.layers):
        step_w = layer.weight_fmt.to_float(before[l][0] - layer.weights)
        step_b = layer.bias_fmt.to_float(before[l][1] - layer.biases)
        expect_w, expect_b = 0.5 * grads[2 * l], 0.5 * grads[2 * l + 1]
        assert np.abs(step_w - expect_w).max() < 4e-3, l   # LUT + rounding error of the integer forward/backward
        assert np.abs(step_b - expect_b).max() < 4e-3, l
        assert np.abs(expect_w).max() > 1e-3  # the step is not trivially zero


@pytest.mark.parametrize("mode", ["nearest-even", "floor", "nearest-up"])
def test_deterministic_updates_do_not_depend_on_folding(mode):
    q, tr, _ = initial_qmodel("iris", [4, 8, 3])
    X, _ = q.quantize_inputs(tr.X[:20])
    T = targets_for(q, tr.y[:20])
    a = FixedTrainer(q, TrainSpec(update_rounding=mode), parallel=[1, 1])
    b = FixedTrainer(q, TrainSpec(update_rounding=mode), parallel=[8, 6])
    a.epoch(X, T)
    b.epoch(X, T)
    for la, lb in zip(a.model.layers, b.model.layers):
        np.testing.assert_array_equal(la.weights, lb.weights)


def test_stochastic_updates_are_reproducible_and_unbiased():
    q, tr, _ = initial_qmodel("iris", [4, 8, 3])
    X, _ = q.quantize_inputs(tr.X[:10])
    T = targets_for(q, tr.y[:10])
    runs = []
    for _ in range(2):
        t = FixedTrainer(q, TrainSpec(update_rounding="stochastic", seed=5))
        t.epoch(X, T)
        runs.append(t.model.layers[0].weights.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    other = FixedTrainer(q, TrainSpec(update_rounding="stochastic", seed=6))
    other.epoch(X, T)
    assert not np.array_equal(other.model.layers[0].weights, runs[0])
    # small updates: stochastic rounding moves weights on average, floor-to-nearest would stall them
    tiny = TrainSpec(lr="2^-9", update_rounding="stochastic")
    stall = TrainSpec(lr="2^-9", update_rounding="nearest-even")
    moved = [FixedTrainer(q, s) for s in (tiny, stall)]
    for t in moved:
        for _ in range(3):
            t.epoch(X, T)
    changes = [np.abs(t.model.layers[0].weights - q.layers[0].weights).sum() for t in moved]
    assert changes[0] > changes[1]


def test_xor_converges_on_chip_spec():
    q, tr, _ = initial_qmodel("xor", [2, 4, 1])
    X, _ = q.quantize_inputs(tr.X)
    T = targets_for(q, tr.y)
    t = FixedTrainer(q)
    for epoch in range(5000):
        t.epoch(X, T, epoch_order(len(X), 0, epoch))
        if epoch % 50 == 49 and np.array_equal(t.model.classify(t.model.predict(X)), tr.y):
            break
    assert np.array_equal(t.model.classify(t.model.predict(X)), tr.y)
    assert epoch < 5000


def test_iris_50_epochs_reaches_90_percent():
    q, tr, te = initial_qmodel("iris", [4, 8, 3])
    X, _ = q.quantize_inputs(tr.X)
    Xt, _ = q.quantize_inputs(te.X)
    T = targets_for(q, tr.y)
    t = FixedTrainer(q)
    for epoch in range(50):
        t.epoch(X, T, epoch_order(len(X), 0, epoch))
    assert (t.model.classify(t.model.predict(Xt)) == te.y).mean() >= 0.90


def test_cross_entropy_step_follows_float_backprop():
    """cost cross-entropy: the output delta is (o - t) with no sigma' (the float chain rule of the sigmoid
    cross-entropy), the hidden layer's delta keeps its sigma'."""
    q, tr, _ = initial_qmodel("iris", [4, 8, 3])
    X, _ = q.quantize_inputs(tr.X[:1])
    T = targets_for(q, tr.y[:1])
    trainer = FixedTrainer(q, TrainSpec(lr="2^-3", cost="cross-entropy"))
    assert [f.derivative for f in trainer.formats] == ["sigmoid", "identity"]
    res = trainer.step(X[0], T[0])
    fmt = trainer.formats[-1]
    np.testing.assert_array_equal(res.deltas[-1], res.errors[-1] << (fmt.delta_fmt.frac_bits - fmt.err_fmt.frac_bits))
    Wf = [layer.weight_fmt.to_float(layer.weights) for layer in q.layers]
    Bf = [layer.bias_fmt.to_float(layer.biases) for layer in q.layers]
    grads = Network(Wf, Bf, ["sigmoid", "sigmoid"], "cross_entropy").gradients(
        q.input_fmt.to_float(X), q.output_fmt.to_float(T))
    mse = FixedTrainer(q, TrainSpec(lr="2^-3"))
    mse.step(X[0], T[0])
    for l, layer in enumerate(trainer.model.layers):
        step_w = layer.weight_fmt.to_float(q.layers[l].weights - layer.weights)
        assert np.abs(step_w - grads[2 * l] / 8).max() < 2e-3, l
    # a different step from MSE's: the sigma' factor (<= 1/4) is gone from the output delta
    assert np.abs(q.layers[1].weights - trainer.model.layers[1].weights).sum() > \
        2 * np.abs(q.layers[1].weights - mse.model.layers[1].weights).sum()


def test_cross_entropy_needs_sigmoid_or_tanh_outputs():
    from bp_hw.fixed import QuantConfig, quantize_model
    from bp_hw.modelfile import FloatModel
    fm = FloatModel(layers=[2, 3, 2], weights=[np.zeros((3, 2)), np.zeros((2, 3))], biases=[np.zeros(3), np.zeros(2)],
                    activations=["sigmoid", "relu"], loss="mse", norm_mean=np.zeros(2), norm_std=np.ones(2), n_classes=2)
    q, _ = quantize_model(fm, QuantConfig(format="Q4.12"))
    with pytest.raises(BpHwError, match="sigmoid or tanh"):
        FixedTrainer(q, TrainSpec(cost="cross-entropy"))
    for bad in (dict(cost="xent"), dict(batch=3), dict(batch=0)):
        with pytest.raises(BpHwError):
            TrainSpec(**bad)


@pytest.mark.parametrize("mode", ["nearest-even", "stochastic"])
def test_mini_batch_updates_once_with_the_mean(mode):
    """B = 4: three samples change nothing, the fourth applies round_shift(sum of the four exact terms, k + 2),
    each term from the weights before the batch."""
    q, tr, _ = initial_qmodel("iris", [4, 8, 3])
    X, _ = q.quantize_inputs(tr.X[:4])
    T = targets_for(q, tr.y[:4])
    spec = TrainSpec(batch=4, update_rounding=mode)
    t = FixedTrainer(q, spec)
    for s in range(3):
        t.step(X[s], T[s])
        for la, lq in zip(t.model.layers, q.layers):
            np.testing.assert_array_equal(la.weights, lq.weights)
    t.step(X[3], T[3])
    assert t.pending == 0
    sums = [np.zeros_like(L.weights) for L in q.layers]
    bsums = [np.zeros_like(L.biases) for L in q.layers]
    for s in range(4):   # the terms of each sample through the weights before the batch
        one = FixedTrainer(q, TrainSpec(update_rounding=mode))
        res = one.step(X[s], T[s])
        _, traces = q.predict(X[s:s + 1], trace=True)
        acts = [X[s]] + [tr_["out"][0] for tr_ in traces]
        for l in range(len(q.layers)):
            g = res.deltas[l] * one.eta_int
            sums[l] += g[:, None] * acts[l][None, :]
            bsums[l] += g
    for l, (L, f) in enumerate(zip(t.model.layers, t.formats)):
        assert f.weight_update_shift == FixedTrainer(q).formats[l].weight_update_shift + 2
        assert np.abs(sums[l]).max() < 2 ** (f.grad_width - 1) and np.abs(bsums[l]).max() < 2 ** (f.bias_grad_width - 1)
        if mode == "nearest-even":
            np.testing.assert_array_equal(L.weights, q.layers[l].weights - round_shift(sums[l], f.weight_update_shift))
            np.testing.assert_array_equal(L.biases, q.layers[l].biases - round_shift(bsums[l], f.bias_update_shift))
        else:   # stochastic: within one unit of the floor
            step = q.layers[l].weights - L.weights
            assert np.all((step - (sums[l] >> f.weight_update_shift)) ** 2 <= 1)


def test_mini_batch_carries_a_partial_batch_into_the_next_epoch():
    q, tr, _ = initial_qmodel("iris", [4, 8, 3])
    X, _ = q.quantize_inputs(tr.X)
    T = targets_for(q, tr.y)
    n = len(X)
    assert n % 8
    a = FixedTrainer(q, TrainSpec(batch=8))
    for e in range(2):
        a.epoch(X, T, epoch_order(n, 0, e))
    assert a.pending == (2 * n) % 8
    idx = np.concatenate([epoch_order(n, 0, e) for e in range(2)])
    train = np.ones(len(idx) + 5, np.int64)
    train[[3, 50, 200]] = 0       # inference samples in between neither count nor touch the sums
    Xs = np.insert(X[idx], [3, 50 - 1, 200 - 2], X[:3], axis=0)
    Ts = np.insert(T[idx], [3, 50 - 1, 200 - 2], T[:3], axis=0)
    b = FixedTrainer(q, TrainSpec(batch=8))
    b.run(Xs[:len(idx) + 3], Ts[:len(idx) + 3], train[:len(idx) + 3])
    for la, lb in zip(a.model.layers, b.model.layers):
        np.testing.assert_array_equal(la.weights, lb.weights)
        np.testing.assert_array_equal(la.biases, lb.biases)
