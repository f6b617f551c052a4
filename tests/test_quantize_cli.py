"""`bp-hw quantize` through bp_hw.cli.main and as a subprocess (exit codes, no traceback, no files)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from bp_hw.cli import main
from bp_hw.fixed import QModel
from bp_hw.modelfile import FORMAT_NAME, FORMAT_VERSION


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("quantize")
    path = d / "m.npz"
    assert main(["train", "--data", "iris", "--out", str(path), "--json"]) == 0
    return path


def run_json(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr().out
    lines = [l for l in out.splitlines() if l.strip()]
    assert len(lines) == 1, out
    return rc, json.loads(lines[0])


def test_json_summary_and_outputs(tmp_path, model_path, capsys):
    capsys.readouterr()
    out, hexd, plot = tmp_path / "q.json", tmp_path / "hex", tmp_path / "err.png"
    rc, s = run_json(capsys, ["quantize", str(model_path), "--format", "Q4.12", "--lut-bits", "10",
                              "--data", "iris", "--out", str(out), "--hex-dir", str(hexd), "--plot", str(plot),
                              "--json"])
    assert rc == 0
    for key in ("float_accuracy", "fixed_accuracy", "max_abs_error", "saturations"):
        assert key in s
    assert set(s["accuracy"]["float"]) == {"train", "test"} and s["accuracy_split"] == "test"
    assert abs(s["fixed_accuracy"] - s["float_accuracy"]) <= 0.01 and s["within_bound"]
    # The model's own split: the float accuracies are the ones training reported.
    from bp_hw.modelfile import load_model
    hist = load_model(model_path).history
    assert s["accuracy"]["float"]["test"] == pytest.approx(hist["test_accuracy"][-1])
    assert s["accuracy"]["float"]["train"] == pytest.approx(hist["train_accuracy"][-1])
    q = QModel.load(out)
    assert q.sizes == [4, 8, 3] and q.layers[0].lut.addr_bits == 10
    assert (hexd / "memories.json").is_file() and (hexd / "layer1_lut.hex").is_file()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bits_alone_means_auto(tmp_path, model_path, capsys):
    capsys.readouterr()
    rc, s = run_json(capsys, ["quantize", str(model_path), "--bits", "8", "--out", str(tmp_path / "q.json"),
                              "--json"])
    assert rc == 0 and s["config"]["format"] == "auto"
    assert all(int(f.split(".")[0].lstrip("UQ")) + int(f.split(".")[1]) == 8
               for lay in s["formats"]["layers"] for f in (lay["weight"], lay["bias"], lay["out"]))
    assert s["saturations"]["weights"] == 0


def test_other_data_uses_every_row(tmp_path, model_path, capsys):
    csv = tmp_path / "iris_copy.csv"
    from bp_hw.data import load_dataset
    ds = load_dataset("iris")
    csv.write_text("\n".join(",".join(map(str, list(x) + [int(c)])) for x, c in zip(ds.X, ds.y)) + "\n")
    capsys.readouterr()
    rc, s = run_json(capsys, ["quantize", str(model_path), "--data", str(csv), "--out", str(tmp_path / "q.json"),
                              "--json"])
    assert rc == 0 and list(s["accuracy"]["float"]) == ["data"]


def write_fake_model(path, weights_value=0.5):
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "layers": [2, 2], "activations": ["sigmoid"],
            "loss": "mse", "n_classes": 2, "config": {}, "history": {}}
    np.savez(path, metadata=np.array(json.dumps(meta)), norm_mean=np.zeros(2), norm_std=np.ones(2),
             W0=np.full((2, 2), weights_value), b0=np.zeros(2))


BAD = {
    "zero bits": ["--bits", "0"],
    "negative bits": ["--bits", "-4"],
    "width over 32": ["--format", "Q20.13"],
    "zero-width format": ["--format", "Q0.0"],
    "unknown format": ["--format", "float16"],
    "unknown rounding": ["--rounding", "sideways"],
    "stochastic inference": ["--rounding", "stochastic"],
    "unknown overflow": ["--overflow", "bounce"],
    "zero lut bits": ["--lut-bits", "0"],
    "lut range not a power of two": ["--lut-range", "6"],
    "auto weights width 33": ["--weight-format", "auto", "--bits", "33"],
}


@pytest.mark.parametrize("extra", BAD.values(), ids=BAD.keys())
def test_bad_options_exit_2_and_write_nothing(tmp_path, model_path, capsys, extra):
    out = tmp_path / "sub" / "q.json"
    rc = main(["quantize", str(model_path), "--out", str(out), "--hex-dir", str(tmp_path / "hex"),
               "--plot", str(tmp_path / "e.png")] + extra)
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def bad_model_files(tmp_path):
    nan = tmp_path / "nan.npz"
    write_fake_model(nan, np.nan)
    inf = tmp_path / "inf.npz"
    write_fake_model(inf, np.inf)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, X=np.zeros((3, 2)), y=np.zeros(3))
    text = tmp_path / "text.npz"
    text.write_text("hello")
    json_model = tmp_path / "q.json"
    json_model.write_text("{}")
    return {"nan weights": nan, "inf weights": inf, "foreign npz": foreign, "not a zip": text,
            "json": json_model, "missing": tmp_path / "missing.npz"}


@pytest.mark.parametrize("which", ["nan weights", "inf weights", "foreign npz", "not a zip", "json", "missing"])
def test_bad_model_files_exit_2_via_subprocess(tmp_path, which):
    path = bad_model_files(tmp_path)[which]
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = subprocess.run([sys.executable, "-m", "bp_hw.cli", "quantize", str(path), "--data", "iris",
                           "--out", str(tmp_path / "out.json"), "--hex-dir", str(tmp_path / "hex"), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_subprocess_success_and_json_only_on_stdout(tmp_path, model_path):
    proc = subprocess.run([sys.executable, "-m", "bp_hw.cli", "quantize", str(model_path), "--format", "Q2.6",
                           "--out", str(tmp_path / "q.json"), "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert s["saturations"]["weights"] > 0  # Q2.6 cannot hold the iris weights (|w| > 2)
    assert "warning" in proc.stderr
