"""On-chip training in Verilog co-simulation, checked bit for bit against the fixed-point trainer.

:func:`verify_training` builds the training design of a build folder with the
training body of :mod:`bp_hw.cosim.harness` (through :mod:`bp_hw.cosim.runner`,
cached per simulator), streams every epoch's samples through it in one
simulator run (:func:`run_samples`), and compares in bulk with numpy:

* every sample's forward outputs with :meth:`FixedTrainer.run`'s outputs;
* every weight and bias, read back through the access port before the first
  sample, after every epoch (or every sample) and at the end, with the
  trainer's parameters at the same points.

The expected side is :class:`~bp_hw.fixed.trainer.FixedTrainer` on the build's
quantized model, training spec and parallelism, all read from the manifest;
samples are the training split (:func:`bp_hw.data.split_dataset`) in
:func:`~bp_hw.fixed.trainer.epoch_order` per epoch, followed by one
inference-only pass (``train = 0``) over the test split, whose hardware
outputs are checked too. Addresses are located with the manifest's address map.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bp_hw.cosim.hexio import read_cycles, read_log
from bp_hw.cosim.runner import BuildInfo, manifest_of, run_harness
from bp_hw.errors import BpHwError
from bp_hw.fixed.packing import flat_params, load_params
from bp_hw.fixed.qmodel import QModel
from bp_hw.fixed.trainer import FixedTrainer, epoch_order, targets_for
from bp_hw.plan.hardware import train_spec_of
from bp_hw.plan.manifest import Manifest, load_qmodel

__all__ = ["SampleSchedule", "BitFlip", "TrainingRun", "schedule_samples", "expected_run", "run_samples",
           "locate", "compare", "verify_training"]


# --- the samples and what they must give -------------------------------------------

@dataclass
class SampleSchedule:
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


def schedule_samples(q: QModel, train_set, test_set, epochs: int, seed: int, every_sample: bool,
                     infer_test: bool) -> SampleSchedule:
    """``epochs`` passes over ``train_set`` in the trainer's epoch order, then (``infer_test``) one
    inference pass over ``test_set``; read-backs after every epoch, or every sample."""
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
    return SampleSchedule(np.concatenate(parts_X), np.concatenate(parts_T), np.concatenate(train),
                          np.concatenate(epoch), np.concatenate(pos), np.concatenate(row), n, epochs,
                          1 if every_sample else n)


def expected_run(q: QModel, manifest: Manifest, schedule: SampleSchedule) -> tuple[np.ndarray, np.ndarray]:
    """The spec's outputs (N, n_out) and parameters at every dump point (n_dumps, depth)."""
    trainer = FixedTrainer(q, train_spec_of(manifest.training.spec), manifest.parallel)
    points = schedule.dump_points
    outputs, snaps = trainer.run(schedule.X, schedule.T, schedule.train, [p - 1 for p in points if p > 0])
    params = [flat_params(q) if p == 0 else snaps[p - 1] for p in points]
    return outputs, np.array(params, dtype=np.int64)


# --- running ----------------------------------------------------------------------

class BitFlip(NamedTuple):
    """A fault the harness makes behind the checker's back: flip ``bit`` of the parameter at
    ``address`` once ``after`` samples have been streamed."""

    after: int
    address: int
    bit: int


@dataclass
class TrainingRun:
    """What one run of the training body logged, parsed."""

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
    build: BuildInfo
    run_seconds: float
    sim_seconds: float | None


