"""QONNX ``Quant`` nodes as fixed-point formats, and the integer model they describe.

A QONNX ``Quant(x, scale, zeropt, bitwidth)`` node (attributes ``signed``,
``narrow``, ``rounding_mode``) computes

    q = clamp(round(x / scale + zeropt), min_int, max_int);   y = (q - zeropt) * scale

with ``[min_int, max_int]`` the ``bitwidth``-bit signed or unsigned range,
one less at the bottom (signed) or top (unsigned) when ``narrow``. With a
power-of-two ``scale = 2^-f`` and ``zeropt = 0`` this is exactly a bp-hw
fixed-point format: ``Q(bitwidth - f).f`` (``UQ`` when unsigned), saturating
(``symmetric`` overflow when signed and narrow), rounding by
``rounding_mode`` (``ROUND``/``HALF_EVEN`` nearest-even, ``FLOOR`` floor,
``DOWN`` toward zero). Anything else is a one-line :class:`BpHwError`.

Weights and biases may have one scale and bit width per element or channel
(HGQ, per-channel Brevitas): the layer then takes the finest scale and the
width that holds every element's range, so each stored integer is exact.

:func:`build_qmodel` maps an imported MLP (:class:`~.onnx_import.ImportedMLP`)
onto a :class:`~bp_hw.fixed.qmodel.QModel` so that the integer model equals
QONNX's own execution:

* input: the ``Quant`` after the normalisation gives ``input_fmt`` and
  ``input_rounding``;
* layer ``l``: weight and bias ``Quant`` give ``weight_fmt`` and ``bias_fmt``
  (a bias with more fraction bits than the products is refused unless its
  values fit the products' grid); the ``Quant`` after the activation (or
  before it) gives ``out_fmt`` = ``z_fmt`` and the rescale's rounding and
  overflow. ``Relu`` commutes with that rescale (``Quant(Relu(x)) ==
  Relu(Quant(x))`` for any such format), so the bp-hw order (rescale, then
  activation) computes the same integers;
* a last layer without an output ``Quant`` (logits, or a ``Softmax`` whose
  argmax is the class) keeps its accumulator exactly: ``z_fmt`` has the
  products' fraction bits and enough integer bits for the largest possible sum;
* ``Sigmoid``/``Tanh`` layers become bp-hw lookup tables over the given
  formats: close to QONNX's float function, not bit-equal (a note says so).

QONNX executes in float32; its sums are exact while they stay below 2^24
LSBs. A layer whose accumulator can exceed that gets a note: there QONNX itself
rounds, and bp-hw's integer model is the exact one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import BpHwError
from ..fixed.lut import LUT_FUNCTIONS, ActivationLUT
from ..fixed.qformat import MAX_WIDTH, QFormat
from ..fixed.qmodel import QLayer, QModel

#: QONNX rounding_mode -> bp-hw rounding mode (the ones bp-hw's rescale implements bit for bit).
ROUNDING = {"ROUND": "nearest-even", "HALF_EVEN": "nearest-even", "FLOOR": "floor", "DOWN": "toward-zero"}
#: Float32 holds every integer below 2^24 exactly: sums up to there are exact in QONNX's execution.
FLOAT32_EXACT_BITS = 24


@dataclass(frozen=True)
class QuantSpec:
    """One QONNX ``Quant`` node read as a bp-hw format (see the module doc)."""

    node: str               # description for messages, e.g. 'Quant node "q1"'
    fmt: QFormat            # the format that holds every element exactly
    rounding: str | None    # bp-hw rounding mode, None if the node's mode has no bp-hw equivalent
    rounding_mode: str      # the node's own attribute
    narrow: bool
    uniform: bool           # one scale and bit width for the whole tensor

    @property
    def overflow(self) -> str:
        return "symmetric" if (self.narrow and self.fmt.signed) else "saturate"


def _width_for(lo: int, hi: int, signed: bool) -> int:
    if signed:
        return max(2, max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0) + 1)
    return max(2, hi.bit_length())


def _int_range(bits: np.ndarray, signed: bool, narrow: bool) -> tuple[np.ndarray, np.ndarray]:
    bits = bits.astype(np.int64)
    if signed:
        lo = -(np.int64(1) << (bits - 1)) + (1 if narrow else 0)
        hi = (np.int64(1) << (bits - 1)) - 1
    else:
        lo = np.zeros_like(bits)
        hi = (np.int64(1) << bits) - 1 - (1 if narrow else 0)
    return lo, hi


def parse_quant(node, scale, zeropt, bitwidth, shape, where: str) -> tuple[QuantSpec, np.ndarray, np.ndarray]:
    """``(spec, frac_bits, bits)`` of a ``Quant`` node, the last two broadcast to ``shape``.

    Raises :class:`BpHwError` for a scale that is not a power of two, a zero
    point that is not 0, or a bit width bp-hw cannot hold.
    """
    from .graph import attributes, describe
    desc = describe(node)
    att = attributes(node)
    signed, narrow = bool(att.get("signed", 1)), bool(att.get("narrow", 0))
    mode = str(att.get("rounding_mode", "ROUND")).upper()
    scale = np.asarray(scale, dtype=np.float64)
    zeropt = np.asarray(zeropt, dtype=np.float64)
    bitwidth = np.asarray(bitwidth, dtype=np.float64)
    if np.any(zeropt != 0):
        z = zeropt.ravel()[np.flatnonzero(zeropt.ravel())[0]]
        raise BpHwError(f"{where}: {desc} has zero point {z:g}; bp-hw takes QONNX Quant nodes with zero point 0 "
                        f"(fixed-point formats are symmetric about 0)")
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise BpHwError(f"{where}: {desc} has a scale that is not positive and finite")
    f = -np.log2(scale)
    if np.any(f != np.round(f)):
        s = scale.ravel()[np.flatnonzero((f != np.round(f)).ravel())[0]]
        raise BpHwError(f"{where}: {desc} has scale {s:g}, not a power of two; bp-hw takes power-of-two scales "
                        f"(2^-f: f fraction bits), e.g. Brevitas *FixedPoint quantizers")
    if np.any(bitwidth != np.round(bitwidth)) or np.any(bitwidth < 2) or np.any(bitwidth > MAX_WIDTH):
        raise BpHwError(f"{where}: {desc} has bit width {bitwidth.ravel()[0]:g}; bp-hw takes integer widths "
                        f"2..{MAX_WIDTH} (1-bit bipolar quantization is not supported)")
    try:
        f_b = np.broadcast_to(f.astype(np.int64), shape)
        b_b = np.broadcast_to(bitwidth.astype(np.int64), shape)
    except ValueError:
        raise BpHwError(f"{where}: {desc}: scale {scale.shape} or bit width {bitwidth.shape} does not broadcast "
                        f"to the tensor's shape {tuple(shape)}") from None
    uniform = bool(np.all(f_b == f_b.flat[0]) and np.all(b_b == b_b.flat[0])) if f_b.size else True
    f_max = int(f_b.max()) if f_b.size else 0
    lo, hi = _int_range(b_b, signed, narrow)
    lo_f, hi_f = int((lo << (f_max - f_b)).min()), int((hi << (f_max - f_b)).max())
    width = _width_for(lo_f, hi_f, signed)
    if width > MAX_WIDTH:
        raise BpHwError(f"{where}: {desc}: its elements' scales span {int(f_b.max() - f_b.min())} bits, so one "
                        f"format for the tensor needs {width} bits (bp-hw holds at most {MAX_WIDTH})")
    fmt = QFormat(width - f_max, f_max, signed)
    return QuantSpec(desc, fmt, ROUNDING.get(mode), mode, narrow, uniform), f_b, b_b


def _round(v: np.ndarray, mode: str, desc: str, where: str) -> np.ndarray:
    if mode in ("ROUND", "HALF_EVEN"):
        return np.round(v)
    if mode == "FLOOR":
        return np.floor(v)
    if mode == "CEIL":
        return np.ceil(v)
    if mode == "DOWN":
        return np.fix(v)
    if mode == "UP":
        return np.sign(v) * np.ceil(np.abs(v))
    if mode == "HALF_UP":
        return np.sign(v) * np.floor(np.abs(v) + 0.5)
    if mode == "HALF_DOWN":
        return np.sign(v) * np.ceil(np.abs(v) - 0.5)
    raise BpHwError(f"{where}: {desc} has rounding_mode {mode!r}; QONNX defines ROUND, HALF_EVEN, FLOOR, CEIL, "
                    f"UP, DOWN, HALF_UP, HALF_DOWN")


def quant_constant(node, x, scale, zeropt, bitwidth, where: str) -> tuple[QuantSpec, np.ndarray]:
    """A ``Quant`` applied to a constant (weights, biases): ``(spec, dequantized values)`` in float64.

    The values are what QONNX computes (its clamp-then-round, in any rounding
    mode): a power-of-two scale makes every step exact in float32 and float64 alike.
    """
    x = np.asarray(x, dtype=np.float64)
    spec, f, bits = parse_quant(node, scale, zeropt, bitwidth, x.shape, where)
    from .graph import attributes
    att = attributes(node)
    lo, hi = _int_range(bits, bool(att.get("signed", 1)), bool(att.get("narrow", 0)))
    q = np.ldexp(x, f)
    q = np.clip(q, lo.astype(np.float64), hi.astype(np.float64))
    q = _round(q, spec.rounding_mode, spec.node, where)
    return spec, np.ldexp(q, -f)


def activation_spec(node, graph, where: str) -> QuantSpec:
    """The format of a ``Quant`` on the data path (an input or activation quantizer): one scale, one width."""
    from .graph import describe
    consts = [graph.value(name) for name in node.input[1:4]]
    if len(node.input) < 4 or any(c is None for c in consts):
        raise BpHwError(f"{where}: {describe(node)} has a scale, zero point or bit width computed from the data; "
                        f"bp-hw takes constant ones")
    scale, zeropt, bitwidth = consts
    spec, _, _ = parse_quant(node, scale, zeropt, bitwidth, np.broadcast(scale, zeropt, bitwidth).shape, where)
    if not spec.uniform:
        raise BpHwError(f"{where}: {describe(node)} quantizes activations with one scale or width per channel; "
                        f"bp-hw has one format per layer output (per-tensor activation quantizers only)")
    if spec.rounding is None:
        raise BpHwError(f"{where}: {describe(node)} rounds {spec.rounding_mode}; bp-hw's rescale implements "
                        f"{', '.join(sorted(ROUNDING))} (nearest-even, floor, toward zero)")
    if spec.narrow and not spec.fmt.signed:
        raise BpHwError(f"{where}: {describe(node)} is unsigned with narrow range (top value excluded); bp-hw "
                        f"saturates to a full unsigned range: export it with narrow=0")
    return spec


def _ints(values: np.ndarray, fmt: QFormat) -> np.ndarray:
    scaled = np.ldexp(np.asarray(values, dtype=np.float64), fmt.frac_bits)
    ints = np.round(scaled)
    assert np.all(ints == scaled), "dequantized values are not on the format's grid"
    return ints.astype(np.int64)


def _sum_range(layer_in: QFormat, w_int: np.ndarray, b_int: np.ndarray, b_shift: int) -> tuple[int, int]:
    """Smallest and largest possible accumulator values (weights known, inputs anywhere in their format)."""
    a_min, a_top = layer_in.min_int, layer_in.max_int
    bias = b_int << b_shift if b_int.size else 0
    hi = np.where(w_int > 0, w_int * a_top, w_int * a_min).sum(axis=1) + bias
    lo = np.where(w_int > 0, w_int * a_min, w_int * a_top).sum(axis=1) + bias
    return int(lo.min()), int(hi.max())


def _sum_bits(layer_in: QFormat, w_int: np.ndarray, b_int: np.ndarray, b_shift: int) -> int:
    lo, hi = _sum_range(layer_in, w_int, b_int, b_shift)
    return _width_for(lo, hi, True)


def _exact_acc_fmt(layer_in: QFormat, w_int: np.ndarray, w_fmt: QFormat, b_int: np.ndarray, b_shift: int,
                   where: str, name: str) -> QFormat:
    """The format that holds every accumulator value of the layer exactly (f = the products' fraction bits)."""
    width = _width_for(*_sum_range(layer_in, w_int, b_int, b_shift), True)
    frac = layer_in.frac_bits + w_fmt.frac_bits
    if width > MAX_WIDTH:
        raise BpHwError(f"{where}: layer {name} has no output Quant and its exact sums need {width} bits "
                        f"(bp-hw holds at most {MAX_WIDTH}); add an output quantizer")
    return QFormat(width - frac, frac)


def build_qmodel(imported, lut_bits: int = 10, lut_range: float = 8.0) -> tuple[QModel, list[str]]:
    """The integer model of a quantized import and notes about where it cannot equal QONNX bit for bit."""
    where = imported.path
    notes: list[str] = []
    if imported.input_quant is None:
        raise BpHwError(f"{where}: the model's input has no Quant node; bp-hw needs the input format of a "
                        f"quantized model (Brevitas: QuantIdentity first)")
    in_spec = imported.input_quant
    prev = in_spec.fmt
    layers = []
    n = len(imported.layers)
    for l, lay in enumerate(imported.layers):
        name = f'{l} ("{lay.name}")'
        if lay.weight_quant is None:
            raise BpHwError(f"{where}: layer {name} has float weights in a quantized model; quantize them "
                            f"(a Quant node on the weights) or import the float model without its Quant nodes")
        w_fmt = lay.weight_quant.fmt
        w_int = _ints(lay.weight, w_fmt)
        product_frac = prev.frac_bits + w_fmt.frac_bits
        if lay.bias_quant is not None:
            b_fmt = lay.bias_quant.fmt
        else:
            b_fmt = None
        b_vals = lay.bias
        if b_fmt is None or b_fmt.frac_bits > product_frac:
            # exact on the products' grid? then that grid is the bias format
            scaled = np.ldexp(b_vals, product_frac)
            if np.all(scaled == np.round(scaled)):
                b_int_p = np.round(scaled).astype(np.int64)
                lo, hi = (int(b_int_p.min()), int(b_int_p.max())) if b_int_p.size else (0, 0)
                width = _width_for(lo, hi, True)
                b_fmt = QFormat(width - product_frac, product_frac)
            elif b_fmt is None:
                b_fmt = QFormat(32 - product_frac, product_frac)
                notes.append(f"layer {name}: the bias has no Quant node and is not on the products' grid "
                             f"(2^-{product_frac}); rounded to {b_fmt}, so QONNX's float bias may round differently")
            else:
                raise BpHwError(f"{where}: layer {name}: bias format {b_fmt} has more fraction bits than the "
                                f"products ({product_frac}); bp-hw aligns biases to the products (Brevitas: "
                                f"Int*Bias quantizers use input scale x weight scale)")
        b_int = _ints(b_vals, b_fmt) if b_vals.size else np.zeros(0, np.int64)
        if b_int.size and (b_int.min() < b_fmt.min_int or b_int.max() > b_fmt.max_int):
            raise BpHwError(f"{where}: layer {name}: bias values outside {b_fmt}")
        act = lay.activation
        float_act = None
        if act == "softmax":
            if lay.post_quant is not None:
                raise BpHwError(f"{where}: layer {name}: a Quant after Softmax; bp-hw's hardware returns the "
                                f"logits (argmax is the class), so quantize before the Softmax or not at all")
            act, float_act = "identity", "softmax"
        q = lay.post_quant or lay.pre_quant
        if lay.post_quant is not None and lay.pre_quant is not None and act in ("relu", "identity") \
                and lay.post_quant.fmt != lay.pre_quant.fmt:
            raise BpHwError(f"{where}: layer {name}: Quant nodes before and after the activation with different "
                            f"formats ({lay.pre_quant.fmt}, {lay.post_quant.fmt}); bp-hw has one rescale per layer")
        lut = None
        rounding, overflow = "nearest-even", "saturate"
        if act in LUT_FUNCTIONS:
            if lay.post_quant is None:
                raise BpHwError(f"{where}: layer {name}: {act} without a Quant after it; bp-hw needs the "
                                f"activation's output format")
            out_fmt = lay.post_quant.fmt
            rounding = lay.post_quant.rounding
            if lay.pre_quant is not None:
                z_fmt = lay.pre_quant.fmt
                if not z_fmt.signed or z_fmt.int_bits < 1:
                    raise BpHwError(f"{where}: layer {name}: the Quant before {act} is {z_fmt}; a table input "
                                    f"needs a signed format with at least one integer bit")
                rounding, overflow = lay.pre_quant.rounding, lay.pre_quant.overflow
                in_range = 2.0 ** (z_fmt.int_bits - 1)  # the table covers z's whole range
            else:
                z_fmt = QFormat(int(round(math.log2(lut_range))) + 1, out_fmt.frac_bits)
                in_range = lut_range
            lut = ActivationLUT(act, lut_bits, in_range, z_fmt, out_fmt, rounding=rounding)
            notes.append(f"layer {name}: {act} is a {1 << lut_bits}-entry table over [-{in_range:g}, {in_range:g}) in "
                         f"bp-hw; QONNX evaluates the float function, so outputs may differ by the table's error")
        elif q is not None:
            out_fmt = z_fmt = q.fmt
            rounding, overflow = q.rounding, q.overflow
        else:
            if l != n - 1:
                raise BpHwError(f"{where}: layer {name} has no Quant on its output, so the next layer's input "
                                f"is not fixed point; add an activation quantizer (Brevitas: QuantReLU/QuantIdentity)")
            out_fmt = z_fmt = _exact_acc_fmt(prev, w_int, w_fmt, b_int, product_frac - b_fmt.frac_bits, where, name)
        layer = QLayer(weights=w_int, biases=b_int, activation=act, in_fmt=prev, weight_fmt=w_fmt, bias_fmt=b_fmt,
                       z_fmt=z_fmt, out_fmt=out_fmt, rounding=rounding, overflow=overflow, lut=lut,
                       float_activation=float_act)
        bound_bits = _sum_bits(prev, w_int, b_int, layer.bias_shift)
        if bound_bits > FLOAT32_EXACT_BITS:
            notes.append(f"layer {name}: sums can reach {bound_bits} bits, beyond float32's exact 24: QONNX's "
                         f"float32 execution may round them; bp-hw's integer model is exact")
        layers.append(layer)
        prev = out_fmt
    qmodel = QModel(layers=layers, input_fmt=in_spec.fmt, norm_mean=imported.norm_mean, norm_std=imported.norm_std,
                    n_classes=imported.n_classes, input_rounding=in_spec.rounding,
                    source={"onnx": str(imported.path), "producer": imported.producer, "formats": "QONNX Quant nodes",
                            "notes": notes},
                    norm_mode="standard", normalization="host")
    return qmodel, notes
