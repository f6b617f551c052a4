"""On-chip training in Verilog co-simulation (Verilator, Icarus) against the fixed-point trainer, bit for bit.

Each design is generated and compiled once per module; runs are a few epochs
(the full xor and iris runs are in ``benchmarks/bench_train_cosim.py``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bp_hw.cosim.train_verify import BitFlip, locate, verify_training
from bp_hw.errors import BpHwError
from bp_hw.fixed.trainer import TrainSpec
from bp_hw.hdl.emit import generate
from bp_hw.plan.manifest import load_qmodel, read_manifest, write_manifest
from bp_hw.train_start import seeded_qmodel
from fixtures.simulators import cheapest_simulator, need

pytestmark = pytest.mark.slow


def make_design(root: Path, data: str, layers, parallel=1, spec: TrainSpec | None = None,
                device: str | None = None) -> Path:
    q, _, _ = seeded_qmodel(data, layers)
    generate(q, parallel, root / "build", train=spec or TrainSpec(), device=device)
    return root / "build"


@pytest.fixture(scope="module")
def xor_build(tmp_path_factory):
    return make_design(tmp_path_factory.mktemp("xor"), "xor", [2, 4, 1])


@pytest.fixture(scope="module")
def iris_build(tmp_path_factory):
    return make_design(tmp_path_factory.mktemp("iris"), "iris", [4, 8, 3])


@pytest.fixture(scope="module")
def corrupted_xor_build(xor_build, tmp_path_factory):
    """A copy of the xor design whose spec (its qmodel.json) has bit 0 of W_0[1, 0] (address 2) flipped:
    the hardware starts from the generated weights, the checker from the corrupted ones."""
    dst = tmp_path_factory.mktemp("xor_bad") / "build"
    shutil.copytree(xor_build, dst, ignore=shutil.ignore_patterns("sim_*", ".sim_*"))
    manifest = read_manifest(dst)
    q = load_qmodel(manifest)
    q.layers[0].weights[1, 0] ^= 1
    q.save(manifest.qmodel_path)
    write_manifest(replace(manifest, qmodel_sha256=hashlib.sha256(manifest.qmodel_path.read_bytes()).hexdigest()))
    return dst


def assert_exact(s: dict) -> None:
    assert s["output_mismatches"] == 0, s["first_output_mismatch"]
    assert s["weight_mismatches"] == 0, s["first_weight_mismatch"]
    assert s["ok"] and not s["timed_out"]


def test_xor_epochs_bit_exact_on_verilator(xor_build):
    need("verilator")
    s = verify_training(xor_build, "xor", epochs=40)
    assert_exact(s)
    assert s["samples"] == 160 and s["inference_samples"] == 4 and s["outputs_received"] == 164
    assert s["readbacks"] == 40 + 2  # before the first sample, after every epoch, after the inference pass
    cycles = read_manifest(xor_build).training.cycles_per_train_sample  # the plan's figure
    assert s["cycles_per_sample"] == s["busy_cycles_per_sample"] == cycles
    assert len(s["history"]["accuracy"]) == len(s["history"]["test_accuracy"]) == 40
    assert s["accuracy"] == s["history"]["accuracy"][-1]
    assert s["hw_inference_test_accuracy"] == s["test_accuracy"]
    json.dumps(s)  # JSON-able as it is


def test_iris_every_sample_with_stalls_on_verilator(iris_build):
    need("verilator")
    s = verify_training(iris_build, "iris", epochs=2, stall=0.3, every_sample=True, seed=3)
    assert_exact(s)
    assert s["readbacks"] == 2 * 105 + 45 + 1
    assert s["cycles"] > 2 * 105 * s["cycles_per_sample_manifest"]


def test_parallel_stochastic_design_on_verilator(tmp_path):
    """Unrolled inputs and outputs (P = 8: 4 x 2 lanes) and LFSR-rounded updates, still bit-exact."""
    need("verilator")
    build = make_design(tmp_path, "xor", [2, 4, 1], parallel="8,4",
                        spec=TrainSpec(lr="2^-2", update_rounding="stochastic", seed=7))
    s = verify_training(build, "xor", epochs=30, stall=0.1, every_sample=True)
    assert_exact(s)
    assert s["train_spec"]["update_rounding"] == "stochastic" and s["parallel"] == [8, 4]


def test_ecp5_design_with_its_dsp_cells_on_verilator(tmp_path, monkeypatch):
    """iris at P = 8,3 for the ECP5: the training lanes' products are MULT18X18D instances, run through
    bp_hw/cosim/mult18x18d.v; bit-exact with stalls, the manifest's cycles per sample measured; with
    the model's products doubled the first read-back mismatches."""
    need("verilator")
    import bp_hw.cosim.runner as runner
    build = make_design(tmp_path, "iris", [4, 8, 3], parallel="8,3", device="LFE5U-85F")
    manifest = read_manifest(build)
    assert [x.dsp_cell for x in manifest.layers] == ["MULT18X18D"] * 2
    assert manifest.verilog[0].read_text().count("MULT18X18D #(") == 11 + 2 * 2   # the lanes, the delta units
    s = verify_training(build, "iris", epochs=2, stall=0.2)
    assert_exact(s)
    free = verify_training(build, "iris", epochs=1)
    assert free["cycles_per_sample"] == manifest.training.cycles_per_train_sample
    text = runner.primitive_models(manifest)
    bad = text.replace("p_r <= product[35:0];", "p_r <= product[34:0] << 1;")
    assert bad != text
    monkeypatch.setattr(runner, "primitive_models", lambda m: bad)
    s = verify_training(build, "iris", epochs=1)
    assert not s["ok"] and s["output_mismatches"] > 0


