"""``bp-hw run``: send samples to a programmed board over its UART and compare with the integer model."""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np

from ..errors import BpHwError
from .common import add_json_flag, emit_summary, log, progress


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help="run samples on a programmed board and compare with the integer model",
                              description="Send samples to a programmed board over its UART (frame protocol 2, "
                                          "boards/README.md) and compare its outputs with the integer model. "
                                          "A network whose weights are loaded at run time (SPRAM) gets its "
                                          "load image first. Requests are pipelined up to what the board's "
                                          "receive FIFO holds; the summary gives samples/s next to the bound "
                                          "the line sets.")
    p.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB1")
    p.add_argument("--data", required=True,
                   help="iris, xor, a .csv/.npz file (raw features, quantized like the model's inputs), "
                        "or random:N for N random integer input vectors")
    p.add_argument("--build", default="build", help="build folder the bitstream was made from (default: build)")
    p.add_argument("--baud", type=int, default=115200,
                   help="UART baud rate, as the bitstream was built with (`bp-hw synth --baud`; default 115200; "
                        "the iCEBreaker's FT2232H does 3000000)")
    p.add_argument("--limit", type=int, default=None, help="send at most this many samples")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for an answer (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed for random:N")
    p.add_argument("--train", action="store_true",
                   help="a training build (generate --train, synth of it): write the build's starting parameters, "
                        "train --epochs epochs on the data set's training split, read every parameter back after "
                        "each epoch and compare outputs and parameters with the fixed-point trainer bit for bit, "
                        "then infer the test split; writes the learnt model with --out")
    p.add_argument("--epochs", type=int, default=1, help="with --train: epochs to train (default 1)")
    p.add_argument("--out", default=None, metavar="QMODEL.json",
                   help="with --train: where to write the learnt quantized model (default: none)")
    p.add_argument("--window", type=int, default=None,
                   help="most requests in flight (default: what the board's receive FIFO holds)")
    p.add_argument("--no-info", dest="info", action="store_false",
                   help="skip asking the board which network it carries")
    p.add_argument("--no-load", dest="load", action="store_false",
                   help="do not send the load image (the board already holds this build's weights)")
    add_json_flag(p)
    return p


def _inputs(args, frames, model):
    spec = args.data
    n_in, width = frames.n_in, frames.in_width
    if spec.startswith("random:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            raise BpHwError(f"--data {spec}: expected random:N with an integer N") from None
        rng = np.random.default_rng(args.seed)
        lo, hi = (-(1 << (width - 1)), 1 << (width - 1)) if frames.in_signed else (0, 1 << width)
        return rng.integers(lo, hi, size=(n, n_in)), None
    from ..data import load_dataset
    ds = load_dataset(spec)
    if ds.n_features != n_in:
        raise BpHwError(f"data set {spec} has {ds.n_features} features; the network takes {n_in} inputs")
    return np.asarray(model.quantize(ds.X), dtype=np.int64), ds.y


def run(args) -> int:
    from ..boards.frame import FrameSpec
    from ..boards.host import BoardClient, SerialPort, compare_with_model, integer_model_for, read_load_image
    from ..plan.manifest import read_manifest

    manifest = read_manifest(args.build)
    if manifest.is_training != args.train:
        raise BpHwError(f"{args.build} is a {'training' if manifest.is_training else 'inference'} build; "
                        + ("add --train" if manifest.is_training else "--train needs a build from `generate --train`"))
    if args.train:
        return _run_training(args, manifest)
    spec = FrameSpec.from_manifest(manifest)
    model = integer_model_for(manifest)
    X, y = _inputs(args, spec, model)
    if args.limit is not None:
        X = X[:args.limit]
        y = None if y is None else y[:args.limit]
    if len(X) == 0:
        raise BpHwError("no samples to send")
    with SerialPort(args.port, args.baud, timeout=args.timeout) as port:
        client = BoardClient(port, spec, window=args.window)
        if args.info:
            client.check_shape()
        if spec.load_words and args.load:
            image = read_load_image(manifest)
            bar = progress(total=len(image), desc="loading weights", unit="word")
            blocks = client.load(image, on_block=bar.update)
            bar.close()
            log(f"run: loaded {len(image)} weight words in {blocks} frames")
        log(f"run: {len(X)} samples to {args.port} at {args.baud} baud, up to {client.window} in flight")
        bar = progress(total=len(X), desc="samples", unit="sample")
        result = compare_with_model(client, X, model.expected, on_result=lambda k: bar.update(1))
        bar.close()
    bound = spec.line_bound(args.baud)
    summary = {"network": manifest.name, "port": args.port, "data": args.data, "baud": args.baud,
               **result.summary(), "line_bound_samples_per_s": round(bound, 1), "window": client.window,
               "naks": client.naks, "resends": client.resends, "link": client.stats.to_json()}
    if y is not None and model.classify is not None:
        summary["board_accuracy"] = float(np.mean(model.classify(np.asarray(result.outputs)) == y))
    human = (f"{summary['samples']} samples, {summary['mismatched_samples']} mismatched: "
             f"{'bit-exact' if summary['bit_exact'] else 'MISMATCH'} ({summary['samples_per_s']} samples/s; "
             f"the line allows {bound:.0f})")
    if result.first_mismatch:
        fm = result.first_mismatch
        human += f"\n  first mismatch: sample {fm['sample']}: board {fm['board']} model {fm['model']}"
    if "board_accuracy" in summary:
        human += f"\n  accuracy on the board: {summary['board_accuracy']:.3f}"
    emit_summary(args, summary, human)
    return 0 if summary["bit_exact"] else 1


def _run_training(args, manifest) -> int:
    """``bp-hw run --train``: on-chip training on a board, checked against FixedTrainer after every epoch."""
    from ..boards.frame import TrainFrameSpec
    from ..boards.host import BoardClient, SerialPort
    from ..cosim.train_verify import expected_run, locate, schedule_samples
    from ..data import load_dataset, split_dataset
    from ..fixed.packing import flat_params, unflat_params
    from ..plan.manifest import load_qmodel

    if args.epochs < 1:
        raise BpHwError(f"--epochs must be at least 1, not {args.epochs}")
    spec = TrainFrameSpec.from_manifest(manifest)
    q = load_qmodel(manifest)
    ds = load_dataset(args.data)
    if ds.n_features != spec.n_in:
        raise BpHwError(f"data set {args.data} has {ds.n_features} features; the network takes {spec.n_in} inputs")
    train_set, test_set = split_dataset(ds, 0.3, args.seed)
    schedule = schedule_samples(q, train_set, test_set, args.epochs, args.seed, False, True)
    want_out, want_params = expected_run(q, manifest, schedule)
    n = schedule.n_train
    address_map = manifest.training.address_map
    history = []

    def fail(message: str) -> int:
        emit_summary(args, {"network": manifest.name, "bit_exact": False, "problem": message, "epochs": history},
                     f"MISMATCH: {message}")
        return 1

    start = flat_params(q)
    with SerialPort(args.port, args.baud, timeout=args.timeout) as port:
        client = BoardClient(port, spec, window=args.window)
        if args.info:
            client.check_shape()
        client.write_params(start)
        if not np.array_equal(client.read_params(), start):
            return fail("the parameters read back right after writing them differ: the access port is broken")
        log(f"run --train: {args.epochs} epochs of {n} samples on {args.port} at {args.baud} baud")
        bar = progress(total=args.epochs * n, desc="training", unit="sample")
        t0 = time.monotonic()
        for e in range(args.epochs):
            rows = slice(e * n, (e + 1) * n)
            got = client.train(schedule.X[rows], schedule.T[rows], True, on_result=lambda k: bar.update(1))
            bad = np.flatnonzero((got != want_out[rows]).any(axis=1))
            if bad.size:
                k = int(bad[0])
                return fail(f"epoch {e + 1}, sample {k} (row {int(schedule.row[e * n + k])}): board outputs "
                            f"{got[k].tolist()}, trainer {want_out[e * n + k].tolist()}")
            params = client.read_params()
            diff = np.flatnonzero(params != want_params[e + 1])
            if diff.size:
                where = locate(address_map, int(diff[0]))
                return fail(f"after epoch {e + 1}: layer {where['layer']} {where['kind']} neuron {where['neuron']}"
                            + (f" input {where['input']}" if where["input"] is not None else "")
                            + f": board {int(params[diff[0]])}, trainer {int(want_params[e + 1][diff[0]])} "
                              f"({diff.size} parameters differ)")
            acc = float(np.mean(q.classify(got) == train_set.y[schedule.row[rows]]))
            history.append({"epoch": e + 1, "train_accuracy_forward": round(acc, 4)})
            bar.set_postfix(epoch=e + 1, acc=f"{acc:.3f}")
        seconds = time.monotonic() - t0
        bar.close()
        rows = slice(args.epochs * n, None)
        got = client.train(schedule.X[rows], schedule.T[rows], False)
        if not np.array_equal(got, want_out[rows]):
            return fail("the inference pass over the test split differs from the trainer's model")
    test_acc = float(np.mean(q.classify(got) == test_set.y)) if len(test_set.y) else None
    learnt = copy.deepcopy(q)
    for L, (W, b) in zip(learnt.layers, unflat_params(q, params)):
        L.weights, L.biases = W.copy(), b.copy()
    if args.out:
        learnt.save(args.out)
    summary = {"network": manifest.name, "port": args.port, "data": args.data, "baud": args.baud, "bit_exact": True,
               "epochs": history, "samples": args.epochs * n, "test_accuracy": test_acc,
               "samples_per_s": round(args.epochs * n / seconds, 1) if seconds > 0 else None,
               "learnt_model": args.out, "link": client.stats.to_json()}
    emit_summary(args, summary, f"{args.epochs} epochs, {args.epochs * n} samples: outputs and every parameter "
                                f"bit-exact with the fixed-point trainer; test accuracy {test_acc}"
                                + (f"; learnt model in {args.out}" if args.out else ""))
    return 0
