"""The quantized iris model: accuracy against float, and the integer model inside the error bound.

The bound (bp_hw/fixed/report.py, docs/arithmetic.md) is checked element by
element on every layer, for several formats and activations, and a corrupted
quantized model must break it.
"""

import numpy as np
import pytest

from bp_hw.data import load_dataset, split_dataset
from bp_hw.fixed import QLayer, QuantConfig, quantize_model
from bp_hw.fixed.report import compare, summarize
from bp_hw.modelfile import FloatModel
from bp_hw.reference import TrainConfig, train


@pytest.fixture(scope="module")
def iris_model():
    """iris 4,8,3 sigmoid as `bp-hw train --data iris` makes it (the trainer's defaults)."""
    cfg = TrainConfig(data="iris", layers=[4, 8, 3], activation="sigmoid")
    tr, te = split_dataset(load_dataset("iris"), cfg.test_fraction, cfg.seed)
    return train(tr, te, cfg), {"train": (tr.X, tr.y), "test": (te.X, te.y)}


def quantized_report(model, splits, **kw):
    calib = splits["train"][0] if "train" in splits else next(iter(splits.values()))[0]
    q, sats = quantize_model(model, QuantConfig(**kw), calib)
    return q, compare(q, model, splits, sats)


def test_q4_12_within_one_point_of_float(iris_model):
    model, splits = iris_model
    _, r = quantized_report(model, splits, format="Q4.12", lut_bits=10)
    for split in ("train", "test"):
        assert abs(r["fixed_accuracy"][split] - r["float_accuracy"][split]) <= 0.01
    assert r["within_bound"]


def test_q2_6_within_five_points_and_saturations_reported(iris_model):
    model, splits = iris_model
    _, r = quantized_report(model, splits, format="Q2.6", lut_bits=10)
    for split in ("train", "test"):
        assert abs(r["fixed_accuracy"][split] - r["float_accuracy"][split]) <= 0.05
    s = r["saturations"]
    assert {"weights", "biases", "inputs", "z", "total"} <= set(s)
    assert s["total"] == s["weights"] + s["biases"] + s["inputs"] + sum(s["z"])
    # Recount independently: weights outside Q2.6's [-2, 2 - 1/64] after rounding saturate.
    want = sum(int(np.count_nonzero((np.rint(w * 64) < -128) | (np.rint(w * 64) > 127))) for w in model.weights)
    assert s["weights"] == want
    assert r["within_bound"]


def test_auto_formats_at_8_bits_remove_the_saturation(iris_model):
    model, splits = iris_model
    _, fixed = quantized_report(model, splits, format="Q2.6", lut_bits=10)
    _, auto = quantized_report(model, splits, format="Q2.6", weight_format="auto", bias_format="auto",
                               input_format="auto", lut_bits=10)
    assert auto["saturations"]["weights"] == auto["saturations"]["biases"] == auto["saturations"]["inputs"] == 0
    assert auto["max_abs_error"] < fixed["max_abs_error"] / 4
    assert abs(auto["fixed_accuracy"]["test"] - auto["float_accuracy"]["test"]) <= 0.01


@pytest.mark.parametrize("kw", [
    dict(format="Q4.12", lut_bits=10),
    dict(format="Q4.12", lut_bits=8, lut_symmetric=True, lut_interpolate=True),
    dict(format="Q2.6", lut_bits=10),
    dict(format="Q3.5", lut_bits=6, rounding="floor"),
    dict(format="auto", bit_budget=8, rounding="toward-zero", lut_range=4),
    dict(format="Q4.12", act_format="Q1.7", lut_bits=7, overflow="wrap"),
])
def test_iris_every_layer_within_bound(iris_model, kw):
    model, splits = iris_model
    _, r = quantized_report(model, splits, **kw)
    for lay in r["layers"]:
        assert np.all(lay["errors"] <= lay["bounds"] + 1e-9), (kw, lay["layer"])
        assert lay["max_abs_error"] <= lay["error_bound"] + 1e-9


def random_model(acts, sizes, seed, scale=1.5):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(0, scale, (n, m)) for m, n in zip(sizes, sizes[1:])]
    bs = [rng.normal(0, scale / 2, n) for n in sizes[1:]]
    return FloatModel(layers=sizes, weights=ws, biases=bs, activations=acts, loss="mse",
                      norm_mean=np.zeros(sizes[0]), norm_std=np.ones(sizes[0]), n_classes=sizes[-1])


@pytest.mark.parametrize("acts", [["tanh", "relu", "identity"], ["relu", "sigmoid", "softmax"],
                                  ["sigmoid", "tanh", "sigmoid"]])
@pytest.mark.parametrize("fmt", ["Q4.12", "Q3.5", "Q6.10"])
def test_random_models_within_bound(acts, fmt):
    model = random_model(acts, [5, 7, 6, 3], seed=len(fmt) + len(acts[0]))
    X = np.random.default_rng(1).normal(0, 1.2, (300, 5))
    y = np.random.default_rng(2).integers(0, 3, 300)
    _, r = quantized_report(model, {"data": (X[:200], y[:200]), "more": (X[200:], y[200:])}, format=fmt)
    assert r["within_bound"]
    for lay in r["layers"]:
        assert np.all(lay["errors"] <= lay["bounds"] + 1e-9)
    if acts[-1] == "softmax":
        assert r["layers"][-1]["compared_with"] == "float logits z"


class BiasNotAligned(QLayer):
    """A classic datapath bug: the bias added without its shift to the products' binary point."""

    def accumulate(self, a):
        return np.asarray(a, dtype=np.int64) @ self.weights.T + self.biases[None, :]


def test_broken_arithmetic_breaks_the_bound(iris_model):
    # The bound takes the quantized weights as given (any Wq is allowed), so the way to fail it is an
    # integer model that does not compute what its parameters say.
    model, splits = iris_model
    q, sats = quantize_model(model, QuantConfig(format="Q4.12"), splits["train"][0])
    assert compare(q, model, splits, sats)["within_bound"]
    q.layers[0].__class__ = BiasNotAligned
    bad = compare(q, model, splits, sats)
    assert not bad["within_bound"] and not bad["layers"][0]["within_bound"]


def test_summary_is_json_clean(iris_model):
    import json
    model, splits = iris_model
    _, r = quantized_report(model, splits, format="Q4.12")
    s = summarize(r)
    json.dumps(s)
    assert "errors" not in s["layers"][0] and s["max_abs_error"] == max(l["max_abs_error"] for l in s["layers"])
