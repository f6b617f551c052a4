"""``manifest.json``: the plan written down for a build folder, and the one place that reads it back.

Every consumer (co-simulation, synthesis, the fast estimate, the host, explore,
the report) goes through :func:`read_manifest` and the typed :class:`Manifest`;
the generator writes it with :func:`write_manifest` from a
:class:`~bp_hw.plan.hardware.HardwarePlan`. Inference and training builds share
the schema; a training build adds the ``training`` section. The fields are
documented one by one in ``docs/architecture.md``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import BpHwError
from ..fileio import write_json
from ..fixed.qmodel import QModel
from .hardware import Field, HardwarePlan, MemoryPlan, PayloadFields, StreamLayout, make_plan, parse_parallel

__all__ = ["MANIFEST_NAME", "MANIFEST_FORMAT", "MANIFEST_VERSION", "StreamPort", "MemoryInfo", "LayerInfo",
           "TrainingInfo", "LoadInfo", "LOAD_IMAGE", "Manifest", "manifest_from_plan", "write_manifest", "read_manifest", "load_qmodel",
           "plan_from_manifest"]

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "bp-hw-manifest"
#: 2: one schema for inference and training (``kind``), stream ports as fields, memories by plan.
MANIFEST_VERSION = 2
KINDS = ("inference", "training")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def _need(obj: dict, key: str, what: str):
    if not isinstance(obj, dict) or key not in obj:
        raise BpHwError(f"manifest: {what} lacks the field {key!r}")
    return obj[key]


def _ident(name, what: str) -> str:
    name = str(name)
    if not _IDENT.match(name):
        raise BpHwError(f"manifest: {what} port name {name!r} is not a plain Verilog identifier")
    return name


# -- streams ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StreamPort(PayloadFields):
    """One stream of the design: port names and the payload's fields (:class:`~bp_hw.plan.hardware.Field`).

    ``elements``/``width``/``signed``/``format`` describe the single array field of a
    vector stream (inference input and output, taps); they are ``None`` for a
    payload of several fields (the training input: ``x``, ``t``, ``train``).
    """

    payload: str
    valid: str
    ready: str | None
    fields: tuple[Field, ...]
    name: str = ""
    beats: int = 1

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise BpHwError(f"manifest: stream {self.payload} has no field {name!r}")

    # the single field of a vector stream, or None for a payload of several fields
    elements = property(lambda self: self.vector.elements if self.vector else None)
    width = property(lambda self: self.vector.width if self.vector else None)
    signed = property(lambda self: self.vector.signed if self.vector else None)
    format = property(lambda self: self.vector.fmt if self.vector else None)

    @property
    def bits(self) -> int:
        return self.payload_width

    @classmethod
    def from_layout(cls, layout: StreamLayout, name: str = "") -> "StreamPort":
        p = layout.prefix
        return cls(f"{p}__payload", f"{p}__valid", f"{p}__ready" if layout.ready else None, layout.fields, name,
                   layout.beats)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name} if self.name else {}
        out.update(payload=self.payload, valid=self.valid)
        if self.ready:
            out["ready"] = self.ready
        out["payload_width"] = self.payload_width
        out["beats"] = self.beats
        if self.vector:
            out.update(elements=self.elements, width=self.width, signed=self.signed, format=self.format)
        out["fields"] = [{"name": f.name, "offset": f.offset, "elements": f.elements, "width": f.width,
                          "signed": f.signed, "format": f.fmt, **({"meaning": f.meaning} if f.meaning else {})}
                         for f in self.fields]
        return out

    @classmethod
    def from_json(cls, obj: dict, what: str, *, ready_required: bool) -> "StreamPort":
        if not isinstance(obj, dict):
            raise BpHwError(f"manifest: {what} must be an object with payload/valid/ready and fields")
        payload, valid = _ident(_need(obj, "payload", what), what), _ident(_need(obj, "valid", what), what)
        ready = obj.get("ready")
        if ready_required and not ready:
            raise BpHwError(f"manifest: {what} needs a 'ready' port name")
        fields = []
        for k, f in enumerate(_need(obj, "fields", what)):
            try:
                fields.append(Field(str(f["name"]), int(f["offset"]), int(f["elements"]), int(f["width"]),
                                    bool(f["signed"]), f.get("format"), str(f.get("meaning", ""))))
            except (KeyError, TypeError, ValueError) as exc:
                raise BpHwError(f"manifest: {what}.fields[{k}] lacks a valid field {exc}") from None
            if fields[-1].elements < 1 or fields[-1].width < 1:
                raise BpHwError(f"manifest: {what}.fields[{k}] needs elements >= 1 and width >= 1")
        if not fields:
            raise BpHwError(f"manifest: {what} has no payload fields")
        try:
            beats = int(obj.get("beats", 1))
        except (TypeError, ValueError):
            beats = 0
        if beats < 1:
            raise BpHwError(f"manifest: {what}.beats must be an integer >= 1")
        return cls(payload, valid, _ident(ready, what) if ready else None, tuple(fields), str(obj.get("name", "")),
                   beats)


def _record(cls, obj, what: str):
    """A dataclass ``cls`` from the JSON object of the same fields (every field without a default
    required)."""
    names = cls.__dataclass_fields__
    missing = [k for k, f in names.items() if (not isinstance(obj, dict) or k not in obj)
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise BpHwError(f"manifest: {what} lacks {', '.join(missing)}")
    return cls(**{k: obj[k] for k in names if k in obj})


# -- memories and layers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryInfo:
    """A memory of the design as the plan placed it (see :class:`~bp_hw.plan.hardware.MemoryPlan`)."""

    name: str
    layer: int
    kind: str
    count: int
    depth: int
    width: int
    placement: str
    writable: bool
    elements_per_word: int
    loaded: bool = False

    @property
    def bits(self) -> int:
        return self.count * self.depth * self.width

    @classmethod
    def from_plan(cls, m: MemoryPlan) -> "MemoryInfo":
        return cls(m.name, m.layer, m.kind, m.count, m.depth, m.width, m.placement, m.writable, m.elements_per_word,
                   m.loaded)

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, obj: dict) -> "MemoryInfo":
        try:
            return cls(str(obj["name"]), int(obj["layer"]), str(obj["kind"]), int(obj["count"]), int(obj["depth"]),
                       int(obj["width"]), str(obj["placement"]), bool(obj["writable"]),
                       int(obj["elements_per_word"]), bool(obj.get("loaded", False)))
        except (KeyError, TypeError, ValueError) as exc:
            raise BpHwError(f"manifest: memory entry lacks a valid field {exc}") from None


@dataclass(frozen=True)
class LayerInfo:
    """One layer's shape, folding, formats, datapath placement and figures."""

    index: int
    fan_in: int
    fan_out: int
    activation: str
    parallel: int
    lanes_out: int
    lanes_in: int
    groups: int
    chunks: int
    cycles_per_sample: int
    latency_cycles: int | None
    input: str
    output_slots: str
    mac_ops: int
    multipliers: int
    in_format: str
    weight_format: str
    bias_format: str
    z_format: str
    out_format: str
    acc_width: int
    rescale_shift: int
    rounding: str
    overflow: str
    lut: dict | None
    #: the DSP primitive the Verilog instantiates per product (``MULT18X18D`` on ECP5), or None
    dsp_cell: str | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, obj: dict) -> "LayerInfo":
        return _record(cls, obj, "layer entry")


