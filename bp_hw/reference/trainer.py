"""The float reference trainer: ``train(train_ds, test_ds, config) -> FloatModel``."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..data import Dataset, one_hot_targets
from ..errors import BpHwError
from ..modelfile import NORM_MODES, FloatModel, outputs_to_classes
from .config import TrainConfig
from .init import SHUFFLE_STREAM, init_weights
from .network import Network
from .optimizers import make_optimizer


#: ``std-floor``: no feature's std is taken below this fraction of the std of all values pooled.
STD_FLOOR_FRACTION = 0.5


def normalization_stats(X: np.ndarray, mode: str = "standard") -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` arrays (n_features,) learned on ``X`` for ``x' = (x - mean) / std``.

    * ``standard``: per-feature mean and (population) std; a constant feature gets std 1.
    * ``global``: mean 0 and, for every feature, the smallest power of two
      ``2^k`` *strictly* above the largest ``|x|`` (1 if ``X`` is all zero), so
      ``|x'| < 1``; integer pixels ``p < 2^k`` become ``p * 2^-k`` exactly, and a
      format with ``f >= k`` fraction bits holds ``p * 2^(f-k)`` without rounding.
    * ``std-floor``: per-feature mean and std, the std floored at
      ``STD_FLOOR_FRACTION`` times the std of all values pooled, so that
      near-constant features (border pixels) are not blown up.
    * ``none``: mean 0, std 1 (raw values).
    """
    if mode not in NORM_MODES:
        raise BpHwError(f"unknown --norm {mode!r}; choose one of {', '.join(NORM_MODES)}")
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[1]
    if mode == "none":
        return np.zeros(n), np.ones(n)
    if mode == "global":
        peak = float(np.max(np.abs(X))) if X.size else 0.0
        # frexp: peak = m * 2^e with 0.5 <= m < 1, so 2^e is the smallest power of two above peak.
        scale = math.ldexp(1.0, math.frexp(peak)[1]) if peak > 0.0 else 1.0
        return np.zeros(n), np.full(n, scale)
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    if mode == "std-floor":
        std = np.maximum(std, STD_FLOOR_FRACTION * float(X.std()))
    std = np.where(std > 0.0, std, 1.0)
    return mean, std


class Trainer:
    """One network, its optimizer and the gradient post-processing (L2, clipping).

    :meth:`fit_epoch` runs one pass over normalised inputs and targets in a
    seeded random order, in mini-batches of ``batch_size`` (0: the whole set).
    """

    def __init__(self, config: TrainConfig, weights: list[np.ndarray], biases: list[np.ndarray]):
        cfg = config
        activations = [cfg.activation] * (len(weights) - 1) + [cfg.output_activation or cfg.activation]
        self.config = cfg
        self.network = Network(weights, biases, activations, cfg.loss)
        self.optimizer = make_optimizer(cfg.optimizer, self.network.params, cfg.lr, momentum=cfg.momentum,
                                        rho=cfg.rho, beta1=cfg.beta1, beta2=cfg.beta2, eps=cfg.eps)
        self.rng = np.random.default_rng([cfg.seed, SHUFFLE_STREAM])

    def step(self, X: np.ndarray, T: np.ndarray) -> None:
        """One gradient step on the batch ``(X, T)``."""
        net, cfg = self.network, self.config
        grads = net.gradients(X, T)
        if cfg.l2:
            for l, W in enumerate(net.weights):
                grads[2 * l] += cfg.l2 * W
        if cfg.clip is not None:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
            if norm > cfg.clip:
                scale = cfg.clip / norm
                for g in grads:
                    g *= scale
        self.optimizer.step(grads)

    def fit_epoch(self, X: np.ndarray, T: np.ndarray) -> None:
        n = X.shape[0]
        bs = self.config.batch_size
        if bs <= 0 or bs >= n:
            self.step(X, T)
            return
        order = self.rng.permutation(n)
        Xs, Ts = X[order], T[order]
        step = self.step
        for i in range(0, n, bs):
            step(Xs[i:i + bs], Ts[i:i + bs])

    def evaluate(self, X: np.ndarray, T: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """``(loss, accuracy)`` on normalised inputs."""
        z, a = self.network.forward(X)[-1]
        loss = self.network.loss.value(z, a, T)
        acc = float(np.mean(outputs_to_classes(a, self.network.activations[-1].name) == y))
        return loss, acc


def train(train_ds: Dataset, test_ds: Dataset, config: TrainConfig,
          on_epoch: Callable[[int, dict], None] | None = None) -> FloatModel:
    """Train an MLP by backpropagation on ``train_ds``; report on ``test_ds`` after every epoch.

    Normalisation (``config.norm``, see :func:`normalization_stats`) is learned on ``train_ds`` only. ``on_epoch(epoch, metrics)``
    is called after each epoch (1-based) with that epoch's ``train_loss``,
    ``test_loss``, ``train_accuracy``, ``test_accuracy``. A :class:`BpHwError`
    is raised if the loss stops being finite (diverged training).
    """
    if test_ds.n_features != train_ds.n_features:
        raise BpHwError(f"test data has {test_ds.n_features} features, training data {train_ds.n_features}")
    n_classes = max(train_ds.n_classes, test_ds.n_classes)
    cfg = config.resolve(train_ds.n_features, n_classes)

    mean, std = normalization_stats(train_ds.X, cfg.norm)
    X_train = (train_ds.X - mean) / std
    X_test = (test_ds.X - mean) / std
    n_out = cfg.layers[-1]
    T_train = one_hot_targets(train_ds.y, n_out, cfg.output_activation)
    T_test = one_hot_targets(test_ds.y, n_out, cfg.output_activation)

    # xor (and --test-fraction 0) test on the training data: evaluate it once per epoch.
    test_is_train = X_test.shape == X_train.shape and np.array_equal(X_test, X_train) \
        and np.array_equal(test_ds.y, train_ds.y)

    weights, biases = init_weights(cfg.layers, cfg.init, cfg.seed)
    trainer = Trainer(cfg, weights, biases)
    history: dict[str, list[float]] = {"train_loss": [], "test_loss": [], "train_accuracy": [], "test_accuracy": []}
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for epoch in range(1, cfg.epochs + 1):
            trainer.fit_epoch(X_train, T_train)
            train_loss, train_acc = trainer.evaluate(X_train, T_train, train_ds.y)
            if test_is_train:
                test_loss, test_acc = train_loss, train_acc
            else:
                test_loss, test_acc = trainer.evaluate(X_test, T_test, test_ds.y)
            if not (math.isfinite(train_loss) and math.isfinite(test_loss)
                    and all(np.all(np.isfinite(p)) for p in trainer.network.params)):
                raise BpHwError(f"training diverged at epoch {epoch} (loss is {train_loss}); "
                                "lower --lr or set --clip")
            metrics = {"train_loss": train_loss, "test_loss": test_loss,
                       "train_accuracy": train_acc, "test_accuracy": test_acc}
            for k, v in metrics.items():
                history[k].append(v)
            if on_epoch is not None:
                on_epoch(epoch, metrics)

    return FloatModel(
        layers=cfg.layers,
        weights=trainer.network.weights,
        biases=trainer.network.biases,
        activations=[a.name for a in trainer.network.activations],
        loss=cfg.loss,
        norm_mean=mean,
        norm_std=std,
        n_classes=n_classes,
        config=cfg.to_dict(),
        history=history,
        norm_mode=cfg.norm,
    )
