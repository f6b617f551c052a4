"""Float model -> quantized model: format selection and weight quantization.

Formats come from a :class:`QuantConfig`: one default format for everything
(``--format Q4.12``), optional separate weight / bias / activation / input
formats, per-layer overrides, or ``auto``: integer bits chosen from the
profiled range on calibration data (like hls4ml's ``auto``), the rest of a
bit budget going to the fraction.

Derived formats (documented in docs/arithmetic.md):

* ``z`` (pre-activation) of a sigmoid/tanh layer: ``Q(log2(R) + 1).f_act`` —
  enough integer bits for the LUT's input range ``[-R, R)``, the activation's
  fraction bits. Saturating ``z`` there is exactly the LUT's index clamp.
* ``z`` of a ReLU/identity layer is its output format.
* Biases may not have more fraction bits than the layer's products; a bias
  format finer than that is coarsened to the product's fraction bits.
* An ``auto`` input format is unsigned (``UQ``) when every calibration input is
  >= 0 (pixels after ``global`` normalisation), else signed.

Normalisation is applied by the host (``QModel.normalization == "host"``) or,
with ``fold_norm``, folded into layer 0 (``"folded"``): see
:func:`fold_normalization`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import BpHwError
from .lut import LUT_FUNCTIONS, ActivationLUT
from .qformat import QFormat
from .qmodel import QLayer, QModel
from .rounding import overflow_mode, quantize_float, rounding_mode

AUTO = "auto"


@dataclass
class QuantConfig:
    """How to quantize a float model. Round-trips through :meth:`to_dict` / :meth:`from_dict`."""

    format: str = "Q4.12"                 # default for weights, biases and activations
    weight_format: str | None = None      # a format or "auto"
    bias_format: str | None = None
    act_format: str | None = None
    input_format: str | None = None       # defaults to act_format
    bit_budget: int | None = None         # width used by "auto" (default: width of `format`)
    rounding: str = "nearest-even"        # rescale rounding (and table/weight rounding)
    overflow: str = "saturate"
    lut_bits: int = 10
    lut_range: float = 8.0
    lut_symmetric: bool = False
    lut_interpolate: bool = False
    layer_overrides: dict = field(default_factory=dict)  # {layer: {"weight"|"bias"|"act"|"z": fmt}}
    fold_norm: bool = False               # normalisation in layer 0's weights: the hardware takes raw integers

    def __post_init__(self):
        self.rounding = rounding_mode(self.rounding)
        self.overflow = overflow_mode(self.overflow)
        for name in ("format", "weight_format", "bias_format", "act_format", "input_format"):
            value = getattr(self, name)
            if value is not None and value != AUTO:
                QFormat.parse(value)  # validates
        if self.format == AUTO and self.bit_budget is None:
            raise BpHwError("format 'auto' needs a bit budget (e.g. --bits 16)")
        if self.bit_budget is not None and not (2 <= self.bit_budget <= 32):
            raise BpHwError(f"bit budget must be 2..32, got {self.bit_budget}")
        self.layer_overrides = {int(k): dict(v) for k, v in self.layer_overrides.items()}
        # Checked here, before any work, with the same rules the layers and tables apply later.
        if self.rounding == "stochastic":
            raise BpHwError("stochastic rounding is for training updates; quantized inference needs a "
                            "deterministic mode (floor, toward-zero, nearest-up, nearest-even)")
        if not (1 <= int(self.lut_bits) <= 16):
            raise BpHwError(f"LUT address bits must be 1..16, got {self.lut_bits}")
        if not (self.lut_range > 0 and math.isfinite(self.lut_range)
                and math.log2(self.lut_range) == int(math.log2(self.lut_range))):
            raise BpHwError(f"LUT input range must be a power of two (e.g. 4, 8), got {self.lut_range:g}")

    @property
    def budget(self) -> int:
        return self.bit_budget if self.bit_budget is not None else QFormat.parse(self.format).width

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layer_overrides"] = {str(k): v for k, v in self.layer_overrides.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "QuantConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise BpHwError(f"unknown quantization settings: {', '.join(sorted(unknown))}")
        return cls(**d)


def int_bits_for(max_abs: float, signed: bool = True) -> int:
    """Smallest integer-bit count whose format holds ``max_abs`` (sign bit included).

    At least 1 for signed formats, at least 0 for unsigned ones (``UQ0.8`` holds [0, 1)).
    """
    least = 1 if signed else 0
    if max_abs <= 0 or not math.isfinite(max_abs):
        return least
    bits = math.floor(math.log2(max_abs)) + 1  # 2^(bits-1) <= max_abs < 2^bits
    return max(least, bits + (1 if signed else 0))


def auto_format(max_abs: float, budget: int, signed: bool = True) -> QFormat:
    """The format of ``budget`` bits with just enough integer bits for ``max_abs``."""
    i = min(int_bits_for(max_abs, signed), budget)
    return QFormat(i, budget - i, signed)


def raw_input_format(spec: str | None, X_raw: np.ndarray) -> QFormat:
    """The input format of a folded model, checked against the raw calibration inputs ``X_raw``.

    The hardware receives the raw values as integers, so they must be
    integers within the format's range. ``auto`` (or no spec) picks the
    narrowest one: ``UQ0.w`` for inputs >= 0 (``UQ0.8`` for 8-bit pixels),
    else ``Q1.(w-1)``.
    """
    X = np.asarray(X_raw, dtype=np.float64)
    bad = np.flatnonzero(X.ravel() != np.round(X.ravel()))
    if bad.size:
        v = X.ravel()[bad[0]]
        raise BpHwError(f"--fold-norm sends the raw inputs to the hardware as integers, but the data has "
                        f"non-integer values (e.g. {v:g}); quantize without --fold-norm (the host normalises)")
    lo, hi = (int(X.min()), int(X.max())) if X.size else (0, 0)
    if spec is None or spec == AUTO:
        if lo >= 0:
            width = max(2, hi.bit_length())
            return QFormat(0, width, signed=False)
        width = max(2, max(hi, -lo - 1).bit_length() + 1)
        return QFormat(1, width - 1)
    fmt = QFormat.parse(spec)
    if lo < fmt.min_int or hi > fmt.max_int:
        want = raw_input_format(AUTO, X)
        raise BpHwError(f"--fold-norm: the raw inputs span {lo}..{hi} but the input format {fmt} holds the "
                        f"integers {fmt.min_int}..{fmt.max_int}; use --input-format {want} (or auto)")
    return fmt


def fold_normalization(model, input_fmt: QFormat):
    """The float model with its normalisation folded into layer 0, for raw integer inputs in ``input_fmt``.

    The hardware reads a raw integer ``x`` as the real ``x * 2^-f`` (``f`` the
    input format's fraction bits), so with ``s = 2^f``::

        W0'[i, j] = W0[i, j] * s / std[j]        b0' = b0 - W0 @ (mean / std)

    gives ``W0' (x / s) + b0' = W0 (x - mean) / std + b0``; the returned model's
    ``norm_mean`` is 0 and ``norm_std`` is ``s``, so its ``normalize(x)`` is ``x / s``
    and the integer input is ``x`` itself. Works on any dataclass float model
    (``weights``, ``biases``, ``norm_mean``, ``norm_std``).
    """
    scale = 2.0 ** input_fmt.frac_bits
    mean, std = np.asarray(model.norm_mean, dtype=np.float64), np.asarray(model.norm_std, dtype=np.float64)
    W0, b0 = model.weights[0], model.biases[0]
    return dataclasses.replace(
        model, weights=[W0 * (scale / std)[None, :], *model.weights[1:]],
        biases=[b0 - W0 @ (mean / std), *model.biases[1:]],
        norm_mean=np.zeros_like(mean), norm_std=np.full_like(std, scale))


def profile(model, X_norm: np.ndarray) -> list[dict]:
    """Per-layer max |value| of weights, biases, pre-activations and activations on data."""
    stats = []
    for l, (z, a) in enumerate(model.forward(X_norm)):
        stats.append({
            "weight": float(np.max(np.abs(model.weights[l]))),
            "bias": float(np.max(np.abs(model.biases[l]))) if model.biases[l].size else 0.0,
            "z": float(np.max(np.abs(z))) if z.size else 0.0,
            "act": float(np.max(np.abs(a))) if a.size else 0.0,
        })
    return stats


def _pick(spec: str | None, fallback: str, max_abs: float | None, budget: int, what: str) -> QFormat:
    spec = spec if spec is not None else fallback
    if spec == AUTO:
        if max_abs is None:
            raise BpHwError(f"automatic {what} format needs calibration data (--data)")
        return auto_format(max_abs, budget)
    return QFormat.parse(spec)


def quantize_model(model, config: QuantConfig, calib_X_raw: np.ndarray | None = None,
                   source: dict | None = None) -> tuple[QModel, dict]:
    """Quantize a :class:`~bp_hw.modelfile.FloatModel`.

    Returns the :class:`QModel` and a dict of quantization saturation counts
    (``weights``, ``biases``) for the report. With ``config.fold_norm`` the
    model quantized is :func:`fold_normalization` of ``model`` (compare the
    result with that, not with ``model``), and ``calib_X_raw`` is required.
    """
    for l, (w, b) in enumerate(zip(model.weights, model.biases)):
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise BpHwError(f"layer {l} of the float model has NaN or infinite weights")
    budget = config.budget
    act_default = config.act_format or config.format
    if config.fold_norm:
        if calib_X_raw is None:
            raise BpHwError("--fold-norm needs data (--data) to check that the raw inputs are integers "
                            "that fit the input format")
        # Without an input format of its own, a folded model takes the raw integers at their own width.
        input_fmt = raw_input_format(config.input_format, calib_X_raw)
        model = fold_normalization(model, input_fmt)
    stats = None
    X_norm = None
    if calib_X_raw is not None:
        X_norm = model.normalize(np.asarray(calib_X_raw, dtype=np.float64))
        stats = profile(model, X_norm)
    if not config.fold_norm:
        in_spec = config.input_format or act_default
        if in_spec == AUTO and X_norm is not None and X_norm.size and X_norm.min() >= 0.0:
            input_fmt = auto_format(float(X_norm.max()), budget, signed=False)
        else:
            in_max = float(np.max(np.abs(X_norm))) if X_norm is not None else None
            input_fmt = _pick(in_spec, in_spec, in_max, budget, "input")

    layers = []
    sats = {"weights": 0, "biases": 0}
    prev_fmt = input_fmt
    n_layers = len(model.weights)
    for l in range(n_layers):
        over = config.layer_overrides.get(l, {})
        st = stats[l] if stats else {}
        w_fmt = _pick(over.get("weight", config.weight_format), config.format,
                      float(np.max(np.abs(model.weights[l]))), budget, "weight")
        b_max = float(np.max(np.abs(model.biases[l]))) if model.biases[l].size else 0.0
        b_fmt = _pick(over.get("bias", config.bias_format), config.format, b_max, budget, "bias")
        act = model.activations[l]
        float_act = None
        if act == "softmax":
            act, float_act = "identity", "softmax"
        out_fmt = _pick(over.get("act", act_default), act_default, st.get("act" if act in LUT_FUNCTIONS
                        else "z"), budget, "activation")
        product_frac = prev_fmt.frac_bits + w_fmt.frac_bits
        if b_fmt.frac_bits > product_frac:  # cannot align finer biases: drop their extra fraction bits
            b_fmt = QFormat(b_fmt.int_bits, product_frac, b_fmt.signed) if b_fmt.int_bits + product_frac >= 2 \
                else QFormat(2 - product_frac, product_frac)
        lut = None
        if act in LUT_FUNCTIONS:
            z_int = int(round(math.log2(config.lut_range))) + 1 if config.lut_range > 0 else 1
            z_fmt = QFormat.parse(over["z"]) if "z" in over else QFormat(z_int, out_fmt.frac_bits)
            lut = ActivationLUT(act, config.lut_bits, config.lut_range, z_fmt, out_fmt,
                                symmetric=config.lut_symmetric, interpolate=config.lut_interpolate,
                                rounding=config.rounding)
        else:
            z_fmt = out_fmt
        w_int, sw = quantize_float(model.weights[l], w_fmt, config.rounding, config.overflow)
        b_int, sb = quantize_float(model.biases[l], b_fmt, config.rounding, config.overflow)
        sats["weights"] += sw
        sats["biases"] += sb
        layers.append(QLayer(weights=w_int, biases=b_int, activation=act, in_fmt=prev_fmt, weight_fmt=w_fmt,
                             bias_fmt=b_fmt, z_fmt=z_fmt, out_fmt=out_fmt, rounding=config.rounding,
                             overflow=config.overflow, lut=lut, float_activation=float_act))
        prev_fmt = out_fmt
    qmodel = QModel(layers=layers, input_fmt=input_fmt, norm_mean=model.norm_mean, norm_std=model.norm_std,
                    n_classes=model.n_classes, input_rounding=config.rounding,
                    source=dict(source or {}, quant_config=config.to_dict()),
                    norm_mode=model.norm_mode, normalization="folded" if config.fold_norm else "host")
    return qmodel, sats