@pytest.fixture(scope="module")
def xor_ce_build(tmp_path_factory):
    return make_design(tmp_path_factory.mktemp("xor_ce"), "xor", [2, 4, 1],
                       spec=TrainSpec(cost="cross-entropy", update_rounding="stochastic"))


def test_cross_entropy_design_on_verilator(xor_ce_build):
    need("verilator")
    s = verify_training(xor_ce_build, "xor", epochs=30, stall=0.1)
    assert_exact(s)
    assert s["train_spec"]["cost"] == "cross-entropy"
    assert s["train_spec"]["layers"][-1]["derivative"] == "identity"


def test_cross_entropy_design_checked_as_mse_fails(xor_ce_build, tmp_path):
    """The checker reads the cost from the manifest: a cross-entropy build whose manifest says mse
    mismatches at the first read-back after training starts."""
    dst = tmp_path / "build"
    shutil.copytree(xor_ce_build, dst, ignore=shutil.ignore_patterns("sim_*", ".sim_*"))
    manifest = read_manifest(dst)
    spec = dict(manifest.training.spec, cost="mse")
    write_manifest(replace(manifest, training=replace(manifest.training, spec=spec)))
    s = verify_training(dst, "xor", epochs=2, simulator=cheapest_simulator())
    assert not s["ok"] and s["weight_mismatches"] > 0
    assert s["first_weight_mismatch"]["readback"] == 1 and s["first_weight_mismatch"]["epoch"] == 0


def test_mini_batch_design_on_verilator(tmp_path):
    """B = 8 over iris's 105 training samples: batches run across epoch ends (105 = 13 x 8 + 1), every
    epoch read back mid-batch, stochastic updates, stalls; bit-exact."""
    need("verilator")
    build = make_design(tmp_path, "iris", [4, 8, 3], parallel="4,3",
                        spec=TrainSpec(batch=8, update_rounding="stochastic"))
    s = verify_training(build, "iris", epochs=3, stall=0.2)
    assert_exact(s)
    assert s["train_spec"]["batch"] == 8
    sums = [m for m in read_manifest(build).memories if m.kind == "grad_sums"]
    assert [m.name for m in sums] == ["layer0.weight_sums", "layer0.bias_sums", "layer1.weight_sums",
                                      "layer1.bias_sums"]


