"""On-chip training in Verilog co-simulation (Verilator, Icarus) against the fixed-point trainer, bit for bit.

Each design is generated and compiled once per module; runs are a few epochs
(the full xor and iris runs are in ``benchmarks/bench_train_cosim.py``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bp_hw.cosim.train_harness import TrainPorts, pack_samples
from bp_hw.cosim.train_run import add_train_arguments, locate, run_train_command, run_training_cosim
from bp_hw.cosim.tools import find_simulator
from bp_hw.errors import BpHwError
from bp_hw.fixed.qmodel import QModel
from bp_hw.fixed.trainer import TrainSpec
from bp_hw.hdl.emit import generate
from bp_hw.hdl.train_sim import flat_params

from test_fixed_trainer import initial_qmodel

pytestmark = pytest.mark.slow


def need(simulator: str) -> None:
    try:
        find_simulator(simulator)
    except BpHwError as exc:
        pytest.skip(f"{simulator} unavailable: {exc}")


def make_design(root: Path, data: str, layers, parallel=1, spec: TrainSpec | None = None) -> Path:
    q, _, _ = initial_qmodel(data, layers)
    root.mkdir(parents=True, exist_ok=True)
    q.save(root / "q.json")
    generate(root / "q.json", parallel, root / "build", train=spec or TrainSpec())
    return root / "build"


@pytest.fixture(scope="module")
def xor_build(tmp_path_factory):
    return make_design(tmp_path_factory.mktemp("xor"), "xor", [2, 4, 1])


@pytest.fixture(scope="module")
def iris_build(tmp_path_factory):
    return make_design(tmp_path_factory.mktemp("iris"), "iris", [4, 8, 3])


@pytest.fixture(scope="module")
def corrupted_xor_build(xor_build, tmp_path_factory):
    """A copy of the xor design whose weight RAM starts with bit 0 of W_0[1, 0] (address 2) flipped."""
    dst = tmp_path_factory.mktemp("xor_bad") / "build"
    shutil.copytree(xor_build, dst, ignore=shutil.ignore_patterns("sim_*", ".sim_*"))
    manifest = json.loads((dst / "manifest.json").read_text())
    verilog = dst / manifest["verilog"]
    text = verilog.read_text()
    q_word = int(flat_params(QModel.load(manifest["qmodel"]))[2])
    line = f"wram0[2] = 16'h{q_word & 0xFFFF:04x};"
    assert text.count(line) == 1, "the generator's RAM init changed shape; update this test"
    verilog.write_text(text.replace(line, f"wram0[2] = 16'h{(q_word ^ 1) & 0xFFFF:04x};"))
    return dst


def assert_exact(s: dict) -> None:
    assert s["output_mismatches"] == 0, s["first_output_mismatch"]
    assert s["weight_mismatches"] == 0, s["first_weight_mismatch"]
    assert s["ok"] and not s["timed_out"]


def test_xor_epochs_bit_exact_on_verilator(xor_build):
    need("verilator")
    s = run_training_cosim(xor_build, "xor", epochs=40)
    assert_exact(s)
    assert s["samples"] == 160 and s["inference_samples"] == 4 and s["outputs_received"] == 164
    assert s["readbacks"] == 40 + 2  # before the first sample, after every epoch, after the inference pass
    manifest = json.loads((xor_build / "manifest.json").read_text())
    assert s["cycles_per_sample"] == s["busy_cycles_per_sample"] == manifest["training"]["cycles_per_train_sample"]
    assert len(s["history"]["accuracy"]) == len(s["history"]["test_accuracy"]) == 40
    assert s["accuracy"] == s["history"]["accuracy"][-1]
    assert s["hw_inference_test_accuracy"] == s["test_accuracy"]
    json.dumps(s)  # JSON-able as it is


def test_iris_every_sample_with_stalls_on_verilator(iris_build):
    need("verilator")
    s = run_training_cosim(iris_build, "iris", epochs=2, stall=0.3, every_sample=True, seed=3)
    assert_exact(s)
    assert s["readbacks"] == 2 * 105 + 45 + 1
    assert s["cycles"] > 2 * 105 * s["cycles_per_sample_manifest"]


def test_parallel_stochastic_design_on_verilator(tmp_path):
    """Unrolled inputs and outputs (P = 8: 4 x 2 lanes) and LFSR-rounded updates, still bit-exact."""
    need("verilator")
    build = make_design(tmp_path, "xor", [2, 4, 1], parallel="8,4",
                        spec=TrainSpec(lr="2^-2", update_rounding="stochastic", seed=7))
    s = run_training_cosim(build, "xor", epochs=30, stall=0.1, every_sample=True)
    assert_exact(s)
    assert s["train_spec"]["update_rounding"] == "stochastic" and s["parallel"] == [8, 4]


def test_xor_on_icarus(xor_build):
    need("icarus")
    s = run_training_cosim(xor_build, "xor", epochs=6, simulator="icarus", stall=0.2, every_sample=True)
    assert_exact(s)
    assert s["simulator"] == "icarus" and s["readbacks"] == 6 * 4 + 4 + 1


def test_flipped_weight_bit_mid_run_is_caught_and_located(xor_build):
    """The harness flips bit 5 of W_0[2, 1] (address 5) after 6 samples, behind the checker's back."""
    need("verilator")
    s = run_training_cosim(xor_build, "xor", epochs=4, every_sample=True, inject=(6, 5, 5))
    assert s["injected"]["done"] and not s["ok"]
    assert s["weight_mismatches"] > 0
    first = s["first_weight_mismatch"]
    assert (first["after_samples"], first["epoch"], first["sample"]) == (6, 1, 1)
    assert (first["layer"], first["kind"], first["neuron"], first["input"]) == (0, "weight", 2, 1)
    assert first["differing_in_readback"] == 1
    assert (first["expected"] ^ first["got"]) & 0xFFFF == 1 << 5
    # the same run without the flip is exact
    assert_exact(run_training_cosim(xor_build, "xor", epochs=4, every_sample=True))


