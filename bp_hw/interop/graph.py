"""An ONNX file as the importer sees it: constants, the data input, and who consumes what.

:func:`load_graph` reads the file (a truncated or foreign file is a one-line
:class:`BpHwError`). Constant tensors are initializers, ``Constant`` nodes and
anything computed from them alone through the shape-only ops of
:data:`CONSTANT_OPS` and QONNX ``Quant``: a weight written as
``Quant(Transpose(W))`` is a constant whose value is the quantized weight, and
the ``Quant`` nodes it went through are kept (:attr:`Constant.quants`) so
that their formats become the layer's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BpHwError
from .deps import require_onnx

#: Ops whose output is a constant when their data input is (shape and type only, no arithmetic).
CONSTANT_OPS = ("Identity", "Cast", "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten")
#: Domains of QONNX's custom ops, as Brevitas, HGQ and qonnx itself write them.
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas", "qonnx")


@dataclass
class Constant:
    """A constant tensor and the QONNX ``Quant`` nodes applied to it (outermost last)."""

    value: np.ndarray
    quants: list = field(default_factory=list)  # [(node, qonnx.QuantSpec)]


def describe(node) -> str:
    """``'Gemm node "fc1"'`` (or the node's first output when it has no name)."""
    name = node.name or (node.output[0] if node.output else "?")
    return f'{node.op_type} node "{name}"'


def is_qonnx_quant(node) -> bool:
    return node.op_type == "Quant" and (node.domain in QONNX_DOMAINS or node.domain.startswith("qonnx"))


def attributes(node) -> dict:
    onnx = require_onnx()
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


class Graph:
    """The nodes of one ONNX model with its constants resolved (see the module doc)."""

    def __init__(self, model, path: str = "model"):
        onnx = require_onnx()
        self.path = str(path)
        self.model = model
        g = model.graph
        self.nodes = list(g.node)
        self.producer_name = model.producer_name
        self.producer_version = model.producer_version
        self.opsets = {op.domain or "ai.onnx": op.version for op in model.opset_import}
        self._init = {}
        for t in g.initializer:
            try:
                self._init[t.name] = onnx.numpy_helper.to_array(t, base_dir=str(Path(self.path).parent))
            except Exception as exc:  # a tensor onnx cannot decode: a broken file, not our bug
                raise BpHwError(f"{self.path}: initializer {t.name!r} cannot be read ({exc})") from None
        # Old exporters (and Brevitas) list initializers among the graph inputs too: only the others are data.
        self.inputs = [i for i in g.input if i.name not in self._init]
        self.outputs = [o.name for o in g.output]
        self.producer = {}
        self.consumers: dict[str, list] = {}
        for node in self.nodes:
            for name in node.output:
                self.producer[name] = node
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        self._const: dict[str, Constant | None] = {}

    # -- constants ---------------------------------------------------------------
    def constant(self, name: str) -> Constant | None:
        """The constant behind tensor ``name`` (None if it depends on the data input)."""
        if name in self._const:
            return self._const[name]
        self._const[name] = None  # cycles (invalid graphs) end here
        self._const[name] = self._evaluate(name)
        return self._const[name]

    def value(self, name: str) -> np.ndarray | None:
        c = self.constant(name)
        return None if c is None else c.value

    def _evaluate(self, name: str) -> Constant | None:
        if name in self._init:
            return Constant(np.asarray(self._init[name]))
        node = self.producer.get(name)
        if node is None:
            return None
        if node.op_type == "Constant":
            onnx = require_onnx()
            for a in node.attribute:
                if a.name == "value":
                    return Constant(onnx.numpy_helper.to_array(a.t))
                if a.name in ("value_float", "value_int"):
                    return Constant(np.asarray(onnx.helper.get_attribute_value(a)))
                if a.name in ("value_floats", "value_ints"):
                    return Constant(np.asarray(list(onnx.helper.get_attribute_value(a))))
            return None
        if is_qonnx_quant(node):
            from .qonnx import quant_constant
            args = [self.constant(i) for i in node.input]
            if len(args) < 4 or any(a is None for a in args):
                return None
            spec, values = quant_constant(node, args[0].value, args[1].value, args[2].value, args[3].value,
                                          self.path)
            return Constant(values, args[0].quants + [(node, spec)])
        if node.op_type not in CONSTANT_OPS or not node.input:
            return None
        src = self.constant(node.input[0])
        if src is None:
            return None
        v = src.value
        att = attributes(node)
        if node.op_type == "Transpose":
            v = np.transpose(v, att.get("perm"))
        elif node.op_type == "Reshape":
            shape = self.value(node.input[1]) if len(node.input) > 1 else None
            if shape is None:
                return None
            shape = [v.shape[i] if s == 0 else int(s) for i, s in enumerate(shape.astype(np.int64))]
            v = v.reshape(shape)
        elif node.op_type in ("Squeeze", "Unsqueeze"):
            axes = att.get("axes")
            if axes is None and len(node.input) > 1:
                axes = self.value(node.input[1])
            if node.op_type == "Squeeze":
                v = np.squeeze(v, axis=None if axes is None else tuple(int(a) for a in axes))
            else:
                for a in sorted(int(a) for a in axes):
                    v = np.expand_dims(v, a)
        elif node.op_type == "Flatten":
            axis = int(att.get("axis", 1))
            v = v.reshape(int(np.prod(v.shape[:axis])), -1)
        elif node.op_type == "Cast":
            onnx = require_onnx()
            v = v.astype(onnx.helper.tensor_dtype_to_np_dtype(att["to"]))
        return Constant(v, list(src.quants))

    # -- the data path -------------------------------------------------------------
    def data_consumers(self, name: str) -> list:
        return self.consumers.get(name, [])

    def data_inputs(self, node) -> list[str]:
        """The inputs of ``node`` that are not constants."""
        return [i for i in node.input if i and self.constant(i) is None]


def load_graph(path) -> Graph:
    """Read an ONNX file into a :class:`Graph`; one-line :class:`BpHwError` for anything unreadable."""
    onnx = require_onnx("reading an ONNX model")
    path = Path(path)
    if not path.is_file():
        raise BpHwError(f"ONNX model not found: {path}")
    data = path.read_bytes()
    if not data:
        raise BpHwError(f"{path}: empty file, not an ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends: the file is damaged or not ONNX
        raise BpHwError(f"{path}: not a readable ONNX model (truncated or not ONNX: "
                        f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no details'})") from None
    if not model.graph.node:
        raise BpHwError(f"{path}: not a readable ONNX model (no nodes; truncated or not ONNX)")
    # A protobuf cut short can still parse (fields simply end); the checker catches dangling references.
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BpHwError(f"{path}: not a valid ONNX model ({first})") from None
    return Graph(model, str(path))
