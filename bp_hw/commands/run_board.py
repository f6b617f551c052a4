"""``bp-hw run``: send samples to a programmed board over its UART and compare with the integer model."""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import BpHwError
from .common import add_json_flag, emit_summary, log, progress


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help="run samples on a programmed board and compare with the integer model",
                              description="Send samples to a programmed board over its UART and compare "
                                          "its outputs with the integer model.")
    p.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB1")
    p.add_argument("--data", required=True,
                   help="iris, xor, a .csv/.npz file (raw features, quantized like the model's inputs), "
                        "or random:N for N random integer input vectors")
    p.add_argument("--build", default="build", help="build folder the bitstream was made from (default: build)")
    p.add_argument("--baud", type=int, default=115200, help="UART baud rate (default 115200)")
    p.add_argument("--limit", type=int, default=None, help="send at most this many samples")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for an answer (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed for random:N")
    p.add_argument("--no-info", dest="info", action="store_false",
                   help="skip asking the board which network it carries")
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
        return rng.integers(-(1 << (width - 1)), 1 << (width - 1), size=(n, n_in)), None
    from ..data import load_dataset
    ds = load_dataset(spec)
    if ds.n_features != n_in:
        raise BpHwError(f"data set {spec} has {ds.n_features} features; the network takes {n_in} inputs")
    return np.asarray(model.quantize(ds.X), dtype=np.int64), ds.y


def run(args) -> int:
    from ..boards.frame import FrameSpec
    from ..boards.host import BoardClient, SerialPort, compare_with_model, integer_model_for
    from ..plan.manifest import read_manifest

    manifest = read_manifest(args.build)
    if manifest.is_training:
        raise BpHwError(f"{args.build} is a training build; `bp-hw run` talks to an inference design (the "
                        f"training board top is issue #13)")
    spec = FrameSpec.from_manifest(manifest)
    model = integer_model_for(manifest)
    X, y = _inputs(args, spec, model)
    if args.limit is not None:
        X = X[:args.limit]
        y = None if y is None else y[:args.limit]
    if len(X) == 0:
        raise BpHwError("no samples to send")
    with SerialPort(args.port, args.baud, timeout=args.timeout) as port:
        client = BoardClient(port, spec)
        if args.info:
            client.check_shape()
        log(f"run: {len(X)} samples to {args.port} at {args.baud} baud")
        result = compare_with_model(client, X, model.expected,
                                    progress=lambda it: progress(it, total=len(X), desc="samples"))
    summary = {"network": manifest.name, "port": args.port, "data": args.data, **result.summary(),
               "naks": client.naks, "resends": client.resends}
    if y is not None and model.classify is not None:
        summary["board_accuracy"] = float(np.mean(model.classify(np.asarray(result.outputs)) == y))
    human = (f"{summary['samples']} samples, {summary['mismatched_samples']} mismatched: "
             f"{'bit-exact' if summary['bit_exact'] else 'MISMATCH'} ({summary['samples_per_s']} samples/s)")
    if result.first_mismatch:
        fm = result.first_mismatch
        human += f"\n  first mismatch: sample {fm['sample']}: board {fm['board']} model {fm['model']}"
    if "board_accuracy" in summary:
        human += f"\n  accuracy on the board: {summary['board_accuracy']:.3f}"
    emit_summary(args, summary, human)
    return 0 if summary["bit_exact"] else 1
