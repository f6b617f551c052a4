"""``bp-hw explore``: sweep formats x parallelism x LUT size x boards x seeds; print the Pareto front, plot it."""

from __future__ import annotations

import argparse
import time

from .common import add_json_flag, emit_summary, log, progress


def _boards(text: str) -> list[str]:
    """``--board a,b``: each name from the registry (argparse's own wording for a bad choice)."""
    from ..plan.boards import BOARDS
    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        if name not in BOARDS:
            raise argparse.ArgumentTypeError(f"invalid choice: {name!r} (choose from "
                                             f"{', '.join(repr(b) for b in sorted(BOARDS))})")
    if not names:
        raise argparse.ArgumentTypeError("name at least one board")
    return names


def add_parser(sub, name):
    p = sub.add_parser(name, help="design-space exploration: accuracy vs resources vs throughput",
                       description="Sweep fixed-point formats, per-layer parallelism, LUT sizes, boards and "
                                   "placement seeds for one trained model; accuracy from the integer model, "
                                   "cycles from the plan, resources from the fast estimate or from synthesis "
                                   "(--synth). Each run is cached by a content hash in the output folder, so "
                                   "a rerun computes only what is missing; synthesis runs on Dask distributed "
                                   "when it is installed (pip install -e \".[dist]\").")
    p.add_argument("source", help="a flow folder (from `bp-hw flow`) or a model file (.npz)")
    p.add_argument("--data", help="data set (default: the model's training data)")
    p.add_argument("--formats", help="comma-separated formats; auto:N picks integer bits from the data "
                                     "(default: Q4.12,Q3.9,Q2.6,auto:12,auto:10,auto:8,auto:6)")
    p.add_argument("--parallel", help="semicolon-separated P settings, e.g. '1;8,3;4,1' "
                                      "(default: 1 and one lane per neuron)")
    p.add_argument("--lut-bits", default="10", help="comma-separated LUT address bits (default 10)")
    p.add_argument("--board", default=["icebreaker"], type=_boards, metavar="BOARD[,BOARD...]",
                   help="comma-separated target boards (default icebreaker)")
    p.add_argument("--synth", nargs="?", const="all", choices=("all", "front"), default=None,
                   help="synthesize every design (all, the default) or the estimate's Pareto front (front)")
    p.add_argument("--seeds", help="with --synth: comma-separated nextpnr placement seeds, 'default' for its "
                                   "own (default: default); Fmax is reported as median and range")
    p.add_argument("--timeout", type=float, default=None,
                   help="with --synth: seconds one run may take before it is killed and recorded as failed")
    e = p.add_argument_group("where the runs execute")
    e.add_argument("--engine", choices=("auto", "serial", "local", "dask"), default="auto",
                   help="auto: Dask for synthesis when installed (else a local process pool), this process for "
                        "estimates; serial: one run after the other here; local: a process pool; dask: Dask")
    e.add_argument("--workers", type=int, default=None,
                   help="worker processes of the local pool or the Dask LocalCluster (default: the cores)")
    e.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://HOST:8786 "
                                       "(instead of a LocalCluster)")
    c = p.add_argument_group("cache")
    c.add_argument("--fresh", dest="resume", action="store_false",
                   help="recompute every run (default: reuse cached results and compute what is missing)")
    c.add_argument("--cache", help="cache folder (default OUT/cache); sweeps sharing it share results")
    c.add_argument("--keep-builds", action="store_true",
                   help="keep each synthesized build folder in OUT/builds/KEY (on a cluster: a shared file system)")
    p.add_argument("--out", help="output folder (default DIR/6_explore for a flow folder DIR; there report.html "
                                 "gets the exploration)")
    add_json_flag(p)
    return p


class _Bar:
    """The progress bar: runs done / running / failed and the best point so far (a line per result when
    stderr is not a terminal and runs are slow)."""

    def __init__(self, lines: bool):
        self.bar = progress(total=0, desc="explore")
        self.lines = lines and self.bar.disable
        self.last = (0, None)

    def __call__(self, state):
        if self.bar.total != state.total:
            self.bar.total = state.total
        self.bar.n = state.done
        self.bar.set_description(f"explore {state.phase}", refresh=False)
        self.bar.set_postfix_str(f"done {state.done} running {state.running} failed {state.failed} "
                                 f"cached {state.cached} best {state.best or '-'}", refresh=False)
        self.bar.refresh()
        if self.lines and (state.done, state.phase) != self.last and state.done > state.cached:
            self.last = (state.done, state.phase)
            log(f"explore {state.phase}: {state.done}/{state.total} done, {state.running} running, "
                f"{state.failed} failed, {state.cached} cached, {time.monotonic() - state.started:.0f} s; "
                f"best {state.best or '-'}")

    def close(self):
        self.bar.close()


def run(args) -> int:
    from ..errors import BpHwError
    from ..explore import explore, format_table, parse_list, parse_seeds
    try:
        lut_bits = [int(b) for b in parse_list(args.lut_bits) or ["10"]]
    except ValueError:
        raise BpHwError(f"--lut-bits takes integers separated by commas, got {args.lut_bits!r}") from None
    if args.seeds and not args.synth:
        raise BpHwError("--seeds only applies with --synth (the estimate does not place)")
    if args.workers is not None and args.workers < 1:
        raise BpHwError(f"--workers must be at least 1, not {args.workers}")
    bar = _Bar(lines=bool(args.synth))
    try:
        summary = explore(args.source, args.out, data=args.data, formats=parse_list(args.formats),
                          parallels=parse_list(args.parallel, ";"), lut_bits=lut_bits, board=args.board,
                          synth=args.synth or False, seeds=parse_seeds(args.seeds), engine=args.engine,
                          workers=args.workers, scheduler=args.scheduler, resume=args.resume, cache_dir=args.cache,
                          timeout=args.timeout, keep_builds=args.keep_builds, progress=bar)
    finally:
        bar.close()
    log(f"float accuracy {summary['float_accuracy']:.4f}; {summary['points']} designs, {summary['runs']} runs "
        f"({summary['computed']} computed, {summary['cached']} cached, {summary['failed']} failed) on "
        f"{summary['engine']} x{summary['workers']} in {summary['seconds']:.1f} s; Pareto front:")
    log(format_table(summary["pareto"]))
    best = summary["smallest_within_1_point"]
    if best:
        log(f"smallest within 1 point of float: {best['format']} ({best['bits']} bits), P={best['parallel']}, "
            f"accuracy {best['accuracy']:.4f}")
    log(f"plot: {summary['plot']}" + (f"; report: {summary['report']}" if summary.get("report") else ""))
    emit_summary(args, summary, human=format_table(summary["pareto"]))
    return 0
