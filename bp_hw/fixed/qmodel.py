"""The quantized model and its integer model — the one spec of the hardware's arithmetic.

Layer ``l`` maps integer activations ``a`` (format ``in_fmt``, ``f_a`` fraction
bits) to integer activations ``y`` (``out_fmt``) in four steps, all exact
integer arithmetic (numpy int64), vectorised over the batch:

1. **Accumulate** (no rounding, cannot overflow)::

       acc[i] = sum_j W[i, j] * a[j]  +  (b[i] << bias_shift)

   ``W`` in ``weight_fmt`` (``f_w``), ``b`` in ``bias_fmt`` (``f_b``), the
   products have ``f_p = f_a + f_w`` fraction bits and ``bias_shift = f_p - f_b``
   (must be >= 0). ``acc`` has ``acc_width = term_width + ceil(log2(fan_in + 1))``
   bits, ``term_width`` the wider of the product and the aligned bias.
2. **Rescale** — the one place precision is lost::

       z = overflow(round_shift(acc, f_p - f_z, rounding), z_fmt, overflow)

3. **Activate**: ``sigmoid``/``tanh``: ``y = LUT(z)`` (see ``lut.py``);
   ``relu``: ``y = max(z, 0)``; ``identity``: ``y = z`` (for these two
   ``z_fmt == out_fmt``). A float model's ``softmax`` output layer becomes
   ``identity``: the hardware returns the logits and argmax picks the class.
4. ``y`` is the next layer's ``a``; the last layer's ``y`` is the output.

:meth:`QModel.predict` returns the outputs and, on request, every intermediate
(``acc``, ``z``, LUT ``index``, ``out``) per layer, so that a hardware mismatch
can be pinned to a layer and a neuron.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BpHwError
from ..fileio import write_json
from .lut import LUT_FUNCTIONS, ActivationLUT
from .qformat import QFormat
from .rounding import overflow, overflow_mode, quantize_float, round_shift, rounding_mode

#: Where the input normalisation is applied (qmodel.json ``normalization``): ``host`` — the host sends
#: ``quantize_float((x - norm_mean) / norm_std, input_format)``; ``folded`` — the normalisation is in
#: layer 0's weights and biases and the host sends the raw integer inputs themselves (``norm_mean`` 0,
#: ``norm_std`` ``2^f_in``, so that :meth:`QModel.quantize_inputs` is ``round(x)``, saturated).
NORMALIZATION_PLACES = ("host", "folded")

QMODEL_FORMAT = "bp-hw-qmodel"
QMODEL_VERSION = 1
ACTIVATIONS = LUT_FUNCTIONS + ("relu", "identity")   # relu and identity are logic, not tables


def signed_width(fmt: QFormat) -> int:
    """Bits needed to hold every value of ``fmt`` as a signed number."""
    return fmt.width if fmt.signed else fmt.width + 1


def _check_integers(values, what: str) -> None:
    """A quantized model stores integers only: refuse NaN, inf, fractions and strings (which the int64
    conversion would reject obscurely or, for fractions, truncate silently)."""
    flat = np.asarray(values, dtype=object).ravel()
    bad = next((v for v in flat if isinstance(v, bool) or not isinstance(v, (int, np.integer))), None)
    if bad is not None:
        raise BpHwError(f"quantized model: {what} must be integers, found {bad!r}; a qmodel.json holds the "
                        f"integer weights `bp-hw quantize` wrote: re-run it")


def guard_bits(fan_in: int) -> int:
    """``ceil(log2(fan_in + 1))``: room for the sum of fan_in products plus the bias."""
    return max(1, math.ceil(math.log2(fan_in + 1)))


@dataclass
class QLayer:
    """One fully connected layer in integer arithmetic (see the module doc)."""

    weights: np.ndarray            # int64 (fan_out, fan_in)
    biases: np.ndarray             # int64 (fan_out,)
    activation: str                # sigmoid | tanh | relu | identity
    in_fmt: QFormat
    weight_fmt: QFormat
    bias_fmt: QFormat
    z_fmt: QFormat
    out_fmt: QFormat
    rounding: str = "nearest-even"
    overflow: str = "saturate"
    lut: ActivationLUT | None = None
    float_activation: str | None = None  # the float model's activation, when it differs (softmax)

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.int64)
        self.biases = np.asarray(self.biases, dtype=np.int64)
        self.rounding = rounding_mode(self.rounding)
        self.overflow = overflow_mode(self.overflow)
        if self.rounding == "stochastic":
            raise BpHwError("stochastic rounding is for training updates; inference rescaling needs a "
                            "deterministic mode (floor, toward-zero, nearest-up, nearest-even)")
        if self.weights.ndim != 2 or self.biases.shape != (self.weights.shape[0],):
            raise BpHwError(f"layer weights {self.weights.shape} and biases {self.biases.shape} do not match")
        if self.activation not in ACTIVATIONS:
            raise BpHwError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        for name, arr, fmt in (("weight", self.weights, self.weight_fmt), ("bias", self.biases, self.bias_fmt)):
            if arr.size and (arr.min() < fmt.min_int or arr.max() > fmt.max_int):
                raise BpHwError(f"{name} values outside {fmt}")
        if self.bias_shift < 0:
            raise BpHwError(f"bias format {self.bias_fmt} has more fraction bits than the products "
                            f"({self.product_frac}); use at most {self.product_frac}")
        if self.activation in LUT_FUNCTIONS:
            if self.lut is None:
                raise BpHwError(f"{self.activation} layer needs a lookup table")
            if self.lut.in_fmt != self.z_fmt or self.lut.out_fmt != self.out_fmt:
                raise BpHwError("lookup table formats do not match the layer's z and output formats")
        else:
            if self.z_fmt != self.out_fmt:
                raise BpHwError(f"{self.activation} layer needs z format == output format")
            if self.activation == "relu" and not self.out_fmt.signed:
                pass  # max(z, 0) of an unsigned z is z: allowed

    # -- derived widths and shifts ---------------------------------------------
    @property
    def fan_in(self) -> int:
        return self.weights.shape[1]

    @property
    def fan_out(self) -> int:
        return self.weights.shape[0]

    @property
    def product_frac(self) -> int:
        return self.in_fmt.frac_bits + self.weight_fmt.frac_bits

    @property
    def product_width(self) -> int:
        return signed_width(self.in_fmt) + signed_width(self.weight_fmt)

    @property
    def bias_shift(self) -> int:
        return self.product_frac - self.bias_fmt.frac_bits

    @property
    def acc_width(self) -> int:
        term = max(self.product_width, signed_width(self.bias_fmt) + self.bias_shift)
        return term + guard_bits(self.fan_in)

    @property
    def rescale_shift(self) -> int:
        """Bits dropped by the rescale (negative: shifted left)."""
        return self.product_frac - self.z_fmt.frac_bits

    @property
    def macs(self) -> int:
        return self.fan_in * self.fan_out

    # -- the arithmetic -----------------------------------------------------------
    def accumulate(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.int64)
        return a @ self.weights.T + (self.biases << self.bias_shift)[None, :]

    def rescale(self, acc: np.ndarray) -> tuple[np.ndarray, int]:
        return overflow(round_shift(acc, self.rescale_shift, self.rounding), self.z_fmt, self.overflow)

    def activate(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self.lut is not None:
            return self.lut.lookup(z)
        if self.activation == "relu":
            return np.maximum(z, 0), None
        return z.copy(), None

    def forward(self, a: np.ndarray) -> dict:
        """One layer on a batch of integer inputs: a dict with acc, z, index, out, saturations."""
        acc = self.accumulate(a)
        lim = 1 << (self.acc_width - 1)
        if acc.size and (acc.min() < -lim or acc.max() >= lim):  # the width rule is broken: a bug, not user input
            raise AssertionError(f"accumulator exceeds its {self.acc_width} bits")
        z, sat = self.rescale(acc)
        out, idx = self.activate(z)
        return {"acc": acc, "z": z, "index": idx, "out": out, "saturations": sat}

    # -- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {
            "fan_in": self.fan_in, "fan_out": self.fan_out, "activation": self.activation,
            "in_format": self.in_fmt.name, "weight_format": self.weight_fmt.name,
            "bias_format": self.bias_fmt.name, "z_format": self.z_fmt.name, "out_format": self.out_fmt.name,
            "rounding": self.rounding, "overflow": self.overflow,
            "product_frac": self.product_frac, "bias_shift": self.bias_shift,
            "acc_width": self.acc_width, "rescale_shift": self.rescale_shift,
            "weights": self.weights.tolist(), "biases": self.biases.tolist(),
            "lut": self.lut.to_dict() if self.lut is not None else None,
        }
        if self.float_activation:
            d["float_activation"] = self.float_activation
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "QLayer":
        layer = cls(
            weights=np.array(d["weights"], dtype=np.int64).reshape(d["fan_out"], d["fan_in"]),
            biases=np.array(d["biases"], dtype=np.int64), activation=d["activation"],
            in_fmt=QFormat.parse(d["in_format"]), weight_fmt=QFormat.parse(d["weight_format"]),
            bias_fmt=QFormat.parse(d["bias_format"]), z_fmt=QFormat.parse(d["z_format"]),
            out_fmt=QFormat.parse(d["out_format"]), rounding=d["rounding"], overflow=d["overflow"],
            lut=ActivationLUT.from_dict(d["lut"]) if d.get("lut") else None,
            float_activation=d.get("float_activation"),
        )
        for key in ("acc_width", "bias_shift", "rescale_shift"):
            if key in d and d[key] != getattr(layer, key):
                raise BpHwError(f"quantized model is inconsistent: stored {key} {d[key]} != derived "
                                f"{getattr(layer, key)}")
        return layer


@dataclass
class QModel:
    """A quantized MLP: input format and normalisation, then the layers.

    ``normalization`` (one of :data:`NORMALIZATION_PLACES`) says where the
    input normalisation happens; ``norm_mode`` how the float model learned it
    (metadata, e.g. ``standard`` or ``global``). Files without the fields read
    as ``host`` and ``standard``.
    """

    layers: list[QLayer]
    input_fmt: QFormat
    norm_mean: np.ndarray
    norm_std: np.ndarray
    n_classes: int
    input_rounding: str = "nearest-even"
    source: dict = field(default_factory=dict)
    norm_mode: str = "standard"
    normalization: str = "host"

    def __post_init__(self):
        self.norm_mean = np.asarray(self.norm_mean, dtype=np.float64)
        self.norm_std = np.asarray(self.norm_std, dtype=np.float64)
        self.norm_mode = str(self.norm_mode)
        if self.normalization not in NORMALIZATION_PLACES:
            raise BpHwError(f"quantized model: normalization {self.normalization!r} is not one of "
                            f"{', '.join(NORMALIZATION_PLACES)}")
        if not self.layers:
            raise BpHwError("a quantized model needs at least one layer")
        if self.layers[0].in_fmt != self.input_fmt:
            raise BpHwError("first layer's input format differs from the model's input format")
        for name, arr in (("norm_mean", self.norm_mean), ("norm_std", self.norm_std)):
            if arr.shape != (self.layers[0].fan_in,):
                raise BpHwError(f"quantized model: {name} has shape {arr.shape}, "
                                f"expected ({self.layers[0].fan_in},)")
        for l, (prev, nxt) in enumerate(zip(self.layers, self.layers[1:])):
            if prev.fan_out != nxt.fan_in:
                raise BpHwError(f"layer {l} has {prev.fan_out} outputs but layer {l + 1} takes {nxt.fan_in}")
            if prev.out_fmt != nxt.in_fmt:
                raise BpHwError(f"layer {l} output format {prev.out_fmt} != layer {l + 1} input format {nxt.in_fmt}")

    # -- shape -------------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].fan_in] + [layer.fan_out for layer in self.layers]

    @property
    def output_fmt(self) -> QFormat:
        return self.layers[-1].out_fmt

    # -- inputs ------------------------------------------------------------------
    def quantize_inputs(self, X_raw) -> tuple[np.ndarray, int]:
        """Normalise raw features as learned in training, then quantize to ``input_fmt``.

        ``quantize_float((x - norm_mean) / norm_std, input_fmt, input_rounding)``, saturating;
        returns ``(ints, saturations)``. For a ``folded`` model this is the raw ``x`` rounded.
        """
        X = np.asarray(X_raw, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise BpHwError(f"inputs have shape {X.shape}; the model takes {self.sizes[0]} features")
        return quantize_float((X - self.norm_mean) / self.norm_std, self.input_fmt, self.input_rounding)

    # -- the integer model ---------------------------------------------------------
    def predict(self, X_int, trace: bool = False):
        """Integer outputs ``(n, n_out)`` for integer inputs ``(n, n_in)``.

        With ``trace=True`` returns ``(outputs, traces)``, ``traces[l]`` the dict
        of :meth:`QLayer.forward` for layer ``l``.
        """
        a = np.asarray(X_int, dtype=np.int64)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != self.sizes[0]:
            raise BpHwError(f"integer inputs have shape {a.shape}; the model takes {self.sizes[0]} values")
        if a.size and (a.min() < self.input_fmt.min_int or a.max() > self.input_fmt.max_int):
            raise BpHwError(f"integer inputs outside the input format {self.input_fmt}")
        traces = []
        for layer in self.layers:
            t = layer.forward(a)
            traces.append(t)
            a = t["out"]
        return (a, traces) if trace else a

    def classify(self, outputs: np.ndarray) -> np.ndarray:
        """Class labels from integer outputs: argmax, or a threshold for a single output."""
        outputs = np.asarray(outputs, dtype=np.int64)
        if outputs.shape[1] == 1:
            last = self.layers[-1]
            threshold = (1 << (last.out_fmt.frac_bits - 1)) if last.activation == "sigmoid" else 0
            return (outputs[:, 0] > threshold).astype(np.int64)
        return np.argmax(outputs, axis=1)

    def predict_classes(self, X_raw) -> np.ndarray:
        return self.classify(self.predict(self.quantize_inputs(X_raw)[0]))

    # -- files -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": QMODEL_FORMAT, "version": QMODEL_VERSION,
            "sizes": self.sizes, "n_classes": self.n_classes,
            "input_format": self.input_fmt.name, "input_rounding": self.input_rounding,
            "norm_mean": self.norm_mean.tolist(), "norm_std": self.norm_std.tolist(),
            "norm_mode": self.norm_mode, "normalization": self.normalization,
            "source": self.source,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "QModel":
        if not isinstance(d, dict) or d.get("format") != QMODEL_FORMAT:
            raise BpHwError("not a bp-hw quantized model (missing format tag); make one with `bp-hw quantize`")
        if d.get("version") != QMODEL_VERSION:
            raise BpHwError(f"quantized model version {d.get('version')} is not supported "
                            f"(this bp-hw reads version {QMODEL_VERSION}); re-run `bp-hw quantize`")
        try:
            for k, ld in enumerate(d["layers"]):
                for key in ("weights", "biases"):
                    _check_integers(ld[key], f"layer {k} {key}")
            return cls(layers=[QLayer.from_dict(ld) for ld in d["layers"]],
                       input_fmt=QFormat.parse(d["input_format"]), norm_mean=d["norm_mean"],
                       norm_std=d["norm_std"], n_classes=int(d["n_classes"]),
                       input_rounding=d.get("input_rounding", "nearest-even"), source=d.get("source", {}),
                       norm_mode=d.get("norm_mode", "standard"), normalization=d.get("normalization", "host"))
        except (KeyError, TypeError, ValueError) as exc:
            raise BpHwError(f"quantized model is malformed ({exc!r}); re-run `bp-hw quantize`") from None

    def save(self, path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> "QModel":
        path = Path(path)
        if not path.is_file():
            raise BpHwError(f"quantized model {path} does not exist")
        try:
            d = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BpHwError(f"{path} is not a quantized model (not JSON: {exc.msg if hasattr(exc, 'msg') else exc})") from None
        return cls.from_dict(d)
