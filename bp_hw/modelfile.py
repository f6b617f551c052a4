"""The float model and its file format.

A trained network is a :class:`FloatModel`: layer sizes, weights
``W[l]`` of shape ``(layers[l+1], layers[l])`` and biases, one activation per
layer, the input normalisation learned on the training split, the training
config and the per-epoch history.

File format (``FORMAT_VERSION`` 1): an ``.npz`` archive holding

* ``W0, b0, W1, b1, ...`` float64 weights and biases,
* ``norm_mean``, ``norm_std`` float64 (n_in,),
* ``metadata``: a 0-d unicode array with one JSON object
  (``format``, ``format_version``, ``layers``, ``activations``, ``loss``,
  ``n_classes``, ``norm_mode``, ``config``, ``history``).

``norm_mode`` (one of :data:`NORM_MODES`) says how ``norm_mean`` and
``norm_std`` were learned; it is metadata only: every consumer normalises
with the two arrays, ``(x - norm_mean) / norm_std``. Files written before the
field existed read as ``standard``.

No pickle anywhere: files are read with ``allow_pickle=False``. Files are
written under a temporary name and renamed into place.

The float forward activation functions live here because they define what an
activation name in a model file means; the reference trainer adds their
derivatives (:mod:`bp_hw.reference.activations`).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import BpHwError
from .fileio import atomic_path

FORMAT_NAME = "bp-hw-float-model"
FORMAT_VERSION = 1

# exp(700) is finite; clamping there keeps exp() from overflowing (and warning)
# while changing sigmoid only below 1e-304.
_EXP_LIMIT = 700.0


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + e^-z)."""
    out = np.negative(z)
    np.minimum(out, _EXP_LIMIT, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


def tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z)


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def identity(z: np.ndarray) -> np.ndarray:
    return z


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum for stability."""
    e = z - z.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e


#: Activation name -> float forward function.
ACTIVATION_FUNCTIONS = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "identity": identity,
    "softmax": softmax,
}
#: Activations allowed on hidden layers (softmax only on the output).
ELEMENTWISE_ACTIVATIONS = tuple(name for name in ACTIVATION_FUNCTIONS if name != "softmax")
LOSSES = ("mse", "cross_entropy")
#: How the input normalisation was learned (the reference trainer computes them; see docs/arithmetic.md):
#: ``standard`` per-feature mean and std; ``global`` no offset and one power-of-two scale for all features;
#: ``std-floor`` per-feature mean and std with the std floored; ``none`` mean 0, std 1.
NORM_MODES = ("standard", "global", "std-floor", "none")


@dataclass
class FloatModel:
    """A trained float MLP with its input normalisation (see the module docstring)."""

    layers: list[int]
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activations: list[str]
    loss: str
    norm_mean: np.ndarray
    norm_std: np.ndarray
    n_classes: int
    config: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    norm_mode: str = "standard"

    def __post_init__(self):
        self.layers = [int(n) for n in self.layers]
        self.weights = [np.asarray(w, dtype=np.float64) for w in self.weights]
        self.biases = [np.asarray(b, dtype=np.float64) for b in self.biases]
        self.activations = [str(a) for a in self.activations]
        self.norm_mean = np.asarray(self.norm_mean, dtype=np.float64)
        self.norm_std = np.asarray(self.norm_std, dtype=np.float64)
        self.n_classes = int(self.n_classes)
        self.validate()

    @property
    def n_inputs(self) -> int:
        return self.layers[0]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1]

    def validate(self) -> None:
        """Check shapes, names and finiteness; :class:`BpHwError` naming the first problem."""
        n_layers = len(self.layers) - 1
        if n_layers < 1 or any(n < 1 for n in self.layers):
            raise BpHwError(f"model: layer sizes must be >= 1 and at least two, got {self.layers}")
        for what, seq in (("weights", self.weights), ("biases", self.biases), ("activations", self.activations)):
            if len(seq) != n_layers:
                raise BpHwError(f"model: {n_layers} layers but {len(seq)} {what}")
        for l in range(n_layers):
            want = (self.layers[l + 1], self.layers[l])
            if self.weights[l].shape != want:
                raise BpHwError(f"model: weights of layer {l} have shape {self.weights[l].shape}, expected {want}")
            if self.biases[l].shape != (self.layers[l + 1],):
                raise BpHwError(f"model: biases of layer {l} have shape {self.biases[l].shape}, "
                                f"expected ({self.layers[l + 1]},)")
            if not (np.all(np.isfinite(self.weights[l])) and np.all(np.isfinite(self.biases[l]))):
                raise BpHwError(f"model: layer {l} has NaN or infinite weights; the training diverged or the file "
                                f"is damaged: train again (a lower --lr, --clip) or export the model again")
        for l, name in enumerate(self.activations):
            if name not in ACTIVATION_FUNCTIONS:
                raise BpHwError(f"model: unknown activation {name!r} in layer {l}")
            if name == "softmax" and l != n_layers - 1:
                raise BpHwError(f"model: softmax is only allowed on the output layer (found on layer {l})")
        if self.loss not in LOSSES:
            raise BpHwError(f"model: unknown loss {self.loss!r}")
        for what, arr in (("norm_mean", self.norm_mean), ("norm_std", self.norm_std)):
            if arr.shape != (self.layers[0],):
                raise BpHwError(f"model: {what} has shape {arr.shape}, expected ({self.layers[0]},)")
            if not np.all(np.isfinite(arr)):
                raise BpHwError(f"model: {what} contains NaN or inf")
        if np.any(self.norm_std <= 0):
            raise BpHwError("model: norm_std must be positive")
        if self.norm_mode not in NORM_MODES:
            raise BpHwError(f"model: unknown normalisation {self.norm_mode!r}; one of {', '.join(NORM_MODES)}")
        if self.n_classes < 2:
            raise BpHwError(f"model: n_classes must be >= 2, got {self.n_classes}")
        if self.n_outputs != self.n_classes and not (self.n_outputs == 1 and self.n_classes == 2):
            raise BpHwError(f"model: {self.n_outputs} outputs cannot encode {self.n_classes} classes")

    def normalize(self, X_raw) -> np.ndarray:
        """``(X_raw - norm_mean) / norm_std`` as float64 (n, n_in)."""
        X = np.asarray(X_raw, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise BpHwError(f"input has shape {X.shape}, the model expects (samples, {self.n_inputs})")
        return (X - self.norm_mean) / self.norm_std

    def forward(self, X_norm) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per layer ``(z, a)``: pre-activation ``z = a_prev @ W.T + b`` and activation ``a = f(z)``."""
        a = np.asarray(X_norm, dtype=np.float64)
        out = []
        for W, b, name in zip(self.weights, self.biases, self.activations):
            z = a @ W.T
            z += b
            a = ACTIVATION_FUNCTIONS[name](z)
            out.append((z, a))
        return out

    def predict_proba(self, X_raw) -> np.ndarray:
        """Outputs of the last layer for raw inputs, (n, n_out)."""
        return self.forward(self.normalize(X_raw))[-1][1]

    def predict_classes(self, X_raw) -> np.ndarray:
        """Class labels: with one output, threshold 0.5 (sigmoid) or 0 (other activations); else argmax."""
        return outputs_to_classes(self.predict_proba(X_raw), self.activations[-1])

    def accuracy(self, X_raw, y) -> float:
        return float(np.mean(self.predict_classes(X_raw) == np.asarray(y)))


