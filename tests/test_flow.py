"""bp-hw flow: layout, effective configuration, report, failure handling (simulation and synthesis skipped)."""

from __future__ import annotations

import json
import re

import pytest

from bp_hw.cli import main
from bp_hw.errors import BpHwError
from bp_hw.flow import FlowConfig


def run_flow(args, capsys):
    rc = main(["flow", *args, "--json"])
    captured = capsys.readouterr()
    return rc, json.loads(captured.out.strip().splitlines()[-1]), captured.err


def test_flow_layout_config_and_report(tmp_path, capsys):
    out = tmp_path / "run"
    rc, summary, err = run_flow(["--data", "xor", "--layers", "2,4,1", "--epochs", "300", "--format", "Q4.12",
                                 "--parallel", "4,1", "--no-simulate", "--no-synth", "--out", str(out)], capsys)
    assert rc == 0, err
    assert summary["steps"] == {"train": "ok", "quantize": "ok", "generate": "ok", "simulate": "skipped",
                                "synth": "skipped"}
    for path in ("config.toml", "timings.json", "report.json", "report.html", "1_train/model.npz",
                 "1_train/loss.png", "1_train/log.txt", "1_train/summary.json", "2_quantize/qmodel.json",
                 "2_quantize/error.png", "3_generate/build/manifest.json", "3_generate/summary.json"):
        assert (out / path).exists(), path
    manifest = json.loads((out / "3_generate/build/manifest.json").read_text())
    assert manifest["parallel"] == [4, 1] and manifest["sizes"] == [2, 4, 1]
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) >= {"train", "quantize", "generate", "total"}
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 2          # loss curve and error figure embedded
    assert "Architecture" in page and "Q4.12" in page
    assert "data:image/svg+xml;base64," in page                # the planned datapath picture
    assert "layer0.weights" in page                            # the plan's memories
    assert not re.search(r"src=\"(?!data:)", page)           # nothing refers to outside files

    # the written configuration repeats the run exactly
    cfg = FlowConfig.load(out / "config.toml")
    assert cfg.tables["train"]["layers"] == "2,4,1" and cfg.tables["generate"]["parallel"] == "4,1"
    again = tmp_path / "again"
    rc2, summary2, _ = run_flow([str(out / "config.toml"), "--out", str(again)], capsys)
    assert rc2 == 0
    first, second = (json.loads((d / "2_quantize/qmodel.json").read_text()) for d in (out, again))
    assert first["layers"] == second["layers"]          # same weights, formats and tables
    assert summary2["steps"] == summary["steps"]


def test_failing_step_stops_the_flow_and_keeps_earlier_results(tmp_path, capsys):
    # a table too fine to interpolate at Q4.4 is only found by the quantize step (a format that does
    # not parse is refused before anything runs: tests/test_bad_inputs.py)
    config = tmp_path / "fine_lut.toml"
    config.write_text("[quantize]\nlut_interpolate = true\nlut_bits = 10\n")
    out = tmp_path / "run"
    rc, summary, err = run_flow([str(config), "--data", "xor", "--layers", "2,4,1", "--epochs", "20", "--format",
                                 "Q4.4", "--no-simulate", "--no-synth", "--out", str(out)], capsys)
    assert rc == 2
    assert summary["failed_step"] == "quantize" and "coarser" in summary["reason"]
    assert "generate" not in summary["steps"]
    assert (out / "1_train/model.npz").exists()
    assert "step quantize failed" in err.strip().splitlines()[-1]
    assert "failed" in (out / "report.html").read_text()


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[trian]\nepochs = 3\n")
    with pytest.raises(BpHwError, match="unknown tables"):
        FlowConfig.load(bad)
    bad.write_text("[train\n")
    with pytest.raises(BpHwError, match="not valid TOML"):
        FlowConfig.load(bad)
    with pytest.raises(BpHwError, match="does not exist"):
        FlowConfig.load(tmp_path / "missing.toml")


def test_xor_flow_trains_with_defaults_that_suit_xor(tmp_path, capsys):
    # The flow used iris's 100 epochs for xor and reported 0.75.
    out = tmp_path / "run"
    rc, summary, err = run_flow(["--data", "xor", "--no-simulate", "--no-synth", "--out", str(out)], capsys)
    assert rc == 0, err
    assert summary["float_test_accuracy"] == 1.0 and summary["fixed_test_accuracy"] == 1.0
    assert "chance" not in err and "float_no_better_than_chance" not in summary
    train = FlowConfig.load(out / "config.toml").tables["train"]
    assert (train["layers"], train["epochs"]) == ("2,4,1", 3000)


def test_given_options_win_over_the_data_set_defaults(tmp_path):
    cfg = FlowConfig()
    cfg.set("train", "data", "xor")
    cfg.set("train", "epochs", 300)
    cfg.apply_data_defaults()
    assert (cfg.tables["train"]["layers"], cfg.tables["train"]["epochs"]) == ("2,4,1", 300)
    toml = tmp_path / "c.toml"
    toml.write_text('[train]\ndata = "xor"\nlayers = "2,4,2"\n')
    cfg = FlowConfig.load(toml)
    cfg.apply_data_defaults()
    assert (cfg.tables["train"]["layers"], cfg.tables["train"]["epochs"]) == ("2,4,2", 3000)
    cfg = FlowConfig()
    cfg.apply_data_defaults()
    assert cfg.tables["train"] == FlowConfig().tables["train"]   # iris keeps the general defaults


def test_a_float_model_no_better_than_chance_is_reported(tmp_path, capsys):
    # A relu output under mse learns nothing on iris: 1/3 accuracy, the rate of guessing.
    toml = tmp_path / "c.toml"
    toml.write_text('[train]\nactivation = "relu"\noutput_activation = "relu"\nepochs = 5\n')
    out = tmp_path / "run"
    rc, summary, err = run_flow([str(toml), "--no-simulate", "--no-synth", "--out", str(out)], capsys)
    assert rc == 0, err
    assert summary["float_test_accuracy"] <= 0.34
    assert summary["float_no_better_than_chance"] == {"accuracy": summary["float_test_accuracy"],
                                                      "chance": pytest.approx(1 / 3)}
    lines = [ln for ln in err.splitlines() if "no better than chance" in ln]
    assert len(lines) == 1 and "0.333" in lines[0]
    assert "no better than chance" in (out / "report.html").read_text()
    assert "float_no_better_than_chance" in json.loads((out / "report.json").read_text())["summary"]
