"""ONNX MLP -> bp-hw float model (and, with QONNX ``Quant`` nodes, its formats).

The importer follows the data path from the graph's one input, node by node:

1. **Input preparation**, before the first layer: shape and type ops
   (``Identity``, ``Reshape``, ``Flatten``, ``Squeeze``, ``Unsqueeze``, ``Cast``,
   ``Dropout``) pass through; per-feature affine ops (``Sub``, ``Add``, ``Mul``,
   ``Div`` with a constant, ``BatchNormalization``, ai.onnx.ml ``Scaler``) are
   folded into one normalisation ``t(x) = (x - norm_mean) / norm_std`` (a negative
   scale flips the sign of the first layer's weight columns instead); a QONNX
   ``Quant`` is the input format.
2. **Layers**: ``Gemm`` (``transA=0``; ``transB`` either way; ``alpha``/``beta``
   folded) or ``MatMul`` followed by an optional ``Add`` of the bias; then
   optional ``Quant``, an activation (``Relu``, ``Sigmoid``, ``Tanh``; ``Softmax``
   on the last layer only; none = identity) and an optional ``Quant``.
3. **Output decoding** after the last layer is ignored: ``ArgMax``, ai.onnx.ml
   ``ZipMap`` and ``ArrayFeatureExtractor``, ``Cast``/``Reshape``/``Identity``,
   and skl2onnx's two-class ``Sub(1, p)`` + ``Concat``.

Anything else stops the import with one line naming the node, its op type and
what is supported. Constants may be written as initializers, ``Constant``
nodes, or computed through ``Transpose``/``Reshape``/``Cast`` and ``Quant``
(:mod:`.graph`).

The result is an :class:`ImportedMLP`: the float model (weights as float64
copies of the file's values, bit for bit) plus, per layer, the ``Quant`` specs
that :func:`bp_hw.interop.qonnx.build_qmodel` turns into the integer model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BpHwError
from ..modelfile import FloatModel
from .graph import Graph, attributes, describe, is_qonnx_quant, load_graph
from .qonnx import QuantSpec, activation_spec

#: What the error for an unsupported node lists.
SUPPORTED = ("Gemm or MatMul(+Add) layers with Relu, Sigmoid, Tanh (Softmax last); before the first layer "
             "Sub/Add/Mul/Div by constants, BatchNormalization, Scaler, Identity, Reshape, Flatten, Cast; "
             "QONNX Quant")
PASS_THROUGH = ("Identity", "Dropout")
SHAPE_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast")
AFFINE_OPS = ("Sub", "Add", "Mul", "Div", "BatchNormalization", "Scaler")
ACTIVATION_OPS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax"}
#: Nodes after the last layer that only turn outputs into labels or maps (ignored; bp-hw decodes itself).
DECODE_OPS = ("ArgMax", "ZipMap", "ArrayFeatureExtractor", "Cast", "Reshape", "Identity", "Flatten", "Squeeze",
              "Sub", "Concat")


@dataclass
class ImportedLayer:
    """One fully connected layer as found in the graph."""

    name: str                       # the Gemm/MatMul node's name
    weight: np.ndarray              # (fan_out, fan_in) float64
    bias: np.ndarray                # (fan_out,)
    activation: str = "identity"
    activation_node: str | None = None
    weight_quant: QuantSpec | None = None
    bias_quant: QuantSpec | None = None
    pre_quant: QuantSpec | None = None     # Quant between the sum and the activation
    post_quant: QuantSpec | None = None    # Quant after the activation


@dataclass
class ImportedMLP:
    """What :func:`import_onnx` found (see the module doc)."""

    path: str
    producer: str
    layers: list[ImportedLayer]
    norm_mean: np.ndarray
    norm_std: np.ndarray
    input_name: str
    output_name: str                # the last layer's output tensor (before any decoding)
    input_quant: QuantSpec | None = None
    normalization_nodes: list[str] = field(default_factory=list)
    ignored_nodes: list[str] = field(default_factory=list)

    @property
    def quantized(self) -> bool:
        return self.input_quant is not None or any(
            q is not None for lay in self.layers
            for q in (lay.weight_quant, lay.bias_quant, lay.pre_quant, lay.post_quant))

    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].weight.shape[1]] + [lay.weight.shape[0] for lay in self.layers]

    @property
    def n_classes(self) -> int:
        n_out = self.sizes[-1]
        return 2 if n_out == 1 else n_out

    def float_model(self, config: dict | None = None) -> FloatModel:
        """The float model (validated): Quant nodes on weights are applied, those on activations dropped."""
        acts = [lay.activation for lay in self.layers]
        return FloatModel(layers=self.sizes, weights=[lay.weight for lay in self.layers],
                          biases=[lay.bias for lay in self.layers], activations=acts,
                          loss="cross_entropy" if acts[-1] == "softmax" else "mse",
                          norm_mean=self.norm_mean, norm_std=self.norm_std, n_classes=self.n_classes,
                          config=dict(config or {}), norm_mode="standard")


class _Normalisation:
    """The folded affine input map ``t(x) = sign * (x - mean) / std`` (vectors broadcast to n_in later)."""

    def __init__(self):
        self.mean = np.zeros(1)
        self.std = np.ones(1)
        self.sign = np.ones(1)
        self.nodes: list[str] = []

    def sub(self, k):
        self.mean = self.mean + self.sign * k * self.std

    def add(self, k):
        self.mean = self.mean - self.sign * k * self.std

    def mul(self, k, desc, where):
        if np.any(k == 0):
            raise BpHwError(f"{where}: {desc} multiplies an input by 0; that feature would carry nothing")
        self.sign = self.sign * np.sign(k)
        self.std = self.std / np.abs(k)

    def div(self, d, desc, where):
        if np.any(d == 0):
            raise BpHwError(f"{where}: {desc} divides an input by 0")
        self.sign = self.sign * np.sign(d)
        self.std = self.std * np.abs(d)

    def finish(self, n_in: int, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            return tuple(np.broadcast_to(np.asarray(v, dtype=np.float64), (n_in,)).copy()
                         for v in (self.mean, self.std, self.sign))
        except ValueError:
            raise BpHwError(f"{where}: the input normalisation has {self.mean.size} values but the model takes "
                            f"{n_in} features") from None


def _feature_vector(c: np.ndarray, desc: str, where: str) -> np.ndarray:
    """A per-feature constant: a scalar, (n,), or (1, n)."""
    c = np.asarray(c, dtype=np.float64)
    while c.ndim > 1 and c.shape[0] == 1:
        c = c[0]
    if c.ndim > 1:
        raise BpHwError(f"{where}: {desc} has a constant of shape {c.shape}; input normalisation needs one value "
                        f"per feature")
    return c.reshape(-1) if c.ndim else c


def _unsupported(node, where: str, why: str = "") -> BpHwError:
    domain = f" (domain {node.domain})" if node.domain else ""
    return BpHwError(f"{where}: unsupported {describe(node)}, op type {node.op_type}{domain}"
                     f"{': ' + why if why else ''}; bp-hw imports {SUPPORTED}")


class _Walker:
    def __init__(self, graph: Graph):
        self.g = graph
        self.where = graph.path
        self.norm = _Normalisation()
        self.input_quant: QuantSpec | None = None
        self.layers: list[ImportedLayer] = []
        self.state = "input"          # input | sum | biased | activated
        self.ignored: list[str] = []

    # -- helpers --------------------------------------------------------------------
    def _data_input(self, node, x: str) -> tuple[int, list]:
        """Index of the data input ``x`` among node's inputs and the constants of the others."""
        consts = []
        for i, name in enumerate(node.input):
            if name == x:
                continue
            c = self.g.constant(name) if name else None
            if name and c is None:
                raise _unsupported(node, self.where, "it combines two data tensors")
            consts.append(c)
        return list(node.input).index(x), consts

    def _layer(self) -> ImportedLayer:
        return self.layers[-1]

    # -- node handlers ----------------------------------------------------------------
    def step(self, node, x: str) -> str:
        op = node.op_type
        if op in PASS_THROUGH:
            return node.output[0]
        if is_qonnx_quant(node):
            return self._quant(node)
        if op in ("Gemm", "MatMul"):
            return self._linear(node, x)
        if self.state == "input":
            if op in SHAPE_OPS:
                if op == "Cast":
                    to = attributes(node).get("to")
                    if to not in (1, 10, 11):  # float, float16, double
                        raise _unsupported(node, self.where, "a cast of the input to a non-float type")
                return node.output[0]
            if op in AFFINE_OPS:
                self._affine(node, x)
                return node.output[0]
            raise _unsupported(node, self.where, "before the first layer")
        if op == "Add" and self.state == "sum":
            idx, consts = self._data_input(node, x)
            lay = self._layer()
            b = consts[0]
            try:
                bias = np.broadcast_to(np.asarray(b.value, np.float64).reshape(-1) if b.value.size > 1
                                       else np.asarray(b.value, np.float64).reshape(()), lay.bias.shape)
            except ValueError:
                raise _unsupported(node, self.where, f"a bias of shape {b.value.shape} for {lay.bias.shape[0]} "
                                                     f"neurons") from None
            lay.bias = lay.bias + bias
            lay.bias_quant = b.quants[-1][1] if b.quants else None
            self.state = "biased"
            return node.output[0]
        if op in ACTIVATION_OPS and self.state in ("sum", "biased"):
            lay = self._layer()
            if op == "Softmax":
                axis = attributes(node).get("axis", -1 if self.g.opsets.get("ai.onnx", 13) >= 13 else 1)
                if axis not in (-1, 1):
                    raise _unsupported(node, self.where, f"softmax over axis {axis}, not the features")
            lay.activation = ACTIVATION_OPS[op]
            lay.activation_node = node.name or node.output[0]
            self.state = "activated"
            return node.output[0]
        if op in AFFINE_OPS:
            raise _unsupported(node, self.where, "arithmetic between layers (only before the first layer, as "
                                                 "input normalisation)")
        raise _unsupported(node, self.where)

    def _quant(self, node) -> str:
        spec = activation_spec(node, self.g, self.where)
        if self.state == "input":
            if self.input_quant is not None:
                raise _unsupported(node, self.where, "a second Quant on the input")
            self.input_quant = spec
        elif self.state in ("sum", "biased"):
            lay = self._layer()
            if lay.pre_quant is not None:
                raise _unsupported(node, self.where, "a second Quant on one layer's sum")
            lay.pre_quant = spec
        else:
            lay = self._layer()
            if lay.post_quant is not None:
                raise _unsupported(node, self.where, "a second Quant after one activation")
            lay.post_quant = spec
        return node.output[0]

    def _affine(self, node, x: str) -> None:
        if self.input_quant is not None:
            raise _unsupported(node, self.where, "normalisation after the input Quant (it must come before)")
        op, desc = node.op_type, describe(node)
        self.norm.nodes.append(desc)
        if op == "Scaler":
            att = attributes(node)
            self.norm.sub(np.asarray(att.get("offset", [0.0]), np.float64))
            self.norm.mul(np.asarray(att.get("scale", [1.0]), np.float64), desc, self.where)
            return
        if op == "BatchNormalization":
            if node.input[0] != x:
                raise _unsupported(node, self.where, "the data is not its first input")
            vals = [self.g.value(n) for n in node.input[1:5]]
            if len(vals) < 4 or any(v is None for v in vals):
                raise _unsupported(node, self.where, "its scale, bias, mean and variance must be constants")
            scale, bias, mean, var = (_feature_vector(v, desc, self.where) for v in vals)
            eps = float(attributes(node).get("epsilon", 1e-5))
            self.norm.sub(mean)
            self.norm.div(np.sqrt(var + eps), desc, self.where)
            self.norm.mul(scale, desc, self.where)
            self.norm.add(bias)
            return
        idx, consts = self._data_input(node, x)
        if len(consts) != 1:
            raise _unsupported(node, self.where)
        if consts[0].quants:
            raise _unsupported(node, self.where, "a quantized normalisation constant")
        k = _feature_vector(consts[0].value, desc, self.where)
        if op == "Sub":
            if idx == 0:
                self.norm.sub(k)
            else:  # k - x = -(x - k)
                self.norm.sub(k)
                self.norm.mul(np.asarray(-1.0), desc, self.where)
        elif op == "Add":
            self.norm.add(k)
        elif op == "Mul":
            self.norm.mul(k, desc, self.where)
        elif op == "Div":
            if idx != 0:
                raise _unsupported(node, self.where, "a constant divided by the input")
            self.norm.div(k, desc, self.where)

    def _linear(self, node, x: str) -> str:
        idx, consts = self._data_input(node, x)
        att = attributes(node)
        name = node.name or node.output[0]
        if node.op_type == "Gemm":
            if idx != 0 or att.get("transA", 0):
                raise _unsupported(node, self.where, "the data must be input A, not transposed")
            B = consts[0]
            W = np.asarray(B.value, np.float64)
            if W.ndim != 2:
                raise _unsupported(node, self.where, f"weights of shape {W.shape}")
            if not att.get("transB", 0):
                W = W.T
            alpha, beta = float(att.get("alpha", 1.0)), float(att.get("beta", 1.0))
            w_quant = B.quants[-1][1] if B.quants else None
            if w_quant is not None and alpha != 1.0:
                raise _unsupported(node, self.where, f"alpha {alpha:g} on quantized weights")
            W = W * alpha if alpha != 1.0 else W
            bias = np.zeros(W.shape[0])
            b_quant = None
            if len(consts) > 1 and consts[1] is not None:
                C = consts[1]
                c = np.asarray(C.value, np.float64)
                try:
                    bias = np.broadcast_to(c.reshape(-1) if c.size > 1 else c.reshape(()), (W.shape[0],)) * beta
                except ValueError:
                    raise _unsupported(node, self.where, f"a bias of shape {c.shape} for {W.shape[0]} neurons") \
                        from None
                b_quant = C.quants[-1][1] if C.quants else None
                if b_quant is not None and beta != 1.0:
                    raise _unsupported(node, self.where, f"beta {beta:g} on a quantized bias")
            state = "biased" if len(consts) > 1 else "sum"
        else:  # MatMul: x @ B, B of shape (in, out)
            if idx != 0:
                raise _unsupported(node, self.where, "the weights come first (W @ x); bp-hw reads x @ W")
            B = consts[0]
            W = np.asarray(B.value, np.float64)
            if W.ndim != 2:
                raise _unsupported(node, self.where, f"weights of shape {W.shape}")
            W = W.T
            bias, b_quant = np.zeros(W.shape[0]), None
            w_quant = B.quants[-1][1] if B.quants else None
            state = "sum"
        if self.layers and self.layers[-1].weight.shape[0] != W.shape[1]:
            raise BpHwError(f"{self.where}: {describe(node)} takes {W.shape[1]} inputs but the layer before has "
                            f"{self.layers[-1].weight.shape[0]} outputs")
        if not self.layers:
            n_in = W.shape[1]
            mean, std, sign = self.norm.finish(n_in, self.where)
            if np.any(sign < 0):
                if self.input_quant is not None:
                    raise BpHwError(f"{self.where}: the input normalisation has a negative scale before the input "
                                    f"Quant; bp-hw's normalisation divides by a positive std")
                W = W * sign[None, :]
            self.norm_arrays = (mean, std)
        self.layers.append(ImportedLayer(name=name, weight=np.array(W), bias=np.array(bias),
                                         weight_quant=w_quant, bias_quant=b_quant))
        self.state = state
        return node.output[0]

    # -- the tail -----------------------------------------------------------------------
    def check_tail(self, out: str) -> None:
        """Every node downstream of ``out`` must be output decoding (:data:`DECODE_OPS`)."""
        seen, todo, produced = set(), [out], {out}
        while todo:
            t = todo.pop()
            for node in self.g.data_consumers(t):
                key = id(node)
                if key in seen:
                    continue
                seen.add(key)
                if node.op_type not in DECODE_OPS:
                    if node.op_type in ("Gemm", "MatMul") or node.op_type in ACTIVATION_OPS:
                        raise _unsupported(node, self.where, "the data path branches before it (bp-hw imports a "
                                                             "chain of layers)")
                    raise _unsupported(node, self.where, "after the last layer (only ArgMax, ZipMap and similar "
                                                         "output decoding may follow)")
                if node.op_type == "Sub":
                    one = self.g.value(node.input[0])
                    if one is None or not np.all(one == 1) or node.input[1] != out:
                        raise _unsupported(node, self.where, "after the last layer (only 1 - p, the other class's "
                                                             "probability, may follow)")
                if node.op_type == "Concat" and self.layers[-1].weight.shape[0] != 1:
                    raise _unsupported(node, self.where, "after the last layer")
                self.ignored.append(describe(node))
                for o in node.output:
                    produced.add(o)
                    todo.append(o)


