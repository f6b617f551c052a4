"""``bp-hw train``: the must-show runs, the --json contract, and one-line errors with no output left behind."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from bp_hw.cli import main
from bp_hw.errors import BpHwError
from bp_hw.modelfile import load_model

EXAMPLE = ["train", "--data", "iris", "--layers", "4,8,3", "--activation", "sigmoid", "--loss", "mse",
           "--optimizer", "sgd", "--lr", "0.5", "--batch-size", "1", "--epochs", "100", "--seed", "0"]


def run_cli(argv, capsys):
    """``(exit status, stdout, stderr)`` of ``bp-hw argv`` run in-process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_example_command_json_plot_and_model(tmp_path, capsys):
    out, plot = tmp_path / "model.npz", tmp_path / "loss.png"
    code, stdout, stderr = run_cli(EXAMPLE + ["--out", out, "--plot", plot, "--json"], capsys)
    assert code == 0
    summary = json.loads(stdout)  # exactly one JSON object, nothing else
    assert stdout.count("\n") == 1
    assert summary["test_accuracy"] >= 0.90
    assert summary["epochs"] == 100
    assert 0 < summary["final_loss"] < 0.05
    assert 0.9 <= summary["train_accuracy"] <= 1.0
    assert (summary["n_train"], summary["n_test"]) == (105, 45)
    assert "wrote" in stderr  # logs go to stderr

    model = load_model(out)
    assert model.layers == [4, 8, 3] and model.activations == ["sigmoid", "sigmoid"]
    assert model.history["test_accuracy"][-1] == summary["test_accuracy"]
    assert model.history["train_loss"][-1] == summary["final_loss"]
    assert model.config["lr"] == 0.5 and model.config["batch_size"] == 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png", "model.npz"]


def test_defaults_reproduce_the_example_command(tmp_path, capsys):
    code, stdout, _ = run_cli(EXAMPLE + ["--out", tmp_path / "a.npz", "--json"], capsys)
    assert code == 0
    code, stdout2, _ = run_cli(["train", "--data", "iris", "--out", tmp_path / "b.npz", "--json"], capsys)
    assert code == 0
    a, b = load_model(tmp_path / "a.npz"), load_model(tmp_path / "b.npz")
    assert a.config == b.config
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(x, y)
    assert json.loads(stdout)["test_accuracy"] == json.loads(stdout2)["test_accuracy"]


