"""``bp-hw import``: an ONNX MLP (PyTorch, Keras/tf2onnx, scikit-learn/skl2onnx, QONNX) -> model.npz.

Writes the float model file the rest of the flow takes (``--out``); for a
QONNX model with ``Quant`` nodes also the integer model with the file's own
formats (``--qmodel``, the input of ``bp-hw generate``), or with the per-layer
precision of an hls4ml configuration (``--hls4ml-config``). With ``--data`` it
reports the imported model's accuracy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import BpHwError
from .common import add_json_flag, emit_summary, log

DESCRIPTION = """\
Import an MLP from an ONNX file: torch.onnx.export of Linear + Sigmoid/Tanh/ReLU (+ Softmax),
Keras through tf2onnx (MatMul + Add), scikit-learn MLPClassifier through skl2onnx, or a QONNX
model (Brevitas, HGQ) with Quant nodes. Writes model.npz (--out), the input of bp-hw quantize."""

EPILOG = """\
Input normalisation in front of the first layer (Sub/Div, Mul/Add, BatchNormalization, Scaler) is
folded into the model's norm_mean/norm_std; ArgMax/ZipMap outputs are ignored. An unsupported node
stops the import with one line naming it; nothing is written.

Quantized models: QONNX Quant nodes with power-of-two scales and zero point 0 become the layer
formats; --qmodel writes the integer model (bp-hw generate's input), equal to QONNX's own execution.
--hls4ml-config FILE (YAML or JSON, hls4ml's Model/LayerName Precision entries, fixed<W,I>) gives a
float model per-layer formats instead; --qmodel is then required.
Details: docs/import.md."""


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help="import an ONNX / QONNX model (PyTorch, Keras, scikit-learn, Brevitas)",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="ONNX file (.onnx)")
    p.add_argument("--out", default="model.npz", help="float model file to write (default: %(default)s)")
    p.add_argument("--qmodel", default=None,
                   help="also write the integer model (QONNX formats or --hls4ml-config) to this .json")
    p.add_argument("--hls4ml-config", default=None,
                   help="hls4ml configuration (YAML/JSON) whose per-layer precision sets the formats")
    p.add_argument("--data", default=None,
                   help="data set to report the imported model's accuracy on (iris, xor, .csv, .npz)")
    add_json_flag(p)
    return p


def _check_out(path: Path, what: str) -> None:
    if path.is_dir():
        raise BpHwError(f"{what} {path} is a folder; give a file name")


def run(args: argparse.Namespace) -> int:
    from ..interop.onnx_import import import_onnx, model_config
    from ..modelfile import save_model

    out = Path(args.out)
    qout = Path(args.qmodel) if args.qmodel else None
    _check_out(out, "--out")
    if qout is not None:
        _check_out(qout, "--qmodel")
        if qout.suffix.lower() != ".json":
            raise BpHwError(f"--qmodel {qout}: the integer model is a .json file")
    if args.hls4ml_config and qout is None:
        raise BpHwError("--hls4ml-config sets the integer model's formats: give --qmodel FILE.json to write it")
    imported = import_onnx(args.model)
    if args.hls4ml_config and imported.quantized:
        raise BpHwError(f"{args.model} already carries its formats in QONNX Quant nodes; drop --hls4ml-config")
    model = imported.float_model(model_config(imported, args.data))
    qmodel, notes = None, []
    if imported.quantized:
        from ..interop.qonnx import build_qmodel
        qmodel, notes = build_qmodel(imported)
        if qout is None:
            log("note: the model is quantized (QONNX Quant nodes); --qmodel FILE.json writes its integer model "
                "with those formats")
    elif qout is not None and args.hls4ml_config:
        from ..interop.hls4ml_config import quantize_with_hls4ml
        qmodel, notes = quantize_with_hls4ml(model, imported, args.hls4ml_config, args.data)
    elif qout is not None:
        raise BpHwError(f"{args.model} has no QONNX Quant nodes, so it has no formats of its own: write the float "
                        f"model and run bp-hw quantize, or give --hls4ml-config")
    # logged once the model is known to be usable, so a refusal stays the one line on stderr
    log(f"imported {args.model} ({imported.producer}): layers {'-'.join(map(str, model.layers))}, "
        f"activations {', '.join(model.activations)}"
        + (f"; normalisation folded from {', '.join(imported.normalization_nodes)}"
           if imported.normalization_nodes else "")
        + (f"; ignored output decoding {', '.join(imported.ignored_nodes)}" if imported.ignored_nodes else ""))
    for note in notes:
        log(f"note: {note}")

    accuracy = None
    if args.data is not None:
        from ..data import load_dataset
        ds = load_dataset(args.data)
        if ds.n_features != model.n_inputs:
            raise BpHwError(f"data {args.data} has {ds.n_features} features but the model takes {model.n_inputs}")
        if ds.n_classes > model.n_classes:
            raise BpHwError(f"data {args.data} has {ds.n_classes} classes but the model decodes {model.n_classes}")
        accuracy = {"float": model.accuracy(ds.X, ds.y)}
        if qmodel is not None:
            accuracy["fixed"] = float((qmodel.predict_classes(ds.X) == ds.y).mean())

    written = []
    try:
        save_model(out, model)
        written.append(out)
        if qmodel is not None and qout is not None:
            qmodel.save(qout)
            written.append(qout)
    except BaseException as exc:
        for path in written:
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise BpHwError(f"cannot write output: {exc}") from None
        raise
    log(f"wrote {', '.join(map(str, written))}")

    summary = {
        "model": str(args.model), "out": str(out), "qmodel": str(qout) if qmodel is not None and qout else None,
        "producer": imported.producer, "sizes": model.layers, "activations": model.activations,
        "n_classes": model.n_classes, "quantized": imported.quantized,
        "normalization_nodes": imported.normalization_nodes, "ignored_nodes": imported.ignored_nodes,
        "data": args.data, "float_accuracy": accuracy["float"] if accuracy else None,
        "fixed_accuracy": accuracy.get("fixed") if accuracy else None, "notes": notes,
        "formats": None if qmodel is None else {
            "input": qmodel.input_fmt.name,
            "layers": [{"weight": l.weight_fmt.name, "bias": l.bias_fmt.name, "z": l.z_fmt.name,
                        "out": l.out_fmt.name, "rounding": l.rounding, "overflow": l.overflow}
                       for l in qmodel.layers]},
    }
    human = [f"imported {summary['model']} -> {out}" + (f", {qout}" if summary["qmodel"] else ""),
             f"layers {'-'.join(map(str, model.layers))} ({', '.join(model.activations)}), {model.n_classes} classes"]
    if summary["formats"]:
        f = summary["formats"]
        human.append("formats: in " + f["input"] + "; " + "; ".join(
            f"L{i} w {l['weight']} b {l['bias']} z {l['z']} out {l['out']}" for i, l in enumerate(f["layers"])))
    if accuracy:
        human.append(f"accuracy on {args.data}: float {accuracy['float']:.4f}"
                     + (f", integer model {accuracy['fixed']:.4f}" if "fixed" in accuracy else ""))
    emit_summary(args, summary, "\n".join(human))
    return 0
