"""Optimizers: plain SGD, momentum, RMSprop, Adam.

Each keeps its state per parameter array and updates the parameters in place
from gradients already averaged over the mini-batch. ``step`` may overwrite the
gradient arrays (they are scratch space owned by the trainer).

* ``sgd``:      p -= lr * g
* ``momentum``: v = mu * v - lr * g;  p += v              (classic heavy ball)
* ``rmsprop``:  s = rho * s + (1 - rho) * g^2;  p -= lr * g / (sqrt(s) + eps)
* ``adam``:     m, v as Kingma & Ba with bias correction; p -= lr * m_hat / (sqrt(v_hat) + eps)
"""

from __future__ import annotations

import numpy as np

from ..errors import BpHwError

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")


class Optimizer:
    def __init__(self, params: list[np.ndarray], lr: float):
        self.params = params
        self.lr = float(lr)

    def step(self, grads: list[np.ndarray]) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    def step(self, grads):
        lr = self.lr
        for p, g in zip(self.params, grads):
            g *= lr
            p -= g


class Momentum(Optimizer):
    def __init__(self, params, lr, momentum: float = 0.9):
        super().__init__(params, lr)
        self.momentum = float(momentum)
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads):
        lr, mu = self.lr, self.momentum
        for p, g, v in zip(self.params, grads, self.velocity):
            v *= mu
            g *= lr
            v -= g
            p += v


class RMSprop(Optimizer):
    def __init__(self, params, lr, rho: float = 0.9, eps: float = 1e-8):
        super().__init__(params, lr)
        self.rho, self.eps = float(rho), float(eps)
        self.square_avg = [np.zeros_like(p) for p in params]

    def step(self, grads):
        for p, g, s in zip(self.params, grads, self.square_avg):
            s *= self.rho
            s += (1.0 - self.rho) * g * g
            p -= self.lr * g / (np.sqrt(s) + self.eps)


class Adam(Optimizer):
    def __init__(self, params, lr, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(params, lr)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # Bias corrections folded into the step size and epsilon.
        c1 = 1.0 - b1 ** self.t
        c2 = 1.0 - b2 ** self.t
        step = self.lr * np.sqrt(c2) / c1
        eps = self.eps * np.sqrt(c2)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            p -= step * m / (np.sqrt(v) + eps)


def make_optimizer(name: str, params: list[np.ndarray], lr: float, *, momentum: float = 0.9,
                   rho: float = 0.9, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    if name == "sgd":
        return SGD(params, lr)
    if name == "momentum":
        return Momentum(params, lr, momentum)
    if name == "rmsprop":
        return RMSprop(params, lr, rho, eps)
    if name == "adam":
        return Adam(params, lr, beta1, beta2, eps)
    raise BpHwError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
