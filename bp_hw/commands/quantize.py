"""``bp-hw quantize``: fixed-point formats for a float model, the quantized model JSON and an error report.

Writes the quantized model (``--out``, the input of ``bp-hw generate``),
optionally ``$readmemh`` memory images (``--hex-dir``) and an error figure
(``--plot``), and reports float vs fixed accuracy, per-layer errors against
the documented bound, and every saturation.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ..data import load_dataset, split_dataset
from ..errors import BpHwError
from ..fixed.export import export_hex
from ..fixed.quantizer import AUTO, QuantConfig, fold_normalization, quantize_model
from ..fixed.report import compare, summarize
from ..fixed.rounding import OVERFLOW_MODES, ROUNDING_MODES
from ..modelfile import load_model
from .common import add_json_flag, emit_summary, log

DESCRIPTION = """\
Choose fixed-point formats for a float model and write the quantized model JSON (--out, the input
of bp-hw generate), optionally $readmemh memory images (--hex-dir) and an error figure (--plot).
Reports float vs fixed accuracy, per-layer errors against the documented bound, and every
saturation."""

EPILOG = """\
Formats: Q<i>.<f> (signed, i integer bits including the sign, e.g. Q4.12 = 16 bits in [-8, 8)),
UQ<i>.<f>, or hls4ml's fixed<W,I> / ufixed<W,I>; widths 2..32. --format sets weights, biases,
inputs and activations at once; --weight-format, --bias-format, --input-format and --act-format
override one kind. Any of them may be 'auto': integer bits from the range profiled on the
training data, the rest of the width (--bits, or the width of --format) as fraction bits.
--bits N alone means --format auto with an N-bit budget.

The pre-activation z of a sigmoid/tanh layer gets log2(--lut-range)+1 integer bits and the
activation's fraction bits, so saturating z is the table's own clamp.

Inputs: by default the host normalises, (x - norm_mean) / norm_std as learned in training, and
quantizes to --input-format. A model trained with --norm global (the default for digits and mnist)
has mean 0 and one power-of-two scale 2^k > max|x|, so a raw integer pixel p becomes p * 2^(f-k)
exactly in a format with f >= k fraction bits: with 8-bit pixels (k = 8) and --input-format UQ0.8
the integer input is p itself. An 'auto' input format is unsigned when all inputs are >= 0.

--fold-norm folds the normalisation into the first layer's weights and biases instead
(W0' = W0 * 2^f / std, b0' = b0 - W0 (mean / std)): the hardware takes the raw inputs as integers
in --input-format (UQ0.8 or UQ1.7 for 8-bit pixels: same integers, only f changes; default: the
narrowest UQ0.w / Q1.w-1 that holds the data). The data must be integer-valued and fit the format.
qmodel.json records "normalization": "host" or "folded".

