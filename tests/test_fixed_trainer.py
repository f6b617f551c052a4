"""The fixed-point trainer (the on-chip training spec): backprop semantics, rounding, convergence."""

from __future__ import annotations

import numpy as np
import pytest

from bp_hw.errors import BpHwError
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
