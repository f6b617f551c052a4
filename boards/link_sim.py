"""UART-level simulation of a board: the board top's link and network in Verilator, the host on a pty.

:func:`build_link` emits the gateware between the board's UART pins and the network
(:class:`~bp_hw.boards.uart_wrapper.NetworkUART` around the build's network behind its
:class:`~bp_hw.boards.crossing.NetworkCrossing`, in the board top's two clocks, with the UART divisor
and idle timeout the board top would use at its clocks and baud rate) as Verilog and compiles it
with the cocotb bench :mod:`bp_hw.boards.tb_link`. :func:`run_link` runs one session: the bench
starts ``bp-hw run`` on a pseudo-terminal, carries its bytes bit by bit over the simulated serial
lines (optionally with faults injected) and returns what both ends saw, including samples per second
of simulated time against the bound the line sets.

What is not simulated: the PLL and the power-on reset (the bench drives ``rst`` and ``net_rst``), the
I/O buffers.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog

from bp_hw.errors import BpHwError
from bp_hw.plan.boards import board as lookup_board
from bp_hw.plan.manifest import read_manifest

from .frame import INFO, LOAD, READ, SYNC_REQUEST, TRAIN, WRITE, FrameSpec, TrainFrameSpec
from .tb_link import FAULTS, PERIOD_PS
from .train_wrapper import TrainUART
from .crossing import NetworkCrossing, TrainCrossing
from .top import link_clock
from .uart_wrapper import NetworkUART

__all__ = ["LinkBuild", "build_link", "run_link", "FAULTS"]

TOPLEVEL = "link_top"
#: The only signals the bench touches are the top's ports.
PORTS = ("clk", "rst", "rx", "tx", "frame_error")
#: ... and the network's clock and reset behind a NetworkCrossing.
NETWORK_CLOCK_PORTS = ("net_clk", "net_rst")


def verilator_control(names) -> str:
    """A Verilator configuration that makes ``names`` (and nothing else) of the top visible to VPI."""
    return "`verilator_config\n" + "".join(f'public_flat_rw -module "{TOPLEVEL}" -var "{name}"\n' for name in names)


@dataclass(frozen=True)
class LinkBuild:
    build_dir: Path
    sim_dir: Path
    spec: FrameSpec | TrainFrameSpec
    board: str
    f_sync: float
    f_link: float
    baud: int
    divisor: int
    idle_timeout: int


def build_link(build_dir: str | Path, board: str = "icebreaker", baud: int = 3_000_000,
               clock_mhz: float | None = None) -> LinkBuild:
    """Emit and compile the link of ``build_dir``'s network for ``board`` at ``baud`` (Verilator)."""
    from bp_hw.cosim.primitives import primitive_models
    from bp_hw.cosim.runner import block_build_args, cocotb_runner, quiet_runner_logs, log_tail
    from bp_hw.cosim.tools import find_simulator
    from bp_hw.synth import load_network

    build_dir = Path(build_dir).resolve()
    manifest = read_manifest(build_dir)
    target = lookup_board(board)
    network = load_network(manifest, source="amaranth")
    clock = link_clock(target, (target.default_mhz if clock_mhz is None else clock_mhz) * 1e6, baud)
    if manifest.is_training:
        spec = TrainFrameSpec.from_manifest(manifest)
        link = TrainUART(TrainCrossing(network), spec, clock.divisor, clock.idle_timeout)
    else:
        spec = FrameSpec.from_manifest(manifest)
        link = NetworkUART(NetworkCrossing(network), spec, clock.divisor, clock.idle_timeout)
    sim_dir = build_dir / f"link_{board}_{baud}"
    find_simulator("verilator")
    text = verilog.convert(link, name=TOPLEVEL, emit_src=False)
    if sim_dir.exists():
        shutil.rmtree(sim_dir)
    sim_dir.mkdir(parents=True)
    (sim_dir / f"{TOPLEVEL}.vlt").write_text(verilator_control(PORTS + NETWORK_CLOCK_PORTS))
    (sim_dir / f"{TOPLEVEL}.v").write_text(text)
    sources = [sim_dir / f"{TOPLEVEL}.vlt", sim_dir / f"{TOPLEVEL}.v"]
    models = primitive_models(manifest)
    if models:
        (sim_dir / "primitives.v").write_text(models)
        sources.append(sim_dir / "primitives.v")
    quiet_runner_logs()
    log_file = sim_dir / "build.log"
    try:
        cocotb_runner("verilator").build(
            sources=sources, hdl_toplevel=TOPLEVEL, build_dir=sim_dir, timescale=("1ps", "1ps"),
            build_args=block_build_args("verilator"), always=True, log_file=log_file)
    except (RuntimeError, SystemExit) as exc:
        raise BpHwError(f"verilator build of the link failed ({exc}); see {log_file}:\n{log_tail(log_file)}") from None
    return LinkBuild(build_dir, sim_dir, spec, board, clock.f_sync, clock.f_link, clock.baud, clock.divisor,
                     clock.idle_timeout)


