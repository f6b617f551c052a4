"""``bp-hw explore``: sweep formats x parallelism x LUT size; print the Pareto front, plot it."""

from __future__ import annotations

from .common import add_json_flag, emit_summary, log, progress


def add_parser(sub, name):
    from ..plan.boards import BOARDS
    p = sub.add_parser(name, help="design-space exploration: accuracy vs resources vs throughput",
                       description="Sweep fixed-point formats, per-layer parallelism and LUT sizes for one "
                                   "trained model; accuracy from the integer model, cycles from the generator, "
                                   "resources from the fast estimate (or synthesis with --synth).")
    p.add_argument("source", help="a flow folder (from `bp-hw flow`) or a model file (.npz)")
    p.add_argument("--data", help="data set (default: the model's training data)")
    p.add_argument("--formats", help="comma-separated formats; auto:N picks integer bits from the data "
                                     "(default: Q4.12,Q3.9,Q2.6,auto:12,auto:10,auto:8,auto:6)")
    p.add_argument("--parallel", help="semicolon-separated P settings, e.g. '1;8,3;4,1' "
                                      "(default: 1 and one lane per neuron)")
    p.add_argument("--lut-bits", default="10", help="comma-separated LUT address bits (default 10)")
    p.add_argument("--board", default="icebreaker", choices=sorted(BOARDS),
                   help="target of the estimate and its clock (default icebreaker)")
    p.add_argument("--synth", action="store_true", help="synthesize the Pareto points (all cores)")
    p.add_argument("--out", required=True, help="output folder")
    add_json_flag(p)
    return p


def run(args) -> int:
    from ..errors import BpHwError
    from ..explore import explore, format_table, parse_list
    try:
        lut_bits = [int(b) for b in parse_list(args.lut_bits) or ["10"]]
    except ValueError:
        raise BpHwError(f"--lut-bits takes integers separated by commas, got {args.lut_bits!r}") from None
    formats = parse_list(args.formats)
    parallels = parse_list(args.parallel, ";")
    n = (len(formats) if formats else 7) * (len(parallels) if parallels else 2) * len(lut_bits)
    bar = progress(total=n, desc="explore")
    summary = explore(args.source, args.out, data=args.data, formats=formats, parallels=parallels,
                      lut_bits=lut_bits, board=args.board, synth=args.synth, progress=bar.update)
    bar.close()
    log(f"float accuracy {summary['float_accuracy']:.4f}; {summary['points']} points; Pareto front:")
    log(format_table(summary["pareto"]))
    best = summary["smallest_within_1_point"]
    if best:
        log(f"smallest within 1 point of float: {best['format']} ({best['bits']} bits), P={best['parallel']}, "
            f"accuracy {best['accuracy']:.4f}")
    log(f"plot: {summary['plot']}")
    emit_summary(args, summary, human=format_table(summary["pareto"]))
    return 0
