"""Verify a generated design against its integer model: the engine behind ``bp-hw simulate``.

:func:`verify` builds the design once (timed separately), streams the input
vectors through it in batches (so that long runs can report progress), and
compares every output and every per-layer tap with
:meth:`bp_hw.fixed.qmodel.QModel.predict` in bulk. A failure is pinned to the
first vector whose output differs and to the earliest layer and neuron where
the hardware's tap departs from the integer model (:class:`Mismatch`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from bp_hw.cosim.check import compare_arrays, compare_outputs, first_tap_mismatch
from bp_hw.cosim.runner import build, manifest_of, run_one_with_waves, run_vectors
from bp_hw.cosim.tools import find_simulator, verilator_fst_problem
from bp_hw.errors import BpHwError
from bp_hw.fixed.qformat import QFormat
from bp_hw.fixed.qmodel import QModel
from bp_hw.plan.manifest import Manifest, load_qmodel

#: First batch size per simulator; later batches aim at BATCH_SECONDS each.
FIRST_BATCH = {"verilator": 50_000, "icarus": 500}
BATCH_SECONDS = 5.0


def load_spec(manifest: Manifest) -> QModel:
    """The quantized model the manifest names (digest checked), refusing training builds."""
    if manifest.is_training:
        raise BpHwError(f"{manifest.build_dir} holds a training design (generate --train): "
                        "check it with `bp-hw simulate BUILD --train`")
    if not manifest.qmodel:
        raise BpHwError(f"{manifest.build_dir}/manifest.json names no quantized model to check against")
    q = load_qmodel(manifest)
    if q.sizes[0] != manifest.inp.vector_elements or q.sizes[-1] != manifest.out.vector_elements:
        raise BpHwError(f"the quantized model ({q.sizes}) does not match the design's ports "
                        f"({manifest.inp.vector_elements} in, {manifest.out.vector_elements} out)")
    return q


def random_vectors(fmt: QFormat, n: int, n_in: int, seed: int) -> np.ndarray:
    """``n`` vectors of uniformly random integers over the whole input format."""
    return np.random.default_rng(seed).integers(fmt.min_int, fmt.max_int + 1, size=(n, n_in), dtype=np.int64)


@dataclass
class Mismatch:
    """Where the first failure is, with the values a user needs to debug it."""

    vector: int                      # index of the first vector whose output differs (or is missing)
    inputs: list[int]
    expected: list[int] | None       # expected output row
    got: list[int] | None            # received output row (None: missing)
    element: int | None              # first differing output element
    layer: int | None = None         # earliest layer whose tap differs
    neuron: int | None = None
    tap_vector: int | None = None    # vector at which that tap first differs
    tap_expected: int | None = None
    tap_got: int | None = None
    tap_format: str | None = None
    model: dict = field(default_factory=dict)  # integer-model intermediates of that neuron

    def to_json(self, in_fmt: QFormat, out_fmt: QFormat) -> dict:
        d = {"vector": self.vector, "inputs": self.inputs, "inputs_hex": in_fmt.to_hex(self.inputs),
             "inputs_real": in_fmt.to_float(self.inputs).tolist(), "element": self.element,
             "expected": self.expected, "got": self.got}
        if self.expected is not None:
            d.update(expected_hex=out_fmt.to_hex(self.expected), expected_real=out_fmt.to_float(self.expected).tolist())
        if self.got is not None:
            d.update(got_hex=out_fmt.to_hex(self.got), got_real=out_fmt.to_float(self.got).tolist())
        if self.layer is not None:
            fmt = QFormat.parse(self.tap_format)
            d.update(layer=self.layer, neuron=self.neuron, tap_vector=self.tap_vector,
                     tap_format=self.tap_format, tap_expected=self.tap_expected, tap_got=self.tap_got,
                     tap_expected_hex=fmt.to_hex([self.tap_expected])[0],
                     tap_got_hex=fmt.to_hex([self.tap_got])[0],
                     tap_expected_real=float(fmt.to_float(self.tap_expected)),
                     tap_got_real=float(fmt.to_float(self.tap_got)), model=self.model)
        return d


@dataclass
class Verification:
    """The outcome of :func:`verify` (``ok`` only if every output and tap matched)."""

    #: Fewer vectors than this verify in less time than the simulator takes to start: no rate is given.
    MIN_RATE_VECTORS: ClassVar[int] = 10_000

    simulator: str
    simulator_version: str
    design: str
    vectors: int
    mismatches: int        # vectors whose output differs or never came
    missing: int
    extra: int
    tap_mismatches: int    # vectors where some tap differs (a fault the outputs may hide)
    timed_out: bool
    stall: float
    seed: int
    cycles: int
    latency_cycles: int | None
    build_seconds: float
    build_cached: bool
    run_seconds: float     # cocotb runs (start-up included)
    sim_seconds: float     # inside the simulator
    verify_seconds: float  # run + compare, build excluded
    batches: int
    hints: list[str]
    first: Mismatch | None

    @property
    def ok(self) -> bool:
        return (self.mismatches == 0 and self.extra == 0 and self.tap_mismatches == 0
                and not self.timed_out)

    @property
    def cycles_per_inference(self) -> float | None:
        return self.cycles / self.vectors if self.vectors else None

    @property
    def verified_per_second(self) -> float | None:
        """Vectors per second of the whole verification; None below :attr:`MIN_RATE_VECTORS`."""
        if self.vectors < self.MIN_RATE_VECTORS:
            return None
        return self.vectors / self.verify_seconds if self.verify_seconds > 0 else float("inf")

    @property
    def sim_cycles_per_second(self) -> float | None:
        """Clock cycles simulated per second inside the simulator (None when not measured)."""
        return self.cycles / self.sim_seconds if self.sim_seconds > 0 else None

    @property
    def startup_seconds(self) -> float | None:
        """Time the simulator runs took outside the simulation: start-up and shut-down."""
        return max(0.0, self.run_seconds - self.sim_seconds) if self.sim_seconds > 0 else None


def _locate(q, traces, offset: int, result, first: Mismatch, order: list[tuple[str, int]],
            expected_taps: dict) -> None:
    """Fill in the layer/neuron of the earliest tap that differs from the integer model."""
    hit = first_tap_mismatch(expected_taps, result, order=[name for name, _ in order])
    if hit is None:
        return
    name, vector, element = hit
    layer = dict(order)[name]
    first.layer, first.neuron, first.tap_vector = layer, element, offset + vector
    first.tap_format = q.layers[layer].out_fmt.name
    exp = expected_taps[name]
    if element is not None and vector < len(exp):
        first.tap_expected = int(exp[vector, element])
        got = result.taps[name]
        first.tap_got = int(got[vector, element]) if vector < len(got) else None
        trace = traces[layer]
        first.model = {key: int(np.asarray(trace[key])[offset + vector, element])
                       for key in ("acc", "z", "index") if trace.get(key) is not None}
    if first.tap_got is None:
        first.neuron = None


def verify(build_dir: str | Path | Manifest, inputs: np.ndarray, simulator: str = "verilator", *, stall: float = 0.0,
           seed: int = 0, batch: int | None = None,
           on_progress: Callable[[int, int], None] | None = None,
           on_stage: Callable[[str], None] | None = None) -> Verification:
    """Stream *inputs* (integers, (n, n_in)) through the design and check them against its spec."""
    say = on_stage or (lambda _msg: None)
    manifest = manifest_of(build_dir)
    q = load_spec(manifest)
    info = find_simulator(simulator)
    inputs = np.asarray(inputs, dtype=np.int64)
    n = len(inputs)
    if n == 0:
        raise BpHwError("no input vectors to simulate")

    say(f"building {manifest.toplevel} for {simulator} {info.version_string}")
    binfo = build(manifest, simulator)
    say(f"build {'reused' if binfo.cached else f'took {binfo.seconds:.1f} s'} ({binfo.sim_dir})")

    start = time.perf_counter()
    expected, traces = q.predict(inputs, trace=True)
    # the generator writes one tap per layer, in layer order (HardwarePlan.tap_layouts)
    order = [(tap.name, k) for k, tap in enumerate(manifest.taps)]
    mismatches = missing = extra = tap_bad = 0
    timed_out = False
    cycles = 0
    latency = None
    run_seconds = sim_seconds = 0.0
    hints: list[str] = []
    first: Mismatch | None = None
    done = batches = 0
    size = batch or FIRST_BATCH.get(simulator, 1000)
    while done < n:
        lo, hi = done, min(n, done + size)
        t0 = time.perf_counter()
        result = run_vectors(manifest, inputs[lo:hi], simulator, stall=stall, seed=seed + batches)
        report = compare_outputs(expected[lo:hi], result)
        expected_taps = {name: traces[layer]["out"][lo:hi] for name, layer in order}
        tap_reports = {name: compare_arrays(expected_taps[name], result.taps[name],
                                            unknown=result.tap_unknown.get(name))
                       for name, _ in order if name in result.taps}
        bad_taps = np.zeros(hi - lo, bool)
        for rep in tap_reports.values():
            bad_taps[rep.mismatched] = True
            if rep.missing or rep.extra:
                bad_taps[min(rep.n_received, rep.n_expected) :] = True
        mismatches += report.n_mismatches
        missing += report.missing
        extra += report.extra
        tap_bad += int(bad_taps.sum())
        timed_out |= report.timed_out
        cycles += result.cycles
        run_seconds += result.run_seconds
        sim_seconds += result.sim_seconds or 0.0
        if latency is None:
            latency = result.latency_cycles
        if first is None and (not report.ok or bad_taps.any()):
            hints = list(report.hints)
            if report.first_mismatch is not None:
                i = report.first_mismatch
                got = result.outputs[i].tolist() if i < len(result.outputs) else None
                first = Mismatch(vector=lo + i, inputs=inputs[lo + i].tolist(),
                                 expected=expected[lo + i].tolist(), got=got, element=report.first_element)
            else:
                i = int(np.flatnonzero(bad_taps)[0]) if bad_taps.any() else 0
                first = Mismatch(vector=lo + i, inputs=inputs[lo + i].tolist(),
                                 expected=expected[lo + i].tolist(), got=result.outputs[i].tolist()
                                 if i < len(result.outputs) else None, element=None)
            _locate(q, traces, lo, result, first, order, expected_taps)
        done = hi
        batches += 1
        if on_progress:
            on_progress(done, n)
        if batch is None:
            elapsed = time.perf_counter() - t0
            rate = (hi - lo) / elapsed if elapsed > 0 else size
            size = max(100, int(rate * BATCH_SECONDS))
    verify_seconds = time.perf_counter() - start
    return Verification(
        simulator=simulator, simulator_version=info.version_string, design=manifest.toplevel, vectors=n,
        mismatches=mismatches, missing=missing, extra=extra, tap_mismatches=tap_bad, timed_out=timed_out,
        stall=stall, seed=seed, cycles=cycles, latency_cycles=latency, build_seconds=binfo.seconds,
        build_cached=binfo.cached, run_seconds=run_seconds, sim_seconds=sim_seconds,
        verify_seconds=verify_seconds, batches=batches, hints=hints, first=first)


def waves_target(requested: str | Path | None, default: Path, simulator: str) -> tuple[Path, str | None]:
    """The waveform file to write and, when FST cannot be written here, why it became VCD."""
    path = Path(requested) if requested else default
    if path.suffix.lower() not in (".fst", ".vcd"):
        raise BpHwError(f"waveform file {path}: use a .fst or .vcd file name")
    if simulator == "verilator" and path.suffix.lower() == ".fst":
        problem = verilator_fst_problem()
        if problem:
            return path.with_suffix(".vcd"), f"FST is unavailable with Verilator here ({problem}); wrote VCD"
    return path, None


def dump_vector(build_dir: str | Path | Manifest, vector, waves: Path, simulator: str, *, stall: float = 0.0,
                seed: int = 0):
    """Run one vector alone with a waveform dump; return the run's :class:`SimResult`."""
    return run_one_with_waves(build_dir, np.asarray(vector, dtype=np.int64), waves, simulator,
                              stall=stall, seed=seed)


__all__ = ["Mismatch", "Verification", "verify", "load_spec", "random_vectors", "waves_target", "dump_vector"]
