"""Small quantized models for the per-block benches (built with the real quantizer, saved as JSON).

The benches load the saved file and take every expected value from the
integer model (``QLayer.accumulate`` / ``activate`` / ``forward``,
``QModel.predict``); nothing here re-implements the arithmetic.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bp_hw.fixed import QuantConfig, quantize_model
from bp_hw.fixed.qmodel import QModel
from bp_hw.modelfile import FloatModel

#: name -> (sizes, activations, quantizer options, seed)
MODELS = {
    # direct LUT with a symmetric half table, then tanh with interpolation: both LUT paths
    "net": ([5, 6, 3], ["sigmoid", "tanh"], dict(lut_bits=8, lut_symmetric=True), 3),
    "interp": ([5, 6, 3], ["tanh", "sigmoid"], dict(lut_bits=6, lut_interpolate=True), 4),
    "relu": ([6, 7, 2], ["relu", "identity"], dict(format="Q3.9", rounding="nearest-up"), 5),
}


def float_model(sizes, activations, seed) -> FloatModel:
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 1.5, (n_out, n_in)) for n_in, n_out in zip(sizes, sizes[1:])]
    biases = [rng.normal(0, 0.75, n_out) for n_out in sizes[1:]]
    return FloatModel(layers=list(sizes), weights=weights, biases=biases, activations=list(activations),
                      loss="mse", norm_mean=np.zeros(sizes[0]), norm_std=np.ones(sizes[0]),
                      n_classes=max(2, sizes[-1]))


def block_model(name: str) -> QModel:
    sizes, activations, options, seed = MODELS[name]
    q, _ = quantize_model(float_model(sizes, activations, seed), QuantConfig(**options))
    return q


def save_model(name: str, folder: Path) -> Path:
    """Write model *name* to ``folder/<name>.json`` (unchanged files are left alone: builds stay cached)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"qmodel_{name}.json"
    q = block_model(name)
    tmp = folder / f".qmodel_{name}.{os.getpid()}.tmp.json"
    q.save(tmp)
    if path.is_file() and path.read_bytes() == tmp.read_bytes():
        tmp.unlink()
    else:
        tmp.replace(path)
    return path
