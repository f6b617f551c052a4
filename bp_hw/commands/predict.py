"""``bp-hw predict``: run a model on a data set, report accuracy, write one row of outputs per sample.

MODEL is a float model (``model.npz``, trained or imported), an integer model
(``qmodel.json``, run through the integer model) or an ONNX file (imported on
the fly: its float model, or its integer model when it carries QONNX formats).
Inputs are the data set's raw features; the model's own normalisation is applied.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from ..errors import BpHwError
from ..fileio import write_text
from .common import add_json_flag, emit_summary, log

DESCRIPTION = """\
Run a model on a data set and report its accuracy: a float model (model.npz from bp-hw train or
bp-hw import), an integer model (qmodel.json, computed exactly as the hardware does) or an .onnx
file (imported on the fly). Raw features in; the model's own normalisation is applied."""

EPILOG = """\
--out writes a CSV with one row per sample: index, the model's outputs out_0 .. out_{K-1} (real
values; for an integer model the exact values of its integers), the predicted class and the label.
Compare it with the framework the model came from."""


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help="run a model (model.npz, qmodel.json, .onnx) on data, report accuracy",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model.npz, qmodel.json or .onnx")
    p.add_argument("--data", required=True, help="iris, xor, digits, mnist, or a .csv / .npz file")
    p.add_argument("--out", default=None, help="write the outputs per sample to this .csv")
    add_json_flag(p)
    return p


def load_any(path: str):
    """``(kind, model)``: ``('float', FloatModel)`` or ``('integer', QModel)`` for any model file bp-hw reads."""
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.is_file():
        raise BpHwError(f"model file not found: {p}")
    if suffix == ".json":
        from ..fixed.qmodel import QModel
        return "integer", QModel.load(p)
    if suffix == ".onnx":
        from ..interop.onnx_import import import_onnx, model_config
        imported = import_onnx(p)
        if imported.quantized:
            from ..interop.qonnx import build_qmodel
            qmodel, notes = build_qmodel(imported)
            for note in notes:
                log(f"note: {note}")
            return "integer", qmodel
        return "float", imported.float_model(model_config(imported))
    from ..modelfile import load_model
    return "float", load_model(p)


def outputs_and_classes(kind: str, model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(outputs as reals, classes, input saturations)`` of ``model`` on raw inputs ``X``."""
    if kind == "integer":
        ints, sats = model.quantize_inputs(X)
        out = model.predict(ints)
        return model.output_fmt.to_float(out), model.classify(out), sats
    from ..modelfile import outputs_to_classes
    out = model.predict_proba(X)
    return out, outputs_to_classes(out, model.activations[-1]), 0


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise BpHwError(f"--out {out} is a folder; give a .csv file name")
    kind, model = load_any(args.model)
    ds = load_dataset(args.data)
    n_in = model.n_inputs if kind == "float" else model.sizes[0]
    n_classes = model.n_classes
    if ds.n_features != n_in:
        raise BpHwError(f"data {args.data} has {ds.n_features} features but the model takes {n_in}")
    if ds.n_classes > n_classes:
        raise BpHwError(f"data {args.data} has {ds.n_classes} classes but the model decodes {n_classes}")
    outputs, classes, sats = outputs_and_classes(kind, model, ds.X)
    accuracy = float(np.mean(classes == ds.y))
    if sats:
        log(f"warning: {sats} input values saturated in the input format {model.input_fmt}")
    if out is not None:
        buf = io.StringIO()
        cols = [f"out_{k}" for k in range(outputs.shape[1])]
        buf.write(",".join(["index", *cols, "predicted", "label"]) + "\n")
        for i in range(outputs.shape[0]):
            buf.write(",".join([str(i), *(repr(float(v)) for v in outputs[i]), str(int(classes[i])),
                                str(int(ds.y[i]))]) + "\n")
        write_text(out, buf.getvalue())
        log(f"wrote {out}")
    summary = {"model": str(args.model), "kind": kind, "data": str(args.data), "samples": ds.n_samples,
               "accuracy": accuracy, "correct": int(np.sum(classes == ds.y)), "input_saturations": int(sats),
               "out": str(out) if out else None}
    emit_summary(args, summary, f"{kind} model {args.model} on {args.data}: accuracy {accuracy:.4f} "
                                f"({summary['correct']}/{ds.n_samples})" + (f"; outputs in {out}" if out else ""))
    return 0
