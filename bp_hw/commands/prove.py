"""``bp-hw prove``: formal proofs of a build's hardware with SymbiYosys (:mod:`bp_hw.formal`).

Exit status: 0 when every proof gives what it should (PASS; FAIL for the broken variants of
``--mutants``), 1 otherwise, 2 on a user error (no build, formal tools missing).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BpHwError
from .common import add_json_flag, emit_summary, log, progress


def add_parser(sub, name):
    p = sub.add_parser(name, help="prove properties of the generated hardware (SymbiYosys, from PyPI)",
                       description="Run formal proofs on a build: the network's stream contract, counts and "
                                   "latency, the accumulators' guard-bit rule, or for a training build where "
                                   "its RAMs are written; the board top's clock crossing and its link (frames acted on "
                                   "only with the right CRC); with --neuron a small layer against the integer "
                                   "model for every input vector; with --link (no build) both links. Prints "
                                   "property, mode, depth, result and seconds. Needs the formal extra: pip install -e \".[formal]\".")
    p.add_argument("build", nargs="?", help="build folder written by `bp-hw generate` (optional with --neuron "
                                            "or --link)")
    p.add_argument("--neuron", action="store_true",
                   help="also prove the small-layer neuron cases (every rounding and overflow mode)")
    p.add_argument("--link", action="store_true",
                   help="prove both board links, inference and training (a build proves its own kind's)")
    p.add_argument("--mutants", action="store_true",
                   help="also run each property's deliberately broken design; each must fail with a trace")
    p.add_argument("--depth", type=int, help="BMC depth of every bounded proof (default: from the plan)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per proof before it counts as TIMEOUT")
    p.add_argument("--work", help="folder for the proofs' files and traces (default BUILD/formal, or ./formal)")
    add_json_flag(p)
    return p


def _table(results) -> str:
    rows = [("proof", "mode", "depth", "result", "expected", "seconds", "what")]
    for r in results:
        rows.append((r.name, r.mode, str(r.depth), r.status, r.expect.upper(), f"{r.seconds:.1f}", r.what))
    widths = [max(len(row[k]) for row in rows) for k in range(6)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:6], widths)) + "  " + row[6] for row in rows]
    for r in results:
        if r.trace and r.status == "FAIL":
            lines.append(f"{r.name}: counterexample at step {r.step} ({r.failed}): {r.trace}")
    return "\n".join(lines)


def run(args) -> int:
    from ..formal.sby import check_tools, run_job
    from ..formal.suite import build_jobs, link_jobs, neuron_jobs

    if args.build is None and not args.neuron and not args.link:
        raise BpHwError("give a build folder (bp-hw prove BUILD), --neuron or --link")
    if args.depth is not None and args.depth < 1:
        raise BpHwError(f"--depth must be at least 1, got {args.depth}")
    if args.timeout is not None and args.timeout <= 0:
        raise BpHwError(f"--timeout must be positive, got {args.timeout}")
    check_tools()
    jobs, title = [], []
    if args.build is not None:
        from ..plan.manifest import plan_from_manifest, read_manifest
        manifest = read_manifest(args.build)
        plan = plan_from_manifest(manifest)
        jobs += build_jobs(plan, depth=args.depth, mutants=args.mutants)
        title.append(f"{manifest.toplevel} {plan.sizes} P={','.join(map(str, manifest.parallel))} ({plan.kind})")
    if args.neuron:
        jobs += neuron_jobs(depth=args.depth, mutants=args.mutants)
        title.append("neuron cases")
    if args.link:
        if args.build is None:      # a build brings its own kind's link
            jobs += link_jobs(args.mutants) + link_jobs(args.mutants, train=True)
        title.append("board link")
    work = Path(args.work) if args.work else (Path(args.build) / "formal" if args.build else Path("formal"))
    log(f"prove: {', '.join(title)}: {len(jobs)} proofs in {work}")
    results = []
    bar = progress(total=len(jobs), desc="prove", unit="proof")
    try:
        for job in jobs:
            bar.set_postfix_str(job.name)
            r = run_job(job, work, timeout=args.timeout)
            results.append(r)
            bar.update(1)
            if bar.disable:
                log(f"  {r.name}: {r.status} ({r.mode}, depth {r.depth}, {r.seconds:.1f} s)")
    finally:
        bar.close()
    ok = all(r.ok for r in results)
    summary = {"ok": ok, "work": str(work), "proofs": [r.as_dict() for r in results],
               "failed": [r.name for r in results if not r.ok]}
    human = _table(results) + "\n" + ("all proofs as expected" if ok else
                                      f"NOT as expected: {', '.join(summary['failed'])}")
    emit_summary(args, summary, human)
    return 0 if ok else 1
