"""Per-block cocotb benches, run by pytest through cocotb's Python runner.

The pattern (see ``test_blocks.py`` + ``tb_mac.py``):

* ``tb_<block>.py`` holds the cocotb tests; the simulator imports it, so it
  must not import pytest. Parameters reach it through environment variables;
  the clock, reset and parameter set-up they share is ``bench.py``.
* ``test_<block>.py`` builds the Amaranth component to Verilog and calls the
  ``cocotb_bench`` fixture, parametrised over the simulators (missing ones are
  skipped with the install hint).
* Builds go to ``rtl_tests/sim_build/<name>/sim_<simulator>/`` (one folder per
  simulator, kept between runs; delete it to force a rebuild).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bp_hw.cosim.runner import TIMESCALE, block_build_args, cocotb_runner
from bp_hw.cosim.tools import find_simulator
from bp_hw.errors import BpHwError
from bp_hw.fileio import write_text

HERE = Path(__file__).resolve().parent
SIM_BUILD = HERE / "sim_build"
# The simulator's embedded Python gets this process's sys.path: make tb_*.py importable.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture(params=["verilator", "icarus"])
def simulator(request) -> str:
    try:
        find_simulator(request.param)
    except BpHwError as exc:
        pytest.skip(f"{request.param} unavailable: {exc}")
    return request.param


@pytest.fixture
def cocotb_bench(simulator):
    """``run(verilog_text, toplevel, test_module, env={})``: build (cached) and run a cocotb bench."""

    def run(verilog: str, toplevel: str, test_module: str, env: dict[str, str] | None = None,
            waves: bool = False) -> None:
        from cocotb_tools.check_results import get_results  # noqa: PLC0415

        block_dir = SIM_BUILD / toplevel
        block_dir.mkdir(parents=True, exist_ok=True)
        source = block_dir / f"{toplevel}.v"
        if not source.is_file() or source.read_text() != verilog:
            write_text(source, verilog)
        build_dir = block_dir / f"sim_{simulator}"
        runner = cocotb_runner(simulator, public=True)
        runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir, timescale=TIMESCALE,
                     build_args=block_build_args(simulator), waves=waves,
                     log_file=block_dir / f"build_{simulator}.log")
        test_dir = build_dir / f"run_{os.getpid()}"
        try:
            results = runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                                  build_dir=build_dir, test_dir=test_dir, extra_env=env or {},
                                  timescale=TIMESCALE, waves=waves)
        except SystemExit:  # cocotb's runner exits when a test failed; the log above says which and why
            raise AssertionError(f"cocotb tests failed in {test_module} ({test_dir})") from None
        n_tests, n_failed = get_results(Path(results))
        assert n_tests > 0 and n_failed == 0, f"{n_failed} of {n_tests} cocotb tests failed ({results})"

    return run