def test_flip_before_an_epoch_readback_is_caught(iris_build):
    need("verilator")
    s = run_training_cosim(iris_build, "iris", epochs=2, inject=(105, 66, 0))  # the last bias, after epoch 0
    first = s["first_weight_mismatch"]
    assert (first["after_samples"], first["epoch"], first["sample"]) == (105, 0, 104)
    assert (first["layer"], first["kind"], first["neuron"]) == (1, "bias", 2)
    assert abs(first["expected"] - first["got"]) == 1 and first["differing_in_readback"] == 1


def test_corrupted_ram_init_is_caught_before_the_first_sample(corrupted_xor_build):
    simulator = "icarus" if _have("icarus") else "verilator"
    need(simulator)
    s = run_training_cosim(corrupted_xor_build, "xor", epochs=3, simulator=simulator)
    first = s["first_weight_mismatch"]
    assert not s["ok"] and first["when"] == "before the first sample" and first["readback"] == 0
    assert (first["layer"], first["kind"], first["neuron"], first["input"], first["address"]) == (0, "weight", 1, 0, 2)
    assert first["got"] ^ first["expected"] == 1


def _have(simulator: str) -> bool:
    try:
        find_simulator(simulator)
        return True
    except BpHwError:
        return False


def test_run_train_command_json_and_exit_status(xor_build, corrupted_xor_build, capsys):
    simulator = "icarus" if _have("icarus") else "verilator"
    need(simulator)
    args = argparse.Namespace(build_dir=str(xor_build), train=True, data="xor", epochs=3, simulator=simulator,
                              stall=0.0, seed=0, every_sample=False, json=True)
    assert run_train_command(args) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    for key in ("samples", "output_mismatches", "weight_mismatches", "accuracy", "cycles_per_sample",
                "build_seconds", "run_seconds", "simulator", "epochs", "history"):
        assert key in summary
    assert summary["samples"] == 12 and "PASS" in err
    args.build_dir = str(corrupted_xor_build)
    assert run_train_command(args) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["first_weight_mismatch"]["address"] == 2 and "FAIL" in err


def test_add_train_arguments_keeps_existing_options():
    parser = argparse.ArgumentParser()
    parser.add_argument("build_dir")
    parser.add_argument("--simulator", default="icarus")  # as if `bp-hw simulate` had it already
    parser.add_argument("--json", action="store_true")
    add_train_arguments(parser)
    args = parser.parse_args(["b", "--train", "--data", "iris", "--epochs", "5", "--every-sample", "--json"])
    assert (args.train, args.data, args.epochs, args.every_sample, args.simulator, args.stall) == \
        (True, "iris", 5, True, "icarus", 0.0)
    fresh = argparse.ArgumentParser()
    add_train_arguments(fresh)
    assert fresh.parse_args([]).simulator == "verilator"


def test_bad_inputs_are_user_errors(xor_build, iris_build, tmp_path):
    with pytest.raises(BpHwError, match="features"):
        run_training_cosim(xor_build, "iris", epochs=1)
    with pytest.raises(BpHwError, match="manifest.json"):
        run_training_cosim(tmp_path, "xor")
    q, _, _ = initial_qmodel("xor", [2, 4, 1])
    generate(q, 1, tmp_path / "infer")
    with pytest.raises(BpHwError, match="--train"):
        run_training_cosim(tmp_path / "infer", "xor")
    with pytest.raises(BpHwError, match="stall"):
        run_training_cosim(xor_build, "xor", stall=1.0)


def test_payload_packing_and_address_map(iris_build):
    manifest = json.loads((iris_build / "manifest.json").read_text())
    ports = TrainPorts.from_manifest(manifest)
    X = np.array([[1, -1, 2, -32768]])
    T = np.array([[4096, 0, -1]])
    word = int(pack_samples(ports, X, T, [1]).decode().strip(), 16)
    f = manifest["training"]["ports"]["in"]["fields"]
    assert (word >> f["x"]["offset"]) & 0xFFFF == 1 and (word >> (f["x"]["offset"] + 48)) & 0xFFFF == 0x8000
    assert (word >> (f["t"]["offset"] + 32)) & 0xFFFF == 0xFFFF and (word >> f["train"]["offset"]) == 1
    assert locate(manifest, 0) == {"layer": 0, "kind": "weight", "neuron": 0, "input": 0, "address": 0}
    assert locate(manifest, 39)["kind"] == "bias" and locate(manifest, 40)["layer"] == 1
    assert locate(manifest, 66) == {"layer": 1, "kind": "bias", "neuron": 2, "input": None, "address": 66}
