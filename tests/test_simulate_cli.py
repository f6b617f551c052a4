"""``bp-hw simulate`` on the iris 4-8-3 Q4.12 design: clean runs, a corrupted design, user errors.

The designs are trained, quantized and generated once per session (shared by
xdist workers through a lock); each simulator build is cached in its folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bp_hw.cli import main
from bp_hw.cosim.tools import verilator_fst_problem
from bp_hw.fixed.qmodel import QModel
from bp_hw.plan.manifest import read_manifest
from fixtures.simulators import cheapest_simulator, need

pytestmark = pytest.mark.slow
SIMULATORS = ["verilator", "icarus"]
#: Random vectors per run (Icarus is ~40x slower; the full 10k figures are in BENCHMARKS.md).
RANDOM = {"verilator": 3000, "icarus": 200}


@pytest.fixture(scope="session")
def iris_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    root = root / "simulate_iris"
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "b3" / "manifest.json").is_file():
            for argv in (["train", "--data", "iris", "--out", str(root / "m.npz")],
                         ["quantize", str(root / "m.npz"), "--data", "iris", "--format", "Q4.12",
                          "--out", str(root / "q.json")],
                         ["generate", str(root / "q.json"), "--parallel", "1", "--out", str(root / "b1")],
                         ["generate", str(root / "q.json"), "--parallel", "8,3", "--out", str(root / "b2")],
                         ["generate", str(root / "q.json"), "--parallel", "32,24", "--out", str(root / "b3")]):
                assert main(argv + ["--json"]) == 0, argv
    return root


def simulate(capsys, *argv) -> tuple[int, dict, str]:
    capsys.readouterr()
    status = main(["simulate", *map(str, argv), "--json"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1, out  # --json: exactly one object on stdout
    return status, json.loads(lines[0]), err


@pytest.mark.parametrize("stall", [0.0, 0.3])
@pytest.mark.parametrize("build", ["b1", "b2", "b3"], ids=["P1", "P8,3", "P32,24"])
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_iris_matches_integer_model(iris_root, capsys, simulator, build, stall):
    need(simulator)
    b = iris_root / build
    status, s, err = simulate(capsys, b, "--data", "iris", "--simulator", simulator, "--stall", stall)
    assert status == 0, err
    assert s["ok"] and s["vectors"] == 150 and s["mismatches"] == 0 and s["tap_mismatches"] == 0
    for key in ("simulator", "vectors", "mismatches", "cycles_per_inference", "verified_per_second",
                "build_seconds", "latency_cycles", "stall"):
        assert key in s
    manifest = read_manifest(b)
    assert s["parallel"] == manifest.parallel
    if stall == 0:
        assert s["latency_cycles"] == manifest.latency_cycles
    status, s, err = simulate(capsys, b, "--data", "random", "--vectors", RANDOM[simulator],
                              "--simulator", simulator, "--stall", stall, "--seed", 3)
    assert status == 0, err
    assert s["vectors"] == RANDOM[simulator] and s["mismatches"] == 0 and s["build_cached"]
    if stall == 0:
        # the plan's timing: the first output after the standalone latency, then one per interval
        n = s["vectors"]
        assert s["cycles"] == manifest.standalone_latency_cycles + manifest.interval_cycles * (n - 1)
        assert s["cycles_per_inference"] == pytest.approx(s["cycles"] / n, abs=1e-3)
    else:
        assert s["cycles_per_inference"] > manifest.interval_cycles


def _corrupt_word(verilog: Path, module: str, memory: str, word: int, flip: int) -> None:
    """Flip bits of one ROM word that Amaranth inlined as ``<memory>[<word>] = W'hXXXX;`` in *module*."""
    text = verilog.read_text()
    start = text.index(f"module \\{module} ")
    end = text.index("endmodule", start)
    pattern = re.compile(rf"(\b{re.escape(memory)}\[{word}\] = (\d+)'h)([0-9a-fA-F]+);")
    m = pattern.search(text, start, end)
    assert m, f"no {memory}[{word}] in {module}"
    value = int(m.group(3), 16) ^ flip
    digits = len(m.group(3))
    text = text[:m.start()] + f"{m.group(1)}{value:0{digits}x};" + text[m.end():]
    verilog.write_text(text)


def _corrupted_copy(iris_root: Path, tmp_path: Path, module: str, memory: str, word: int, flip: int) -> Path:
    bad = tmp_path / "bad"
    shutil.copytree(iris_root / "b1", bad, ignore=shutil.ignore_patterns("sim_*", ".sim_*", "mismatch_*"))
    _corrupt_word(bad / "q.v", module, memory, word, flip)
    return bad