@dataclass(frozen=True)
class TrainingInfo:
    """The ``training`` section: the access port, its address map, the spec and the cycle counts."""

    access: dict                  # port names, addr_width, data_width, depth, read_latency
    busy: str
    address_map: list
    spec: dict                    # FixedTrainer.spec_dict(): what TrainSpec.from_dict takes, plus derived
    eta: float
    cycles_per_infer_sample: int
    cycles_per_train_sample: int
    multipliers: int
    layers: list

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, obj: dict) -> "TrainingInfo":
        return _record(cls, obj, "training section")


@dataclass(frozen=True)
class LoadInfo:
    """The ``load`` section: the port that writes the memories loaded at run time (SPRAM weights),
    its address map and the image file of every word to write (one payload per line, as the
    co-simulation harness reads its inputs)."""

    port: StreamPort
    word_bits: int
    words: int
    image: str                    # relative to the build folder
    memories: list                # [{name, layer, lane, index, depth, width}]

    def to_json(self) -> dict:
        return {"port": self.port.to_json(), "word_bits": self.word_bits, "words": self.words,
                "image": self.image, "memories": list(self.memories),
                "usage": "one packed word per transfer: data in the low bits, addr = memory index << word_bits "
                         "| word; always ready; load every word before the first input (the memories are "
                         "single-port); the image lists every word in order"}

    @classmethod
    def from_json(cls, obj: dict) -> "LoadInfo":
        if not isinstance(obj, dict):
            raise BpHwError("manifest: load must be an object with port, word_bits, words, image, memories")
        try:
            return cls(StreamPort.from_json(obj["port"], "load.port", ready_required=True), int(obj["word_bits"]),
                       int(obj["words"]), str(obj["image"]), list(obj["memories"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BpHwError(f"manifest: load section lacks a valid {exc}") from None


#: Where generate writes the load image, relative to the build folder.
LOAD_IMAGE = "mem/load.hex"


# -- the manifest -------------------------------------------------------------------------------------

@dataclass
class Manifest:
    """A parsed ``manifest.json``; ``build_dir`` is the folder it belongs to."""

    name: str
    kind: str
    build_dir: Path
    verilog: tuple[Path, ...]
    toplevel: str
    clock: str
    reset: str
    reset_active_high: bool
    inp: StreamPort
    out: StreamPort
    taps: tuple[StreamPort, ...]
    sizes: list[int]
    parallel: list            # per layer: P (int) or "OxI"
    latency_cycles: int | None
    standalone_latency_cycles: int | None
    interval_cycles: int | None
    ideal_interval_cycles: int | None
    multipliers: int | None
    mac_ops_per_inference: int | None
    layers: tuple[LayerInfo, ...]
    memories: tuple[MemoryInfo, ...]
    qmodel: str | None = None
    qmodel_sha256: str | None = None
    memory_images: str | None = None
    board: str | None = None
    device: str | None = None
    training: TrainingInfo | None = None
    load: LoadInfo | None = None
    #: where the input normalisation is applied (the quantized model's ``normalization``: ``host`` or
    #: ``folded`` into layer 0), or None for a manifest written before it was recorded
    normalization: str | None = None
    bp_hw_version: str = __version__
    extra: dict = field(default_factory=dict, repr=False)   # keys a newer writer added; kept on rewrite

    @property
    def is_training(self) -> bool:
        return self.kind == "training"

    @property
    def qmodel_path(self) -> Path | None:
        return None if self.qmodel is None else (self.build_dir / self.qmodel).resolve()

    def to_json(self) -> dict[str, Any]:
        verilog = [str(p.relative_to(self.build_dir)) if p.is_relative_to(self.build_dir) else str(p)
                   for p in self.verilog]
        out = {
            "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "bp_hw_version": self.bp_hw_version,
            "kind": self.kind, "name": self.name,
            "verilog": verilog[0] if len(verilog) == 1 else verilog, "toplevel": self.toplevel,
            "clock": self.clock, "reset": self.reset, "reset_active": "high" if self.reset_active_high else "low",
            "board": self.board, "device": self.device,
            "ports": {"in": self.inp.to_json(), "out": self.out.to_json()},
            "taps": [t.to_json() for t in self.taps],
            "sizes": list(self.sizes), "parallel": list(self.parallel),
            "latency_cycles": self.latency_cycles, "standalone_latency_cycles": self.standalone_latency_cycles,
            "interval_cycles": self.interval_cycles, "ideal_interval_cycles": self.ideal_interval_cycles,
            "multipliers": self.multipliers, "mac_ops_per_inference": self.mac_ops_per_inference,
            "layers": [x.to_json() for x in self.layers],
            "memories": [m.to_json() for m in self.memories],
            "memory_images": self.memory_images,
            "qmodel": self.qmodel, "qmodel_sha256": self.qmodel_sha256,
            "training": self.training.to_json() if self.training else None,
            "load": self.load.to_json() if self.load else None,
            "normalization": self.normalization,
        }
        return {**self.extra, **out}

    @classmethod
    def from_json(cls, obj: dict, build_dir: str | Path) -> "Manifest":
        build_dir = Path(build_dir).resolve()
        if not isinstance(obj, dict) or obj.get("format") != MANIFEST_FORMAT:
            raise BpHwError(f"{build_dir / MANIFEST_NAME} is not a bp-hw manifest (no \"format\": "
                            f"\"{MANIFEST_FORMAT}\"); re-run `bp-hw generate`")
        version = obj.get("version")
        if version != MANIFEST_VERSION:
            raise BpHwError(f"{build_dir / MANIFEST_NAME} has manifest version {version!r}; this bp-hw reads "
                            f"version {MANIFEST_VERSION}: re-run `bp-hw generate` with this bp-hw")
        kind = obj.get("kind")
        if kind not in KINDS:
            raise BpHwError(f"manifest: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        name = str(_need(obj, "name", "the manifest"))
        verilog = obj.get("verilog", f"{name}.v")
        files = [verilog] if isinstance(verilog, str) else list(verilog)
        paths = tuple((build_dir / f).resolve() for f in files)
        for p in paths:
            if not p.is_file():
                raise BpHwError(f"manifest in {build_dir}: Verilog file {p} does not exist")
        ports = _need(obj, "ports", "the manifest")
        taps = tuple(StreamPort.from_json(t, f"taps[{k}]", ready_required=False)
                     for k, t in enumerate(obj.get("taps") or []))
        names = [t.name for t in taps]
        if len(set(names)) != len(names) or not all(names):
            raise BpHwError(f"manifest in {build_dir}: taps need unique names, got {names}")
        active = str(obj.get("reset_active", "high")).lower()
        if active not in ("high", "low"):
            raise BpHwError(f"manifest in {build_dir}: reset_active must be 'high' or 'low'")

        def opt_int(key):
            v = obj.get(key)
            return None if v is None else int(v)

        known = set(cls.__dataclass_fields__) | {"format", "version", "ports", "reset_active"}
        training = obj.get("training")
        return cls(
            name=name, kind=kind, build_dir=build_dir, verilog=paths, toplevel=str(obj.get("toplevel", name)),
            clock=_ident(obj.get("clock", "clk"), "clock"), reset=_ident(obj.get("reset", "rst"), "reset"),
            reset_active_high=active == "high",
            inp=StreamPort.from_json(_need(ports, "in", "ports"), "ports.in", ready_required=True),
            out=StreamPort.from_json(_need(ports, "out", "ports"), "ports.out", ready_required=True),
            taps=taps, sizes=[int(v) for v in obj.get("sizes") or []],
            parallel=parse_parallel(obj.get("parallel") or [], len(obj.get("parallel") or [])),
            latency_cycles=opt_int("latency_cycles"), standalone_latency_cycles=opt_int("standalone_latency_cycles"),
            interval_cycles=opt_int("interval_cycles"), ideal_interval_cycles=opt_int("ideal_interval_cycles"),
            multipliers=opt_int("multipliers"), mac_ops_per_inference=opt_int("mac_ops_per_inference"),
            layers=tuple(LayerInfo.from_json(x) for x in obj.get("layers") or []),
            memories=tuple(MemoryInfo.from_json(m) for m in obj.get("memories") or []),
            qmodel=obj.get("qmodel"), qmodel_sha256=obj.get("qmodel_sha256"),
            memory_images=obj.get("memory_images"), board=obj.get("board"), device=obj.get("device"),
            training=TrainingInfo.from_json(training) if training else None,
            load=LoadInfo.from_json(obj["load"]) if obj.get("load") else None,
            normalization=obj.get("normalization"),
            bp_hw_version=str(obj.get("bp_hw_version", "")),
            extra={k: v for k, v in obj.items() if k not in known},
        )


def _layer_info(plan: HardwarePlan, x) -> LayerInfo:
    L, f = x.layer, x.fold
    lut = None
    if x.lut is not None:
        lut = {"function": x.lut.function, "addr_bits": x.lut.addr_bits, "range": x.lut.in_range,
               "symmetric": x.lut.symmetric, "interpolate": x.lut.interpolate, "index_shift": x.lut.index_shift,
               "rom_words": x.lut.rom_depth, "roms": f.lanes_out}
    training = plan.training is not None
    return LayerInfo(
        index=x.index, fan_in=L.fan_in, fan_out=L.fan_out, activation=L.activation, parallel=f.lanes,
        lanes_out=f.lanes_out, lanes_in=f.lanes_in, groups=f.groups, chunks=f.chunks,
        cycles_per_sample=plan.training.layers[x.index].fwd_cycles if training else x.interval,
        latency_cycles=None if training else x.latency,
        input="registers" if training else x.input_source, output_slots="registers" if training else x.output_slots,
        mac_ops=L.macs, multipliers=f.lanes, in_format=L.in_fmt.name, weight_format=L.weight_fmt.name,
        bias_format=L.bias_fmt.name, z_format=L.z_fmt.name, out_format=L.out_fmt.name, acc_width=L.acc_width,
        rescale_shift=L.rescale_shift, rounding=L.rounding, overflow=L.overflow, lut=lut,
        dsp_cell=(plan.training.layers[x.index].dsp_cell or plan.training.layers[x.index].delta_cell) if training
        else x.dsp_cell)


def _training_info(plan: HardwarePlan) -> TrainingInfo:
    t = plan.training
    layers = []
    for x in t.layers:
        f = x.fold
        layers.append({
            "index": x.index, "parallel": f.lanes, "lanes_out": f.lanes_out, "lanes_in": f.lanes_in,
            "groups": f.groups, "chunks": f.chunks, **x.formats.to_dict(),
            "lfsr_seeds": [[po, pi, s] for (po, pi), s in sorted(x.lfsr_seeds.items())],
            "fwd_cycles": x.fwd_cycles, "err_cycles": x.err_cycles if x.index > 0 else None,
            "upd_cycles": x.upd_cycles, "delta_cycles": x.delta_cycles, "multipliers": x.multipliers,
        })
    access = {"addr": "wacc__addr", "wdata": "wacc__wdata", "we": "wacc__we", "rdata": "wacc__rdata",
              "addr_width": t.access_addr_width, "data_width": t.access_width, "depth": t.access_depth,
              "read_latency": t.read_latency,
              "usage": "only while busy is low; rdata (sign-extended) is the element at the addr presented "
                       "read_latency cycles earlier; we writes the low bits of wdata"}
    return TrainingInfo(access=access, busy="busy", address_map=t.address_map(), spec=t.spec_dict, eta=t.eta,
                        cycles_per_infer_sample=t.infer_cycles, cycles_per_train_sample=t.train_cycles,
                        multipliers=t.multipliers, layers=layers)


def manifest_from_plan(plan: HardwarePlan, name: str, build_dir: str | Path, *, qmodel: str | None = None,
                       qmodel_sha256: str | None = None, memory_images: str | None = None,
                       board: str | None = None) -> Manifest:
    """The manifest of a build of ``plan`` whose Verilog is ``<build_dir>/<name>.v``.

    ``qmodel`` is the quantized model's path relative to ``build_dir`` (or absolute).
    """
    build_dir = Path(build_dir).resolve()
    training = plan.training is not None
    return Manifest(
        name=name, kind=plan.kind, build_dir=build_dir, verilog=(build_dir / f"{name}.v",), toplevel=name,
        clock="clk", reset="rst", reset_active_high=True,
        inp=StreamPort.from_layout(plan.inp), out=StreamPort.from_layout(plan.out),
        taps=tuple(StreamPort.from_layout(t, name=f"tap{l}") for l, t in enumerate(plan.tap_layouts())),
        sizes=list(plan.sizes), parallel=list(plan.parallel), latency_cycles=plan.latency,
        standalone_latency_cycles=None if training else plan.standalone_latency,
        interval_cycles=plan.interval, ideal_interval_cycles=plan.ideal_interval, multipliers=plan.multipliers,
        mac_ops_per_inference=plan.mac_ops, layers=tuple(_layer_info(plan, x) for x in plan.layers),
        memories=tuple(MemoryInfo.from_plan(m) for m in plan.memories), qmodel=qmodel,
        qmodel_sha256=qmodel_sha256, memory_images=memory_images, board=board,
        device=plan.device.name if plan.device else None,
        training=_training_info(plan) if training else None,
        load=_load_info(plan.load) if plan.load is not None else None,
        normalization=plan.qmodel.normalization)


def _load_info(load) -> LoadInfo:
    return LoadInfo(StreamPort.from_layout(load.layout), load.word_bits, load.words, LOAD_IMAGE,
                    [{"name": m.name, "layer": m.layer, "lane": m.lane, "index": m.index, "depth": m.depth,
                      "width": m.width} for m in load.memories])


def write_manifest(manifest: Manifest) -> Path:
    """Write ``manifest`` as ``<build_dir>/manifest.json`` (atomically)."""
    path = manifest.build_dir / MANIFEST_NAME
    write_json(path, manifest.to_json())
    return path


def read_manifest(build_dir: str | Path) -> Manifest:
    """The manifest of a build folder (or of the manifest file itself)."""
    given = Path(build_dir)
    path = given / MANIFEST_NAME if given.is_dir() or not given.suffix else given
    if not given.exists():
        raise BpHwError(f"{given} does not exist; give the build folder `bp-hw generate` wrote")
    if not path.is_file():
        raise BpHwError(f"no {MANIFEST_NAME} in {given}; run `bp-hw generate` first")
    try:
        obj = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        if path.name != MANIFEST_NAME:
            raise BpHwError(f"{given} is a file, not a build folder; give the folder `bp-hw generate` wrote "
                            f"(the one with {MANIFEST_NAME})") from None
        raise BpHwError(f"{path} is not a readable JSON manifest ({exc})") from None
    if path.name != MANIFEST_NAME and (not isinstance(obj, dict) or obj.get("format") != MANIFEST_FORMAT):
        raise BpHwError(f"{given} is not a build folder or a manifest; give the folder `bp-hw generate` wrote "
                        f"(the one with {MANIFEST_NAME})")
    return Manifest.from_json(obj, path.parent)


def load_qmodel(manifest: Manifest) -> QModel:
    """The quantized model a build was generated from (its digest checked)."""
    path = manifest.qmodel_path
    if path is None or not path.is_file():
        raise BpHwError(f"the quantized model of this build ({path}) is missing; re-run `bp-hw generate`")
    raw = path.read_bytes()
    if manifest.qmodel_sha256 and hashlib.sha256(raw).hexdigest() != manifest.qmodel_sha256:
        raise BpHwError(f"{path} changed since the hardware was generated; re-run `bp-hw generate`")
    return QModel.load(path)


def plan_from_manifest(manifest: Manifest, *, taps: bool = False) -> HardwarePlan:
    """The plan a build was made from: its quantized model, parallelism, device and training spec."""
    train = manifest.training.spec if manifest.training is not None else None
    if train is not None:
        return make_plan(load_qmodel(manifest), manifest.parallel, device=manifest.device, train=train)
    input_mode = "beats" if manifest.layers[0].input == "buffer" else "vector"
    placed = {m.layer: m.placement for m in manifest.memories if m.kind == "weights"}
    weights = [{"const": "rom", "block": "rom"}.get(placed.get(l, "rom"), placed.get(l, "rom"))
               for l in range(len(manifest.layers))]
    return make_plan(load_qmodel(manifest), manifest.parallel, device=manifest.device, taps=taps,
                     input_mode=input_mode, weights=weights)
