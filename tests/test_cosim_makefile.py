"""The cocotb Makefile flow (sim/Makefile) on a generated network, with Icarus (cheap to build)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bp_hw.cosim.tools import find_simulator
from bp_hw.cosim.verify import random_vectors
from bp_hw.errors import BpHwError
from bp_hw.hdl.emit import generate
from bp_hw.train_start import seeded_qmodel

pytestmark = pytest.mark.slow
SIM_DIR = Path(__file__).resolve().parent.parent / "sim"


def test_make_flow_checks_outputs(tmp_path):
    try:
        find_simulator("icarus")
    except BpHwError as exc:
        pytest.skip(str(exc))
    if shutil.which("make") is None or shutil.which("cocotb-config") is None:
        pytest.skip("make or cocotb-config not on PATH")
    q, _, _ = seeded_qmodel("iris", [4, 5, 3], seed=1)
    build = tmp_path / "build"
    generate(q, "20,15", build)
    x = random_vectors(q.input_fmt, 200, 4, seed=2)
    y = q.predict(x)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    y[7, 2] ^= 1  # the checker must fail on a corrupted expectation
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


def test_make_flow_refuses_a_training_build(tmp_path):
    from bp_hw.cosim.makeflow import main
    q, _, _ = seeded_qmodel("xor", [2, 2, 1])
    generate(q, 1, tmp_path / "train", train=True)
    assert main(["prepare", "--build", str(tmp_path / "train"), "--sim", "icarus", "--out", str(tmp_path / "o")]) == 2
