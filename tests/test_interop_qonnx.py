"""QONNX import: Quant nodes become the layer formats and the integer model equals QONNX's own execution
(qonnx.core.onnx_exec.execute_onnx) on every sample; what cannot be a bp-hw format is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx", reason="QONNX import needs the onnx extra: pip install -e '.[onnx]'")
pytest.importorskip("qonnx", reason="the reference is qonnx's executor (onnx extra)")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from bp_hw.cli import main  # noqa: E402
from bp_hw.data import load_dataset  # noqa: E402
from bp_hw.errors import BpHwError  # noqa: E402
from bp_hw.fixed import QModel  # noqa: E402
from bp_hw.interop.onnx_import import import_onnx  # noqa: E402
from bp_hw.interop.qonnx import build_qmodel  # noqa: E402
from fixtures.onnx.reference import HERE, QONNX_FIXTURES, iris_like, qonnx_execute  # noqa: E402

FORMATS = {  # what the files say: input; per layer weight, bias, output
    "brevitas_qonnx_relu.onnx": ("Q3.5", [("Q2.6", "Q5.11", "UQ3.5"), ("Q2.6", "Q5.11", None)]),
    "hgq_style_qonnx.onnx": ("Q3.5", [("Q3.6", "Q3.9", "UQ3.4"), ("Q3.6", "Q4.8", "Q6.3")]),
}


def _samples():
    iris = load_dataset("iris").X.astype(np.float32).astype(np.float64)
    return np.concatenate([iris, iris_like(1000)])


def _integer_outputs(qmodel, X):
    ints, _ = qmodel.quantize_inputs(X)
    return qmodel.predict(ints)


@pytest.mark.parametrize("name", QONNX_FIXTURES)
def test_formats_come_from_the_file(name):
    q, notes = build_qmodel(import_onnx(HERE / name))
    want_in, want_layers = FORMATS[name]
    assert q.input_fmt.name == want_in
    for layer, (w, b, out) in zip(q.layers, want_layers):
        assert (layer.weight_fmt.name, layer.bias_fmt.name) == (w, b)
        if out is not None:
            assert layer.out_fmt.name == out
    assert notes == []


@pytest.mark.parametrize("name", QONNX_FIXTURES)
def test_integer_model_equals_qonnx_execution(name):
    """iris (150) + 1,000 iris-like samples: 0 differences between bp-hw's integers and QONNX's output."""
    q, _ = build_qmodel(import_onnx(HERE / name))
    X = _samples()
    ours = _integer_outputs(q, X)
    ref = qonnx_execute(HERE / name, X)
    ref_int = np.ldexp(ref, q.output_fmt.frac_bits)
    assert np.all(ref_int == np.round(ref_int)), "QONNX's outputs are on the output format's grid"
    mismatches = int(np.count_nonzero(ours != ref_int.astype(np.int64)))
    assert mismatches == 0, f"{mismatches} of {ours.size} outputs differ"
    assert len(X) == 1150


def test_comparison_catches_a_changed_weight():
    """The check can fail: one weight one LSB off changes some outputs."""
    q, _ = build_qmodel(import_onnx(HERE / "brevitas_qonnx_relu.onnx"))
    X = _samples()
    ref_int = np.ldexp(qonnx_execute(HERE / "brevitas_qonnx_relu.onnx", X), q.output_fmt.frac_bits)
    q.layers[0].weights[3, 1] += 1
    assert np.count_nonzero(_integer_outputs(q, X) != ref_int) > 0


def test_cli_writes_qmodel_and_reports_both_accuracies(tmp_path, capsys):
    out, qout = tmp_path / "m.npz", tmp_path / "q.json"
    assert main(["import", str(HERE / "brevitas_qonnx_relu.onnx"), "--out", str(out), "--qmodel", str(qout),
                 "--data", "iris", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["quantized"] and s["formats"]["input"] == "Q3.5"
    q = QModel.load(qout)
    ds = load_dataset("iris")
    ref = qonnx_execute(HERE / "brevitas_qonnx_relu.onnx", ds.X)
    assert s["fixed_accuracy"] == pytest.approx(float(np.mean(ref.argmax(1) == ds.y)))
    assert s["fixed_accuracy"] == pytest.approx(float(np.mean(q.predict_classes(ds.X) == ds.y)))


def test_float_model_holds_the_dequantized_weights():
    im = import_onnx(HERE / "hgq_style_qonnx.onnx")
    q, _ = build_qmodel(im)
    m = im.float_model()
    for l, layer in enumerate(q.layers):
        np.testing.assert_array_equal(m.weights[l], layer.weight_fmt.to_float(layer.weights))


# -- what cannot be a bp-hw format ------------------------------------------------------------------------

def _quant_model(path, *, w_scale=2.0 ** -4, zeropt=0.0, in_signed=1, act="Relu", rounding="ROUND",
                 act_scale=None, narrow=0):
    q = dict(domain="qonnx.custom_op.general")
    act_scale = 2.0 ** -4 if act_scale is None else act_scale
    nodes = [helper.make_node("Quant", ["x", "s_in", "z0", "b8"], ["xq"], name="q_in", signed=in_signed, narrow=0,
                              rounding_mode="ROUND", **q),
             helper.make_node("Quant", ["W", "s_w", "z", "b8"], ["Wq"], name="q_w", signed=1, narrow=0,
                              rounding_mode="ROUND", **q),
             helper.make_node("Gemm", ["xq", "Wq"], ["h"], transB=1, name="fc1"),
             helper.make_node(act, ["h"], ["a"], name="act1"),
             helper.make_node("Quant", ["a", "s_a", "z0", "b8"], ["y"], name="q_act", signed=1, narrow=narrow,
                              rounding_mode=rounding, **q)]
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in
             {"s_in": 2.0 ** -5, "z0": 0.0, "b8": 8.0, "W": rng.normal(size=(3, 4)) * 0.5, "s_w": w_scale,
              "z": zeropt, "s_a": act_scale}.items()]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("qonnx.custom_op.general", 1)])
    path.write_bytes(m.SerializeToString())
    return path


@pytest.mark.parametrize("kw, words", [
    ({"zeropt": 3.0}, ["zero point 3", 'Quant node "q_w"']),
    ({"w_scale": 0.3}, ["scale 0.3", "not a power of two"]),
    ({"rounding": "HALF_UP"}, ["rounds HALF_UP"]),
    ({"act_scale": [2.0 ** -4, 2.0 ** -3, 2.0 ** -4]}, ["per channel"]),
])
def test_refused_quantizers_one_line(kw, words, tmp_path, capsys):
    src = _quant_model(tmp_path / "bad.onnx", **kw)
    rc = main(["import", str(src), "--out", str(tmp_path / "m.npz"), "--qmodel", str(tmp_path / "q.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    for w in words:
        assert w in err[0], (w, err[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]


@pytest.mark.parametrize("rounding, narrow", [("FLOOR", 0), ("DOWN", 0), ("ROUND", 1)])
def test_rounding_modes_and_narrow_range_match_qonnx(rounding, narrow, tmp_path):
    """identity activation with FLOOR / DOWN rounding and narrow (symmetric) saturation, exactly as QONNX."""
    src = _quant_model(tmp_path / "m.onnx", act="Identity", rounding=rounding, act_scale=2.0 ** -2, narrow=narrow)
    q, _ = build_qmodel(import_onnx(src))
    X = np.random.default_rng(1).normal(scale=3.0, size=(2000, 4))
    ref = np.ldexp(qonnx_execute(src, X), q.output_fmt.frac_bits)
    assert np.count_nonzero(_integer_outputs(q, X) != ref) == 0
    assert q.layers[0].overflow == ("symmetric" if narrow else "saturate")


def test_sigmoid_layer_gets_a_table_and_a_note(tmp_path):
    q, notes = build_qmodel(import_onnx(_quant_model(tmp_path / "s.onnx", act="Sigmoid", act_scale=2.0 ** -7)))
    assert q.layers[0].lut is not None and any("table" in n for n in notes)


def test_quantized_model_without_input_quant_is_refused(tmp_path):
    src = _quant_model(tmp_path / "m.onnx")
    import onnx
    m = onnx.load(str(src))
    m.graph.node[2].input[0] = "x"      # Gemm reads the float input directly
    del m.graph.node[0]
    src.write_bytes(m.SerializeToString())
    with pytest.raises(BpHwError, match="input has no Quant"):
        build_qmodel(import_onnx(src))
