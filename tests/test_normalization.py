"""Input normalisation (issue #12): the --norm modes, raw 8-bit pixels as exact integer inputs,
folding the normalisation into layer 0, and the model files' new fields read back from old files."""

import json

import numpy as np
import pytest

from bp_hw.cli import main
from bp_hw.data import Dataset, split_dataset
from bp_hw.errors import BpHwError
from bp_hw.fixed import QFormat, QLayer, QModel, QuantConfig, quantize_model
from bp_hw.fixed.quantizer import fold_normalization, raw_input_format
from bp_hw.flow import Flow, FlowConfig
from bp_hw.modelfile import load_model, save_model
from bp_hw.reference import TrainConfig, normalization_stats, train
from bp_hw.reference.trainer import STD_FLOOR_FRACTION


def pixels(n=300, d=16, seed=0):
    """8-bit 'images': class 1 is brighter in the first half of the pixels. Column 0 is always 0."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.integers(0, 128, (n, d)).astype(np.float64)
    X[y == 1, : d // 2] += 127
    X[:, 0] = 0.0
    X[0, 1] = 255.0
    return Dataset("pixels", X, y, 2)


def trained(norm, ds=None, **kw):
    ds = ds or pixels()
    tr, te = split_dataset(ds, 0.3, 0)
    cfg = TrainConfig(data="pixels.npz", layers=[ds.n_features, 6, 2], epochs=5, norm=norm, **kw)
    return train(tr, te, cfg), tr, te


# --- the modes ----------------------------------------------------------------------------------

def test_global_is_one_power_of_two_scale_strictly_above_the_largest_value():
    X = pixels().X
    mean, std = normalization_stats(X, "global")
    assert np.all(mean == 0) and np.all(std == 256.0)
    assert np.array_equal((X - mean) / std * 256, X)       # pixel p -> p / 256 exactly
    assert normalization_stats(np.array([[0.0, 16.0]]), "global")[1].tolist() == [32.0, 32.0]
    assert normalization_stats(np.array([[0.0, 256.0]]), "global")[1].tolist() == [512.0, 512.0]
    assert normalization_stats(np.array([[-3.0, 1.0]]), "global")[1].tolist() == [4.0, 4.0]
    assert normalization_stats(np.zeros((3, 2)), "global")[1].tolist() == [1.0, 1.0]


def test_std_floor_keeps_near_constant_features_from_blowing_up():
    X = pixels().X.copy()
    X[:, 1] = 0.0
    X[0, 1] = 1.0                                   # a border pixel: almost always 0
    mean_s, std_s = normalization_stats(X, "standard")
    mean_f, std_f = normalization_stats(X, "std-floor")
    np.testing.assert_array_equal(mean_s, mean_f)
    floor = STD_FLOOR_FRACTION * X.std()
    assert std_s[1] < 0.1 and std_f[1] == pytest.approx(floor)
    assert np.all(std_f >= floor) and std_f[0] == pytest.approx(floor)   # constant column 0 gets the floor too
    big = X.copy()
    big[:, 1] = 255.0                               # a test image lit where training was dark
    assert np.abs((big - mean_s) / std_s).max() > 1000
    assert np.abs((big - mean_f) / std_f).max() < 10


def test_standard_and_none():
    X = np.array([[1.0, 5.0], [3.0, 5.0]])
    mean, std = normalization_stats(X, "standard")
    assert mean.tolist() == [2.0, 5.0] and std.tolist() == [1.0, 1.0]   # the constant feature gets std 1
    for a, b in zip(normalization_stats(X), normalization_stats(X, "standard")):
        np.testing.assert_array_equal(a, b)
    mean, std = normalization_stats(X, "none")
    assert mean.tolist() == [0.0, 0.0] and std.tolist() == [1.0, 1.0]
    with pytest.raises(BpHwError, match="unknown --norm 'minmax'.*standard, global, std-floor, none"):
        normalization_stats(X, "minmax")


def test_default_is_global_for_image_data_and_standard_otherwise():
    assert TrainConfig(data="mnist", layers=[784, 8, 10]).resolve(784, 10).norm == "global"
    assert TrainConfig(data="digits", layers=[64, 8, 10]).resolve(64, 10).norm == "global"
    assert TrainConfig(data="iris").resolve(4, 3).norm == "standard"
    assert TrainConfig(data="digits", norm="std-floor").resolve(64, 10).norm == "std-floor"
    with pytest.raises(BpHwError, match="unknown --norm"):
        TrainConfig(norm="pixels").validate()
    cfg = TrainConfig(data="mnist").resolve(784, 10)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_train_stores_the_mode_and_the_arrays(tmp_path):
    model, tr, _ = trained("global")
    assert model.norm_mode == "global" and model.config["norm"] == "global"
    np.testing.assert_array_equal(model.norm_std, np.full(16, 256.0))
    save_model(tmp_path / "m.npz", model)
    back = load_model(tmp_path / "m.npz")
    assert back.norm_mode == "global"
    np.testing.assert_array_equal(back.normalize(tr.X), tr.X / 256)


def test_a_model_file_without_the_field_reads_as_standard(tmp_path):
    model, _, _ = trained("standard")
    save_model(tmp_path / "m.npz", model)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["metadata"][()]))
    del meta["norm_mode"]
    arrays["metadata"] = np.array(json.dumps(meta))
    with open(tmp_path / "old.npz", "wb") as f:
        np.savez(f, **arrays)
    assert load_model(tmp_path / "old.npz").norm_mode == "standard"
    meta["norm_mode"] = "bogus"                      # the check can fail
    arrays["metadata"] = np.array(json.dumps(meta))
    with open(tmp_path / "bad.npz", "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(BpHwError, match="unknown normalisation 'bogus'"):
        load_model(tmp_path / "bad.npz")


# --- raw pixels as integer inputs ------------------------------------------------------------------

def test_global_normalisation_with_uq0_8_makes_pixel_p_the_integer_p():
    model, tr, te = trained("global")
    q, _ = quantize_model(model, QuantConfig(format="Q4.12", input_format="UQ0.8"), tr.X)
    assert q.input_fmt == QFormat(0, 8, signed=False) and q.normalization == "host" and q.norm_mode == "global"
    for X in (tr.X, te.X):
        ints, sat = q.quantize_inputs(X)
        assert sat == 0 and np.array_equal(ints, X.astype(np.int64))
    # More fraction bits than the scale's 8: a pure left shift, still exact.
    q12, _ = quantize_model(model, QuantConfig(format="Q4.12", input_format="UQ1.11"), tr.X)
    assert np.array_equal(q12.quantize_inputs(tr.X)[0], tr.X.astype(np.int64) << 3)


def test_auto_input_format_is_unsigned_for_non_negative_inputs():
    model, tr, _ = trained("global")
    q, _ = quantize_model(model, QuantConfig(format="Q4.12", input_format="auto", bit_budget=8), tr.X)
    assert q.input_fmt.name == "UQ0.8"
    model_s, tr_s, _ = trained("standard")
    q_s, _ = quantize_model(model_s, QuantConfig(format="Q4.12", input_format="auto", bit_budget=8), tr_s.X)
    assert q_s.input_fmt.signed


def test_an_unsigned_input_times_a_signed_weight_is_exact_in_the_integer_model():
    # Worst case of UQ0.8 x Q1.7 products: 255 * -128 on every input, and 255 * 127.
    fan_in = 784
    layer = QLayer(weights=np.array([[-128] * fan_in, [127] * fan_in]), biases=np.array([0, 0]),
                   activation="identity", in_fmt=QFormat.parse("UQ0.8"), weight_fmt=QFormat.parse("Q1.7"),
                   bias_fmt=QFormat.parse("Q8.8"), z_fmt=QFormat.parse("Q12.4"), out_fmt=QFormat.parse("Q12.4"))
    a = np.array([[255] * fan_in, [0] * fan_in])
    t = layer.forward(a)
    assert t["acc"][0].tolist() == [-128 * 255 * fan_in, 127 * 255 * fan_in] and t["acc"][1].tolist() == [0, 0]
    assert layer.product_frac == 15
    lim = 1 << (layer.acc_width - 1)
    assert -lim <= t["acc"].min() and t["acc"].max() < lim


# --- folding ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["standard", "global", "std-floor"])
def test_folded_float_model_computes_the_same_function_on_raw_inputs(norm):
    model, tr, _ = trained(norm)
    folded = fold_normalization(model, QFormat.parse("UQ0.8"))
    np.testing.assert_array_equal(folded.norm_mean, 0.0)
    np.testing.assert_array_equal(folded.norm_std, 256.0)
    np.testing.assert_allclose(folded.predict_proba(tr.X), model.predict_proba(tr.X), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(folded.weights[1], model.weights[1])


def test_folded_global_model_is_the_host_model_when_the_scale_matches_the_format():
    # global scale 256 and UQ0.8: W0 * 256 / 256 = W0 and no offset, so folding changes nothing at all.
    model, tr, te = trained("global")
    host, _ = quantize_model(model, QuantConfig(format="Q4.12", input_format="UQ0.8"), tr.X)
    fold, _ = quantize_model(model, QuantConfig(format="Q4.12", input_format="UQ0.8", fold_norm=True), tr.X)
    assert (host.normalization, fold.normalization) == ("host", "folded")
    for a, b in zip(host.layers, fold.layers):
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.biases, b.biases)
    assert np.array_equal(fold.quantize_inputs(te.X)[0], te.X.astype(np.int64))
    assert np.array_equal(fold.predict_classes(te.X), host.predict_classes(te.X))


def test_folded_uq1_7_takes_the_same_raw_integers_with_halved_weights():
    model, tr, te = trained("global")
    q, _ = quantize_model(model, QuantConfig(format="Q4.12", input_format="UQ1.7", fold_norm=True), tr.X)
    assert q.input_fmt.name == "UQ1.7"
    assert np.array_equal(q.quantize_inputs(te.X)[0], te.X.astype(np.int64))
    folded = fold_normalization(model, q.input_fmt)
    np.testing.assert_array_equal(folded.weights[0], model.weights[0] / 2)


def test_fold_picks_the_narrowest_raw_format_and_rejects_what_does_not_fit():
    X = pixels().X
    assert raw_input_format(None, X).name == "UQ0.8"
    assert raw_input_format("auto", X[:, :1] + np.arange(len(X))[:, None] % 17).name == "UQ0.5"
    assert raw_input_format("auto", np.array([[-128.0, 127.0]])).name == "Q1.7"
    assert raw_input_format("UQ1.7", X).name == "UQ1.7"
    with pytest.raises(BpHwError, match=r"span 0\.\.255 .* UQ0\.7 holds the integers 0\.\.127; use --input-format UQ0\.8"):
        raw_input_format("UQ0.7", X)
    with pytest.raises(BpHwError, match="non-integer values .*without --fold-norm"):
        raw_input_format("UQ0.8", X + 0.5)
    model, tr, _ = trained("global")
    with pytest.raises(BpHwError, match="--fold-norm needs data"):
        quantize_model(model, QuantConfig(fold_norm=True))


# --- qmodel.json fields --------------------------------------------------------------------------------

def test_qmodel_records_where_normalisation_happens_and_old_files_read_as_host():
    model, tr, _ = trained("global")
    q, _ = quantize_model(model, QuantConfig(input_format="UQ0.8", fold_norm=True), tr.X)
    d = q.to_dict()
    assert d["normalization"] == "folded" and d["norm_mode"] == "global"
    assert d["source"]["quant_config"]["fold_norm"] is True
    back = QModel.from_dict(json.loads(json.dumps(d)))
    assert back.to_dict() == d
    old = {k: v for k, v in d.items() if k not in ("normalization", "norm_mode")}
    assert (QModel.from_dict(old).normalization, QModel.from_dict(old).norm_mode) == ("host", "standard")
    with pytest.raises(BpHwError, match="normalization 'device' is not one of host, folded"):
        QModel.from_dict(dict(d, normalization="device"))
    with pytest.raises(BpHwError, match="norm_std has shape"):
        QModel.from_dict(dict(d, norm_std=[1.0]))


# --- the commands --------------------------------------------------------------------------------------

def run_cli(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_train_and_quantize_commands(tmp_path, capsys):
    ds = pixels()
    np.savez(tmp_path / "px.npz", X=ds.X, y=ds.y)
    code, out, _ = run_cli(["train", "--data", tmp_path / "px.npz", "--layers", "16,6,2", "--epochs", "5",
                            "--norm", "global", "--out", tmp_path / "m.npz", "--json"], capsys)
    assert code == 0 and json.loads(out)["norm"] == "global"
    code, out, _ = run_cli(["train", "--data", tmp_path / "px.npz", "--layers", "16,6,2", "--epochs", "1",
                            "--out", tmp_path / "s.npz", "--json"], capsys)
    assert code == 0 and json.loads(out)["norm"] == "standard"       # a user file: standard by default
    code, out, err = run_cli(["quantize", tmp_path / "m.npz", "--input-format", "UQ0.8", "--fold-norm",
                              "--out", tmp_path / "q.json", "--json"], capsys)
    assert code == 0, err
    s = json.loads(out)
    assert (s["normalization"], s["norm_mode"], s["formats"]["input"]) == ("folded", "global", "UQ0.8")
    assert s["saturations"]["inputs"] == 0 and s["within_bound"]
    assert json.loads((tmp_path / "q.json").read_text())["normalization"] == "folded"
    np.savez(tmp_path / "frac.npz", X=ds.X + 0.25, y=ds.y)   # not integers: nothing to fold for
    code, out, err = run_cli(["quantize", tmp_path / "m.npz", "--data", tmp_path / "frac.npz", "--fold-norm",
                              "--out", tmp_path / "bad.json"], capsys)
    assert code == 2 and "--fold-norm" in err and not (tmp_path / "bad.json").exists()
    code, _, err = run_cli(["train", "--data", "iris", "--norm", "minmax", "--out", tmp_path / "x.npz"], capsys)
    assert code == 2 and "--norm" in err and not (tmp_path / "x.npz").exists()


def test_flow_passes_norm_and_fold_norm_through_its_config():
    cfg = FlowConfig()
    cfg.set("train", "norm", "std-floor")
    cfg.set("quantize", "fold_norm", True)
    flow = Flow(cfg, "/nonexistent")
    train_argv, quant_argv = flow.argv("train"), flow.argv("quantize")
    assert train_argv[train_argv.index("--norm") + 1] == "std-floor"
    assert "--fold-norm" in quant_argv
    assert 'norm = "std-floor"' in cfg.to_toml() and "fold_norm = true" in cfg.to_toml()


def test_digits_default_norm_keeps_test_inputs_in_range():
    pytest.importorskip("sklearn", reason="--data digits needs the optional extra: pip install -e '.[digits]'")
    from bp_hw.data import load_dataset
    tr, te = split_dataset(load_dataset("digits"), 0.3, 0)
    for mode, bound in (("global", 1.0), ("std-floor", 8.0)):
        mean, std = normalization_stats(tr.X, mode)
        assert np.abs((te.X - mean) / std).max() < bound
    mean, std = normalization_stats(tr.X, "standard")
    assert np.abs((te.X - mean) / std).max() > 8.0      # what Q4.12 saturates
