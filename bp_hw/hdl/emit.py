"""Emit a quantized model as Verilog, memory images and ``manifest.json``.

``generate(qmodel, parallel, out_dir)`` plans the design
(:func:`bp_hw.plan.make_plan`), builds it and writes into ``out_dir``:

* ``<name>.v`` — the :class:`~bp_hw.hdl.network.Network` (or, for a training
  build, the :class:`~bp_hw.hdl.backprop.TrainNetwork`) through
  ``amaranth.back.verilog.convert`` (memory contents are inlined in the
  Verilog, so no image is read by it);
* ``mem/`` — ``$readmemh`` images of the same weights, biases and tables and
  their index ``memories.json`` (:mod:`bp_hw.fixed.export`), for people with
  their own RTL;
* ``qmodel.json`` — the quantized model (the spec the outputs are checked against);
* ``datapath.svg`` — a picture of the planned datapath (:mod:`bp_hw.plan.diagram`);
* ``manifest.json`` — the plan written down (:mod:`bp_hw.plan.manifest`).
"""

from __future__ import annotations

import hashlib
import keyword
import re
from pathlib import Path

from amaranth.back import verilog

from ..errors import BpHwError
from ..fileio import write_text
from ..fixed import export
from ..fixed.qmodel import QModel
from ..plan.diagram import datapath_svg
from ..plan.hardware import HardwarePlan, make_plan
from ..plan.manifest import LOAD_IMAGE, Manifest, manifest_from_plan, plan_from_manifest, read_manifest, write_manifest
from .backprop import TrainNetwork
from .network import Network

__all__ = ["sanitize_name", "build_network", "load_image_text", "generate", "rebuild_network"]

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


def build_network(plan: HardwarePlan):
    """The Amaranth component of ``plan``: a :class:`Network`, or a :class:`TrainNetwork` for training."""
    return TrainNetwork(plan) if plan.training is not None else Network(plan)


def load_image_text(plan) -> str:
    """Every word of ``plan.load`` as one hex payload per line (``addr << data_width | data``)."""
    ld = plan.load
    digits = (ld.addr_width + ld.data_width + 3) // 4
    return "".join(f"{(addr << ld.data_width) | word:0{digits}x}\n" for addr, word in ld.image(plan))


def generate(qmodel: QModel | str | Path, parallel=1, out_dir: str | Path = "build", name: str | None = None,
             taps: bool = True, images: bool = True, train=None, device: str | None = None,
             input_mode: str | None = None, weights="auto") -> Manifest:
    """Write Verilog, memory images, ``qmodel.json`` and the manifest for ``qmodel``; return the manifest.

    ``train`` (a :class:`~bp_hw.fixed.trainer.TrainSpec`, its dict, or ``True`` for the
    defaults) emits the on-chip training design; its manifest has a ``training`` section
    and no taps. ``device`` (a device or board name) is recorded and used by the plan.
    ``input_mode``: ``"vector"``, ``"beats"`` or ``None`` (the plan's default, by input width).
    ``weights``: where the weight memories go (``auto``, ``rom``, ``block``, ``logic``, ``spram``); memories
    loaded at run time get their words in ``mem/load.hex`` and a ``load`` section in the manifest.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BpHwError(f"--out {out_dir} is a file; give a folder for the build")
    if not isinstance(qmodel, QModel):
        default_name = Path(qmodel).stem
        qmodel = QModel.load(qmodel)
    else:
        default_name = "bp_hw_net"
    name = sanitize_name(name or default_name)
    plan = make_plan(qmodel, parallel, device=device, train=train, taps=taps, input_mode=input_mode,
                     weights=weights)
    net = build_network(plan)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / f"{name}.v", verilog.convert(net, name=name, emit_src=False))
    # a copy keeps the build folder self-contained: the checker finds its spec next to the Verilog
    qmodel.save(out_dir / "qmodel.json")
    digest = hashlib.sha256((out_dir / "qmodel.json").read_bytes()).hexdigest()
    write_text(out_dir / "datapath.svg", datapath_svg(plan, name))
    if images:
        export.export_hex(qmodel, out_dir / "mem")
    if plan.load is not None:
        write_text(out_dir / LOAD_IMAGE, load_image_text(plan))
    manifest = manifest_from_plan(plan, name, out_dir, qmodel="qmodel.json", qmodel_sha256=digest,
                                  memory_images=f"mem/{export.INDEX_NAME}" if images else None)
    write_manifest(manifest)
    return manifest


def rebuild_network(build_dir: str | Path, taps: bool = False):
    """The Amaranth network of a build folder (for synthesis and board wrappers), from its manifest."""
    return build_network(plan_from_manifest(read_manifest(build_dir), taps=taps))
