"""bp-hw models -> ONNX: the float model as standard ONNX, the integer model as QONNX or QDQ.

**Float model** (:func:`float_to_onnx`): ``input`` (N, n_in) -> ``Sub(norm_mean)``
-> ``Div(norm_std)`` -> per layer ``Gemm(transB=1)`` + ``Sigmoid``/``Tanh``/``Relu``/
``Softmax`` (nothing for identity) -> ``output``. ``float64`` keeps the weights bit for bit
(``bp-hw import`` of the file gives them back exactly); ``float32`` (the default, what most
tools expect) rounds them once to float32.

**Integer model** (:func:`qmodel_to_onnx`), the arithmetic of ``qmodel.py`` step by step, each
rounding and saturation as one quantizer ``Q(x, format, rounding, overflow)``:

    input -> Sub/Div normalisation -> Q(input_fmt)
    layer: Gemm(x, W, b) -> Q(z_fmt, rounding, overflow) -> Relu | table lookup | nothing

* ``qonnx``: ``Q`` is a QONNX ``Quant`` node (scale 2^-f, zero point 0, ``narrow`` for
  ``symmetric`` overflow; ``ROUND`` = nearest-even, ``FLOOR``, ``DOWN`` = toward zero; nearest-up is
  ``FLOOR`` of ``x + 2^-(f+1)``); weights and biases are ``Quant`` nodes on their real values.
  QONNX's tensors are float32, so QONNX's execution (``qonnx.core.onnx_exec``) gives the integer
  model's outputs exactly while every accumulator fits float32's 24 exact bits (8- to 10-bit formats);
  beyond that its float32 sums may round and a note says so.
* ``qdq``: ``Q`` is ``Clip`` (the format's range) + ``QuantizeLinear`` + ``DequantizeLinear``
  (int8/uint8/int16/uint16), weights and biases ``DequantizeLinear`` of int32 constants: standard ONNX
  that onnxruntime runs. ``QuantizeLinear`` rounds to nearest even and takes float32, so only
  nearest-even models of at most 16-bit formats export, and the outputs are exact while every
  accumulator fits float32's 24 bits (:func:`qmodel_to_onnx` returns a note otherwise).

Sigmoid/tanh tables (direct lookup, symmetric or not) become ``Mul``, ``Floor``, ``Add``, ``Clip``,
``Cast`` and ``Gather`` on the effective table: the table index rule of ``lut.py``, exactly.
Interpolated tables and ``wrap`` overflow have no export (one-line error). A softmax output layer is
identity in the integer model (argmax is the class): the export returns its logits too.
"""

from __future__ import annotations

import numpy as np

from ..errors import BpHwError
from .deps import require_onnx

OPSET = 19
QONNX_DOMAIN = "qonnx.custom_op.general"
_ACT_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softmax": "Softmax"}
_QONNX_ROUNDING = {"nearest-even": "ROUND", "floor": "FLOOR", "toward-zero": "DOWN"}
FLOAT32_EXACT_BITS = 24


class _Builder:
    def __init__(self, np_dtype):
        self.onnx = require_onnx("ONNX export")
        self.dtype = np.dtype(np_dtype)
        self.elem = self.onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes, self.inits = [], []
        self.count = 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base: str, value, dtype=None) -> str:
        name = self.name(base)
        arr = np.asarray(value, dtype=dtype if dtype is not None else self.dtype)
        self.inits.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def node(self, op: str, inputs: list[str], base: str, domain: str = "", **attrs) -> str:
        out = self.name(base)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def model(self, inputs, outputs, graph_name: str, extra_opsets=()):
        h = self.onnx.helper
        graph = h.make_graph(self.nodes, graph_name, inputs, outputs, self.inits)
        opsets = [h.make_opsetid("", OPSET), *(h.make_opsetid(d, v) for d, v in extra_opsets)]
        from .. import __version__
        return h.make_model(graph, producer_name="bp-hw", producer_version=__version__, opset_imports=opsets)


def _io(b: _Builder, n_in: int, n_out: int):
    h = b.onnx.helper
    return ([h.make_tensor_value_info("input", b.elem, ["N", n_in])],
            [h.make_tensor_value_info("output", b.elem, ["N", n_out])])


