"""ONNX import of the exporter fixtures (tests/fixtures/onnx, made by make_fixtures.py): the float forward
equals onnxruntime's, normalisation is folded, output decoding ignored, and bad graphs are one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx", reason="ONNX import needs the onnx extra: pip install -e '.[onnx]'")
pytest.importorskip("onnxruntime", reason="the onnx extra")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from bp_hw.cli import main  # noqa: E402
from bp_hw.data import load_dataset  # noqa: E402
from bp_hw.errors import BpHwError  # noqa: E402
from bp_hw.interop.onnx_import import import_onnx  # noqa: E402
from bp_hw.modelfile import load_model  # noqa: E402
from fixtures.onnx.reference import FLOAT_FIXTURES, HERE, iris_like, ort_float32, ort_float64  # noqa: E402

EXPECTED = {  # layers, activations, what the normalisation was written as
    "torch_gemm_sigmoid.onnx": ([4, 8, 3], ["sigmoid", "identity"], ["Sub", "Div"]),
    "torch_dynamo_matmul_relu.onnx": ([4, 16, 8, 3], ["relu", "relu", "softmax"], ["Mul", "Add"]),
    "torch_batchnorm_tanh.onnx": ([4, 6, 3], ["tanh", "softmax"], ["BatchNormalization"]),
    "keras_tf2onnx_style.onnx": ([4, 8, 3], ["relu", "softmax"], ["Sub", "Mul"]),
    "sklearn_mlp_relu.onnx": ([4, 16, 3], ["relu", "softmax"], ["Scaler"]),
    "sklearn_mlp_binary.onnx": ([4, 8, 1], ["sigmoid", "sigmoid"], []),
}


@pytest.mark.parametrize("name", FLOAT_FIXTURES)
def test_structure(name):
    im = import_onnx(HERE / name)
    layers, acts, norm = EXPECTED[name]
    assert im.sizes == layers and [l.activation for l in im.layers] == acts
    assert [d.split()[0] for d in im.normalization_nodes] == norm
    assert not im.quantized


@pytest.mark.parametrize("name", FLOAT_FIXTURES)
def test_float_forward_equals_onnxruntime(name):
    """1,000 samples: bp-hw's float64 forward vs onnxruntime on the same graph in float64 (1e-12), and vs
    the file as exported in float32 (within float32's own rounding: 1e-6 relative to the output size)."""
    im = import_onnx(HERE / name)
    model = im.float_model()
    X = iris_like(1000)
    ours = model.predict_proba(X)
    if name.startswith("sklearn_mlp_relu"):   # ai.onnx.ml Scaler computes in float32 only
        ref64 = None
    else:
        ref64 = ort_float64(HERE / name, X, im.output_name)
        assert np.max(np.abs(ours - ref64)) < 1e-12
    ref32 = ort_float32(HERE / name, X, im.output_name)
    scale = np.maximum(1.0, np.abs(ref32))
    assert np.max(np.abs(ours - ref32) / scale) < 1e-5
    if ref64 is None:
        assert np.max(np.abs(ours - ref32)) < 1e-6


def test_within_1e6_where_outputs_are_probabilities():
    """Softmax/sigmoid outputs are at most 1: there even onnxruntime's float32 agrees within 1e-6."""
    X = iris_like(1000)
    for name in ("keras_tf2onnx_style.onnx", "sklearn_mlp_relu.onnx", "sklearn_mlp_binary.onnx"):
        im = import_onnx(HERE / name)
        diff = np.abs(im.float_model().predict_proba(X) - ort_float32(HERE / name, X, im.output_name))
        assert diff.max() < 1e-6, name


def test_weights_are_the_files_bits():
    im = import_onnx(HERE / "torch_gemm_sigmoid.onnx")
    import onnx
    m = onnx.load(str(HERE / "torch_gemm_sigmoid.onnx"))
    w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    np.testing.assert_array_equal(im.layers[0].weight, w["1.weight"].astype(np.float64))
    np.testing.assert_array_equal(im.float_model().norm_mean, w["0.mean"].astype(np.float64))


def test_iris_accuracy_equals_the_exporters(tmp_path, capsys):
    """Import with --data: the accuracy equals onnxruntime's argmax on the same file (and the training one)."""
    ds = load_dataset("iris")
    versions = json.loads((HERE / "VERSIONS.json").read_text())["training_accuracy_on_iris"]
    for name in ("torch_gemm_sigmoid.onnx", "torch_dynamo_matmul_relu.onnx", "sklearn_mlp_relu.onnx"):
        out = tmp_path / "m.npz"
        assert main(["import", str(HERE / name), "--out", str(out), "--data", "iris", "--json"]) == 0
        s = json.loads(capsys.readouterr().out)
        im = import_onnx(HERE / name)
        ref = ort_float32(HERE / name, ds.X.astype(np.float32).astype(np.float64), im.output_name)
        assert s["float_accuracy"] == pytest.approx(float(np.mean(ref.argmax(1) == ds.y)))
        assert s["float_accuracy"] == pytest.approx(versions[name[:-5]], abs=1e-6)
        assert load_model(out).layers == im.sizes


def test_torch_live_export_matches_torch(tmp_path):
    torch = pytest.importorskip("torch", reason="a live torch.onnx.export needs torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).eval()
    path = tmp_path / "live.onnx"
    torch.onnx.export(net, (torch.zeros(2, 4),), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "N"}})
    model = import_onnx(path).float_model()
    X = iris_like(200)
    with torch.no_grad():
        ref = net(torch.tensor(X, dtype=torch.float64).to(torch.float32)).double().numpy()
    assert np.max(np.abs(model.predict_proba(X) - ref)) < 1e-5


