"""bp-hw predict on every kind of model: float model.npz, an imported .onnx, an integer qmodel.json."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from bp_hw.cli import main
from bp_hw.data import load_dataset
from bp_hw.fixed import QModel
from bp_hw.modelfile import load_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("predict")
    m, q = d / "m.npz", d / "q.json"
    assert main(["train", "--data", "iris", "--epochs", "30", "--out", str(m), "--json"]) == 0
    assert main(["quantize", str(m), "--data", "iris", "--out", str(q), "--json"]) == 0
    return m, q


def _json(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    lines = [l for l in capsys.readouterr().out.splitlines() if l.strip()]
    assert len(lines) == 1
    return json.loads(lines[0])


def test_float_model_outputs_and_accuracy(trained, tmp_path, capsys):
    m, _ = trained
    out = tmp_path / "o.csv"
    s = _json(capsys, ["predict", str(m), "--data", "iris", "--out", str(out), "--json"])
    model, ds = load_model(m), load_dataset("iris")
    assert s["kind"] == "float" and s["samples"] == 150
    assert s["accuracy"] == pytest.approx(model.accuracy(ds.X, ds.y))
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 150 and list(rows[0]) == ["index", "out_0", "out_1", "out_2", "predicted", "label"]
    got = np.array([[float(r[f"out_{k}"]) for k in range(3)] for r in rows])
    np.testing.assert_array_equal(got, model.predict_proba(ds.X))   # repr round-trips float64 exactly
    assert [int(r["label"]) for r in rows] == ds.y.tolist()


def test_integer_model_is_the_integer_model(trained, tmp_path, capsys):
    _, q = trained
    out = tmp_path / "o.csv"
    s = _json(capsys, ["predict", str(q), "--data", "iris", "--out", str(out), "--json"])
    qm, ds = QModel.load(q), load_dataset("iris")
    ints = qm.predict(qm.quantize_inputs(ds.X)[0])
    assert s["kind"] == "integer"
    assert s["accuracy"] == pytest.approx(float(np.mean(qm.classify(ints) == ds.y)))
    rows = list(csv.DictReader(out.open()))
    got = np.array([[float(r[f"out_{k}"]) for k in range(3)] for r in rows])
    np.testing.assert_array_equal(np.ldexp(got, qm.output_fmt.frac_bits), ints)


def test_onnx_model_directly(capsys):
    pytest.importorskip("onnx", reason="the onnx extra")
    from fixtures.onnx.reference import HERE
    s = _json(capsys, ["predict", str(HERE / "torch_gemm_sigmoid.onnx"), "--data", "iris", "--json"])
    assert s["kind"] == "float" and s["accuracy"] > 0.9
    s = _json(capsys, ["predict", str(HERE / "brevitas_qonnx_relu.onnx"), "--data", "iris", "--json"])
    assert s["kind"] == "integer" and s["accuracy"] > 0.9


@pytest.mark.parametrize("case", ["features", "missing", "not_a_model"])
def test_bad_inputs_one_line_exit_2(trained, tmp_path, capsys, case):
    m, _ = trained
    out = tmp_path / "o.csv"
    if case == "features":
        argv = ["predict", str(m), "--data", "xor", "--out", str(out)]
    elif case == "missing":
        argv = ["predict", str(tmp_path / "nope.npz"), "--data", "iris", "--out", str(out)]
    else:
        bad = tmp_path / "bad.json"
        bad.write_text("{}")
        argv = ["predict", str(bad), "--data", "iris", "--out", str(out)]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bp-hw predict: error:")
    assert not out.exists()
