"""Place and route the on-chip training design on its own (no UART): resources, Fmax, critical path.

The training design has more ports than the chip has pins, so it is wrapped in
a fit-check top: the board clock through the family's PLL at ``--clock-mhz``
(so that nextpnr places for that target, as in the board top), a 128-bit
shift-register scrambler driving every input (the sample stream, the access
port) and every output XOR-folded into one register on an LED, so nothing can
be optimised away. Fmax is what nextpnr reports on the PLL's output clock, one
run per placement seed; the summary gives the median and the range, and each
run's critical path (start and end cell, logic / routing split).

    python benchmarks/fit_train.py --data iris --parallel 1 [--board icebreaker] [--seeds 1,2,3]
    python benchmarks/fit_train.py --data iris --parallel 8,3 --board ulx3s-85f --seeds 1,2,3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from amaranth.hdl import Cat, ClockDomain, Elaboratable, Module, Signal
from amaranth.lib import io


class FitTop(Elaboratable):
    def __init__(self, dut, board, clock_hz: float):
        from bp_hw.boards.families import family
        self.dut = dut
        self.board = board
        self.family = family(board.family)
        self.pll = self.family.solve_pll(board.board_clock_hz, clock_hz)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = cd_sync = ClockDomain("sync")
        lock = Signal()
        self.family.add_pll(m, platform.request(platform.default_clk, dir="-"), self.pll, cd_sync.clk, lock)
        rst = Signal(init=1)
        m.d.sync += rst.eq(~lock)
        m.d.comb += cd_sync.rst.eq(rst)
        m.submodules.dut = dut = self.dut
        scr = Signal(128, init=1)
        m.d.sync += scr.eq(Cat(scr[1:], scr[0] ^ scr[1] ^ scr[2] ^ scr[7]))
        width = len(dut.i.payload.as_value())
        wacc = dut.wacc
        aw, dw = len(wacc.addr), len(wacc.wdata)
        m.d.comb += [
            dut.i.payload.as_value().eq(Cat(*[scr[k % 128] for k in range(width)])),
            dut.i.valid.eq(scr[3]), dut.o.ready.eq(scr[5]),
            wacc.addr.eq(Cat(*[scr[(11 + k) % 128] for k in range(aw)])),
            wacc.wdata.eq(Cat(*[scr[(40 + k) % 128] for k in range(dw)])),
            wacc.we.eq(scr[90] & scr[91] & scr[92] & scr[93]),
        ]
        fold = Signal()
        m.d.sync += fold.eq(dut.o.payload.as_value().xor() ^ wacc.rdata.xor() ^ dut.busy ^ dut.o.valid
                            ^ dut.i.ready)
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += led.o.eq(fold)
        return m


def path_cells(report: dict, keep: int = 6) -> list[str]:
    """The cells along the slowest critical path of a nextpnr report (first and last few)."""
    paths = report.get("critical_paths") or []
    if not paths:
        return []
    worst = max(paths, key=lambda p: sum(s.get("delay", 0.0) for s in p.get("path", [])))
    cells = []
    for s in worst.get("path", []):
        c = (s.get("to") or {}).get("cell")
        if c and (not cells or cells[-1] != c):
            cells.append(c)
    start = (worst["path"][0].get("from") or {}).get("cell") if worst.get("path") else None
    cells = ([start] if start else []) + cells
    return cells if len(cells) <= 2 * keep else cells[:keep] + ["..."] + cells[-keep:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="iris", choices=["xor", "iris", "digits", "mnist"])
    ap.add_argument("--parallel", default="1")
    ap.add_argument("--board", default="icebreaker")
    ap.add_argument("--clock-mhz", type=float, help="PLL target (default: the board's default clock)")
    ap.add_argument("--seeds", default="1", help="nextpnr placement seeds, comma separated")
    ap.add_argument("--cost", default="mse")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--out", default="build/fit_train")
    args = ap.parse_args()
    from bp_hw.boards.families import family
    from bp_hw.fixed.trainer import TrainSpec
    from bp_hw.hdl.backprop import TrainNetwork
    from bp_hw.plan.boards import board
    from bp_hw.plan.hardware import make_plan
    from bp_hw.synth import YOWASP_TOOLS, _run_plan, tool_environment
    from bp_hw.synth_report import parse_nextpnr_report, parse_yosys_stat
    from bp_hw.train_start import seeded_qmodel

    layers = {"xor": [2, 4, 1], "iris": [4, 8, 3], "digits": [64, 32, 10], "mnist": [784, 32, 10]}[args.data]
    q, _, _ = seeded_qmodel(args.data, layers)
    target = board(args.board)
    clock_hz = (args.clock_mhz or target.default_mhz) * 1e6
    spec = TrainSpec(cost=args.cost, batch=args.batch)
    design = make_plan(q, args.parallel, device=target.device, train=spec)
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        platform = target.platform()
        env = tool_environment([t for t in platform.required_tools if t in YOWASP_TOOLS])
        out = Path(args.out) / f"{args.board}_seed{seed}"
        top = FitTop(TrainNetwork(design), target, clock_hz)
        opts = family(target.family).synth_opts
        build = platform.build(top, name="top", do_build=False, **({"synth_opts": opts} if opts else {}),
                               nextpnr_opts=f"--report nextpnr_report.json --timing-allow-fail --seed {seed}",
                               script_after_synth="tee -q -o yosys_stat.json stat -json")
        build.extract(out)
        start = time.monotonic()
        _run_plan(out, env, out / "synth.log", lambda msg: print(msg, file=sys.stderr))
        res = parse_nextpnr_report(out / "nextpnr_report.json", target.family,
                                   parse_yosys_stat(out / "yosys_stat.json"))
        report = json.loads((out / "nextpnr_report.json").read_text())
        runs.append({"seed": seed, **{k: res.get(k) for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz")},
                     "critical_path": res.get("critical_path"), "path_cells": path_cells(report),
                     "seconds": round(time.monotonic() - start, 1)})
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    fmax = [r["fmax_mhz"] for r in runs if r["fmax_mhz"]]
    tp = design.training
    print(json.dumps({
        "design": f"{args.data} {'-'.join(map(str, layers))} train P={args.parallel} cost={args.cost} B={args.batch}",
        "board": args.board, "device": target.device, "pll_mhz": round(top.pll.f_out / 1e6, 3),
        "train_cycles": tp.train_cycles, "infer_cycles": tp.infer_cycles, "multipliers": tp.multipliers,
        "fmax_median_mhz": statistics.median(fmax) if fmax else None,
        "fmax_range_mhz": [min(fmax), max(fmax)] if fmax else None,
        "capacity": {k: getattr(target.fpga, k) for k in ("luts", "dsps", "brams")}, "runs": runs}))


if __name__ == "__main__":
    main()
