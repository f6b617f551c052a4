"""Model files: round trip, atomic writes, refusal of anything that is not ours."""

import json
import zipfile

import numpy as np
import pytest

from bp_hw.errors import BpHwError
from bp_hw.modelfile import FORMAT_VERSION, FloatModel, load_model, save_model
from bp_hw.reference import init_weights


def make_model(layers=(4, 6, 3), activations=("tanh", "softmax"), loss="cross_entropy", seed=0):
    w, b = init_weights(list(layers), "xavier", seed)
    rng = np.random.default_rng(seed)
    b = [rng.normal(size=x.shape) for x in b]
    return FloatModel(layers=list(layers), weights=w, biases=b, activations=list(activations), loss=loss,
                      norm_mean=rng.normal(size=layers[0]), norm_std=rng.uniform(0.5, 2, layers[0]),
                      n_classes=max(layers[-1], 2), config={"lr": 0.5, "layers": list(layers), "clip": None},
                      history={"train_loss": [0.5, 0.25], "test_loss": [0.6, 0.3],
                               "train_accuracy": [0.5, 0.75], "test_accuracy": [0.4, 0.7]})


def test_roundtrip(tmp_path):
    model = make_model()
    path = tmp_path / "m.npz"
    save_model(path, model)
    again = load_model(path)
    assert again.layers == model.layers and again.activations == model.activations
    assert again.loss == model.loss and again.n_classes == model.n_classes
    assert again.config == model.config and again.history == model.history
    for a, b in zip(again.weights + again.biases, model.weights + model.biases):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again.norm_mean, model.norm_mean)
    X = np.random.default_rng(1).normal(size=(9, 4))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary left behind


def test_file_is_plain_npz_with_json_metadata(tmp_path):
    path = tmp_path / "m.npz"
    save_model(path, make_model())
    with np.load(path, allow_pickle=False) as npz:
        assert {"W0", "b0", "W1", "b1", "norm_mean", "norm_std", "metadata"} == set(npz.files)
        meta = json.loads(str(npz["metadata"]))
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["layers"] == [4, 6, 3] and meta["activations"] == ["tanh", "softmax"]


def test_any_suffix_is_written_to_the_given_name(tmp_path):
    path = tmp_path / "model.bin"
    save_model(path, make_model())
    assert path.is_file() and zipfile.is_zipfile(path)
    assert load_model(path).layers == [4, 6, 3]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(BpHwError, match="cannot write model file.*No space left"):
        save_model(path, make_model())
    assert list(tmp_path.iterdir()) == []


def test_predict_classes():
    m = make_model()
    X = np.random.default_rng(2).normal(size=(20, 4))
    np.testing.assert_array_equal(m.predict_classes(X), m.predict_proba(X).argmax(axis=1))
    binary = make_model(layers=(4, 3, 1), activations=("sigmoid", "sigmoid"), loss="mse")
    np.testing.assert_array_equal(binary.predict_classes(X), (binary.predict_proba(X)[:, 0] > 0.5).astype(int))
    signed = make_model(layers=(4, 3, 1), activations=("tanh", "tanh"), loss="mse")
    np.testing.assert_array_equal(signed.predict_classes(X), (signed.predict_proba(X)[:, 0] > 0).astype(int))


def test_normalize_and_input_shape():
    m = make_model()
    X = np.ones((2, 4))
    np.testing.assert_allclose(m.normalize(X), (X - m.norm_mean) / m.norm_std)
    with pytest.raises(BpHwError, match=r"expects \(samples, 4\)"):
        m.normalize(np.ones((2, 5)))


@pytest.mark.parametrize("change, message", [
    (lambda m: m.weights.__setitem__(0, np.zeros((6, 5))), "weights of layer 0 have shape"),
    (lambda m: m.biases.__setitem__(1, np.zeros(4)), "biases of layer 1 have shape"),
    (lambda m: m.activations.__setitem__(0, "softmax"), "softmax is only allowed on the output"),
    (lambda m: m.activations.__setitem__(1, "gelu"), "unknown activation"),
    (lambda m: m.weights[1].__setitem__((0, 0), np.nan), "NaN or infinite weights"),
    (lambda m: setattr(m, "norm_std", np.zeros(4)), "norm_std must be positive"),
    (lambda m: setattr(m, "loss", "hinge"), "unknown loss"),
])
def test_validate(change, message):
    m = make_model()
    change(m)
    with pytest.raises(BpHwError, match=message):
        m.validate()


def write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def good_arrays(tmp_path):
    path = tmp_path / "good.npz"
    save_model(path, make_model())
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def with_meta(arrays, **changes):
    meta = json.loads(str(arrays["metadata"]))
    meta.update(changes)
    return {**arrays, "metadata": np.array(json.dumps(meta))}


def test_load_errors(tmp_path):
    with pytest.raises(BpHwError, match="model file not found"):
        load_model(tmp_path / "missing.npz")

    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(BpHwError, match="not an .npz archive"):
        load_model(text)

    arrays = good_arrays(tmp_path)
    cases = {
        "nometa": ({k: v for k, v in arrays.items() if k != "metadata"}, "no metadata"),
        "foreign": (with_meta(arrays, format="something-else"), "not a bp-hw float model"),
        "version": (with_meta(arrays, format_version=FORMAT_VERSION + 1), "format version 2 is not supported"),
        "badjson": ({**arrays, "metadata": np.array("{not json")}, "not valid JSON"),
        "missing": ({k: v for k, v in arrays.items() if k != "W1"}, "missing arrays W1"),
        "nan": ({**arrays, "W0": np.full_like(arrays["W0"], np.nan)}, "NaN or infinite"),
        "shape": ({**arrays, "b0": np.zeros(7)}, "biases of layer 0 have shape"),
        "object": ({**arrays, "W0": np.array([1, "a"], dtype=object)}, "not a bp-hw model file"),
        "intdtype": ({**arrays, "W0": arrays["W0"].astype(np.int32)}, "expected float"),
        "metatype": (with_meta(arrays, layers="abc"), "malformed model metadata|layer sizes"),
    }
    for name, (arrs, message) in cases.items():
        path = tmp_path / f"{name}.npz"
        write_npz(path, **arrs)
        with pytest.raises(BpHwError, match=message):
            load_model(path)
