"""``bp-hw export``: a float model (model.npz) or an integer model (qmodel.json) as an ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import BpHwError
from .common import add_json_flag, emit_summary, log

DESCRIPTION = """\
Write a bp-hw model as ONNX, to check it in onnxruntime or feed it to other tools: a float model
(model.npz) as standard ONNX (Sub/Div normalisation, Gemm, activations), an integer model
(qmodel.json) as QONNX (Quant nodes, exact in qonnx's execution) or, with --qdq, as standard
QuantizeLinear/DequantizeLinear that onnxruntime runs."""

EPILOG = """\
--dtype float64 keeps a float model's weights bit for bit (bp-hw import gives them back exactly);
float32 (the default) rounds them once. An integer model's sigmoid/tanh tables become a Gather on
the table, so the export computes the integer model's outputs (as real values). QDQ needs
nearest-even rounding and formats up to 16 bits. Details: docs/import.md."""


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help="write a model.npz or qmodel.json as ONNX (float, QONNX or QDQ)",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model.npz (float) or qmodel.json (integer)")
    p.add_argument("--onnx", required=True, help="ONNX file to write")
    p.add_argument("--qdq", action="store_true", help="integer model as QuantizeLinear/DequantizeLinear, not QONNX")
    p.add_argument("--dtype", default=None, choices=("float32", "float64"),
                   help="float model's tensor type (default float32)")
    add_json_flag(p)
    return p


def run(args: argparse.Namespace) -> int:
    from ..interop.onnx_export import float_to_onnx, qmodel_to_onnx, save_onnx
    src, out = Path(args.model), Path(args.onnx)
    if out.is_dir():
        raise BpHwError(f"--onnx {out} is a folder; give a file name")
    if out.suffix.lower() != ".onnx":
        raise BpHwError(f"--onnx {out}: give a file name ending in .onnx")
    notes = []
    if src.suffix.lower() == ".json":
        if args.dtype:
            raise BpHwError("--dtype is for float models; an integer model's export picks float32 or float64 "
                            "so that its sums are exact")
        from ..fixed.qmodel import QModel
        qmodel = QModel.load(src)
        style = "qdq" if args.qdq else "qonnx"
        proto, notes = qmodel_to_onnx(qmodel, style)
        kind = "integer"
    else:
        if args.qdq:
            raise BpHwError("--qdq is for integer models (qmodel.json); a float model exports as plain ONNX")
        from ..modelfile import load_model
        proto = float_to_onnx(load_model(src), args.dtype or "float32")
        style, kind = "float", "float"
    for note in notes:
        log(f"note: {note}")
    save_onnx(proto, out)
    dtype = "float64" if proto.graph.input[0].type.tensor_type.elem_type == 11 else "float32"
    log(f"wrote {out}")
    summary = {"model": str(src), "onnx": str(out), "kind": kind, "style": style, "dtype": dtype,
               "nodes": len(proto.graph.node), "notes": notes}
    emit_summary(args, summary, f"{kind} model {src} -> {out} ({style}, {dtype}, {summary['nodes']} nodes)")
    return 0