@pytest.mark.parametrize("seed", range(5))
def test_xor_must_show(tmp_path, capsys, seed):
    code, stdout, _ = run_cli(["train", "--data", "xor", "--layers", "2,4,1", "--activation", "sigmoid",
                               "--lr", "0.5", "--epochs", "3000", "--seed", seed,
                               "--out", tmp_path / "xor.npz", "--json"], capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["train_accuracy"] == 1.0 and summary["test_is_train"]
    model = load_model(tmp_path / "xor.npz")
    np.testing.assert_array_equal(model.predict_classes([[0, 0], [0, 1], [1, 0], [1, 1]]), [0, 1, 1, 0])


def test_relu_hidden_layer_gets_a_sigmoid_output_and_learns_iris(tmp_path, capsys):
    # A relu output under mse went negative for every sample and learnt nothing (test accuracy 1/3).
    code, stdout, stderr = run_cli(["train", "--data", "iris", "--activation", "relu",
                                    "--out", tmp_path / "m.npz", "--json"], capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["activations"] == ["relu", "sigmoid"]
    assert "relu hidden, sigmoid output" in stderr
    assert summary["test_accuracy"] >= 0.6  # chance is 1/3
    # An explicit choice still wins.
    code, stdout, _ = run_cli(["train", "--data", "xor", "--layers", "2,4,1", "--activation", "identity",
                               "--output-activation", "identity", "--epochs", "2",
                               "--out", tmp_path / "i.npz", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["activations"] == ["identity", "identity"]


def test_help_names_the_output_activation_default(capsys):
    code, stdout, _ = run_cli(["train", "--help"], capsys)
    assert code == 0
    assert "relu or identity" in " ".join(stdout.split())


def test_human_output_and_other_options(tmp_path, capsys):
    out = tmp_path / "m.npz"
    code, stdout, _ = run_cli(["train", "--data", "xor", "--layers", "2,3,2", "--loss", "cross_entropy",
                               "--optimizer", "momentum", "--momentum", "0.8", "--lr", "0.1", "--batch-size",
                               "full", "--epochs", "5", "--init", "small", "--clip", "1", "--l2", "1e-4",
                               "--out", out], capsys)
    assert code == 0
    assert stdout.startswith("train accuracy") and "epochs" in stdout
    model = load_model(out)
    assert model.activations == ["sigmoid", "softmax"] and model.loss == "cross_entropy"
    cfg = model.config
    assert (cfg["optimizer"], cfg["momentum"], cfg["batch_size"], cfg["init"], cfg["clip"], cfg["l2"]) == \
        ("momentum", 0.8, 0, "small", 1.0, 1e-4)


def test_user_csv(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    data = tmp_path / "mine.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", fmt="%.6f", header="a,b,c,label", comments="")
    code, stdout, _ = run_cli(["train", "--data", data, "--epochs", "30", "--out", tmp_path / "m.npz", "--json"],
                              capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["layers"] == [3, 8, 2] and summary["n_train"] + summary["n_test"] == 60
    assert summary["test_accuracy"] >= 0.8


def bad_files(tmp_path):
    (tmp_path / "nan.csv").write_text("1,2,0\n3,nan,1\n4,5,1\n")
    (tmp_path / "frac.csv").write_text("1,2,0\n3,4,1.5\n")
    (tmp_path / "ragged.csv").write_text("1,2,0\n3,1\n")
    (tmp_path / "garbage.npz").write_text("not a zip")
    (tmp_path / "a_dir").mkdir()


@pytest.mark.parametrize("args, message", [
    (["--data", "{d}/missing.csv"], "data file not found"),
    (["--data", "{d}/nan.csv"], "not finite"),
    (["--data", "{d}/frac.csv"], "labels must be integers"),
    (["--data", "{d}/ragged.csv"], "line 2: 2 columns, expected 3"),
    (["--data", "{d}/garbage.npz"], "not a readable .npz"),
    (["--data", "wine"], "unknown data set 'wine'"),
    (["--layers", "5,8,3"], "starts with 5 inputs but the data has 4 features"),
    (["--layers", "4,8,2"], "ends with 2 outputs but the data has 3 classes"),
    (["--layers", "4,eight,3"], "--layers must be comma-separated integers"),
    (["--activation", "softmax"], "softmax can only be the output activation"),
    (["--activation", "swish"], "unknown --activation 'swish'"),
    (["--output-activation", "softmax"], "needs --loss cross_entropy"),
    (["--loss", "cross_entropy", "--output-activation", "relu"], "needs a probability output"),
    (["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["--loss", "hinge"], "invalid choice: 'hinge'"),
    (["--lr", "abc"], "invalid float value"),
    (["--lr", "-1"], "--lr must be > 0"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--batch-size", "lots"], "expected an integer or 'full'"),
    (["--momentum", "0.5"], "--momentum only applies to --optimizer momentum"),
    (["--test-fraction", "1"], "--test-fraction must be in"),
    (["--plot", "{d}/loss.xyz"], "unsupported image type .xyz"),
    (["--out", "{d}/a_dir"], "is a directory"),
    (["--activation", "identity", "--output-activation", "identity", "--lr", "1000", "--epochs", "20"],
     "diverged"),
])
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, capsys, args, message):
    bad_files(tmp_path)
    out = tmp_path / "model.npz"
    argv = ["train", "--epochs", "2", "--out", out, "--plot", tmp_path / "loss.png"]
    argv += [a.format(d=tmp_path) for a in args]
    before = set(os.listdir(tmp_path))
    code, stdout, stderr = run_cli(argv + ["--json"], capsys)
    assert code == 2
    assert stdout == ""
    # The error is one line, the last (progress logs may precede it when training had started).
    last = stderr.splitlines()[-1]
    assert last.startswith("bp-hw") and message in last, stderr
    assert sum("error" in line for line in stderr.splitlines()) == 1
    assert "Traceback" not in stderr
    assert set(os.listdir(tmp_path)) == before  # no model, no plot, no temporary file


def test_plot_is_removed_when_the_model_cannot_be_written(tmp_path, capsys, monkeypatch):
    import bp_hw.commands.train as train_cmd

    def refuse(path, model):
        raise BpHwError(f"cannot write model file {path}: disk full")

    monkeypatch.setattr(train_cmd, "save_model", refuse)
    code, _, stderr = run_cli(["train", "--epochs", "2", "--out", tmp_path / "m.npz",
                               "--plot", tmp_path / "loss.png"], capsys)
    assert code == 2 and "disk full" in stderr
    assert list(tmp_path.iterdir()) == []


def bp_hw_command():
    exe = shutil.which("bp-hw")
    return [exe] if exe else [sys.executable, "-m", "bp_hw.cli"]


def test_console_script_contract(tmp_path):
    """The installed command: JSON alone on stdout, logs on stderr; errors one line, exit 2."""
    ok = subprocess.run(bp_hw_command() + ["train", "--data", "xor", "--layers", "2,4,1", "--epochs", "10",
                                           "--out", str(tmp_path / "x.npz"), "--json"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert set(json.loads(ok.stdout)) >= {"train_accuracy", "test_accuracy", "final_loss", "epochs"}
    assert "data xor" in ok.stderr

    bad = subprocess.run(bp_hw_command() + ["train", "--data", str(tmp_path / "nope.csv"),
                                            "--out", str(tmp_path / "y.npz")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "data file not found" in bad.stderr
    assert not (tmp_path / "y.npz").exists()