def float_to_onnx(model, dtype: str = "float32"):
    """The float model as an ONNX ``ModelProto`` (see the module doc)."""
    if dtype not in ("float32", "float64"):
        raise BpHwError(f"--dtype {dtype}: use float32 or float64")
    b = _Builder(dtype)
    x = b.node("Sub", ["input", b.const("norm_mean", model.norm_mean)], "normalize_sub")
    x = b.node("Div", [x, b.const("norm_std", model.norm_std)], "normalize_div")
    for l, (W, bias, act) in enumerate(zip(model.weights, model.biases, model.activations)):
        x = b.node("Gemm", [x, b.const(f"W{l}", W), b.const(f"b{l}", bias)], f"layer{l}_gemm", transB=1)
        if act in _ACT_OPS:
            kw = {"axis": -1} if act == "softmax" else {}
            x = b.node(_ACT_OPS[act], [x], f"layer{l}_{act}", **kw)
    b.nodes.append(b.onnx.helper.make_node("Identity", [x], ["output"], name="output"))
    inputs, outputs = _io(b, model.n_inputs, model.n_outputs)
    return b.model(inputs, outputs, "bp_hw_float_mlp")


def _sum_bits(layer) -> int:
    from .qonnx import _sum_bits as bits
    return bits(layer.in_fmt, layer.weights, layer.biases, layer.bias_shift)


def qmodel_to_onnx(qmodel, style: str = "qonnx"):
    """``(ModelProto, notes)`` for the integer model (see the module doc)."""
    if style not in ("qonnx", "qdq"):
        raise BpHwError(f"unknown export style {style!r}: qonnx or qdq")
    widest = max(_sum_bits(l) for l in qmodel.layers)
    notes = []
    if style == "qdq":
        dtype = "float32"
        if widest > FLOAT32_EXACT_BITS:
            notes.append(f"sums reach {widest} bits, beyond float32's exact 24: onnxruntime's float32 Gemm may "
                         f"round them, so outputs can differ from the integer model (export --qonnx is exact)")
    else:
        dtype = "float32"  # QONNX's Quant is defined on float32 (and qonnx's executor keeps it so)
        if widest > FLOAT32_EXACT_BITS:
            notes.append(f"sums reach {widest} bits, beyond float32's exact 24: QONNX's float32 execution may "
                         f"round them, so rare outputs can differ from the integer model (narrower formats, "
                         f"e.g. 8-10 bits, are exact)")
    b = _Builder(dtype)
    quant = _qonnx_quant if style == "qonnx" else _qdq_quant

    def check(fmt, rounding, overflow, what):
        if overflow == "wrap":
            raise BpHwError(f"{what}: wrap-around overflow has no ONNX quantizer; quantize with --overflow saturate")
        if style == "qdq":
            if rounding != "nearest-even":
                raise BpHwError(f"{what}: QuantizeLinear rounds to nearest even but the model rounds {rounding}; "
                                f"export as QONNX (without --qdq)")
            if fmt.width > 16:
                raise BpHwError(f"{what}: {fmt} is {fmt.width} bits; QDQ export takes formats up to 16 bits "
                                f"(export as QONNX, without --qdq)")

    check(qmodel.input_fmt, qmodel.input_rounding, "saturate", "the input format")
    x = b.node("Sub", ["input", b.const("norm_mean", qmodel.norm_mean)], "normalize_sub")
    x = b.node("Div", [x, b.const("norm_std", qmodel.norm_std)], "normalize_div")
    x = quant(b, x, qmodel.input_fmt, qmodel.input_rounding, "saturate", "input_quant")
    for l, layer in enumerate(qmodel.layers):
        check(layer.z_fmt, layer.rounding, layer.overflow, f"layer {l}")
        if layer.lut is not None and layer.lut.interpolate:
            raise BpHwError(f"layer {l}: interpolated {layer.lut.function} tables have no ONNX export; quantize "
                            f"without --lut-interpolate")
        W = _param(b, style, layer.weights, layer.weight_fmt, f"W{l}")
        bias = _param(b, style, layer.biases, layer.bias_fmt, f"b{l}")
        acc = b.node("Gemm", [x, W, bias], f"layer{l}_gemm", transB=1)
        z = quant(b, acc, layer.z_fmt, layer.rounding, layer.overflow, f"layer{l}_rescale")
        if layer.activation == "relu":
            x = b.node("Relu", [z], f"layer{l}_relu")
        elif layer.lut is not None:
            x = _lookup(b, z, layer.lut, f"layer{l}_{layer.activation}")
        else:
            x = z
    b.nodes.append(b.onnx.helper.make_node("Identity", [x], ["output"], name="output"))
    inputs, outputs = _io(b, qmodel.sizes[0], qmodel.sizes[-1])
    extra = [(QONNX_DOMAIN, 1)] if style == "qonnx" else []
    return b.model(inputs, outputs, f"bp_hw_integer_mlp_{style}", extra), notes


