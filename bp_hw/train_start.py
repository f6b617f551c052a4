"""The starting point of on-chip training: a seeded float initialisation, quantized.

It sits above the float trainer and the fixed-point layer (it uses both), so
that :mod:`bp_hw.fixed` needs neither the reference trainer nor the data sets.
"""

from __future__ import annotations

from .data import load_dataset, split_dataset
from .fixed.quantizer import QuantConfig, quantize_model
from .modelfile import FloatModel
from .reference import init_weights, normalization_stats

__all__ = ["seeded_qmodel"]


def seeded_qmodel(data: str, layers, seed: int = 0, fmt: str = "Q4.12", test_fraction: float = 0.3,
                  init: str = "xavier", lut_bits: int = 10):
    """The starting point of on-chip training: seeded initial weights, quantized.

    Sigmoid layers with the reference trainer's seeded initialisation
    (``init_weights(layers, init, seed)``), input normalisation learned on the
    training split of ``data``, quantized to ``fmt``. Returns
    ``(qmodel, train_split, test_split)``.
    """
    ds = load_dataset(data)
    tr, te = split_dataset(ds, test_fraction, seed)
    mean, std = normalization_stats(tr.X)
    layers = [int(n) for n in layers]
    W, B = init_weights(layers, init, seed)
    fm = FloatModel(layers=layers, weights=W, biases=B, activations=["sigmoid"] * (len(layers) - 1), loss="mse",
                    norm_mean=mean, norm_std=std, n_classes=ds.n_classes)
    q, _ = quantize_model(fm, QuantConfig(format=fmt, lut_bits=lut_bits))
    return q, tr, te
