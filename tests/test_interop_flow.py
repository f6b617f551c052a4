"""bp-hw flow --model: every exporter style's fixture is imported, quantized (or keeps its QONNX formats),
generated and co-simulated in Verilator with 0 mismatches; the report says the train step was an import."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnx", reason="the onnx extra")

from bp_hw.cli import main  # noqa: E402
from fixtures.onnx.reference import HERE  # noqa: E402
from fixtures.simulators import need  # noqa: E402

STYLES = ["torch_gemm_sigmoid", "torch_dynamo_matmul_relu", "torch_batchnorm_tanh", "keras_tf2onnx_style",
          "sklearn_mlp_relu", "brevitas_qonnx_relu", "hgq_style_qonnx"]


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_flow_from_an_imported_model(style, tmp_path, capsys):
    need("verilator")
    out = tmp_path / "flow"
    rc = main(["flow", "--model", str(HERE / f"{style}.onnx"), "--data", "iris", "--no-synth", "--out", str(out),
               "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 0, s
    assert s["steps"] == {"train": "ok", "quantize": "ok", "generate": "ok", "simulate": "ok", "synth": "skipped"}
    assert s["train_step"].startswith("replaced by bp-hw import")
    assert s["vectors"] == 150 and s["mismatches"] == 0
    assert s["float_accuracy"] > 0.85 and s["fixed_test_accuracy"] > 0.85
    report = (out / "report.html").read_text()
    assert "replaced by bp-hw import" in report
    quantize_log = (out / "2_quantize" / "log.txt").read_text()
    if "qonnx" in style:   # the model's own formats, not a re-quantization
        assert "--qmodel" in quantize_log and "formats from the model" in report
    else:
        assert quantize_log.startswith("$ bp-hw quantize")
