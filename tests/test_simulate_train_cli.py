"""`bp-hw simulate --train` end to end through the CLI: generate --train, co-simulate, compare.

xor trains until every sample is right and iris runs 5 epochs, both with 0
output and 0 weight mismatches; a build whose spec was corrupted exits 1 with
the mismatch located; options of the other mode are one-line user errors.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bp_hw.cli import main
from bp_hw.plan.manifest import load_qmodel, read_manifest, write_manifest
from bp_hw.train_start import seeded_qmodel
from fixtures.simulators import cheapest_simulator

pytestmark = pytest.mark.slow


def generate_train(tmp_path: Path, data: str, layers) -> Path:
    q, _, _ = seeded_qmodel(data, layers)
    q.save(tmp_path / "q.json")
    assert main(["generate", str(tmp_path / "q.json"), "--train", "--out", str(tmp_path / "b"), "--json"]) == 0
    return tmp_path / "b"


def simulate(capsys, *argv) -> tuple[int, dict, str]:
    capsys.readouterr()
    rc = main(["simulate", *map(str, argv), "--train", "--json"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1, out  # --json: exactly one object on stdout
    return rc, json.loads(lines[0]), err


def test_xor_converges_bit_exact(tmp_path, capsys):
    build = generate_train(tmp_path, "xor", [2, 4, 1])
    rc, out, err = simulate(capsys, build, "--data", "xor", "--epochs", 300)
    assert rc == 0, err
    assert out["samples"] == 1200 and out["output_mismatches"] == 0 and out["weight_mismatches"] == 0
    assert out["accuracy"] == 1.0 and out["converged_epoch"] is not None, out["history"]["accuracy"][-5:]
    assert out["cycles_per_sample"] == read_manifest(build).training.cycles_per_train_sample
    assert "PASS" in err


def test_iris_five_epochs_bit_exact(tmp_path, capsys):
    build = generate_train(tmp_path, "iris", [4, 8, 3])
    rc, out, err = simulate(capsys, build, "--data", "iris", "--epochs", 5, "--stall", 0.2)
    assert rc == 0, err
    assert out["samples"] == 5 * 105 and out["inference_samples"] == 45 and out["readbacks"] == 5 + 2
    assert out["output_mismatches"] == 0 and out["weight_mismatches"] == 0 and out["ok"]
    assert out["accuracy"] > 0.8


def test_corrupted_spec_exits_1_with_the_weight_located(tmp_path, capsys):
    build = generate_train(tmp_path, "xor", [2, 4, 1])
    bad = tmp_path / "bad"
    shutil.copytree(build, bad)
    manifest = read_manifest(bad)
    q = load_qmodel(manifest)
    q.layers[1].biases[0] += 1  # address 4 * 2 + 4 + 4 * 1 = 16: the output neuron's bias
    q.save(manifest.qmodel_path)
    write_manifest(replace(manifest, qmodel_sha256=hashlib.sha256(manifest.qmodel_path.read_bytes()).hexdigest()))
    rc, out, err = simulate(capsys, bad, "--data", "xor", "--epochs", 2, "--simulator", cheapest_simulator())
    assert rc == 1 and "FAIL" in err
    first = out["first_weight_mismatch"]
    assert (first["address"], first["layer"], first["kind"], first["readback"]) == (16, 1, "bias", 0)
    assert first["got"] - first["expected"] == -1


@pytest.mark.parametrize("argv,message", [
    (["--train", "--vectors", "5"], "--vectors goes without --train"),
    (["--train", "--waves", "x.vcd", "--batch", "3"], "--waves, --batch go without --train"),
    (["--epochs", "3"], "--epochs goes with --train"),
    (["--every-sample"], "--every-sample goes with --train"),
])
def test_options_of_the_other_mode_are_user_errors(tmp_path, capsys, argv, message):
    assert main(["simulate", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err


def test_wrong_kind_of_build_is_a_user_error(tmp_path, capsys):
    q, _, _ = seeded_qmodel("xor", [2, 2, 1])
    q.save(tmp_path / "q.json")
    assert main(["generate", str(tmp_path / "q.json"), "--out", str(tmp_path / "infer"), "--json"]) == 0
    capsys.readouterr()
    assert main(["simulate", str(tmp_path / "infer"), "--train"]) == 2
    assert "inference design" in capsys.readouterr().err
