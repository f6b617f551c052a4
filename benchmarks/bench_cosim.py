"""Co-simulation speed: verified vectors per second next to the raw free-running cycle rate.

    python benchmarks/bench_cosim.py                          # a seeded iris 4-8-3 design, P = 8,3
    python benchmarks/bench_cosim.py --build build/ --vectors 10000 --simulators verilator,icarus

``--build`` points at a generated design (its manifest's quantized model gives
the expected outputs); without it a seeded iris 4-8-3 network is generated
(``--parallel``, default 8,3: 8 cycles per vector). For each simulator:

* ``verified/s``: vectors per second of ``run_vectors`` + ``compare_outputs``
  (wall time of the whole cocotb run, build excluded), median over repeats;
* ``sim cycles/s``: cycles per second inside the cocotb run (start-up excluded);
* ``raw cycles/s``: the same harness and vectors without cocotb (Verilator
  ``--binary``, plain ``vvp``), the ceiling for this design;
* ``ratio``: sim cycles/s over raw cycles/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bp_hw.cosim import harness as harness_mod
from bp_hw.cosim.check import compare_outputs
from bp_hw.cosim.runner import default_drain, default_watchdog, payload_hex, run_vectors
from bp_hw.cosim.tools import find_simulator
from bp_hw.cosim.verify import random_vectors
from bp_hw.errors import BpHwError
from bp_hw.plan.manifest import load_qmodel, read_manifest


def generated_build(root: Path, parallel: str) -> Path:
    from bp_hw.hdl.emit import generate  # noqa: PLC0415 - only when no build is given
    from bp_hw.train_start import seeded_qmodel  # noqa: PLC0415

    q, _, _ = seeded_qmodel("iris", [4, 8, 3])
    generate(q, parallel, root / "iris", name="iris")
    return root / "iris"


def raw_binary(build: Path, simulator: str) -> list[str]:
    """Build the harness without cocotb; return the command that runs it."""
    manifest = read_manifest(build)
    info = find_simulator(simulator)
    out = build / f"bench_raw_{simulator}"
    out.mkdir(exist_ok=True)
    harness = harness_mod.write_harness(manifest, out / harness_mod.HARNESS_FILE)
    sources = [str(p) for p in manifest.verilog] + [str(harness)]
    if simulator == "icarus":
        vvp = out / "raw.vvp"
        subprocess.run(["iverilog", "-g2012", "-g2005", "-DBP_HW_INTERNAL_CLOCK=1", "-s",
                        harness_mod.HARNESS_MODULE, "-o", str(vvp), *sources], check=True)
        return ["vvp", "-n", str(vvp)]
    exe = out / "obj" / f"V{harness_mod.HARNESS_MODULE}"
    if not exe.is_file():
        subprocess.run([info.executable, "--binary", "--timing", "-CFLAGS", "-std=gnu++20", "-Wno-fatal",
                        "-Wno-lint", "-Wno-style", "--timescale", "1ns/1ps", "-DBP_HW_INTERNAL_CLOCK=1",
                        "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include",  # see runner._cocotb_runner
                        "--top-module", harness_mod.HARNESS_MODULE, "-Mdir", str(out / "obj"), "-j", "2",
                        *sources], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [str(exe)]


def raw_rate(cmd: list[str], build: Path, x: np.ndarray, stall: float) -> float:
    manifest = read_manifest(build)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in.txt").write_bytes(payload_hex(manifest.inp, {manifest.inp.fields[0].name: x}))
        args = [f"+in_file={tmp / 'in.txt'}", f"+n_inputs={len(x)}", f"+out_file={tmp / 'out.txt'}",
                f"+stats_file={tmp / 'stats.txt'}", f"+stall={int(round(stall * 65536))}",
                f"+watchdog={default_watchdog(manifest, stall)}", f"+drain={default_drain(manifest)}", "+finish"]
        start = time.perf_counter()
        subprocess.run(cmd + args, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        stats = dict(line.split() for line in (tmp / "stats.txt").read_text().splitlines())
        return int(stats["last_out_cycle"]) / seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", type=Path, help="generated build folder (default: a seeded iris design)")
    parser.add_argument("--parallel", default="8,3", help="P of the default design (default 8,3)")
    parser.add_argument("--vectors", type=int, default=10000)
    parser.add_argument("--icarus-vectors", type=int, default=None, help="default: vectors / 10")
    parser.add_argument("--stall", type=float, default=0.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--simulators", default="verilator,icarus")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        build = args.build.resolve() if args.build else generated_build(Path(tmp), args.parallel)
        manifest = read_manifest(build)
        q = load_qmodel(manifest)
        rows = []
        for sim in args.simulators.split(","):
            try:
                find_simulator(sim)
            except BpHwError as exc:
                print(f"{sim}: skipped ({exc})", file=sys.stderr)
                continue
            n = args.vectors if sim == "verilator" else (args.icarus_vectors or max(1, args.vectors // 10))
            x = random_vectors(q.input_fmt, n, q.sizes[0], seed=0)
            expected = q.predict(x)
            first = run_vectors(build, x, sim, stall=args.stall)  # builds if needed
            vps, sim_cps, raw_cps, mismatches = [], [], [], 0
            for r in range(args.repeats):
                start = time.perf_counter()
                result = run_vectors(build, x, sim, stall=args.stall, seed=r)
                report = compare_outputs(expected, result)
                vps.append(n / (time.perf_counter() - start))
                sim_cps.append(result.cycles / result.sim_seconds if result.sim_seconds else float("nan"))
                mismatches += report.n_mismatches + report.extra
            raw_cmd = raw_binary(build, sim)
            raw_cps = [raw_rate(raw_cmd, build, x, args.stall) for _ in range(args.repeats)]
            row = {"simulator": sim, "design": manifest.toplevel, "vectors": n, "stall": args.stall,
                   "mismatches": mismatches, "cycles_per_inference": round(result.cycles / n, 2),
                   "build_seconds": round(first.build_seconds, 2),
                   "verified_per_second": round(statistics.median(vps)),
                   "sim_cycles_per_second": round(statistics.median(sim_cps)),
                   "raw_cycles_per_second": round(statistics.median(raw_cps)),
                   "startup_seconds": round(result.run_seconds - (result.sim_seconds or 0), 3)}
            row["ratio_sim_to_raw"] = round(row["sim_cycles_per_second"] / row["raw_cycles_per_second"], 3)
            # The same ceiling in inferences: what a free-running simulator with no cocotb would verify.
            row["raw_inferences_per_second"] = round(row["raw_cycles_per_second"] / (result.cycles / n))
            row["ratio_verified_to_raw"] = round(row["verified_per_second"] / row["raw_inferences_per_second"], 3)
            rows.append(row)
            if not args.json:
                print(f"{sim:9s} {manifest.toplevel}: {n} vectors, {row['cycles_per_inference']} cycles/vector, "
                      f"{mismatches} mismatches | verified {row['verified_per_second']}/s | "
                      f"sim {row['sim_cycles_per_second']} cycles/s vs raw {row['raw_cycles_per_second']} "
                      f"(x{row['ratio_sim_to_raw']}) | raw {row['raw_inferences_per_second']} inferences/s, "
                      f"verified/raw x{row['ratio_verified_to_raw']} | start-up {row['startup_seconds']} s | "
                      f"build {row['build_seconds']} s", flush=True)
        if args.json:
            print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
