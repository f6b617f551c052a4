"""Random designs at scale (issue #15): hundreds of inference and training designs through generate,
Verilator co-simulation and ``verilator --lint-only -Wall``.

    nice -n 10 python benchmarks/bench_fuzz.py --inference 300 --training 50 --seed 500000 --out /tmp/bench_fuzz
    nice -n 10 python benchmarks/bench_fuzz.py --long 2164 --out /tmp/bench_fuzz_long     # 10^6 vectors

Inference designs have seeds ``SEED .. SEED + N - 1`` (each with ``--vectors`` random vectors at
``--stall``), training designs ``TRAIN_SEED .. TRAIN_SEED + M - 1`` (default ``TRAIN_SEED = SEED``; a
training design of seed ``s`` is not the inference design of ``s``), each trained on its own random
data set and checked against the fixed-point trainer. Every design is also linted
(:data:`bp_hw.fuzz.LINT_WAIVERS`). One JSON line per design goes to ``OUT/results.jsonl`` as it
finishes (the two kinds interleaved); a rerun with the same ``--out`` skips the designs already there, so a run that is cut short
can be resumed. The summary (counts, mismatches, lint, time, what the designs covered) is printed and
written to ``OUT/summary.json``; every failing design is listed with the command that reruns it.

``--long SEED`` is the long run instead: ``--long-vectors`` (10^6) random vectors at ``--stall``
through the one inference design ``SEED``, built once with Verilator's default optimisation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from bp_hw.fuzz import GENERATOR_VERSION, random_design, reproduce_command, run_fuzz


def _load(path: Path) -> dict:
    done = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[(r["seed"], r["kind"])] = r
    return done


def coverage(results: list[dict]) -> dict:
    """What the designs that ran covered, counted per design (or per layer where it says so)."""
    c = Counter()
    for r in results:
        d = random_design(r["seed"], r["kind"])
        q = d.qmodel
        c[f"{r['kind']} layers {len(q.layers)}"] += 1
        c[f"{r['kind']} {d.size_class}"] += 1
        c[f"{r['kind']} widest {max(q.sizes)}"] = max(c[f"{r['kind']} widest {max(q.sizes)}"], 1)
        c["designs with a prime width > 12"] += any(n > 12 and all(n % k for k in range(2, n)) for n in q.sizes)
        c["layers folded OxI (P_out < fan_out, P_in > 1)"] += sum(isinstance(p, str) for p in d.parallel)
        c["layers with P_in > 1"] += sum("x" in str(p) or int(p) > L.fan_out for p, L in zip(d.parallel, q.layers))
        c["unsigned inputs"] += not q.input_fmt.signed
        for L in q.layers:
            c[f"activation {L.activation}"] += 1
            c[f"rounding {L.rounding}"] += 1
            c[f"overflow {L.overflow}"] += 1
            if L.lut is not None:
                c["LUT symmetric"] += L.lut.symmetric
                c["LUT interpolated"] += L.lut.interpolate
        if d.kind == "inference":
            c[f"input {d.input_mode or 'default'}"] += 1
            c[f"weights {d.weights if isinstance(d.weights, str) else 'per-layer'}"] += 1
            c[f"board {d.board or 'none'}"] += 1
            c["no taps"] += not d.taps
            plan = d.plan()
            c["loaded through the load port (SPRAM)"] += plan.load is not None
            c["products in logic (past the DSPs)"] += any(x.logic_multipliers for x in plan.layers)
        else:
            t = d.train
            c[f"train cost {t.cost}"] += 1
            c[f"train batch {t.batch}"] += 1
            c[f"train update {t.update_rounding}"] += 1
            c["train read back every sample"] += d.every_sample
    widest = {k: v for k, v in c.items() if " widest " in k}
    for k in widest:
        del c[k]
    for kind in ("inference", "training"):
        sizes = [int(k.rsplit(" ", 1)[1]) for k in widest if k.startswith(kind)]
        if sizes:
            c[f"{kind} widest layer"] = max(sizes)
    return dict(sorted(c.items()))


def summarise(results: list[dict], seconds: float) -> dict:
    out = {"generator": GENERATOR_VERSION, "wall_seconds": round(seconds, 1)}
    for kind in ("inference", "training"):
        rs = [r for r in results if r["kind"] == kind]
        if not rs:
            continue
        seeds = [r["seed"] for r in rs]
        out[kind] = {
            "designs": len(rs), "seeds": f"{min(seeds)}-{max(seeds)}",
            "checked": sum(r["vectors"] for r in rs),
            "mismatches": sum(r["mismatches"] for r in rs),
            "designs_failing": sum(not r["ok"] for r in rs),
            "lint_clean": sum(not r["lint"] for r in rs),
            "seconds_total": round(sum(r["seconds"] for r in rs), 1),
            "seconds_median": round(statistics.median(r["seconds"] for r in rs), 1),
            "seconds_max": round(max(r["seconds"] for r in rs), 1),
        }
        if kind == "training":
            out[kind]["samples"] = sum(r["samples"] for r in rs)
            out[kind]["weight_mismatches"] = sum(r.get("weight_mismatches", 0) for r in rs)
    out["failures"] = [{"seed": r["seed"], "kind": r["kind"], "sizes": r["sizes"], "lint": r["lint"][:2],
                        "error": r.get("error"), "first": r.get("first"), "reproduce": r.get("reproduce")}
                       for r in results if not r["ok"]]
    out["coverage"] = coverage(results)
    return out


def long_run(seed: int, vectors: int, stall: float, out: Path, batch: int) -> dict:
    """``vectors`` random vectors through inference design ``seed`` (one build, simulator runs of ``batch``
    vectors: on a loaded machine verify's 5-second batches shrink until start-up dominates)."""
    from bp_hw.cosim.verify import random_vectors, verify
    d = random_design(seed, "inference")
    build = out / f"long_{seed}"
    d.generate(build)
    q = d.qmodel
    x = random_vectors(q.input_fmt, vectors, q.sizes[0], seed)
    t0 = time.perf_counter()
    v = verify(build, x, "verilator", stall=stall, seed=seed, batch=batch,
               on_progress=lambda done, n: print(f"long run: {done}/{n} vectors", file=sys.stderr, flush=True))
    return {"seed": seed, **d.describe(), "vectors": v.vectors, "mismatches": v.mismatches, "missing": v.missing,
            "extra": v.extra, "tap_mismatches": v.tap_mismatches, "timed_out": v.timed_out, "ok": v.ok,
            "cycles": v.cycles, "cycles_per_inference": v.cycles_per_inference, "batches": v.batches,
            "build_seconds": round(v.build_seconds, 1), "verify_seconds": round(v.verify_seconds, 1),
            "verified_per_second": v.verified_per_second, "sim_cycles_per_second": v.sim_cycles_per_second,
            "stall": stall, "wall_seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inference", type=int, default=300)
    ap.add_argument("--training", type=int, default=50)
    ap.add_argument("--seed", type=int, default=500000)
    ap.add_argument("--train-seed", type=int, default=None)
    ap.add_argument("--vectors", type=int, default=200)
    ap.add_argument("--stall", type=float, default=0.3)
    ap.add_argument("--out", required=True)
    ap.add_argument("--summary-only", action="store_true",
                    help="summarise the designs already in OUT/results.jsonl (of those asked for); run none")
    ap.add_argument("--keep-builds", action="store_true", help="keep each design's build folder (large)")
    ap.add_argument("--long", type=int, metavar="SEED",
                    help="instead: the long run, --long-vectors random vectors through inference design SEED")
    ap.add_argument("--long-vectors", type=int, default=1_000_000)
    ap.add_argument("--long-batch", type=int, default=100_000, help="vectors per simulator run of the long run")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.long is not None:
        r = long_run(args.long, args.long_vectors, args.stall, out, args.long_batch)
        (out / f"long_{args.long}.json").write_text(json.dumps(r, indent=1) + "\n")
        print(json.dumps(r, indent=1))
        return 0 if r["ok"] else 1
    log_path = out / "results.jsonl"
    done = _load(log_path)
    train_seed = args.seed if args.train_seed is None else args.train_seed
    inference = [(s, "inference") for s in range(args.seed, args.seed + args.inference)]
    training = [(s, "training") for s in range(train_seed, train_seed + args.training)]
    # interleaved, so that a run cut short has both kinds in proportion
    todo = sorted(inference + training, key=lambda t: (t[0] - (args.seed if t[1] == "inference" else train_seed))
                  / (args.inference if t[1] == "inference" else args.training))
    pending = [] if args.summary_only else [t for t in todo if t not in done]
    print(f"{len(todo)} designs, {len(todo) - len(pending)} already in {log_path}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()

    def record(r):
        import shutil
        if not args.keep_builds and r["ok"]:
            shutil.rmtree(r["build"], ignore_errors=True)
        with open(log_path, "a") as f:
            f.write(json.dumps(r) + "\n")
        n = len(done) + 1
        done[(r["seed"], r["kind"])] = r
        print(f"[{n}/{len(todo)}] {r['kind']} seed {r['seed']} {r['sizes']} P={r['parallel']} {r['io']} "
              f"{r['memory']}: {'ok' if r['ok'] else 'FAILED'} ({r['seconds']:.1f} s)"
              + ("" if r["ok"] else f" {r.get('error') or ''} -> {r['reproduce']}"), file=sys.stderr, flush=True)

    # one design at a time, in seed order; each result is on disk before the next starts
    for s, kind in pending:
        run_fuzz(1, s, vectors=args.vectors, stall=args.stall, out_dir=out / "builds", lint=True,
                 designs=[(s, kind)], on_result=record)
    results = [done[t] for t in todo if t in done]
    for r in results:
        if not r["ok"] and not r.get("reproduce"):
            r["reproduce"] = reproduce_command(r["seed"], r["kind"], "verilator", args.stall, args.vectors,
                                               out / "builds", True)
    summary = summarise(results, time.perf_counter() - t0)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0 if not summary["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
