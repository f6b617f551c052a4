"""An hls4ml configuration's per-layer precision (fixed<W,I>) carried over to an imported model."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx extra")

from bp_hw.cli import main  # noqa: E402
from bp_hw.data import load_dataset  # noqa: E402
from bp_hw.fixed import QModel  # noqa: E402
from bp_hw.interop.hls4ml_config import parse_precision  # noqa: E402
from fixtures.onnx.reference import HERE  # noqa: E402

CONFIG = {
    "Model": {"Precision": "fixed<16,6,RND_CONV,SAT>", "ReuseFactor": 1, "Strategy": "Latency"},
    "LayerName": {
        "sequential/dense/MatMul": {"Precision": {"weight": "fixed<8,2>", "bias": "fixed<12,4>",
                                                  "result": "fixed<16,6>"}},
        "sequential/dense/Relu": {"Precision": {"result": "ufixed<10,4>"}},
        "sequential/dense_1/MatMul": {"Precision": {"weight": "fixed<10,3>", "result": "fixed<18,8>"}},
        "input_layer_that_is_not_here": {"Precision": {"result": "fixed<8,3>"}},
    },
}


def test_parse_precision_with_modes():
    fmt, rounding, overflow = parse_precision("fixed<16,6,RND_CONV,SAT>", "cfg")
    assert (fmt.name, rounding, overflow) == ("Q6.10", "nearest-even", "saturate")
    assert parse_precision("ufixed<8,1>", "cfg")[0].name == "UQ1.7"


@pytest.mark.parametrize("suffix", [".json", ".yml"])
def test_layer_formats_from_the_config(tmp_path, capsys, suffix):
    cfg = tmp_path / f"hls4ml{suffix}"
    if suffix == ".json":
        cfg.write_text(json.dumps(CONFIG))
    else:
        yaml = pytest.importorskip("yaml", reason="YAML configurations need PyYAML")
        cfg.write_text(yaml.safe_dump(CONFIG))
    q = tmp_path / "q.json"
    assert main(["import", str(HERE / "keras_tf2onnx_style.onnx"), "--out", str(tmp_path / "m.npz"), "--qmodel",
                 str(q), "--hls4ml-config", str(cfg), "--data", "iris", "--json"]) == 0
    captured = capsys.readouterr()
    s = json.loads(captured.out)
    assert "input_layer_that_is_not_here" in captured.err       # said, not silently dropped
    qm = QModel.load(q)
    assert qm.input_fmt.name == "Q6.10"
    l0, l1 = qm.layers
    assert (l0.weight_fmt.name, l0.bias_fmt.name, l0.out_fmt.name) == ("Q2.6", "Q4.8", "UQ4.6")
    assert (l1.weight_fmt.name, l1.out_fmt.name) == ("Q3.7", "Q8.10")
    assert l0.rounding == "nearest-even" and l0.overflow == "saturate"
    ds = load_dataset("iris")
    assert s["fixed_accuracy"] == pytest.approx(float(np.mean(qm.predict_classes(ds.X) == ds.y)))
    assert s["fixed_accuracy"] > 0.9


def test_bad_precision_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"Model": {"Precision": "fixed<16,6,RND_WEIRD>"}}))
    rc = main(["import", str(HERE / "keras_tf2onnx_style.onnx"), "--out", str(tmp_path / "m.npz"), "--qmodel",
               str(tmp_path / "q.json"), "--hls4ml-config", str(cfg)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "RND_WEIRD" in err[0]
    assert not (tmp_path / "m.npz").exists() and not (tmp_path / "q.json").exists()
