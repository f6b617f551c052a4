"""Loss functions: value and output delta (the gradient with respect to the output pre-activation).

Conventions, per sample, summed over the output neurons, then averaged over the batch:

* ``mse``: E = 1/2 * sum_k (t_k - o_k)^2, the classic backpropagation derivation,
  so dE/do = o - t with no factor 2.
* ``cross_entropy`` with a softmax output: C = -sum_k t_k log o_k.
* ``cross_entropy`` with a sigmoid output (binary / one-vs-rest):
  C = -sum_k [t_k log o_k + (1 - t_k) log(1 - o_k)].

The output delta is dC/da * sigma'(z) (for softmax: the Jacobian-vector
product). For the two canonical pairs, softmax + cross-entropy and sigmoid +
cross-entropy, the product simplifies algebraically to ``o - t``; that form is
used because it stays exact when the output saturates (o == 1.0 in float64
would make dC/da infinite). Loss values are computed from ``z`` for these pairs
for the same reason.
"""

from __future__ import annotations

import numpy as np

from ..errors import BpHwError
from .activations import Activation


class Loss:
    name: str

    def value(self, z: np.ndarray, a: np.ndarray, t: np.ndarray) -> float:
        """Mean over the batch of the per-sample loss."""
        raise NotImplementedError

    def grad_output(self, a: np.ndarray, t: np.ndarray) -> np.ndarray:
        """dC/da per sample (n, k)."""
        raise NotImplementedError

    def output_delta(self, z: np.ndarray, a: np.ndarray, t: np.ndarray, act: Activation) -> np.ndarray:
        """dC/dz per sample (n, k) (not averaged over the batch)."""
        return act.backward(z, a, self.grad_output(a, t))


class MeanSquaredError(Loss):
    name = "mse"

    def value(self, z, a, t):
        d = a - t
        return 0.5 * float(np.einsum("ij,ij->", d, d)) / a.shape[0]

    def grad_output(self, a, t):
        return a - t


class SoftmaxCrossEntropy(Loss):
    """Cross-entropy on a softmax output."""

    name = "cross_entropy"

    def value(self, z, a, t):
        m = z.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
        # -sum t log softmax(z) = sum(t) * lse - t.z
        return float(np.sum(t.sum(axis=1) * lse - np.einsum("ij,ij->i", t, z))) / z.shape[0]

    def grad_output(self, a, t):
        with np.errstate(divide="ignore"):
            return -t / a

    def output_delta(self, z, a, t, act):
        if act.name != "softmax":
            return super().output_delta(z, a, t, act)
        return a * t.sum(axis=1, keepdims=True) - t


class BinaryCrossEntropy(Loss):
    """Cross-entropy on sigmoid outputs, each output a separate Bernoulli probability."""

    name = "cross_entropy"

    def value(self, z, a, t):
        # -t log s(z) - (1 - t) log(1 - s(z)) = softplus(z) - t z
        return float(np.sum(np.logaddexp(0.0, z) - t * z)) / z.shape[0]

    def grad_output(self, a, t):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (a - t) / (a * (1.0 - a))

    def output_delta(self, z, a, t, act):
        if act.name != "sigmoid":
            return super().output_delta(z, a, t, act)
        return a - t


def get_loss(name: str, output_activation: str) -> Loss:
    """The loss object for ``name`` on an output with ``output_activation``."""
    if name == "mse":
        if output_activation == "softmax":
            raise BpHwError("a softmax output needs --loss cross_entropy; for --loss mse choose "
                            "--output-activation sigmoid (or tanh, relu, identity)")
        return MeanSquaredError()
    if name == "cross_entropy":
        if output_activation == "softmax":
            return SoftmaxCrossEntropy()
        if output_activation == "sigmoid":
            return BinaryCrossEntropy()
        raise BpHwError(f"--loss cross_entropy needs a probability output: use --output-activation softmax "
                        f"(or sigmoid), not {output_activation}")
    raise BpHwError(f"unknown loss {name!r}; choose mse or cross_entropy")
