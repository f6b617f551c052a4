"""``bp-hw synth``: synthesize, place and route a build folder for a board and write its bitstream."""

from __future__ import annotations

import argparse

from .common import add_json_flag, emit_summary, log


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    from ..plan.boards import BOARDS
    p = subparsers.add_parser(name, help="synthesize, place and route for a board (yosys + nextpnr, YoWASP)",
                              description="Synthesize, place and route a build folder for a board with "
                                          "yosys and nextpnr (YoWASP) and write its bitstream and a "
                                          "resource and timing report.")
    p.add_argument("build", help="build folder with manifest.json (from `bp-hw generate`)")
    p.add_argument("--board", required=True, choices=sorted(BOARDS), help="target board")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="clock target in MHz, made by the board PLL (default: "
                        + ", ".join(f"{b.default_mhz:g} on {name}" for name, b in sorted(BOARDS.items())) + ")")
    p.add_argument("--baud", type=int, default=None, help="UART baud rate (default: the board's, "
                   + ", ".join(f"{b.uart_baud} on {name}" for name, b in sorted(BOARDS.items())) + ")")
    p.add_argument("--seed", type=int, default=None, help="nextpnr placement seed")
    p.add_argument("--source", choices=("auto", "amaranth", "verilog"), default="auto",
                   help="rebuild the network in Amaranth from the quantized model, or use the folder's Verilog")
    p.add_argument("--no-fit-check", dest="fit_check", action="store_false",
                   help="run the tools even if the resource estimate says the network does not fit")
    p.add_argument("--estimate-only", action="store_true",
                   help="print the resource estimate and stop (no synthesis)")
    add_json_flag(p)
    return p


def run(args) -> int:
    from ..plan.boards import board
    from ..plan.manifest import plan_from_manifest, read_manifest
    from ..synth import synthesize
    from ..synth_estimate import check_fit, estimate_resources

    if args.estimate_only:
        manifest = read_manifest(args.build)
        est = estimate_resources(manifest, board(args.board).fpga)
        summary = {"board": args.board, **{k: est[k] for k in ("device", "luts", "ffs", "dsps", "brams", "sprams",
                                                                 "memory_bits", "capacity", "memories")}}
        if args.fit_check:
            check_fit(est, design=plan_from_manifest(manifest) if manifest.qmodel else None)
        emit_summary(args, summary, _human_estimate(summary))
        return 0

    summary = synthesize(args.build, args.board, clock_mhz=args.clock_mhz, baud=args.baud, seed=args.seed,
                         fit_check=args.fit_check, source=args.source, log=log)
    if not summary["timing_met"]:
        log(f"synth: warning: Fmax {summary['fmax_mhz']} MHz is below the {summary['clock_mhz']} MHz clock; "
            f"the bitstream may misbehave; rerun with --clock-mhz {int(summary['fmax_mhz'] or 0)} or lower")
    emit_summary(args, summary, _human(summary))
    return 0 if summary["timing_met"] else 1


def _pct(used, avail):
    return f"{used}/{avail} ({100 * used / avail:.0f} %)" if avail else str(used)


def _human(s: dict) -> str:
    cap = s["capacity"]
    lines = [
        f"{s['network']} on {s['board']} ({s['device']})",
        f"  LUTs   {_pct(s['luts'], cap['luts'])}   (estimate {s['estimate']['luts']})",
        f"  FFs    {_pct(s['ffs'], cap['ffs'])}",
        f"  DSPs   {_pct(s['dsps'], cap['dsps'])}",
        f"  BRAMs  {_pct(s['brams'], cap['brams'])}",
        f"  Fmax   {s['fmax_mhz']} MHz at a {s['clock_mhz']} MHz clock: "
        f"{'met' if s['timing_met'] else 'NOT MET'}",
    ]
    if s.get("inferences_per_s_at_fmax"):
        lines.append(f"  {s['interval_cycles']} cycles per inference, "
                     f"{s['inferences_per_s_at_fmax']:,} inferences/s at Fmax")
    lines += [f"  bitstream {s['bitstream']}", f"  report    {s['report']}",
              f"  {s['seconds']['total']} s"]
    return "\n".join(lines)


def _human_estimate(s: dict) -> str:
    cap = s["capacity"]
    return "\n".join([f"estimate for {s['device']} ({s['board']}):"] +
                     [f"  {k:6s} {_pct(s[k], cap[k])}" for k in ("luts", "ffs", "dsps", "brams", "sprams")
                      if cap.get(k) or s.get(k)])
