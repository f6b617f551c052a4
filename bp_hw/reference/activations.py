"""Float activation functions and their derivatives, for backpropagation.

Each :class:`Activation` pairs the forward function (defined in
:mod:`bp_hw.modelfile`, which gives activation names their meaning) with
``backward(z, a, grad_a) -> grad_z``, the chain rule through the activation:
``grad_a * f'(z)`` for the element-wise functions, the Jacobian-vector product
for softmax. Derivatives are written in terms of ``a = f(z)`` where that is the
classic form (sigmoid: a(1 - a), tanh: 1 - a^2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import BpHwError
from ..modelfile import ELEMENTWISE_ACTIVATIONS, identity, relu, sigmoid, softmax, tanh


def sigmoid_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return a * (1.0 - a)


def tanh_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return 1.0 - a * a


def relu_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    # The subgradient at exactly z == 0 is taken as 0.
    return (z > 0.0).astype(np.float64)


def identity_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.ones_like(z)


def _sigmoid_backward(z, a, g):
    d = 1.0 - a
    d *= a
    d *= g
    return d


def _tanh_backward(z, a, g):
    d = a * a
    np.subtract(1.0, d, out=d)
    d *= g
    return d


def _relu_backward(z, a, g):
    return np.where(z > 0.0, g, 0.0)


def _identity_backward(z, a, g):
    return g


def _softmax_backward(z, a, g):
    # J = diag(a) - a a^T per row, so J^T g = a * (g - sum(g * a)).
    s = np.einsum("ij,ij->i", g, a)[:, None]
    return a * (g - s)


@dataclass(frozen=True)
class Activation:
    """An activation: ``forward(z) -> a`` and ``backward(z, a, grad_a) -> grad_z``."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    #: f'(z) as a function of (z, a); None for softmax, whose derivative is a Jacobian.
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray] | None


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", sigmoid, _sigmoid_backward, sigmoid_derivative),
    "tanh": Activation("tanh", tanh, _tanh_backward, tanh_derivative),
    "relu": Activation("relu", relu, _relu_backward, relu_derivative),
    "identity": Activation("identity", identity, _identity_backward, identity_derivative),
    "softmax": Activation("softmax", softmax, _softmax_backward, None),
}
HIDDEN_ACTIVATIONS = ELEMENTWISE_ACTIVATIONS
OUTPUT_ACTIVATIONS = tuple(ACTIVATIONS)


def get_activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise BpHwError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None