def _param(b: _Builder, style: str, ints: np.ndarray, fmt, base: str) -> str:
    if style == "qdq":
        scale = b.const(f"{base}_scale", fmt.step, dtype=np.float32)
        return b.node("DequantizeLinear", [b.const(f"{base}_int", ints, dtype=np.int32), scale], f"{base}_dq")
    return _qonnx_quant(b, b.const(base, fmt.to_float(ints)), fmt, "nearest-even", "saturate", f"{base}_quant")


def _qonnx_quant(b: _Builder, x: str, fmt, rounding: str, overflow: str, base: str) -> str:
    if rounding == "nearest-up":  # floor(v * 2^f + 1/2) = FLOOR of x + half an LSB (exact: powers of two)
        x = b.node("Add", [x, b.const(f"{base}_half", 2.0 ** -(fmt.frac_bits + 1))], f"{base}_half_add")
        mode = "FLOOR"
    else:
        mode = _QONNX_ROUNDING[rounding]
    return b.node("Quant", [x, b.const(f"{base}_scale", fmt.step), b.const(f"{base}_zeropt", 0.0),
                            b.const(f"{base}_bitwidth", float(fmt.width))], base, domain=QONNX_DOMAIN,
                  signed=int(fmt.signed), narrow=int(overflow == "symmetric" and fmt.signed), rounding_mode=mode)


def _qdq_quant(b: _Builder, x: str, fmt, rounding: str, overflow: str, base: str) -> str:
    lo = -fmt.max_int if (overflow == "symmetric" and fmt.signed) else fmt.min_int
    x = b.node("Clip", [x, b.const(f"{base}_min", lo * fmt.step), b.const(f"{base}_max", fmt.max_int * fmt.step)],
               f"{base}_clip")
    wide = fmt.width > 8
    zdtype = (np.int16 if wide else np.int8) if fmt.signed else (np.uint16 if wide else np.uint8)
    scale = b.const(f"{base}_scale", fmt.step, dtype=np.float32)
    zero = b.const(f"{base}_zero", 0, dtype=zdtype)
    q = b.node("QuantizeLinear", [x, scale, zero], f"{base}_q")
    return b.node("DequantizeLinear", [q, scale, zero], f"{base}_dq")


def _lookup(b: _Builder, z: str, lut, base: str) -> str:
    """``T[clamp(floor(z_int / 2^s) + N/2, 0, N-1)]`` on real values (``z_int = z * 2^f_z``)."""
    n = 1 << lut.addr_bits
    shift = lut.index_shift
    t = b.node("Mul", [z, b.const(f"{base}_scale", 2.0 ** (lut.in_fmt.frac_bits - shift))], f"{base}_scale_mul")
    t = b.node("Floor", [t], f"{base}_floor")
    t = b.node("Add", [t, b.const(f"{base}_offset", float(n // 2))], f"{base}_offset_add")
    t = b.node("Clip", [t, b.const(f"{base}_lo", 0.0), b.const(f"{base}_hi", float(n - 1))], f"{base}_clip")
    idx = b.node("Cast", [t], f"{base}_index", to=b.onnx.TensorProto.INT64)
    table = b.const(f"{base}_table", lut.out_fmt.to_float(lut.full_table()))
    return b.node("Gather", [table, idx], f"{base}_gather", axis=0)


def save_onnx(model_proto, path) -> None:
    """Check and write ``model_proto`` atomically."""
    onnx = require_onnx("ONNX export")
    from ..fileio import atomic_path
    try:
        onnx.checker.check_model(model_proto)
    except Exception as exc:  # our graph failed the checker: a bug, say so plainly
        raise AssertionError(f"bp-hw wrote an invalid ONNX graph: {exc}") from exc
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(model_proto.SerializeToString())
    except OSError as exc:
        raise BpHwError(f"cannot write {path}: {exc.strerror or exc}") from None
