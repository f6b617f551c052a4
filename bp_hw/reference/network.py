"""Forward and backward passes of a float MLP, vectorised over the batch.

Shapes: inputs ``X`` (n, n_in); ``W[l]`` (fan_out, fan_in); per layer
``z = a_prev @ W.T + b`` and ``a = f(z)``.

Backward pass (the chain rule, exactly):

* output delta   ``delta_L = dC/da_L * f_L'(z_L)``            (:meth:`Loss.output_delta`)
* hidden deltas  ``delta_l = (delta_{l+1} @ W_{l+1}) * f_l'(z_l)``  (through the transposed weights)
* gradients      ``dC/dW_l = delta_l^T @ a_{l-1}``, ``dC/db_l = sum_n delta_l``,

all divided by the batch size, since the cost is the batch mean.
"""

from __future__ import annotations

import numpy as np

from .activations import Activation, get_activation
from .losses import Loss, get_loss


class Network:
    """Parameters and activations of an MLP; the arrays are updated in place by an optimizer."""

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], activations: list[str], loss: str):
        self.weights = weights
        self.biases = biases
        self.activations: list[Activation] = [get_activation(a) for a in activations]
        self.loss: Loss = get_loss(loss, activations[-1])

    @property
    def params(self) -> list[np.ndarray]:
        """``[W0, b0, W1, b1, ...]``, the order of :meth:`gradients`."""
        out = []
        for W, b in zip(self.weights, self.biases):
            out += [W, b]
        return out

    def forward(self, X: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per layer ``(z, a)``."""
        cache = []
        a = X
        for W, b, act in zip(self.weights, self.biases, self.activations):
            z = a @ W.T
            z += b
            a = act.forward(z)
            cache.append((z, a))
        return cache

    def gradients(self, X: np.ndarray, T: np.ndarray,
                  cache: list[tuple[np.ndarray, np.ndarray]] | None = None) -> list[np.ndarray]:
        """Gradients of the batch-mean cost, ``[dW0, db0, dW1, db1, ...]`` (fresh arrays)."""
        if cache is None:
            cache = self.forward(X)
        n_layers = len(self.weights)
        grads: list[np.ndarray] = [None] * (2 * n_layers)  # type: ignore[list-item]
        z, a = cache[-1]
        delta = self.loss.output_delta(z, a, T, self.activations[-1])
        delta = delta * (1.0 / X.shape[0])
        for l in range(n_layers - 1, -1, -1):
            a_prev = cache[l - 1][1] if l else X
            grads[2 * l] = delta.T @ a_prev
            grads[2 * l + 1] = delta.sum(axis=0)
            if l:
                z_prev, a_prev = cache[l - 1]
                delta = self.activations[l - 1].backward(z_prev, a_prev, delta @ self.weights[l])
        return grads

    def cost(self, X: np.ndarray, T: np.ndarray) -> float:
        """Batch-mean loss (without any L2 term)."""
        z, a = self.forward(X)[-1]
        return self.loss.value(z, a, T)