def run_link(link: LinkBuild, data: str, *, limit: int | None = None, fault: str | None = None,
             fault_every: int = 200, fault_count: int = 10, seed: int = 0, timeout: float = 5.0,
             host_args: tuple[str, ...] = (), host_build: str | Path | None = None) -> dict:
    """One session: ``bp-hw run --data DATA`` against the simulated board. Returns the bench's counts,
    the host's summary (``host``), and ``samples_per_s`` / ``line_bound_samples_per_s`` in the board's
    time (cycles of the link clock ``f_link``), from the first request byte to the last response byte. A training build
    runs ``bp-hw run --train`` (give ``--epochs`` in ``host_args``). ``host_build``
    gives the host another build folder than the simulated one (to see a wrong model caught)."""
    from bp_hw.cosim.runner import cocotb_runner, quiet_runner_logs

    if fault is not None and fault not in FAULTS:
        raise BpHwError(f"unknown fault {fault!r}; use one of {', '.join(FAULTS)}")
    run_dir = link.sim_dir / f"run_{fault or 'clean'}_{seed}"
    run_dir.mkdir(exist_ok=True)
    result = run_dir / "result.json"
    result.unlink(missing_ok=True)
    host_dir = Path(host_build).resolve() if host_build is not None else link.build_dir
    host = [sys.executable, "-m", "bp_hw.cli", "run", "--build", str(host_dir), "--data", data,
            "--baud", str(link.baud), "--timeout", str(timeout), "--json", *host_args]
    if limit is not None:
        host += ["--limit", str(limit)]
    spec = link.spec
    if isinstance(spec, TrainFrameSpec):
        lengths = {SYNC_REQUEST: spec.infer_length, TRAIN: spec.request_length, READ: 7, INFO: 1}
        counted = {WRITE: (4, 7, spec.param_bytes)}
    else:
        lengths = {SYNC_REQUEST: spec.request_length, INFO: 1}
        counted = {LOAD: (5, 8, spec.load_bytes)}
    # The network's clock in its ratio to the link's (the bench's link period is PERIOD_PS).
    net_period = 2 * round(PERIOD_PS * link.f_link / link.f_sync / 2)
    config = {"divisor": link.divisor, "idle_timeout": link.idle_timeout, "rx_fifo": spec.rx_fifo,
              "net_period_ps": net_period,
              "lengths": lengths, "counted": counted, "response_length": spec.response_length, "host": host, "host_log": str(run_dir / "host.log"),
              "result": str(result), "fault": fault, "fault_every": fault_every, "fault_count": fault_count,
              "seed": seed}
    (run_dir / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    quiet_runner_logs()
    start = time.perf_counter()
    cocotb_runner("verilator").test(
        test_module="bp_hw.boards.tb_link", hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog",
        build_dir=link.sim_dir, test_dir=run_dir, timescale=("1ps", "1ps"), results_xml=str(run_dir / "results.xml"),
        extra_env={"BP_HW_LINK_CONFIG": str(run_dir / "config.json"),
                   "PYTHONPATH": os.pathsep.join(sys.path)}, log_file=run_dir / "sim.log")
    if not result.is_file():
        raise BpHwError(f"the link simulation wrote no result; see {run_dir / 'sim.log'}")
    out = json.loads(result.read_text())
    out["wall_seconds"] = round(time.perf_counter() - start, 1)
    first, last = out["first_request_cycle"], out["last_response_cycle"]
    host_summary = out.get("host") or {}
    samples = host_summary.get("samples", 0)
    if first is not None and last is not None and last > first and samples:
        out["samples_per_s"] = round(samples * link.f_link / (last - first), 1)
    out["line_bound_samples_per_s"] = round(link.spec.line_bound(link.baud), 1)
    out.update(board=link.board, baud=link.baud, f_sync=link.f_sync, f_link=link.f_link, divisor=link.divisor,
               fault=fault)
    return out
