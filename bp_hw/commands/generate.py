"""``bp-hw generate``: quantized model -> Verilog, memory images and manifest."""

from __future__ import annotations

import time

from .common import add_json_flag, emit_summary, log


def add_parser(sub, name):
    p = sub.add_parser(name, help="generate the pipelined MAC/LUT datapath as Verilog",
                       description="Generate Verilog for a quantized model (from `bp-hw quantize`).")
    p.add_argument("qmodel", help="quantized model JSON")
    p.add_argument("--parallel", default="1",
                   help="MAC lanes per layer: one value for every layer or a list (e.g. 8,3); a value OxI names "
                        "P_out neurons at once times P_in inputs each (e.g. 4x2,5); default 1")
    p.add_argument("--input", choices=("vector", "beats"), dest="input_mode",
                   help="how input vectors arrive: whole in one payload (vector) or as beats of the first layer's "
                        "P_in elements into an input buffer (beats); default: beats for inputs wider than 256 bits")
    p.add_argument("--weights", default="auto", choices=("auto", "rom", "block", "logic", "spram"),
                   help="where the weight memories go: auto (ROMs in block RAM; on a device with SPRAM, the largest "
                        "layers move there when block RAM runs out), rom, block, logic, or spram (loaded at run "
                        "time through the load port); default auto")
    p.add_argument("--board", help="the board the design is for (its device guides the memory placement), "
                                   "e.g. icebreaker or ulx3s-85f")
    p.add_argument("--out", default="build", help="output folder (default build/)")
    p.add_argument("--name", help="Verilog module name (sanitised; default from the model file name)")
    p.add_argument("--no-taps", action="store_true", help="omit the per-layer debug tap ports")
    t = p.add_argument_group("on-chip training (--train)")
    t.add_argument("--train", action="store_true",
                   help="generate the training design: weights in RAM, target stream, backprop, weight access port")
    t.add_argument("--lr", help="learning rate: a power of two such as 2^-3, or a value rounded to a fixed-point "
                                "factor (default 2^-1)")
    t.add_argument("--update-rounding", help="rounding of the weight updates: nearest-even (default), stochastic, "
                                             "floor, nearest-up, toward-zero")
    t.add_argument("--lfsr-seed", type=int, help="seed of the stochastic-rounding LFSRs (default 1)")
    t.add_argument("--cost",
                   help="what the output delta comes from: mse, (o - t) * sigma'(z) (default), or cross-entropy, "
                        "(o - t) alone (sigmoid or tanh outputs)")
    t.add_argument("--batch", type=int,
                   help="mini-batch size B, a power of two: gradients of B training samples are summed and the "
                        "weights updated once with their mean (default 1: every sample)")
    t.add_argument("--delta-format", help="delta format, e.g. Q1.15 (default Q1.(W-1))")
    t.add_argument("--error-format", help="error format (default each layer's output format)")
    add_json_flag(p)
    return p


def _train_spec(args):
    """The TrainSpec of ``--train`` (None without it); training options alone are an error."""
    from ..errors import BpHwError
    from ..fixed.trainer import TrainSpec
    given = {key: value for key, value in (("lr", args.lr), ("update_rounding", args.update_rounding),
                                           ("seed", args.lfsr_seed), ("delta_format", args.delta_format),
                                           ("error_format", args.error_format), ("cost", args.cost),
                                           ("batch", args.batch)) if value is not None}
    if not args.train:
        if given:
            raise BpHwError(f"--{next(iter(given)).replace('_', '-')} only applies with --train")
        return None
    return TrainSpec(**given)


def run(args) -> int:
    from ..hdl.emit import generate
    from ..plan.manifest import MANIFEST_NAME
    t0 = time.perf_counter()
    spec = _train_spec(args)
    device = None
    if args.board:
        from ..plan.boards import board
        device = board(args.board).device
    manifest = generate(args.qmodel, args.parallel, args.out, args.name, taps=not args.no_taps, train=spec,
                        input_mode=args.input_mode, weights=args.weights, device=device)
    summary = {
        "verilog": str(manifest.verilog[0]),
        "manifest": str(manifest.build_dir / MANIFEST_NAME),
        "name": manifest.name,
        "kind": manifest.kind,
        "parallel": manifest.parallel,
        "input_beats": manifest.inp.beats,
        "device": manifest.device,
        "weight_memories": {m.name: m.placement for m in manifest.memories if m.kind == "weights"},
        "load_words": manifest.load.words if manifest.load else 0,
        "latency_cycles": manifest.latency_cycles,
        "interval_cycles": manifest.interval_cycles,
        "ideal_interval_cycles": manifest.ideal_interval_cycles,
        "multipliers": manifest.multipliers,
        "mac_ops_per_inference": manifest.mac_ops_per_inference,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    tr = manifest.training
    if tr is not None:
        summary.update(train=True, eta=tr.eta, update_rounding=tr.spec["update_rounding"],
                       cost=tr.spec["cost"], batch=tr.spec["batch"],
                       cycles_per_train_sample=tr.cycles_per_train_sample,
                       cycles_per_infer_sample=tr.cycles_per_infer_sample)
        log(f"training design: {tr.cycles_per_train_sample} cycles per training sample, "
            f"{tr.cycles_per_infer_sample} per inference, eta {tr.eta}, {tr.spec['update_rounding']} updates, "
            f"cost {tr.spec['cost']}, batch {tr.spec['batch']}")
    log(f"generated {summary['verilog']}: {manifest.sizes} P={manifest.parallel}, "
        f"latency {manifest.latency_cycles} cycles, interval {manifest.interval_cycles} cycles, "
        f"{manifest.multipliers} multipliers")
    emit_summary(args, summary)
    return 0
