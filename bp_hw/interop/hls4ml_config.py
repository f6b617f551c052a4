"""hls4ml's per-layer precision (a configuration file) as bp-hw formats.

hls4ml configurations (``config_from_keras_model`` / ``config_from_onnx_model``, written as YAML or
JSON) carry a model-wide ``Model: {Precision: ...}`` and per layer ``LayerName: {NAME: {Precision:
{weight, bias, result, ...}}}`` in hls4ml's spelling ``fixed<W,I>`` / ``ufixed<W,I>``
(:class:`~bp_hw.fixed.qformat.QFormat` parses it). Layers are matched by the ONNX node names of the
imported model: a ``Gemm``/``MatMul`` node's entry gives the layer's weight and bias formats and its
``result`` (or ``accum``) the pre-activation format; the activation node's ``result`` the layer's
output format. ``Model: Precision`` (a format, or a table with ``default``) is the default for
anything not given, and the input format; the rest is :func:`bp_hw.fixed.quantizer.quantize_model`
with those formats as per-layer overrides. hls4ml's rounding and saturation suffixes
(``fixed<16,6,RND_CONV,SAT>``) set the rounding and overflow when given on the model-wide format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import BpHwError
from ..fixed.qformat import QFormat

_SUFFIX_RE = re.compile(r"^\s*(u?fixed)\s*<\s*(-?\d+)\s*,\s*(-?\d+)\s*((?:,\s*\w+\s*)*)>\s*$", re.IGNORECASE)
_ROUNDING = {"RND_CONV": "nearest-even", "TRN": "floor", "TRN_ZERO": "toward-zero", "RND": "nearest-up"}
_OVERFLOW = {"SAT": "saturate", "SAT_SYM": "symmetric", "WRAP": "wrap"}


def parse_precision(text: str, where: str) -> tuple[QFormat, str | None, str | None]:
    """``(format, rounding, overflow)`` of ``fixed<W,I[,Q[,O]]>`` (rounding/overflow None when not given)."""
    m = _SUFFIX_RE.match(str(text))
    if not m:
        return QFormat.parse(str(text)), None, None
    kind, w, i, rest = m.group(1), m.group(2), m.group(3), m.group(4)
    fmt = QFormat.parse(f"{kind}<{w},{i}>")
    modes = [s.strip().upper() for s in rest.split(",") if s.strip()]
    rounding = overflow = None
    for mode in modes:
        if mode in _ROUNDING:
            rounding = _ROUNDING[mode]
        elif mode in _OVERFLOW:
            overflow = _OVERFLOW[mode]
        else:
            raise BpHwError(f"{where}: {text!r}: unknown hls4ml mode {mode}; bp-hw knows "
                            f"{', '.join([*_ROUNDING, *_OVERFLOW])}")
    return fmt, rounding, overflow


def read_config(path) -> dict:
    """The configuration as a dict (YAML needs PyYAML; JSON always works)."""
    path = Path(path)
    if not path.is_file():
        raise BpHwError(f"hls4ml configuration {path} not found")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            cfg = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BpHwError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    else:
        try:
            import yaml
        except ImportError:
            raise BpHwError(f"{path}: reading YAML needs PyYAML (pip install pyyaml), or give the configuration "
                            f"as .json") from None
        try:
            cfg = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BpHwError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise BpHwError(f"{path}: an hls4ml configuration is a mapping with Model and LayerName entries")
    # hls4ml's full project config nests the model config under HLSConfig
    return cfg.get("HLSConfig", cfg)


def layer_formats(cfg: dict, imported, where: str) -> tuple[str, dict, str | None, str | None, list[str]]:
    """``(default format, {layer: overrides}, rounding, overflow, notes)`` for :class:`QuantConfig`."""
    model = cfg.get("Model", {}) or {}
    prec = model.get("Precision", "fixed<16,6>")
    if isinstance(prec, dict):
        prec = prec.get("default", prec.get("result", "fixed<16,6>"))
    default, rounding, overflow = parse_precision(prec, where)
    by_name = cfg.get("LayerName", {}) or {}
    known = set()
    overrides: dict[int, dict] = {}
    notes = []
    for l, lay in enumerate(imported.layers):
        over = {}
        entry = by_name.get(lay.name, {}) or {}
        if entry:
            known.add(lay.name)
        p = entry.get("Precision", {}) if isinstance(entry, dict) else {}
        if isinstance(p, str):
            p = {"result": p}
        for key, ours in (("weight", "weight"), ("bias", "bias"), ("result", "z"), ("accum", "z")):
            if key in p:
                over[ours] = parse_precision(p[key], where)[0].name
        act_entry = by_name.get(lay.activation_node or "", {}) or {}
        if act_entry:
            known.add(lay.activation_node)
            ap = act_entry.get("Precision", {})
            if isinstance(ap, str):
                ap = {"result": ap}
            if "result" in ap:
                over["act"] = parse_precision(ap["result"], where)[0].name
        if lay.activation in ("relu", "identity", "softmax") and "z" in over and "act" not in over:
            over["act"] = over.pop("z")
        elif lay.activation in ("relu", "identity", "softmax"):
            over.pop("z", None)
        overrides[l] = over
    unknown = sorted(set(by_name) - known)
    if unknown:
        notes.append(f"hls4ml configuration entries with no matching layer here (ignored): {', '.join(unknown)}")
    return default.name, overrides, rounding, overflow, notes


def quantize_with_hls4ml(model, imported, config_path, data: str | None):
    """``(QModel, notes)``: ``model`` quantized with the configuration's formats."""
    from ..fixed.quantizer import QuantConfig, quantize_model
    where = str(config_path)
    cfg = read_config(config_path)
    default, overrides, rounding, overflow, notes = layer_formats(cfg, imported, where)
    kw = {}
    if rounding:
        kw["rounding"] = rounding
    if overflow:
        kw["overflow"] = overflow
    qcfg = QuantConfig(format=default, layer_overrides=overrides, **kw)
    calib = None
    if data is not None:
        from ..data import load_dataset
        calib = load_dataset(data).X
    qmodel, _ = quantize_model(model, qcfg, calib, source={"onnx": str(imported.path),
                                                            "formats": f"hls4ml configuration {where}"})
    return qmodel, notes
