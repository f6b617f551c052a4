"""Emit a quantized model as Verilog plus ``manifest.json``.

``generate(qmodel, parallel, out_dir)`` writes into ``out_dir``:

* ``<name>.v`` — the :class:`~bp_hw.hdl.network.Network` through
  ``amaranth.back.verilog.convert`` (ROM contents are inlined in the Verilog,
  so no memory image is read by it);
* ``mem/`` — ``$readmemh`` images of the same weights, biases and tables for
  people with their own RTL (when the quantizer's exporter is available);
* ``manifest.json`` — ports and payload layouts, formats, per-layer
  parallelism, latency and initiation interval, multipliers, MAC operations,
  ROM bits, and the quantized model's path and digest.

The manifest's port section follows the schema documented in
:mod:`bp_hw.cosim.manifest` (``ports.in`` / ``ports.out`` / ``taps``).
"""

from __future__ import annotations

import hashlib
import json
import keyword
import re
from pathlib import Path

from amaranth.back import verilog

from .. import __version__
from ..errors import BpHwError
from ..fileio import write_json, write_text
from ..fixed.qmodel import QModel
from .network import Network, parse_parallel

MANIFEST_VERSION = 1

# Verilog/SystemVerilog reserved words a sanitised name must not collide with (the common ones).
_VERILOG_KEYWORDS = set("""always and assign automatic begin buf case casex casez cell config deassign default
defparam design disable edge else end endcase endconfig endfunction endgenerate endmodule endprimitive
endspecify endtable endtask event for force forever fork function generate genvar if ifnone initial inout
input instance integer join large liblist library localparam macromodule medium module nand negedge nmos
nor not or output parameter pmos posedge primitive pull0 pull1 pulldown pullup real realtime reg release
repeat rtran scalared signed small specify specparam strong0 strong1 supply0 supply1 table task time tran
tri tri0 tri1 triand trior trireg unsigned use vectored wait wand weak0 weak1 while wire wor xnor xor
logic bit byte int shortint longint interface class package program property sequence string void""".split())