When --data names the data the model was trained on, the model's own train/test split (seed
and test fraction from its training config) is used, so accuracies compare with training.
The arithmetic is described step by step in docs/arithmetic.md.
"""


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    d = QuantConfig()
    p = subparsers.add_parser(name, help="quantize a float model to fixed point and report the error",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="float model file written by `bp-hw train` (.npz)")
    p.add_argument("--format", default=None,
                   help=f"default format of every tensor, or 'auto' (default: {d.format}, or auto with --bits)")
    p.add_argument("--weight-format", default=None, help="weight format (default: --format)")
    p.add_argument("--bias-format", default=None, help="bias format (default: --format)")
    p.add_argument("--input-format", default=None,
                   help="format of the normalised inputs, e.g. UQ0.8 for pixels (default: --act-format; "
                        "with --fold-norm the narrowest that holds the raw integers)")
    p.add_argument("--fold-norm", action="store_true",
                   help="fold the input normalisation into the first layer: the hardware takes raw integer inputs")
    p.add_argument("--act-format", default=None, help="activation (layer output) format (default: --format)")
    p.add_argument("--bits", type=int, default=None, help="bit budget for 'auto' formats")
    p.add_argument("--rounding", default=d.rounding, metavar="{" + ",".join(m for m in ROUNDING_MODES
                                                                         if m != "stochastic") + "}",
                   help="rounding of the rescale, the weights and the tables (default: %(default)s)")
    p.add_argument("--overflow", default=d.overflow, metavar="{" + ",".join(OVERFLOW_MODES) + "}",
                   help="what happens out of range (default: %(default)s)")
    p.add_argument("--lut-bits", type=int, default=d.lut_bits,
                   help="address bits of the sigmoid/tanh tables (default: %(default)s)")
    p.add_argument("--lut-range", type=float, default=d.lut_range,
                   help="tables cover [-R, R), R a power of two (default: %(default)s)")
    p.add_argument("--lut-symmetric", action="store_true", help="store half the table, mirror the other half")
    p.add_argument("--lut-interpolate", action="store_true", help="interpolate linearly between entries")
    p.add_argument("--data", default=None,
                   help="data for calibration and the report: iris, xor, digits, mnist, or a .csv/.npz file "
                        "(default: the model's training data)")
    p.add_argument("--out", default="qmodel.json", help="quantized model to write (default: %(default)s)")
    p.add_argument("--hex-dir", default=None, help="also write $readmemh images of weights, biases and tables here")
    p.add_argument("--plot", default=None, help="write the error figure to this image (png, svg, pdf)")
    add_json_flag(p)
    return p


def config_from_args(args: argparse.Namespace) -> QuantConfig:
    fmt = args.format if args.format is not None else (AUTO if args.bits is not None else QuantConfig.format)
    if args.bits is not None and args.bits < 1:
        raise BpHwError(f"--bits must be a positive number of bits (2..32), got {args.bits}")
    return QuantConfig(format=fmt, weight_format=args.weight_format, bias_format=args.bias_format,
                       act_format=args.act_format, input_format=args.input_format, bit_budget=args.bits,
                       rounding=args.rounding, overflow=args.overflow, lut_bits=args.lut_bits,
                       lut_range=args.lut_range, lut_symmetric=args.lut_symmetric,
                       lut_interpolate=args.lut_interpolate, fold_norm=args.fold_norm)


def _same_data(a: str, b: str | None) -> bool:
    if b is None:
        return False
    if a == b:
        return True
    pa, pb = Path(a), Path(b)
    return pa.is_file() and pb.is_file() and pa.resolve() == pb.resolve()


def load_splits(data_spec: str | None, model) -> tuple[dict, str, object]:
    """``({name: (X, y)}, description, calibration X)`` for the report."""
    cfg = model.config or {}
    spec = data_spec if data_spec is not None else cfg.get("data")
    if spec is None:
        raise BpHwError("the model does not record its training data; pass --data")
    ds = load_dataset(spec)
    if ds.n_features != model.n_inputs:
        raise BpHwError(f"data {spec} has {ds.n_features} features but the model takes {model.n_inputs}")
    if _same_data(str(spec), cfg.get("data")):
        seed, frac = int(cfg.get("seed", 0)), float(cfg.get("test_fraction", 0.3))
        train, test = split_dataset(ds, frac, seed)
        if ds.name == "xor" or frac == 0.0:
            return {"train": (train.X, train.y)}, f"{spec} (the model's training data, all rows)", train.X
        return ({"train": (train.X, train.y), "test": (test.X, test.y)},
                f"{spec}: the model's split, {train.n_samples} train / {test.n_samples} test "
                f"(seed {seed}, test fraction {frac:g})", train.X)
    return {"data": (ds.X, ds.y)}, f"{spec}: all {ds.n_samples} rows (not the model's training data)", ds.X


def _check_output(path: Path | None, what: str, folder: bool = False) -> None:
    if path is None:
        return
    if folder:
        if path.exists() and not path.is_dir():
            raise BpHwError(f"{what} {path} exists and is not a folder")
    elif path.is_dir():
        raise BpHwError(f"{what} {path} is a folder; give a file name")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    out = Path(args.out)
    hex_dir = Path(args.hex_dir) if args.hex_dir else None
    plot = Path(args.plot) if args.plot else None
    _check_output(out, "--out")
    _check_output(plot, "--plot")
    _check_output(hex_dir, "--hex-dir", folder=True)
    if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise BpHwError(f"--plot {plot}: use a .png, .svg or .pdf file name")

    model = load_model(args.model)
    splits, data_desc, calib = load_splits(args.data, model)
    log(f"data {data_desc}")
    qmodel, quant_sats = quantize_model(model, config, calib,
                                        source={"model": str(args.model), "data": data_desc})
    if config.fold_norm:  # the integer model's layer 0 is the folded one: compare like with like
        model = fold_normalization(model, qmodel.input_fmt)
        log(f"normalisation folded into layer 0: the hardware takes raw integer inputs in {qmodel.input_fmt}")
    report = compare(qmodel, model, splits, quant_sats)
    summary = summarize(report)
    for name, n in (("weights", quant_sats["weights"]), ("biases", quant_sats["biases"]),
                    ("inputs", summary["saturations"]["inputs"])):
        if n:
            log(f"warning: {n} {name} saturated; '--{name[:-1] if name != 'biases' else 'bias'}-format auto' "
                f"picks integer bits from the profiled range at the same width")

    written: list[Path] = []
    made_hex_dir = hex_dir is not None and not hex_dir.exists()
    try:
        qmodel.save(out)
        written.append(out)
        if hex_dir is not None:
            index = export_hex(qmodel, hex_dir)
            written.extend(hex_dir / f["file"] for f in index["files"])
            written.append(hex_dir / "memories.json")
        if plot is not None:
            from ..fixed.profile_plot import write_error_plot
            write_error_plot(plot, qmodel, report, title=f"{Path(args.model).name}: {_formats_line(qmodel)}")
            written.append(plot)
    except BaseException as exc:
        for path in written:
            path.unlink(missing_ok=True)
        if made_hex_dir and hex_dir.exists():
            shutil.rmtree(hex_dir, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BpHwError(f"cannot write output: {exc}") from None
        raise

    acc_f, acc_q = summary["float_accuracy"], summary["fixed_accuracy"]
    main_split = "test" if "test" in acc_f else next(iter(acc_f), None)
    result = {
        "model": str(args.model), "out": str(out), "hex_dir": str(hex_dir) if hex_dir else None,
        "plot": str(plot) if plot else None, "data": data_desc, "accuracy_split": main_split,
        "float_accuracy": acc_f.get(main_split), "fixed_accuracy": acc_q.get(main_split),
        "accuracy": {"float": acc_f, "fixed": acc_q, "decision_agreement": summary["decision_agreement"]},
        "max_abs_error": summary["max_abs_error"], "within_bound": summary["within_bound"],
        "saturations": summary["saturations"],
        "norm_mode": qmodel.norm_mode, "normalization": qmodel.normalization,
        "formats": _formats(qmodel), "layers": summary["layers"], "config": config.to_dict(),
    }
    log(f"wrote {out}" + (f", {hex_dir}/" if hex_dir else "") + (f", {plot}" if plot else ""))
    emit_summary(args, result, _human(result, qmodel))
    return 0


def _formats(qmodel) -> dict:
    return {"input": qmodel.input_fmt.name, "layers": [
        {"weight": l.weight_fmt.name, "bias": l.bias_fmt.name, "z": l.z_fmt.name, "out": l.out_fmt.name,
         "acc_width": l.acc_width, "rescale_shift": l.rescale_shift, "bias_shift": l.bias_shift,
         "lut": None if l.lut is None else f"{l.lut.function} {1 << l.lut.addr_bits} x {l.lut.out_fmt}"
                                           f" over [-{l.lut.in_range:g}, {l.lut.in_range:g})"}
        for l in qmodel.layers]}


def _formats_line(qmodel) -> str:
    parts = [f"in {qmodel.input_fmt} ({qmodel.norm_mode} normalisation, "
             f"{'folded into L0' if qmodel.normalization == 'folded' else 'on the host'})"]
    parts += [f"L{i} w {l.weight_fmt} b {l.bias_fmt} z {l.z_fmt} out {l.out_fmt}" for i, l in enumerate(qmodel.layers)]
    return "; ".join(parts)


def _human(r: dict, qmodel) -> str:
    lines = [f"formats: {_formats_line(qmodel)}"]
    for split in r["accuracy"]["float"]:
        lines.append(f"{split:>5} accuracy: float {r['accuracy']['float'][split]:.4f}  "
                     f"fixed {r['accuracy']['fixed'][split]:.4f}  "
                     f"(same decision on {r['accuracy']['decision_agreement'][split]:.4f})")
    lines.append("layer  activation  max|err|   mean|err|  bound      LUT err    z sat  ok")
    for lay in r["layers"]:
        lut = "-" if lay["lut_max_error"] is None else f"{lay['lut_max_error']:.3e}"
        lines.append(f"{lay['layer']:>5}  {lay['activation']:<10}  {lay['max_abs_error']:.3e}  "
                     f"{lay['mean_abs_error']:.3e}  {lay['error_bound']:.3e}  {lut:<9}  "
                     f"{lay['z_saturations']:>5}  {'yes' if lay['within_bound'] else 'NO'}")
    s = r["saturations"]
    lines.append(f"saturations: weights {s['weights']}, biases {s['biases']}, inputs {s['inputs']}, "
                 f"z per layer {s['z']}")
    return "\n".join(lines)
