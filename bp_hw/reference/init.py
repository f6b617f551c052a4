"""Seeded weight initialisation.

Schemes (W[l] has shape (fan_out, fan_in)):

* ``small``: the classic backpropagation start, weights and biases uniform in [-0.5, 0.5].
* ``xavier``: Glorot uniform, weights in +-sqrt(6 / (fan_in + fan_out)), biases 0;
  suited to sigmoid/tanh.
* ``he``: weights normal with standard deviation sqrt(2 / fan_in), biases 0; suited to ReLU.

The same ``(layers, scheme, seed)`` always gives the same arrays, so the float
and the fixed-point trainers can start from identical weights.
"""

from __future__ import annotations

import numpy as np

from ..errors import BpHwError

INIT_SCHEMES = ("small", "xavier", "he")
SMALL_RANGE = 0.5

# Stream tags keep the initialisation and the per-epoch shuffling independent for one seed.
INIT_STREAM = 1
SHUFFLE_STREAM = 2


def default_init(hidden_activation: str) -> str:
    """The scheme used when none is given: He for ReLU, Xavier otherwise."""
    return "he" if hidden_activation == "relu" else "xavier"


def init_weights(layers, scheme: str, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weights ``(layers[l+1], layers[l])`` and biases ``(layers[l+1],)``, float64, for every layer."""
    layers = [int(n) for n in layers]
    if len(layers) < 2 or min(layers) < 1:
        raise BpHwError(f"layer sizes must be at least two positive integers, got {layers}")
    if scheme not in INIT_SCHEMES:
        raise BpHwError(f"unknown initialisation {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    if int(seed) < 0:
        raise BpHwError(f"seed must be >= 0, got {seed}")
    rng = np.random.default_rng([int(seed), INIT_STREAM])
    weights, biases = [], []
    for fan_in, fan_out in zip(layers[:-1], layers[1:]):
        if scheme == "small":
            W = rng.uniform(-SMALL_RANGE, SMALL_RANGE, size=(fan_out, fan_in))
            b = rng.uniform(-SMALL_RANGE, SMALL_RANGE, size=fan_out)
        elif scheme == "xavier":
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            W = rng.uniform(-limit, limit, size=(fan_out, fan_in))
            b = np.zeros(fan_out)
        else:
            W = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_out, fan_in))
            b = np.zeros(fan_out)
        weights.append(W)
        biases.append(b)
    return weights, biases
