"""bp-hw export: the float model in onnxruntime equals bp-hw's forward; export -> import gives the weights back
bit for bit; the integer model as QONNX (qonnx's executor) and as QDQ (onnxruntime) gives its integers exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx", reason="ONNX export needs the onnx extra: pip install -e '.[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra")

from bp_hw.cli import main  # noqa: E402
from bp_hw.data import load_dataset  # noqa: E402
from bp_hw.fixed import QModel  # noqa: E402
from bp_hw.interop.onnx_import import import_onnx  # noqa: E402
from bp_hw.modelfile import load_model  # noqa: E402
from fixtures.onnx.reference import HERE, iris_like, qonnx_execute  # noqa: E402


def _run(path, X, dtype):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": X.astype(dtype)})[0].astype(np.float64)


def _samples():
    return np.concatenate([load_dataset("iris").X, iris_like(1000)])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    paths = {"sigmoid": d / "sig.npz", "relu": d / "relu.npz"}
    assert main(["train", "--data", "iris", "--epochs", "30", "--out", str(paths["sigmoid"]), "--json"]) == 0
    assert main(["train", "--data", "iris", "--epochs", "30", "--activation", "relu", "--output-activation",
                 "identity", "--lr", "0.05", "--out", str(paths["relu"]), "--json"]) == 0
    paths["q_sigmoid"] = d / "q_sig.json"       # default Q4.12: 37-bit sums, exported in float64
    assert main(["quantize", str(paths["sigmoid"]), "--data", "iris", "--out", str(paths["q_sigmoid"]),
                 "--json"]) == 0
    paths["q_relu8"] = d / "q_relu8.json"       # 8-bit formats: sums fit float32, QDQ exact
    assert main(["quantize", str(paths["relu"]), "--data", "iris", "--format", "Q3.5", "--out",
                 str(paths["q_relu8"]), "--json"]) == 0
    return paths


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_export_runs_in_onnxruntime_like_bp_hw(models, tmp_path, capsys, dtype):
    model = load_model(models["sigmoid"])
    out = tmp_path / "f.onnx"
    assert main(["export", str(models["sigmoid"]), "--onnx", str(out), "--dtype", dtype, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dtype"] == dtype
    X = _samples()
    diff = np.abs(_run(out, X, dtype) - model.predict_proba(X))
    assert diff.max() < (1e-12 if dtype == "float64" else 1e-6)


def test_round_trip_float64_is_bit_for_bit(models, tmp_path, capsys):
    model = load_model(models["sigmoid"])
    out, back = tmp_path / "f.onnx", tmp_path / "back.npz"
    assert main(["export", str(models["sigmoid"]), "--onnx", str(out), "--dtype", "float64"]) == 0
    assert main(["import", str(out), "--out", str(back)]) == 0
    again = load_model(back)
    for a, b in zip(model.weights + model.biases + [model.norm_mean, model.norm_std],
                    again.weights + again.biases + [again.norm_mean, again.norm_std]):
        assert a.tobytes() == b.tobytes()
    assert again.activations == model.activations and again.layers == model.layers


def test_round_trip_float32_is_the_float32_weights(models, tmp_path):
    model = load_model(models["sigmoid"])
    out = tmp_path / "f.onnx"
    assert main(["export", str(models["sigmoid"]), "--onnx", str(out)]) == 0
    again = import_onnx(out).float_model()
    for a, b in zip(model.weights, again.weights):
        assert a.astype(np.float32).astype(np.float64).tobytes() == b.tobytes()


@pytest.mark.parametrize("which", ["q_sigmoid", "q_relu8"])
def test_qonnx_export_equals_integer_model(models, tmp_path, capsys, which):
    """QONNX's execution of the exported integer model: 0 differences on 1,150 samples (tables included).
    q_relu8's sums fit float32 (exact by construction); Q4.12's reach 33 bits, where QONNX's float32 sums could
    round: on these (fixed) samples none does, and the export says it may."""
    q = QModel.load(models[which])
    out = tmp_path / "q.onnx"
    assert main(["export", str(models[which]), "--onnx", str(out), "--json"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert bool(notes) == (which == "q_sigmoid")
    X = _samples()
    ref = np.ldexp(qonnx_execute(out, X), q.output_fmt.frac_bits)
    ours = q.predict(q.quantize_inputs(X)[0])
    assert np.count_nonzero(ours != ref) == 0


def test_qonnx_import_export_import_keeps_the_integers(tmp_path):
    """A Brevitas model imported, exported as QONNX and imported again: the same integer model."""
    q1 = tmp_path / "q1.json"
    assert main(["import", str(HERE / "brevitas_qonnx_relu.onnx"), "--out", str(tmp_path / "m.npz"),
                 "--qmodel", str(q1)]) == 0
    assert main(["export", str(q1), "--onnx", str(tmp_path / "e.onnx")]) == 0
    q2 = tmp_path / "q2.json"
    assert main(["import", str(tmp_path / "e.onnx"), "--out", str(tmp_path / "m2.npz"), "--qmodel", str(q2)]) == 0
    a, b = QModel.load(q1), QModel.load(q2)
    X = _samples()
    assert np.array_equal(a.predict(a.quantize_inputs(X)[0]), b.predict(b.quantize_inputs(X)[0]))
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.weights, lb.weights) and la.weight_fmt == lb.weight_fmt


def test_qdq_export_runs_in_onnxruntime_exactly(models, tmp_path, capsys):
    """onnxruntime (float32, standard QuantizeLinear/DequantizeLinear) on an 8-bit model: the integers exactly.
    The normalisation is float32 there and float64 in bp-hw; the comparison starts from the integer inputs
    bp-hw computes (fed as their real values through an identity normalisation)."""
    q = QModel.load(models["q_relu8"])
    out = tmp_path / "qdq.onnx"
    assert main(["export", str(models["q_relu8"]), "--onnx", str(out), "--qdq", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == []
    X = _samples()
    ints = q.quantize_inputs(X)[0]
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(out))
    for t in m.graph.initializer:   # mean 0, std 1: the graph's input is then bp-hw's quantized input
        if t.name.startswith("norm_mean"):
            t.CopyFrom(numpy_helper.from_array(np.zeros(4, np.float32), t.name))
        if t.name.startswith("norm_std"):
            t.CopyFrom(numpy_helper.from_array(np.ones(4, np.float32), t.name))
    p2 = tmp_path / "qdq_identity_norm.onnx"
    p2.write_bytes(m.SerializeToString())
    ref = np.ldexp(_run(p2, q.input_fmt.to_float(ints), np.float32), q.output_fmt.frac_bits)
    assert np.count_nonzero(q.predict(ints) != ref) == 0
    # and end to end from the raw inputs, float32 normalisation included
    end_to_end = np.ldexp(_run(out, X, np.float32), q.output_fmt.frac_bits)
    assert np.mean(q.predict(ints) == end_to_end) > 0.99


@pytest.mark.parametrize("options, words", [(["--rounding", "floor"], "rounds floor"),
                                            (["--format", "Q6.14"], "20 bits")])
def test_qdq_refuses_what_it_cannot_express(models, tmp_path, capsys, options, words):
    qf = tmp_path / "qf.json"
    assert main(["quantize", str(models["relu"]), "--data", "iris", *options, "--out", str(qf)]) == 0
    capsys.readouterr()
    rc = main(["export", str(qf), "--onnx", str(tmp_path / "x.onnx"), "--qdq"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "x.onnx").exists()


def test_interpolated_table_has_no_export(models, tmp_path, capsys):
    qi = tmp_path / "qi.json"
    assert main(["quantize", str(models["sigmoid"]), "--data", "iris", "--lut-interpolate", "--lut-bits", "6",
                 "--out", str(qi)]) == 0
    capsys.readouterr()
    rc = main(["export", str(qi), "--onnx", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "interpolated" in err[0]
    assert not (tmp_path / "x.onnx").exists()