def outputs_to_classes(outputs: np.ndarray, output_activation: str) -> np.ndarray:
    """Decode network outputs (n, n_out) into int64 class labels."""
    if outputs.shape[1] == 1:
        threshold = 0.5 if output_activation == "sigmoid" else 0.0
        return (outputs[:, 0] > threshold).astype(np.int64)
    return np.argmax(outputs, axis=1).astype(np.int64)


def save_model(path, model: FloatModel) -> None:
    """Write ``model`` to ``path`` (.npz + JSON metadata), atomically."""
    model.validate()
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "layers": model.layers,
        "activations": model.activations,
        "loss": model.loss,
        "n_classes": model.n_classes,
        "norm_mode": model.norm_mode,
        "config": model.config,
        "history": model.history,
    }
    try:
        meta_json = json.dumps(meta, allow_nan=False, default=_json_default)
    except ValueError as exc:
        raise BpHwError(f"model metadata is not valid JSON: {exc}") from None
    arrays = {"metadata": np.array(meta_json), "norm_mean": model.norm_mean, "norm_std": model.norm_std}
    for l, (W, b) in enumerate(zip(model.weights, model.biases)):
        arrays[f"W{l}"] = W
        arrays[f"b{l}"] = b
    try:
        with atomic_path(path) as tmp:
            # A file object keeps np.savez from appending ".npz" to the temporary name.
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    except OSError as exc:
        raise BpHwError(f"cannot write model file {path}: {exc.strerror or exc}") from None


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def load_model(path) -> FloatModel:
    """Read a model written by :func:`save_model`; :class:`BpHwError` if it is missing or not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise BpHwError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise BpHwError(f"{path}: not a bp-hw model file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        raise BpHwError(f"{path}: not a bp-hw model file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise BpHwError(f"{path}: not a bp-hw model file (not a readable .npz: {exc})") from None
    if "metadata" not in arrays:
        raise BpHwError(f"{path}: not a bp-hw model file (no metadata)")
    try:
        meta = json.loads(str(arrays["metadata"][()]))
    except (ValueError, TypeError, IndexError) as exc:
        raise BpHwError(f"{path}: model metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise BpHwError(f"{path}: not a bp-hw float model file")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise BpHwError(f"{path}: model format version {version} is not supported "
                        f"(this bp-hw reads version {FORMAT_VERSION}); retrain the model")
    try:
        layers = [int(n) for n in meta["layers"]]
        n_layers = len(layers) - 1
        missing = [k for l in range(n_layers) for k in (f"W{l}", f"b{l}")
                   if k not in arrays] + [k for k in ("norm_mean", "norm_std") if k not in arrays]
        if missing:
            raise BpHwError(f"{path}: model file is missing arrays {', '.join(missing)}")
        for k, arr in arrays.items():
            if k != "metadata" and arr.dtype.kind != "f":
                raise BpHwError(f"{path}: array {k} has dtype {arr.dtype}, expected float")
        return FloatModel(
            layers=layers,
            weights=[arrays[f"W{l}"] for l in range(n_layers)],
            biases=[arrays[f"b{l}"] for l in range(n_layers)],
            activations=list(meta["activations"]),
            loss=str(meta["loss"]),
            norm_mean=arrays["norm_mean"],
            norm_std=arrays["norm_std"],
            n_classes=int(meta["n_classes"]),
            config=dict(meta.get("config") or {}),
            history=dict(meta.get("history") or {}),
            norm_mode=str(meta.get("norm_mode", "standard")),
        )
    except BpHwError as exc:
        raise BpHwError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise BpHwError(f"{path}: malformed model metadata ({type(exc).__name__}: {exc})") from None
