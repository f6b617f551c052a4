"""`bp-hw simulate --train` end to end through the CLI: generate --train, co-simulate, compare."""

from __future__ import annotations

import json

from bp_hw.cli import main

from test_fixed_trainer import initial_qmodel


def test_simulate_train_cli_xor(tmp_path, capsys):
    q, _, _ = initial_qmodel("xor", [2, 4, 1])
    q.save(tmp_path / "q.json")
    assert main(["generate", str(tmp_path / "q.json"), "--train", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    rc = main(["simulate", str(tmp_path / "b"), "--train", "--data", "xor", "--epochs", "30", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["samples"] == 120 and out["output_mismatches"] == 0 and out["weight_mismatches"] == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert out["cycles_per_sample"] == manifest["training"]["cycles_per_train_sample"]