def test_xor_on_icarus(xor_build):
    need("icarus")
    s = verify_training(xor_build, "xor", epochs=6, simulator="icarus", stall=0.2, every_sample=True)
    assert_exact(s)
    assert s["simulator"] == "icarus" and s["readbacks"] == 6 * 4 + 4 + 1


def test_flipped_weight_bit_mid_run_is_caught_and_located(xor_build):
    """The harness flips bit 5 of W_0[2, 1] (address 5) after 6 samples, behind the checker's back."""
    need("verilator")
    s = verify_training(xor_build, "xor", epochs=4, every_sample=True, inject=BitFlip(6, 5, 5))
    assert s["injected"]["done"] and not s["ok"]
    assert s["weight_mismatches"] > 0
    first = s["first_weight_mismatch"]
    assert (first["after_samples"], first["epoch"], first["sample"]) == (6, 1, 1)
    assert (first["layer"], first["kind"], first["neuron"], first["input"]) == (0, "weight", 2, 1)
    assert first["differing_in_readback"] == 1
    assert (first["expected"] ^ first["got"]) & 0xFFFF == 1 << 5
    # the same run without the flip is exact
    assert_exact(verify_training(xor_build, "xor", epochs=4, every_sample=True))


def test_flip_before_an_epoch_readback_is_caught(iris_build):
    need("verilator")
    s = verify_training(iris_build, "iris", epochs=2, inject=BitFlip(105, 66, 0))  # the last bias, after epoch 0
    first = s["first_weight_mismatch"]
    assert (first["after_samples"], first["epoch"], first["sample"]) == (105, 0, 104)
    assert (first["layer"], first["kind"], first["neuron"]) == (1, "bias", 2)
    assert abs(first["expected"] - first["got"]) == 1 and first["differing_in_readback"] == 1


def test_corrupted_initial_weight_is_caught_before_the_first_sample(corrupted_xor_build):
    simulator = cheapest_simulator()
    s = verify_training(corrupted_xor_build, "xor", epochs=3, simulator=simulator)
    first = s["first_weight_mismatch"]
    assert not s["ok"] and first["when"] == "before the first sample" and first["readback"] == 0
    assert (first["layer"], first["kind"], first["neuron"], first["input"], first["address"]) == (0, "weight", 1, 0, 2)
    assert first["got"] ^ first["expected"] == 1


def test_bad_inputs_are_user_errors(xor_build, iris_build, tmp_path):
    with pytest.raises(BpHwError, match="features"):
        verify_training(xor_build, "iris", epochs=1)
    with pytest.raises(BpHwError, match="manifest.json"):
        verify_training(tmp_path, "xor")
    q, _, _ = seeded_qmodel("xor", [2, 4, 1])
    generate(q, 1, tmp_path / "infer")
    with pytest.raises(BpHwError, match="--train"):
        verify_training(tmp_path / "infer", "xor")
    with pytest.raises(BpHwError, match="stall"):
        verify_training(xor_build, "xor", stall=1.0)


def test_addresses_are_located_by_the_manifests_address_map(iris_build):
    amap = read_manifest(iris_build).training.address_map
    assert locate(amap, 0) == {"layer": 0, "kind": "weight", "neuron": 0, "input": 0, "address": 0}
    assert locate(amap, 9) == {"layer": 0, "kind": "weight", "neuron": 2, "input": 1, "address": 9}
    assert locate(amap, 39)["kind"] == "bias" and locate(amap, 40)["layer"] == 1
    assert locate(amap, 66) == {"layer": 1, "kind": "bias", "neuron": 2, "input": None, "address": 66}
    assert locate(amap, 67)["kind"] == "unknown"
