"""Does the on-chip training design fit the iCE40UP5K? Place and route it and report LCs, DSPs, BRAMs, Fmax.

The training design has more ports than the chip has pins, so it is wrapped in
a fit-check top: a 128-bit shift-register scrambler drives every input (the
sample stream, the access port) and every output is XOR-folded into one
register on an LED, so nothing can be optimised away. No UART, no PLL: Fmax
is what nextpnr achieves on the board clock's net.

    python benchmarks/fit_train_ice40.py [--parallel 1] [--data iris] [--out build/fit_train]
"""

from __future__ import annotations

import argparse
import json
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
        m.d.comb += platform.request("led_r", 0).o.eq(fold)
        return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="iris")
    ap.add_argument("--parallel", default="1")
    ap.add_argument("--out", default="build/fit_train")
    args = ap.parse_args()
    from bp_hw.fixed.trainer import TrainSpec
    from bp_hw.hdl.backprop import TrainNetwork
    from bp_hw.plan.boards import board
    from bp_hw.plan.hardware import make_plan
    from bp_hw.synth import YOWASP_TOOLS, _run_plan, tool_environment
    from bp_hw.synth_report import parse_nextpnr_report, parse_yosys_stat
    from bp_hw.train_start import seeded_qmodel

    layers = [4, 8, 3] if args.data == "iris" else [2, 4, 1]
    q, _, _ = seeded_qmodel(args.data, layers)
    icebreaker = board("icebreaker")
    design = make_plan(q, args.parallel, device=icebreaker.device, train=TrainSpec())
    dut = TrainNetwork(design)
    platform = icebreaker.platform()
    env = tool_environment([t for t in platform.required_tools if t in YOWASP_TOOLS])
    out = Path(args.out)
    plan = platform.build(FitTop(dut), name="top", do_build=False, synth_opts="-dsp",
                          nextpnr_opts="--report nextpnr_report.json --timing-allow-fail",
                          script_after_synth="tee -q -o yosys_stat.json stat -json")
    plan.extract(out)
    start = time.monotonic()
    _run_plan(out, env, out / "synth.log", lambda msg: print(msg, file=sys.stderr))
    res = parse_nextpnr_report(out / "nextpnr_report.json", "ice40", parse_yosys_stat(out / "yosys_stat.json"))
    summary = {"design": f"{args.data} {'-'.join(map(str, layers))} train P={args.parallel}",
               "train_cycles": design.training.train_cycles, "infer_cycles": design.training.infer_cycles,
               "multipliers": design.training.multipliers,
               **{k: res.get(k) for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz")},
               "capacity": {k: getattr(icebreaker.fpga, k) for k in ("luts", "dsps", "brams")},
               "seconds": round(time.monotonic() - start, 1)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