def run_samples(build_dir: str | Path | Manifest, schedule: SampleSchedule, simulator: str = "verilator", *,
                stall: float = 0.0, seed: int = 0, inject: BitFlip | None = None, watchdog: int | None = None,
                waves: str | Path | None = None, keep_dir: str | Path | None = None) -> TrainingRun:
    """One simulator run over every sample of ``schedule``; returns the logs parsed (nothing compared)."""
    manifest = manifest_of(build_dir)
    access = manifest.training.access
    depth, width = int(access["depth"]), int(access["data_width"])
    settings = {"dump_every": schedule.dump_every}
    if inject is not None:
        settings.update(inject_after=inject.after, inject_addr=inject.address, inject_bit=inject.bit)
    payloads = {"x": schedule.X, "t": schedule.T, "train": schedule.train}
    with run_harness(manifest, simulator, payloads, ["out", "w", "idle"], settings=settings, stall=stall,
                     seed=seed, watchdog=watchdog, waves=waves, keep_dir=keep_dir) as run:
        out = manifest.out
        out_cycles, outputs, unknown = read_log(run.log("out"), out.elements, out.width, out.signed)
        points, values, wunknown = read_log(run.log("w"), 1, width, True)
        in_cycles = read_cycles(run.log("in_log"))
        idle_points, idle_cycles, _ = read_log(run.log("idle"), 1, 64, False)
    if len(values) % depth:
        raise RuntimeError(f"read-back is incomplete: {len(values)} values, not a multiple of {depth}")
    return TrainingRun(outputs, out_cycles, unknown, in_cycles, points[::depth].astype(np.int64),
                       values[:, 0].reshape(-1, depth), wunknown.reshape(-1, depth),
                       idle_points.astype(np.int64), idle_cycles[:, 0].astype(np.int64), run.stats, run.build,
                       run.run_seconds, run.sim_seconds)


# --- comparing ------------------------------------------------------------------------

def locate(address_map: list[dict], address: int) -> dict:
    """Layer, kind and index of a flat access-port address (the manifest's ``training.address_map``)."""
    for entry in address_map:
        rows, cols = entry["weights_shape"]
        wb, bb = entry["weights_base"], entry["biases_base"]
        if wb <= address < wb + rows * cols:
            i, j = divmod(address - wb, cols)
            return {"layer": entry["layer"], "kind": "weight", "neuron": i, "input": j, "address": address}
        if bb <= address < bb + entry["biases"]:
            return {"layer": entry["layer"], "kind": "bias", "neuron": address - bb, "input": None,
                    "address": address}
    return {"layer": None, "kind": "unknown", "neuron": None, "input": None, "address": address}


def _where(schedule: SampleSchedule, samples_done: int) -> dict:
    """The epoch and sample a dump point follows (``samples_done`` samples streamed)."""
    if samples_done == 0:
        return {"after_samples": 0, "epoch": None, "sample": None, "when": "before the first sample"}
    s = samples_done - 1
    if schedule.epoch[s] < 0:
        return {"after_samples": samples_done, "epoch": None, "sample": int(schedule.position[s]),
                "when": "inference pass over the test split"}
    return {"after_samples": samples_done, "epoch": int(schedule.epoch[s]), "sample": int(schedule.position[s]),
            "when": "training"}


def compare(address_map: list[dict], schedule: SampleSchedule, hw: TrainingRun, expected_out: np.ndarray,
            expected_params: np.ndarray) -> dict:
    """Counts of mismatching outputs and parameters and the first of each, located."""
    res = {}
    n = len(schedule.X)
    got = hw.outputs
    m = min(len(got), n)
    diff = (got[:m] != expected_out[:m]).any(axis=1) | hw.unknown_outputs[:m]
    res["outputs_received"] = int(len(got))
    res["output_mismatches"] = int(diff.sum()) + abs(len(got) - n)
    first = None
    if diff.any():
        s = int(np.argmax(diff))
        k = int(np.argmax(got[s] != expected_out[s])) if not hw.unknown_outputs[s] else 0
        first = {"index": s, "epoch": int(schedule.epoch[s]) if schedule.epoch[s] >= 0 else None,
                 "sample": int(schedule.position[s]), "row": int(schedule.row[s]), "train": bool(schedule.train[s]),
                 "output": k, "expected": expected_out[s].tolist(), "got": got[s].tolist(),
                 "unknown": bool(hw.unknown_outputs[s])}
    elif len(got) != n:
        first = {"index": m, "problem": f"{len(got)} outputs for {n} samples"}
    res["first_output_mismatch"] = first

    points = schedule.dump_points
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
        first = {**_where(schedule, points[r]), **locate(address_map, a), "readback": r,
                 "expected": int(expected_params[r, a]), "got": int(hw.params[r, a]),
                 "unknown": bool(hw.unknown_params[r, a]),
                 "differing_in_readback": int(wdiff[r].sum())}
    elif not ok_points or missing:
        first = {"readback": d, "problem": f"read back after {hw.dump_points.tolist()[:8]}... samples, "
                                           f"expected {points[:8]}..."}
        res["weight_mismatches"] += 0 if missing else 1
    res["first_weight_mismatch"] = first
    return res