# -- bad inputs: one line, exit 2, no file -------------------------------------------------------------------

def _save(nodes, inits, path, n_in=4, n_out=3, opsets=(("", 17),)):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_in])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    path.write_bytes(m.SerializeToString())
    return path


def _const(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def _conv(path):
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["x3"], name="to_ncw"),
             helper.make_node("Conv", ["x3", "k"], ["c"], name="conv1"),
             helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("Gemm", ["f", "W", "b"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(np.array([-1, 1, 4], np.int64), "shape"), _const("k", np.ones((1, 1, 2))),
             _const("W", np.ones((3, 3))), _const("b", np.zeros(3))]
    return _save(nodes, inits, path)


def _unknown_op(path):
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"], transB=1, name="fc1"),
             helper.make_node("Elu", ["h"], ["a"], name="weird_act"),
             helper.make_node("Gemm", ["a", "W2", "b2"], ["y"], transB=1, name="fc2")]
    inits = [_const("W", np.ones((5, 4))), _const("b", np.zeros(5)), _const("W2", np.ones((3, 5))),
             _const("b2", np.zeros(3))]
    return _save(nodes, inits, path)


def _non_pow2(path):
    q = dict(domain="qonnx.custom_op.general", signed=1, narrow=0, rounding_mode="ROUND")
    nodes = [helper.make_node("Quant", ["x", "s_in", "z", "bits"], ["xq"], name="q_in", **q),
             helper.make_node("Quant", ["W", "s_w", "z", "bits"], ["Wq"], name="q_weight", **q),
             helper.make_node("Gemm", ["xq", "Wq"], ["y"], transB=1, name="fc")]
    inits = [_const("s_in", 2.0 ** -4), _const("s_w", 0.1), _const("z", 0.0), _const("bits", 8.0),
             _const("W", np.ones((3, 4)) * 0.3)]
    return _save(nodes, inits, path, opsets=(("", 17), ("qonnx.custom_op.general", 1)))


def _truncated(path):
    data = (HERE / "torch_gemm_sigmoid.onnx").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


BAD = {
    "conv": (_conv, ["Conv node \"conv1\"", "op type Conv"]),
    "unknown_op": (_unknown_op, ["Elu node \"weird_act\"", "op type Elu", "Relu"]),
    "non_pow2_scale": (_non_pow2, ["Quant node \"q_weight\"", "scale 0.1", "power of two"]),
    "truncated": (_truncated, ["not a readable ONNX model"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_model_one_line_exit_2_no_file(case, tmp_path, capsys):
    make, words = BAD[case]
    src = make(tmp_path / f"{case}.onnx")
    out = tmp_path / "m.npz"
    rc = main(["import", str(src), "--out", str(out), "--qmodel", str(tmp_path / "q.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("bp-hw import: error:"), err
    for w in words:
        assert w in err[0], (w, err[0])
    assert not out.exists() and not (tmp_path / "q.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]


def test_subprocess_has_no_traceback(tmp_path):
    import subprocess
    import sys
    src = _unknown_op(tmp_path / "u.onnx")
    p = subprocess.run([sys.executable, "-m", "bp_hw.cli", "import", str(src), "--out", str(tmp_path / "m.npz")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_branching_graph_is_refused(tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"], transB=1, name="fc1"),
             helper.make_node("Relu", ["h"], ["a"], name="r"),
             helper.make_node("Gemm", ["a", "W2", "b2"], ["y"], transB=1, name="head1"),
             helper.make_node("Gemm", ["a", "W2", "b2"], ["y2"], transB=1, name="head2")]
    inits = [_const("W", np.ones((5, 4))), _const("b", np.zeros(5)), _const("W2", np.ones((3, 5))),
             _const("b2", np.zeros(3))]
    with pytest.raises(BpHwError, match="head"):
        import_onnx(_save(nodes, inits, tmp_path / "branch.onnx"))


def test_negative_scale_normalisation_flips_weights(tmp_path):
    """Mul by a negative constant cannot be a positive std: its sign goes into layer 0's weight columns."""
    W = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    nodes = [helper.make_node("Mul", ["x", "k"], ["xs"]), helper.make_node("Gemm", ["xs", "W", "b"], ["y"], transB=1)]
    path = _save(nodes, [_const("k", [1.0, -2.0, 0.5, -1.0]), _const("W", W), _const("b", np.zeros(3))],
                 tmp_path / "neg.onnx")
    model = import_onnx(path).float_model()
    X = iris_like(50)
    np.testing.assert_allclose(model.predict_proba(X), ort_float64(path, X, "y"), rtol=0, atol=1e-12)
    assert np.all(model.norm_std > 0)


def test_missing_onnx_says_how_to_install(monkeypatch, tmp_path, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the extra were not installed
    rc = main(["import", str(HERE / "torch_gemm_sigmoid.onnx"), "--out", str(tmp_path / "m.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and 'pip install -e ".[onnx]"' in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.npz").exists()