def sanitize_name(text: str) -> str:
    """A safe Verilog module name from user input: ``[A-Za-z_][A-Za-z0-9_]*``, not a keyword."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(text)).strip("_") or "net"
    if name[0].isdigit():
        name = "net_" + name
    if name.lower() in _VERILOG_KEYWORDS or keyword.iskeyword(name):
        name = name + "_net"
    return name[:64]


def _stream_port(prefix: str, elements: int, fmt, ready: bool = True) -> dict:
    d = {"payload": f"{prefix}__payload", "valid": f"{prefix}__valid"}
    if ready:
        d["ready"] = f"{prefix}__ready"
    d.update(elements=elements, width=fmt.width, signed=fmt.signed, format=fmt.name)
    return d


def build_manifest(net: Network, name: str, qmodel_path: str | None, digest: str | None) -> dict:
    q = net.qmodel
    layers = []
    for l, (layer, engine) in enumerate(zip(q.layers, net.engines)):
        f = engine.fold
        lut = layer.lut
        layers.append({
            "index": l, "fan_in": layer.fan_in, "fan_out": layer.fan_out, "activation": layer.activation,
            "parallel": f.lanes, "lanes_out": f.lanes_out, "lanes_in": f.lanes_in,
            "groups": f.groups, "chunks": f.chunks,
            "cycles_per_sample": engine.interval, "latency_cycles": engine.latency,
            # where the layer's input comes from and where its outputs wait for the next layer
            "input": "bram" if engine.in_mem else "payload",
            "output_slots": "bram" if engine.out_mem else "registers",
            "macs": layer.macs, "multipliers": f.lanes,
            "in_format": layer.in_fmt.name, "weight_format": layer.weight_fmt.name,
            "bias_format": layer.bias_fmt.name, "z_format": layer.z_fmt.name, "out_format": layer.out_fmt.name,
            "acc_width": layer.acc_width, "rescale_shift": layer.rescale_shift, "rounding": layer.rounding,
            "overflow": layer.overflow,
            "weight_rom_bits": layer.macs * layer.weight_fmt.width,
            "bias_rom_bits": layer.fan_out * layer.bias_fmt.width,
            "lut": None if lut is None else {
                "function": lut.function, "addr_bits": lut.addr_bits, "range": lut.in_range,
                "symmetric": lut.symmetric, "interpolate": lut.interpolate,
                # interpolation reads the effective (full) table; direct lookup the stored one
                "rom_words": int(lut.entries if lut.interpolate else lut.table.size),
                "rom_bits_per_lane": int(lut.entries if lut.interpolate else lut.table.size) * layer.out_fmt.width,
                "roms": f.lanes_out,
            },
        })
    ideal = max(-(-layer.macs // engine.fold.lanes) for layer, engine in zip(q.layers, net.engines))
    manifest = {
        "format": "bp-hw-manifest", "version": MANIFEST_VERSION, "bp_hw_version": __version__,
        "name": name, "verilog": f"{name}.v", "toplevel": name,
        "clock": "clk", "reset": "rst", "reset_active": "high",
        "ports": {
            "in": _stream_port("i", q.sizes[0], q.input_fmt),
            "out": _stream_port("o", q.sizes[-1], q.output_fmt),
        },
        "taps": [dict(name=f"tap{l}", layer=l, **_stream_port(f"tap{l}", layer.fan_out, layer.out_fmt, ready=False))
                 for l, layer in enumerate(q.layers)] if net.taps else [],
        "sizes": q.sizes,
        "parallel": net.parallel,
        "latency_cycles": net.latency,
        "standalone_latency_cycles": net.standalone_latency,
        "interval_cycles": net.interval,
        "ideal_interval_cycles": ideal,
        "macs": net.macs,
        "mac_ops_per_inference": sum(layer.macs for layer in q.layers),
        "layers": layers,
        "qmodel": qmodel_path,
        "qmodel_sha256": digest,
    }
    return manifest


def build_train_manifest(net, name: str, qmodel_path: str | None, digest: str | None) -> dict:
    """Manifest of a training build (:class:`~bp_hw.hdl.backprop.TrainNetwork`)."""
    from .backprop import train_manifest
    q = net.qmodel
    training = train_manifest(net)
    return {
        "format": "bp-hw-manifest", "version": MANIFEST_VERSION, "bp_hw_version": __version__,
        "name": name, "verilog": f"{name}.v", "toplevel": name,
        "clock": "clk", "reset": "rst", "reset_active": "high",
        "kind": "train",
        "ports": {"in": training["ports"]["in"], "out": training["ports"]["out"]},
        "taps": [],
        "sizes": q.sizes,
        "parallel": net.parallel,
        "latency_cycles": net.infer_cycles,
        "interval_cycles": net.train_cycles,
        "ideal_interval_cycles": max(f.cycles for f in net.folds),
        "macs": sum(f.lanes for f in net.folds),
        "mac_ops_per_inference": sum(layer.macs for layer in q.layers),
        "training": training,
        "qmodel": qmodel_path,
        "qmodel_sha256": digest,
    }


def generate(qmodel: QModel | str | Path, parallel=1, out_dir: str | Path = "build", name: str | None = None,
             taps: bool = True, images: bool = True, train=None) -> dict:
    """Write Verilog, memory images and manifest for ``qmodel``; return the manifest dict.

    ``train`` (a :class:`~bp_hw.fixed.trainer.TrainSpec` or its dict) emits the
    on-chip training design (:class:`~bp_hw.hdl.backprop.TrainNetwork`) instead;
    its manifest carries a ``training`` section (no taps).
    """
    qmodel_path = None
    digest = None
    if not isinstance(qmodel, QModel):
        qmodel_path = str(Path(qmodel).resolve())
        raw = Path(qmodel).read_bytes() if Path(qmodel).is_file() else b""
        qmodel = QModel.load(qmodel)
        digest = hashlib.sha256(raw).hexdigest()
        default_name = Path(qmodel_path).stem
    else:
        default_name = "bp_hw_net"
    name = sanitize_name(name or default_name)
    par = parse_parallel(parallel, len(qmodel.layers))
    if train is not None:
        from .backprop import TrainNetwork
        net = TrainNetwork(qmodel, train, par)
    else:
        net = Network(qmodel, par, taps=taps)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(net, name=name, emit_src=False)
    write_text(out_dir / f"{name}.v", text)
    if train is not None:
        manifest = build_train_manifest(net, name, qmodel_path, digest)
    else:
        manifest = build_manifest(net, name, qmodel_path, digest)
    if images:
        try:
            from ..fixed import export
        except ImportError:
            export = None
        if export is not None and hasattr(export, "write_memory_images"):
            index = export.write_memory_images(qmodel, out_dir / "mem")
            manifest["memory_images"] = index if isinstance(index, (dict, list)) else str(out_dir / "mem")
    if qmodel_path is None:
        # keep a copy so the build folder is self-contained and the checker can find the spec
        qmodel.save(out_dir / "qmodel.json")
        manifest["qmodel"] = str((out_dir / "qmodel.json").resolve())
        manifest["qmodel_sha256"] = hashlib.sha256((out_dir / "qmodel.json").read_bytes()).hexdigest()
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def load_qmodel_for(manifest: dict) -> QModel:
    """The quantized model a manifest was generated from (checks its digest)."""
    path = manifest.get("qmodel")
    if not path or not Path(path).is_file():
        raise BpHwError(f"the quantized model of this build ({path}) is missing; re-run `bp-hw generate`")
    digest = manifest.get("qmodel_sha256")
    if digest and hashlib.sha256(Path(path).read_bytes()).hexdigest() != digest:
        raise BpHwError(f"{path} changed since the hardware was generated; re-run `bp-hw generate`")
    return QModel.load(path)


def read_manifest(build_dir: str | Path) -> dict:
    path = Path(build_dir) / "manifest.json"
    if not path.is_file():
        raise BpHwError(f"no manifest.json in {build_dir}; run `bp-hw generate` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BpHwError(f"{path} is not valid JSON ({exc.msg})") from None


def rebuild_network(build_dir: str | Path, taps: bool = False) -> Network:
    """The Amaranth network of a build folder (for synthesis and board wrappers).

    For a training build (``kind == "train"``) this is the
    :class:`~bp_hw.hdl.backprop.TrainNetwork` with the manifest's training spec.
    """
    manifest = read_manifest(build_dir)
    if manifest.get("kind") == "train":
        from .backprop import TrainNetwork
        return TrainNetwork(load_qmodel_for(manifest), manifest["training"]["spec"], manifest.get("parallel", 1))
    return Network(load_qmodel_for(manifest), manifest.get("parallel", 1), taps=taps)