def _accuracy_history(q: QModel, schedule: SampleSchedule, params: np.ndarray, train_set, test_set):
    """Train and test accuracy of the hardware's parameters at the end of every epoch."""
    Xtr, _ = q.quantize_inputs(train_set.X)
    Xte, _ = q.quantize_inputs(test_set.X)
    index = {p: r for r, p in enumerate(schedule.dump_points)}
    acc, test_acc = [], []
    for e in range(schedule.epochs):
        r = index.get((e + 1) * schedule.n_train)
        if r is None or r >= len(params):
            break
        model = load_params(q, params[r])
        acc.append(float((model.classify(model.predict(Xtr)) == train_set.y).mean()))
        test_acc.append(float((model.classify(model.predict(Xte)) == test_set.y).mean()))
    return acc, test_acc


def _cycles_per_sample(hw: TrainingRun, n_tr: int, schedule: SampleSchedule, inject: BitFlip | None):
    """Median input-to-input gap between training samples with no stop between them, and
    median cycles from a training sample's input transfer to the design being idle again
    (measured at the stops; with read-backs after every sample that is every sample).
    Both include stall cycles when the streams stall."""
    cyc = hw.input_cycles.astype(np.int64)
    gaps = np.diff(cyc)
    keep = np.ones(len(gaps), bool)
    stops = list(schedule.dump_points) + ([inject.after] if inject is not None else [])
    keep[np.array([p - 1 for p in stops if 0 < p <= len(gaps)], dtype=np.int64)] = False
    keep[max(0, n_tr - 1):] = False
    cps = float(np.median(gaps[keep])) if keep.any() else None
    _, first = np.unique(hw.idle_points, return_index=True)
    pts, at = hw.idle_points[first], hw.idle_cycles[first]
    sel = (pts > 0) & (pts <= min(n_tr, len(cyc)))
    busy = float(np.median(at[sel] - cyc[pts[sel] - 1])) if sel.any() else None
    return cps, busy


