"""How far the integer model is from the float model it came from, and a bound that says how far it may be.

:func:`compare` runs both models on the same raw inputs and returns, per
layer, the max and mean absolute error between the integer model's values
(read as reals) and the float model's, the saturation counts, the LUT error,
and the per-sample **error bound** of docs/arithmetic.md ("Error bound"):

For layer ``l`` with float weights ``W, b``, quantized ``Wq, bq``, integer
inputs ``aq`` (as reals) and a bound ``d`` on ``|aq - a|`` from the layer
before (for the first layer the measured input quantization error),

    D   = |Wq - W| |aq| + |W| d + |bq - b|          (so |acc - z| <= D)
    e   = max(|f(acc - D) - f(zq)|, |f(acc + D) - f(zq)|) + lut_err

bounds ``|out - f(z)|``, because ``f`` is nondecreasing (sigmoid, tanh, ReLU,
identity) and the float ``z`` lies in ``[acc - D, acc + D]``; ``acc`` is the
exact accumulator, ``zq`` the rescaled (rounded, saturated) value and
``lut_err`` the table's :meth:`~bp_hw.fixed.lut.ActivationLUT.max_abs_error`.
``e`` becomes ``d`` for the next layer. It covers rounding and saturation
alike; the check is that every measured error is at most its bound.

A float output layer with softmax is compared on its logits: the integer
model's identity output against the float ``z``.

The float model is read duck-typed (``weights``, ``biases``, ``activations``,
``normalize``, ``forward``): this module imports numpy only.
"""

from __future__ import annotations

import numpy as np

from .lut import FUNCTIONS
from .qmodel import QModel

MONOTONE = {
    **FUNCTIONS,
    "relu": lambda x: np.maximum(x, 0.0),
    "identity": lambda x: x,
}
#: Slack for float64 evaluation of the bound itself (values are O(1)-O(100)).
BOUND_SLACK = 1e-9


def _class_decisions(float_model, outputs: np.ndarray) -> np.ndarray:
    if outputs.shape[1] == 1:
        threshold = 0.5 if float_model.activations[-1] == "sigmoid" else 0.0
        return (outputs[:, 0] > threshold).astype(np.int64)
    return np.argmax(outputs, axis=1)


def run_both(qmodel: QModel, float_model, X_raw) -> dict:
    """Both models on ``X_raw``: float ``(z, a)`` per layer, integer traces, input quantization."""
    X_raw = np.asarray(X_raw, dtype=np.float64)
    X_norm = float_model.normalize(X_raw)
    x_int, in_sat = qmodel.quantize_inputs(X_raw)
    out, traces = qmodel.predict(x_int, trace=True)
    return {"X_norm": X_norm, "x_int": x_int, "input_saturations": in_sat, "outputs": out,
            "traces": traces, "float": float_model.forward(X_norm)}


def layer_errors(qmodel: QModel, float_model, run: dict) -> list[dict]:
    """Per-layer measured errors and the error bound (see the module doc) for one :func:`run_both`."""
    results = []
    a_q = qmodel.input_fmt.to_float(run["x_int"])
    d = np.abs(a_q - run["X_norm"])  # measured input error (rounding and saturation)
    for l, (layer, trace, (z_f, a_f)) in enumerate(zip(qmodel.layers, run["traces"], run["float"])):
        W, b = float_model.weights[l], float_model.biases[l]
        Wq = layer.weight_fmt.to_float(layer.weights)
        bq = layer.bias_fmt.to_float(layer.biases)
        D = np.abs(a_q) @ np.abs(Wq - W).T + d @ np.abs(W).T + np.abs(bq - b)[None, :]
        acc = trace["acc"].astype(np.float64) * 2.0 ** -layer.product_frac
        zq = layer.z_fmt.to_float(trace["z"])
        out = layer.out_fmt.to_float(trace["out"])
        f = MONOTONE[layer.activation]
        fz = f(zq)
        lut_err = layer.lut.max_abs_error() if layer.lut is not None else 0.0
        bound = np.maximum(np.abs(f(acc - D) - fz), np.abs(f(acc + D) - fz)) + lut_err
        reference = z_f if layer.float_activation == "softmax" else a_f
        err = np.abs(out - reference)
        z_err = np.abs(zq - z_f)
        results.append({
            "layer": l, "activation": layer.activation,
            "compared_with": "float logits z" if layer.float_activation == "softmax" else "float activation",
            "max_abs_error": float(err.max()) if err.size else 0.0,
            "mean_abs_error": float(err.mean()) if err.size else 0.0,
            "z_max_abs_error": float(z_err.max()) if z_err.size else 0.0,
            "z_saturations": int(trace["saturations"]),
            "lut_max_error": lut_err if layer.lut is not None else None,
            "error_bound": float(bound.max()) if bound.size else 0.0,
            "within_bound": bool(np.all(err <= bound + BOUND_SLACK)),
            "errors": err,  # arrays for plots; dropped from JSON by summarize()
            "bounds": bound,
        })
        a_q = out
        d = bound
    return results


def compare(qmodel: QModel, float_model, splits: dict, quant_saturations: dict | None = None) -> dict:
    """Float vs fixed on named data splits ``{name: (X_raw, y)}`` (``y`` may be None).

    Accuracies are per split; errors, bounds and saturations are over all
    splits together.
    """
    float_acc, fixed_acc, agree = {}, {}, {}
    X_all = []
    for name, (X, y) in splits.items():
        X = np.asarray(X, dtype=np.float64)
        X_all.append(X)
        run = run_both(qmodel, float_model, X)
        f_cls = _class_decisions(float_model, run["float"][-1][1])
        q_cls = qmodel.classify(run["outputs"])
        agree[name] = float(np.mean(f_cls == q_cls)) if len(X) else None
        if y is not None and len(X):
            y = np.asarray(y)
            float_acc[name] = float(np.mean(f_cls == y))
            fixed_acc[name] = float(np.mean(q_cls == y))
    run = run_both(qmodel, float_model, np.concatenate(X_all))
    layers = layer_errors(qmodel, float_model, run)
    sats = {"weights": 0, "biases": 0}
    sats.update(quant_saturations or {})
    sats["inputs"] = int(run["input_saturations"])
    sats["z"] = [lay["z_saturations"] for lay in layers]
    sats["total"] = int(sats["weights"] + sats["biases"] + sats["inputs"] + sum(sats["z"]))
    return {
        "samples": int(run["x_int"].shape[0]),
        "float_accuracy": float_acc, "fixed_accuracy": fixed_acc, "decision_agreement": agree,
        "max_abs_error": max(lay["max_abs_error"] for lay in layers),
        "layers": layers, "saturations": sats,
        "within_bound": all(lay["within_bound"] for lay in layers),
        "_run": run,
    }


def summarize(report: dict) -> dict:
    """The JSON-able part of a :func:`compare` report (no arrays)."""
    out = {k: v for k, v in report.items() if not k.startswith("_") and k != "layers"}
    out["layers"] = [{k: v for k, v in lay.items() if k not in ("errors", "bounds")} for lay in report["layers"]]
    return out