def _continues(node, state: str) -> bool:
    """After a layer: is ``node`` still part of the network (not output decoding)?"""
    op = node.op_type
    return (op in PASS_THROUGH or op in ("Gemm", "MatMul") or is_qonnx_quant(node)
            or (op in ACTIVATION_OPS and state in ("sum", "biased"))
            or (op == "Add" and state == "sum") or (op in AFFINE_OPS and op not in ("Sub",)))


def import_onnx(path) -> ImportedMLP:
    """Read an MLP from an ONNX file (see the module doc); :class:`BpHwError` naming any unsupported node."""
    g = load_graph(path)
    where = g.path
    if len(g.inputs) != 1:
        names = ", ".join(i.name for i in g.inputs) or "none"
        raise BpHwError(f"{where}: the model has {len(g.inputs)} data inputs ({names}); bp-hw imports models "
                        f"with one input, the feature vector")
    w = _Walker(g)
    x = g.inputs[0].name
    visited = 0
    while True:
        cons = g.data_consumers(x)
        if not cons:
            break
        if w.layers and (len(cons) > 1 or not _continues(cons[0], w.state)):
            break  # the rest must be output decoding: check_tail
        if len(cons) > 1:
            raise _unsupported(cons[0], where, "the input feeds several nodes (bp-hw imports a chain of layers)")
        x = w.step(cons[0], x)
        visited += 1
        if visited > len(g.nodes):
            raise BpHwError(f"{where}: the graph has a cycle")
    if not w.layers:
        raise BpHwError(f"{where}: no Gemm or MatMul layer found on the path from input {g.inputs[0].name!r}; "
                        f"bp-hw imports MLPs ({SUPPORTED})")
    w.check_tail(x)
    mean, std = w.norm_arrays
    return ImportedMLP(path=where, producer=f"{g.producer_name} {g.producer_version}".strip() or "unknown",
                       layers=w.layers, norm_mean=mean, norm_std=std, input_name=g.inputs[0].name,
                       output_name=x, input_quant=w.input_quant, normalization_nodes=w.norm.nodes,
                       ignored_nodes=w.ignored)


def model_config(imported: ImportedMLP, data: str | None = None) -> dict:
    """The ``config`` recorded in an imported model file (where it came from)."""
    cfg = {"imported_from": str(Path(imported.path).name), "producer": imported.producer,
           "quantized": imported.quantized}
    if data is not None:
        cfg["import_data"] = str(data)
    return cfg
