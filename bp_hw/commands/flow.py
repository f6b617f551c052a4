"""``bp-hw flow``: the whole chain from one configuration, with a report."""

from __future__ import annotations

from ..plan.boards import BOARDS
from .common import add_json_flag, emit_summary, log


def add_parser(sub, name):
    p = sub.add_parser(name, help="train -> quantize -> generate -> simulate -> synth, with a report",
                       description="Run the whole flow from a TOML configuration and/or options; writes "
                                   "DIR/config.toml (the effective configuration), one folder per step, "
                                   "timings.json, report.json and a self-contained report.html.")
    p.add_argument("config", nargs="?", help="TOML file with [train] [quantize] [generate] [simulate] [synth] tables")
    p.add_argument("--data", help="data set for every step (iris, xor, .csv, .npz)")
    p.add_argument("--model", help="start from an ONNX/QONNX model: the train step becomes bp-hw import MODEL "
                                   "(a QONNX model's Quant formats replace the quantize step too)")
    p.add_argument("--layers", help="layer sizes, e.g. 4,8,3")
    p.add_argument("--epochs", type=int, help="training epochs (default 100; 3000 for xor)")
    p.add_argument("--format", help="fixed-point format, e.g. Q4.12")
    p.add_argument("--parallel", help="MAC lanes per layer, e.g. 1 or 8,3")
    p.add_argument("--train", action="store_true", default=None, help="generate and verify on-chip training")
    p.add_argument("--board", choices=sorted(BOARDS), help="synthesis target (default icebreaker)")
    p.add_argument("--no-synth", action="store_true", help="stop after co-simulation")
    p.add_argument("--no-simulate", action="store_true", help="skip co-simulation")
    p.add_argument("--out", required=True, help="output folder")
    add_json_flag(p)
    return p


def run(args) -> int:
    from ..flow import Flow, FlowConfig
    cfg = FlowConfig.load(args.config)
    cfg.set("train", "data", args.data)
    cfg.set("train", "model", args.model)
    cfg.set("train", "layers", args.layers)
    cfg.set("train", "epochs", args.epochs)
    cfg.set("quantize", "format", args.format)
    cfg.set("generate", "parallel", args.parallel)
    cfg.set("generate", "train", args.train)
    cfg.set("synth", "board", args.board)
    if args.no_synth:
        cfg.set("synth", "enabled", False)
    if args.no_simulate:
        cfg.set("simulate", "enabled", False)
    flow = Flow(cfg, args.out, log=log)
    status = flow.run()
    summary = flow.summary()
    log(f"report: {summary['report']}")
    emit_summary(args, summary)
    if status:
        # the failing step's reason, on one line, like any other bad input
        log(f"bp-hw flow: error: step {summary.get('failed_step')} failed: {summary.get('reason')}")
    return status
