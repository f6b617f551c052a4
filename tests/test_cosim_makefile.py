"""The cocotb Makefile flow (sim/Makefile) on a toy DUT, with Icarus (cheap to build)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bp_hw.cosim import toy
from bp_hw.cosim.tools import find_simulator
from bp_hw.errors import BpHwError

pytestmark = pytest.mark.slow
SIM_DIR = Path(__file__).resolve().parent.parent / "sim"


def test_make_flow_checks_outputs(tmp_path):
    try:
        find_simulator("icarus")
    except BpHwError as exc:
        pytest.skip(str(exc))
    if shutil.which("make") is None or shutil.which("cocotb-config") is None:
        pytest.skip("make or cocotb-config not on PATH")
    coeffs = toy.random_coeffs(3, 4, seed=1)
    build = toy.emit_toy(toy.PipelineToy(coeffs, latency=2), tmp_path / "build")
    x = toy.random_inputs(200, 4, 16, seed=2)
    y = toy.toy_expected(coeffs, x, 16)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    y[7, 2] ^= 1
    np.save(tmp_path / "bad.npy", y)

    def make(expected):
        return subprocess.run(["make", "-s", "-C", str(SIM_DIR), "SIM=icarus", f"BUILD={build}",
                               f"INPUTS={tmp_path / 'x.npy'}", f"EXPECTED={expected}", "STALL=0.3",
                               f"PYTHON={sys.executable}", "check"],
                              capture_output=True, text=True, timeout=600)

    good = make(tmp_path / "y.npy")
    assert good.returncode == 0, good.stdout[-2000:] + good.stderr[-2000:]
    assert "200 vectors, all outputs match" in good.stdout
    bad = make(tmp_path / "bad.npy")
    assert bad.returncode != 0
    assert "first at vector 7 element 2" in bad.stdout