def verify_training(build_dir: str | Path | Manifest, data: str = "xor", epochs: int = 1, simulator: str = "verilator", *,
                    stall: float = 0.0, seed: int = 0, every_sample: bool = False, stall_seed: int | None = None,
                    test_fraction: float = 0.3, infer_test: bool = True, inject: BitFlip | None = None,
                    keep_dir: str | Path | None = None, watchdog: int | None = None) -> dict:
    """Train the design of ``build_dir`` in simulation for ``epochs`` epochs and check it against the spec.

    ``data`` is ``'xor'``, ``'iris'`` or a CSV/NPZ path; ``seed`` picks the split
    and the per-epoch sample order; ``stall`` is the probability of a withheld
    ``valid`` / ``ready`` on each cycle (from ``stall_seed``, default ``seed``).
    ``every_sample`` reads every parameter back after each sample instead of
    each epoch. ``inject`` makes the harness flip a parameter bit behind the
    checker's back (to show that the checker catches it). Returns the JSON-able summary.
    """
    from bp_hw.data import load_dataset, split_dataset  # noqa: PLC0415 - data sets only when needed

    if epochs < 0:
        raise BpHwError(f"the number of epochs must be >= 0, got {epochs}")
    if not 0.0 <= stall < 1.0:
        raise BpHwError(f"stall probability must be in [0, 1), got {stall}")
    manifest = manifest_of(build_dir)
    if not manifest.is_training:
        raise BpHwError(f"{manifest.build_dir} holds an inference design: simulate it without --train, "
                        "or generate a training design with `bp-hw generate ... --train`")
    training = manifest.training
    q = load_qmodel(manifest)
    ds = load_dataset(str(data))
    if ds.n_features != q.sizes[0]:
        raise BpHwError(f"{data} has {ds.n_features} features but the design takes {q.sizes[0]} inputs")
    n_out = q.sizes[-1]
    if int(ds.y.max()) >= max(n_out, 2):
        raise BpHwError(f"{data} has {int(ds.y.max()) + 1} classes but the design has {n_out} outputs")
    depth, width = int(training.access["depth"]), int(training.access["data_width"])
    if inject is not None and not (0 <= inject.address < depth and 0 <= inject.bit < width):
        raise BpHwError(f"inject address must be < {depth} and bit < {width}")
    train_set, test_set = split_dataset(ds, test_fraction, seed)
    schedule = schedule_samples(q, train_set, test_set, epochs, seed, every_sample, infer_test)
    if len(schedule.X) == 0:
        raise BpHwError("nothing to simulate: no epochs and no inference pass")

    t0 = time.perf_counter()
    expected_out, expected_params = expected_run(q, manifest, schedule)
    spec_seconds = time.perf_counter() - t0
    hw = run_samples(manifest, schedule, simulator, stall=stall, seed=seed if stall_seed is None else stall_seed,
                     inject=inject, watchdog=watchdog, keep_dir=keep_dir)
    res = compare(training.address_map, schedule, hw, expected_out, expected_params)

    acc, test_acc = _accuracy_history(q, schedule, hw.params, train_set, test_set)
    n_tr = schedule.epochs * schedule.n_train
    cps, busy = _cycles_per_sample(hw, n_tr, schedule, inject)
    hw_test = None
    if infer_test and len(hw.outputs) == len(schedule.X) and len(test_set.y):
        hw_test = float((q.classify(hw.outputs[n_tr:]) == test_set.y).mean())
    converged = next((e + 1 for e, a in enumerate(acc) if a == 1.0), None)
    cycles = int(hw.stats.get("cycles", 0))
    summary = {
        "data": str(data), "simulator": simulator, "epochs": epochs,
        "samples": int(n_tr), "inference_samples": int(len(schedule.X) - n_tr),
        "output_mismatches": res["output_mismatches"], "weight_mismatches": res["weight_mismatches"],
        "ok": res["output_mismatches"] == 0 and res["weight_mismatches"] == 0 and not hw.stats.get("timed_out"),
        "accuracy": acc[-1] if acc else None, "test_accuracy": test_acc[-1] if test_acc else None,
        "hw_inference_test_accuracy": hw_test,
        "converged_epoch": converged,
        "history": {"accuracy": acc, "test_accuracy": test_acc},
        "cycles_per_sample": cps if cps is not None else busy,
        "busy_cycles_per_sample": busy,
        "cycles_per_sample_manifest": training.cycles_per_train_sample,
        "cycles_per_infer_sample_manifest": training.cycles_per_infer_sample,
        "cycles": cycles, "readback_cycles": int(hw.stats.get("dump_cycles", 0)),
        "readbacks": res["readbacks"], "readbacks_with_mismatch": res["readbacks_with_mismatch"],
        "every_sample": bool(every_sample), "stall": stall, "seed": seed,
        "timed_out": bool(hw.stats.get("timed_out", 0)),
        "first_output_mismatch": res["first_output_mismatch"],
        "first_weight_mismatch": res["first_weight_mismatch"],
        "outputs_received": res["outputs_received"],
        "build_seconds": round(hw.build.seconds, 3), "build_cached": hw.build.cached,
        "run_seconds": round(hw.run_seconds, 3), "sim_seconds": hw.sim_seconds,
        "spec_seconds": round(spec_seconds, 3),
        "cycles_per_second": cycles / hw.sim_seconds if hw.sim_seconds else None,
        "sizes": q.sizes, "parallel": list(manifest.parallel), "train_spec": training.spec,
    }
    if inject is not None:
        summary["injected"] = {"after_samples": inject.after, **locate(training.address_map, inject.address),
                               "bit": inject.bit, "done": bool(hw.stats.get("injected", 0))}
    return summary
