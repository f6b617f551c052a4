"""The training configuration: one dataclass, round-tripped through JSON-compatible dicts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from ..data import is_image_data
from ..errors import BpHwError
from ..modelfile import NORM_MODES
from .activations import ACTIVATIONS, HIDDEN_ACTIVATIONS
from .init import INIT_SCHEMES, default_init
from .optimizers import OPTIMIZERS

LOSS_NAMES = ("mse", "cross_entropy")

#: Hidden activations whose mse output layer defaults to sigmoid rather than to themselves.
UNBOUNDED_HIDDEN = ("relu", "identity")


@dataclass
class TrainConfig:
    """Everything that determines a training run (with the data it names).

    ``layers``, ``output_activation`` and ``init`` may be left ``None``; then
    :meth:`resolve` fills them from the data and the other choices:
    ``layers = [n_in, 8, n_classes]``; ``output_activation`` = softmax for
    cross-entropy with several outputs, sigmoid for cross-entropy with one,
    sigmoid for mse after a relu or identity hidden layer, otherwise
    ``activation``; ``init`` = He for ReLU, Xavier otherwise.

    ``norm`` (input normalisation, one of :data:`~bp_hw.modelfile.NORM_MODES`)
    defaults to ``global`` for the built-in image data (digits, mnist) and to
    ``standard`` otherwise.

    ``batch_size`` 1 is stochastic gradient descent, 0 means the full training
    set per step. ``clip`` (if set) caps the global L2 norm of the gradient;
    ``l2`` adds ``l2 * W`` to the weight gradients (not the biases).
    """

    data: str = "iris"
    layers: list[int] | None = None
    activation: str = "sigmoid"
    output_activation: str | None = None
    loss: str = "mse"
    optimizer: str = "sgd"
    lr: float = 0.5
    momentum: float = 0.9
    batch_size: int = 1
    epochs: int = 100
    seed: int = 0
    init: str | None = None
    test_fraction: float = 0.3
    clip: float | None = None
    l2: float = 0.0
    rho: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    norm: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["layers"] is not None:
            d["layers"] = list(d["layers"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BpHwError(f"unknown training option(s): {', '.join(unknown)}")
        cfg = cls(**d)
        if cfg.layers is not None:
            cfg.layers = [int(n) for n in cfg.layers]
        return cfg

    def resolve(self, n_inputs: int, n_classes: int) -> "TrainConfig":
        """A validated copy with ``layers``, ``output_activation`` and ``init`` filled in."""
        layers = list(self.layers) if self.layers is not None else [n_inputs, 8, n_classes]
        out_act = self.output_activation
        if out_act is None:
            if self.loss == "cross_entropy":
                out_act = "softmax" if layers[-1] > 1 else "sigmoid"
            elif self.activation in UNBOUNDED_HIDDEN:
                # A relu output unit that goes negative for every sample gets no gradient under mse.
                out_act = "sigmoid"
            else:
                out_act = self.activation
        cfg = replace(self, layers=layers, output_activation=out_act,
                      init=self.init if self.init is not None else default_init(self.activation),
                      norm=self.norm if self.norm is not None else default_norm(self.data))
        cfg.validate(n_inputs, n_classes)
        return cfg

    def validate(self, n_inputs: int | None = None, n_classes: int | None = None) -> None:
        """:class:`BpHwError` naming the first bad option (and what to change)."""
        def positive(name, value, allow_zero=False):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
                    or (value == 0 and not allow_zero):
                raise BpHwError(f"--{name.replace('_', '-')} must be {'>= 0' if allow_zero else '> 0'}, got {value}")

        if self.activation not in HIDDEN_ACTIVATIONS:
            if self.activation == "softmax":
                raise BpHwError("softmax can only be the output activation: use --output-activation softmax "
                                "with --loss cross_entropy and a hidden --activation such as sigmoid")
            raise BpHwError(f"unknown --activation {self.activation!r}; choose one of {', '.join(HIDDEN_ACTIVATIONS)}")
        if self.output_activation is not None and self.output_activation not in ACTIVATIONS:
            raise BpHwError(f"unknown --output-activation {self.output_activation!r}; "
                            f"choose one of {', '.join(ACTIVATIONS)}")
        if self.loss not in LOSS_NAMES:
            raise BpHwError(f"unknown --loss {self.loss!r}; choose one of {', '.join(LOSS_NAMES)}")
        if self.output_activation == "softmax" and self.loss != "cross_entropy":
            raise BpHwError("a softmax output needs --loss cross_entropy; for --loss mse choose "
                            "--output-activation sigmoid (or tanh, relu, identity)")
        if self.loss == "cross_entropy" and self.output_activation not in (None, "softmax", "sigmoid"):
            raise BpHwError(f"--loss cross_entropy needs a probability output: use --output-activation softmax "
                            f"(or sigmoid), not {self.output_activation}")
        if self.norm is not None and self.norm not in NORM_MODES:
            raise BpHwError(f"unknown --norm {self.norm!r}; choose one of {', '.join(NORM_MODES)}")
        if self.optimizer not in OPTIMIZERS:
            raise BpHwError(f"unknown --optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.init is not None and self.init not in INIT_SCHEMES:
            raise BpHwError(f"unknown --init {self.init!r}; choose one of {', '.join(INIT_SCHEMES)}")
        positive("lr", self.lr)
        positive("l2", self.l2, allow_zero=True)
        if self.clip is not None:
            positive("clip", self.clip)
        if not (isinstance(self.momentum, (int, float)) and 0.0 <= self.momentum < 1.0):
            raise BpHwError(f"--momentum must be in [0, 1), got {self.momentum}")
        for name in ("rho", "beta1", "beta2"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v < 1.0):
                raise BpHwError(f"{name} must be in [0, 1), got {v}")
        positive("eps", self.eps)
        for name in ("epochs", "batch_size", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise BpHwError(f"--{name.replace('_', '-')} must be an integer, got {v!r}")
        if self.epochs < 1:
            raise BpHwError(f"--epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 0:
            raise BpHwError(f"--batch-size must be >= 1 (or 0 for the full batch), got {self.batch_size}")
        if self.seed < 0:
            raise BpHwError(f"--seed must be >= 0, got {self.seed}")
        if not (isinstance(self.test_fraction, (int, float)) and 0.0 <= self.test_fraction < 1.0):
            raise BpHwError(f"--test-fraction must be in [0, 1), got {self.test_fraction}")

        if self.layers is not None:
            layers = self.layers
            if len(layers) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in layers):
                raise BpHwError(f"--layers needs at least two positive sizes (inputs,...,outputs), got {layers}")
            if n_inputs is not None and layers[0] != n_inputs:
                raise BpHwError(f"--layers starts with {layers[0]} inputs but the data has {n_inputs} features")
            if n_classes is not None:
                ok = (n_classes,) if n_classes > 2 else (1, 2)
                if layers[-1] not in ok:
                    want = f"{n_classes}" if n_classes > 2 else "1 (binary output) or 2"
                    raise BpHwError(f"--layers ends with {layers[-1]} outputs but the data has {n_classes} "
                                    f"classes; use {want} outputs")
            if self.output_activation == "softmax" and layers[-1] == 1:
                raise BpHwError("a softmax output needs at least 2 outputs; with 1 output use "
                                "--output-activation sigmoid")


def default_norm(data: str) -> str:
    """``global`` (one scale for every pixel) for the built-in image data, ``standard`` otherwise."""
    return "global" if is_image_data(data) else "standard"
