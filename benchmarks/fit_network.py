"""Place and route a generated inference design on its own (no UART): resources and Fmax.

The network of a build folder is wrapped in a fit-check top: a 128-bit shift-register scrambler
drives every input (the input beats, the load port) and every output is XOR-folded (a tree of
registers) into one register on an LED, so nothing can be optimised away. No PLL: the design
runs on the board clock's net, constrained to ``--clock-mhz`` (default: the board's default clock,
as ``bp-hw synth`` asks of its PLL) so that nextpnr places for that target; Fmax is what nextpnr
reports for each placement seed.

    python benchmarks/fit_network.py BUILD --board icebreaker [--seeds default,1,2] [--clock-mhz 50]
    python benchmarks/fit_network.py gen-64-32-10-P1 --board ulx3s-85f --seeds default,1,2

BUILD is a build folder or one of bench_synth.py's generated designs (generated under ``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from amaranth.hdl import Cat, Elaboratable, Module, Signal


class FitTop(Elaboratable):
    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        scr = Signal(128, init=1)
        m.d.sync += scr.eq(Cat(scr[1:], scr[0] ^ scr[1] ^ scr[2] ^ scr[7]))
        width = len(dut.i.payload.as_value())
        m.d.comb += [dut.i.payload.as_value().eq(Cat(*[scr[k % 128] for k in range(width)])),
                     dut.i.valid.eq(scr[3]), dut.o.ready.eq(scr[5])]
        if dut.load is not None:
            ld = dut.ld.payload.as_value()
            m.d.comb += [ld.eq(Cat(*[scr[(17 + k) % 128] for k in range(len(ld))])),
                         dut.ld.valid.eq(scr[60] & scr[61] & scr[62])]
        # the outputs are folded by a tree of registered 4-input XORs, so that the fold is never
        # the critical path: what nextpnr reports is the network's own
        bits = Cat(dut.o.payload.as_value(), dut.o.valid, dut.i.ready)
        level = 0
        while len(bits) > 1:
            groups = [bits[k:k + 4].xor() for k in range(0, len(bits), 4)]
            reg = Signal(len(groups), name=f"fold{level}")
            m.d.sync += reg.eq(Cat(*groups))
            bits, level = reg, level + 1
        out = Signal()
        m.d.sync += out.eq(bits[0])
        m.d.comb += platform.request("led", 0).o.eq(out)
        return m


def _clocked_critical_path(report: Path) -> str | None:
    """The slowest register-to-register path of nextpnr's report: its delay, first and last cell."""
    paths = [p for p in json.loads(report.read_text()).get("critical_paths", [])
             if "<async>" not in (p.get("from"), p.get("to")) and p.get("path")]
    if not paths:
        return None
    p = max(paths, key=lambda p: sum(s["delay"] for s in p["path"]))
    return (f"{sum(s['delay'] for s in p['path']):.2f} ns: {p['path'][0]['from']['cell']} -> "
            f"{p['path'][-1]['to']['cell']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", help="a build folder, or a design of bench_synth.py (gen-...)")
    ap.add_argument("--board", default="icebreaker")
    ap.add_argument("--seeds", default="1", help="nextpnr placement seeds, comma separated ('default': nextpnr's)")
    ap.add_argument("--out", default="build/fit_network")
    ap.add_argument("--clock-mhz", type=float, default=None,
                    help="the clock constraint nextpnr places for (default: the board's default clock)")
    args = ap.parse_args()
    from amaranth.build import Clock
    from bp_hw.hdl.emit import build_network
    from bp_hw.plan.boards import board
    from bp_hw.plan.manifest import plan_from_manifest, read_manifest
    from bp_hw.synth import YOWASP_TOOLS, _run_plan, tool_environment
    from bp_hw.synth_report import parse_nextpnr_report, parse_yosys_stat
    from bp_hw.boards.families import family

    target = board(args.board)
    build_dir = Path(args.build)
    if not build_dir.is_dir():
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_synth import DESIGNS
        if args.build not in DESIGNS:
            sys.exit(f"{args.build}: neither a build folder nor a design of bench_synth.py ({', '.join(DESIGNS)})")
        build_dir = Path(args.out) / args.build / "build"
        if not (build_dir / "manifest.json").exists():
            DESIGNS[args.build](build_dir)
    manifest = read_manifest(build_dir)
    plan = plan_from_manifest(manifest)
    runs = []
    for seed in [None if s.strip() == "default" else int(s) for s in args.seeds.split(",")]:
        platform = target.platform()
        clock = platform.lookup(platform.default_clk)
        clock.clock = Clock((args.clock_mhz or target.default_mhz) * 1e6)
        env = tool_environment([t for t in platform.required_tools if t in YOWASP_TOOLS])
        out = Path(args.out) / (args.build if build_dir != Path(args.build) else "") / f"seed{seed or 'default'}"
        opts = family(target.family).synth_opts
        build = platform.build(FitTop(build_network(plan)), name="top", do_build=False,
                               **({"synth_opts": opts} if opts else {}),
                               nextpnr_opts="--report nextpnr_report.json --timing-allow-fail"
                                            + (f" --seed {seed}" if seed is not None else ""),
                               script_after_synth="tee -q -o yosys_stat.json stat -json")
        build.extract(out)
        start = time.monotonic()
        _run_plan(out, env, out / "synth.log", lambda msg: print(msg, file=sys.stderr))
        res = parse_nextpnr_report(out / "nextpnr_report.json", target.family, parse_yosys_stat(out / "yosys_stat.json"))
        runs.append({"seed": "default" if seed is None else seed,
                     **{k: res.get(k) for k in ("luts", "ffs", "dsps", "brams", "sprams", "fmax_mhz")},
                     "critical_path": _clocked_critical_path(out / "nextpnr_report.json"),
                     "seconds": round(time.monotonic() - start, 1)})
        print(json.dumps(runs[-1]), file=sys.stderr)
    fmax = [r["fmax_mhz"] for r in runs if r["fmax_mhz"]]
    print(json.dumps({"build": str(build_dir), "board": args.board, "clock_mhz": args.clock_mhz or target.default_mhz,
                      "sizes": manifest.sizes,
                      "parallel": manifest.parallel, "interval_cycles": manifest.interval_cycles,
                      "fmax_median_mhz": statistics.median(fmax) if fmax else None,
                      "fmax_range_mhz": [min(fmax), max(fmax)] if fmax else None, "runs": runs}))


if __name__ == "__main__":
    main()