def test_corrupted_weight_is_caught_at_its_layer_and_neuron(iris_root, tmp_path, capsys):
    sim = cheapest_simulator()
    # Layer 1 at P=1: weight ROM word g * 8 + c holds W1[neuron g, input c]; break W1[2, 3].
    bad = _corrupted_copy(iris_root, tmp_path, "q.layer1", "wrom0", 2 * 8 + 3, 0x0400)
    status, s, err = simulate(capsys, bad, "--data", "iris", "--simulator", sim)
    assert status == 1, err
    first = s["first_mismatch"]
    assert not s["ok"] and s["mismatches"] > 0
    assert (first["layer"], first["neuron"]) == (1, 2)
    assert first["element"] == 2 and first["expected"][2] != first["got"][2]
    assert first["tap_expected_hex"] != first["tap_got_hex"]
    assert first["tap_got_real"] == pytest.approx(first["tap_got"] / 4096)
    # The integer model agrees about which vectors the broken weight shows in.
    q = QModel.load(iris_root / "q.json")
    assert first["vector"] == first["tap_vector"]
    assert Path(s["waves"]).is_file() and Path(s["waves"]).stat().st_size > 0
    assert s["reproduced_alone"] is True
    assert q.layers[1].weights[2, 3] != 0
    # The human report names the same place and says exit 1.
    capsys.readouterr()
    assert main(["simulate", str(bad), "--data", "iris", "--simulator", sim]) == 1
    out = capsys.readouterr().out
    assert "layer 1, neuron 2" in out and f"first failing vector {first['vector']}" in out


def test_corrupted_lut_word_is_caught_in_layer0(iris_root, tmp_path, capsys):
    sim = cheapest_simulator()
    q = QModel.load(iris_root / "q.json")
    from bp_hw.data import load_dataset
    x, _ = q.quantize_inputs(load_dataset("iris").X)
    _, traces = q.predict(x, trace=True)
    index = np.asarray(traces[0]["index"])
    lut = q.layers[0].lut
    assert lut is not None and not lut.symmetric and not lut.interpolate  # ROM word == LUT index
    word = int(index[0, 3])
    hits = np.argwhere(index == word)  # (vector, neuron) in row-major order: the first is reported
    bad = _corrupted_copy(iris_root, tmp_path, "q.layer0.act0", "rom", word, 0x0001)
    status, s, err = simulate(capsys, bad, "--data", "iris", "--simulator", sim)
    assert status == 1, err
    first = s["first_mismatch"]
    assert (first["layer"], first["tap_vector"], first["neuron"]) == (0, int(hits[0][0]), int(hits[0][1]))
    assert first["tap_got"] - first["tap_expected"] in (1, -1)
    assert first["model"]["index"] == word


def test_clean_run_waveform_and_fst_fallback(iris_root, tmp_path, capsys):
    need("verilator")
    waves = tmp_path / "v0.fst"
    status, s, err = simulate(capsys, iris_root / "b1", "--data", "iris", "--vectors", 20, "--waves", waves)
    assert status == 0, err
    written = Path(s["waves"])
    assert written.is_file() and written.stat().st_size > 0
    if verilator_fst_problem():
        assert written.suffix == ".vcd" and "VCD" in s["waves_note"]
        assert "o__payload" in written.read_text(errors="replace")


def test_data_cycled_and_random_defaults(iris_root, capsys):
    sim = cheapest_simulator()
    status, s, _ = simulate(capsys, iris_root / "b2", "--data", "iris", "--vectors", 400, "--simulator", sim)
    assert status == 0 and s["vectors"] == 400
    status, s, _ = simulate(capsys, iris_root / "b2", "--data", str(_iris_csv(iris_root)), "--simulator", sim)
    assert status == 0 and s["vectors"] == 150


def _iris_csv(root: Path) -> Path:
    from bp_hw.data import load_dataset
    ds = load_dataset("iris")
    path = root / "iris_copy.csv"
    if not path.is_file():
        rows = [",".join([*(repr(float(v)) for v in x), str(int(y))]) for x, y in zip(ds.X, ds.y)]
        path.write_text("\n".join(rows) + "\n")
    return path


def _cli(*argv, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bp_hw.cli", "simulate", *map(str, argv)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_missing_simulator_is_one_line_and_exit_2(iris_root, tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no iverilog, vvp, make or compiler
    env.pop("VERILATOR_ROOT", None)
    proc = _cli(iris_root / "b1", "--simulator", "icarus", env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "install" in lines[0] and "iverilog" in lines[0], proc.stderr


@pytest.mark.parametrize("args,message", [
    (["--data", "xor"], "features"),
    (["--stall", "1.0"], "stall"),
    (["--vectors", "0"], "vectors"),
    (["--data", "nope.csv"], "not found"),
    (["--waves", "x.ghw"], ".fst or .vcd"),
])
def test_user_errors_exit_2(iris_root, args, message):
    proc = _cli(iris_root / "b1", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_missing_build_folder_exit_2(tmp_path):
    proc = _cli(tmp_path / "nothing")
    assert proc.returncode == 2 and "generate" in proc.stderr


def test_missing_build_folder_message_names_the_folder_given(tmp_path, capsys):
    # It said "no manifest.json in /" for `bp-hw simulate /nonexistent`.
    missing, empty = tmp_path / "nothing", tmp_path
    for given, expected in [(missing, f"{missing} does not exist"), (empty, f"no manifest.json in {empty}")]:
        assert main(["simulate", str(given)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and expected in err and "bp-hw generate" in err, err
