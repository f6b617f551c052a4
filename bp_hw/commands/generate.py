"""``bp-hw generate``: quantized model -> Verilog, memory images and manifest."""

from __future__ import annotations

import time
from pathlib import Path

from .common import add_json_flag, emit_summary, log


def add_parser(sub, name):
    p = sub.add_parser(name, help="generate the pipelined MAC/LUT datapath as Verilog",
                       description="Generate Verilog for a quantized model (from `bp-hw quantize`).")
    p.add_argument("qmodel", help="quantized model JSON")
    p.add_argument("--parallel", default="1",
                   help="MAC lanes per layer: one value for every layer or a list (e.g. 8,3); default 1")
    p.add_argument("--out", default="build", help="output folder (default build/)")
    p.add_argument("--name", help="Verilog module name (sanitised; default from the model file name)")
    p.add_argument("--no-taps", action="store_true", help="omit the per-layer debug tap ports")
    add_json_flag(p)
    return p


def run(args) -> int:
    from ..hdl.emit import generate
    t0 = time.perf_counter()
    manifest = generate(args.qmodel, args.parallel, args.out, args.name, taps=not args.no_taps)
    out = Path(args.out)
    summary = {
        "verilog": str(out / manifest["verilog"]),
        "manifest": str(out / "manifest.json"),
        "name": manifest["name"],
        "parallel": manifest["parallel"],
        "latency_cycles": manifest["latency_cycles"],
        "interval_cycles": manifest["interval_cycles"],
        "ideal_interval_cycles": manifest["ideal_interval_cycles"],
        "macs": manifest["macs"],
        "mac_ops_per_inference": manifest["mac_ops_per_inference"],
        "seconds": round(time.perf_counter() - t0, 3),
    }
    log(f"generated {summary['verilog']}: {manifest['sizes']} P={manifest['parallel']}, "
        f"latency {manifest['latency_cycles']} cycles, interval {manifest['interval_cycles']} cycles, "
        f"{manifest['macs']} multipliers")
    emit_summary(args, summary)
    return 0
