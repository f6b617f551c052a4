"""The build manifest: what co-simulation needs to know about a generated design.

The generator writes ``<build>/manifest.json`` next to the Verilog. Fields the
co-simulation harness relies on (everything else is ignored and kept):

``name`` (str)
    Design name; also the default for ``toplevel`` and ``verilog``.
``verilog`` (str or list of str)
    Verilog file(s), relative to the build folder (or absolute). Default ``<name>.v``.
``toplevel`` (str)
    Top module of the DUT. Default ``name``.
``clock``, ``reset`` (str)
    Clock and reset port names (defaults ``clk``, ``rst``). The reset is
    synchronous; ``reset_active`` is ``"high"`` (default, Amaranth's) or ``"low"``.
``ports.in`` / ``ports.out`` (object)
    The input and output streams: ``payload``, ``valid``, ``ready`` port names,
    ``elements`` (n), ``width`` (W bits each), ``signed`` (two's complement,
    default true). Element k sits in payload bits ``[k*W, (k+1)*W)``.
``taps`` (list of objects, optional)
    Internal debug streams, captured like the output: ``name``, ``payload``,
    ``valid``, optional ``ready`` (tied high by the harness), ``elements``,
    ``width``, ``signed``. A tap is a monitor: one sample per clock edge on
    which ``valid`` (and ``ready``, if present) is high. Taps may not
    back-pressure the design and must not depend on the harness to make progress.
``latency_cycles``, ``interval_cycles`` (int, optional)
    Expected latency (input transfer to output transfer) and initiation
    interval, used to size the harness watchdog; measured values are reported.
``qmodel`` (str, optional)
    Path of the quantised model the outputs are checked against (used by the
    CLI, not by the harness).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bp_hw.errors import BpHwError
from bp_hw.fileio import write_json

MANIFEST_NAME = "manifest.json"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


@dataclass(frozen=True)
class StreamPort:
    """One stream of the DUT: port names and the payload layout."""

    payload: str
    valid: str
    ready: str | None
    elements: int
    width: int
    signed: bool = True
    name: str = ""

    @property
    def bits(self) -> int:
        return self.elements * self.width

    @classmethod
    def from_json(cls, obj: dict[str, Any], what: str, *, ready_required: bool) -> StreamPort:
        if not isinstance(obj, dict):
            raise BpHwError(f"manifest: {what} must be an object with payload/valid/ready/elements/width")
        try:
            payload, valid = str(obj["payload"]), str(obj["valid"])
            elements, width = int(obj["elements"]), int(obj["width"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BpHwError(f"manifest: {what} lacks a valid field {exc}") from None
        ready = obj.get("ready")
        if ready_required and not ready:
            raise BpHwError(f"manifest: {what} needs a 'ready' port name")
        if elements < 1 or width < 1:
            raise BpHwError(f"manifest: {what} needs elements >= 1 and width >= 1")
        if width > 64:
            raise BpHwError(f"manifest: {what} width {width} > 64 bits is not supported by the harness")
        for port in (payload, valid, ready):
            if port is not None and not _IDENT.match(port):
                raise BpHwError(f"manifest: {what} port name {port!r} is not a plain Verilog identifier")
        return cls(payload, valid, str(ready) if ready else None, elements, width,
                   bool(obj.get("signed", True)), str(obj.get("name", "")))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"payload": self.payload, "valid": self.valid}
        if self.ready:
            out["ready"] = self.ready
        out.update(elements=self.elements, width=self.width, signed=self.signed)
        if self.name:
            out = {"name": self.name, **out}
        return out


@dataclass(frozen=True)
class Manifest:
    """A parsed ``manifest.json``; ``build_dir`` is the folder it came from."""

    name: str
    build_dir: Path
    verilog: tuple[Path, ...]
    toplevel: str
    clock: str
    reset: str
    reset_active_high: bool
    inp: StreamPort
    out: StreamPort
    taps: tuple[StreamPort, ...] = ()
    latency_cycles: int | None = None
    interval_cycles: int | None = None
    qmodel: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, obj: dict[str, Any], build_dir: Path) -> Manifest:
        build_dir = Path(build_dir).resolve()
        if not isinstance(obj, dict) or "name" not in obj:
            raise BpHwError(f"manifest in {build_dir}: needs at least 'name' and 'ports'")
        name = str(obj["name"])
        verilog = obj.get("verilog", f"{name}.v")
        files = [verilog] if isinstance(verilog, str) else list(verilog)
        paths = tuple((build_dir / f).resolve() for f in files)
        for p in paths:
            if not p.is_file():
                raise BpHwError(f"manifest in {build_dir}: Verilog file {p} does not exist")
        ports = obj.get("ports")
        if not isinstance(ports, dict) or "in" not in ports or "out" not in ports:
            raise BpHwError(f"manifest in {build_dir}: needs 'ports' with 'in' and 'out' streams")
        taps = []
        for k, tap in enumerate(obj.get("taps") or []):
            port = StreamPort.from_json(tap, f"taps[{k}]", ready_required=False)
            taps.append(port if port.name else StreamPort(**{**port.__dict__, "name": f"tap{k}"}))
        names = [t.name for t in taps]
        if len(set(names)) != len(names):
            raise BpHwError(f"manifest in {build_dir}: tap names must be unique, got {names}")
        active = str(obj.get("reset_active", "high")).lower()
        if active not in ("high", "low"):
            raise BpHwError(f"manifest in {build_dir}: reset_active must be 'high' or 'low'")

        def opt_int(key: str) -> int | None:
            value = obj.get(key)
            return None if value is None else int(value)

        return cls(
            name=name, build_dir=build_dir, verilog=paths,
            toplevel=str(obj.get("toplevel", name)),
            clock=str(obj.get("clock", "clk")), reset=str(obj.get("reset", "rst")),
            reset_active_high=active == "high",
            inp=StreamPort.from_json(ports["in"], "ports.in", ready_required=True),
            out=StreamPort.from_json(ports["out"], "ports.out", ready_required=True),
            taps=tuple(taps),
            latency_cycles=opt_int("latency_cycles"), interval_cycles=opt_int("interval_cycles"),
            qmodel=obj.get("qmodel"), raw=dict(obj),
        )

    def to_json(self) -> dict[str, Any]:
        verilog = [str(p.relative_to(self.build_dir)) if p.is_relative_to(self.build_dir) else str(p)
                   for p in self.verilog]
        out = dict(self.raw)
        out.update({
            "name": self.name, "verilog": verilog[0] if len(verilog) == 1 else verilog,
            "toplevel": self.toplevel, "clock": self.clock, "reset": self.reset,
            "reset_active": "high" if self.reset_active_high else "low",
            "ports": {"in": self.inp.to_json(), "out": self.out.to_json()},
            "taps": [t.to_json() for t in self.taps],
            "latency_cycles": self.latency_cycles, "interval_cycles": self.interval_cycles,
        })
        if self.qmodel is not None:
            out["qmodel"] = self.qmodel
        return out


def load_manifest(build_dir: str | Path) -> Manifest:
    """Read ``<build_dir>/manifest.json`` (or the manifest file itself)."""
    given = Path(build_dir)
    path = given / MANIFEST_NAME if given.is_dir() else given
    if not path.is_file():
        if given.is_dir():
            raise BpHwError(f"no {MANIFEST_NAME} in {given}: run 'bp-hw generate' first")
        raise BpHwError(f"build folder {given} does not exist: give the folder 'bp-hw generate --out' wrote")
    try:
        obj = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BpHwError(f"{path}: not a readable JSON manifest ({exc})") from None
    return Manifest.from_json(obj, path.parent)


def write_manifest(build_dir: str | Path, obj: dict[str, Any]) -> Path:
    """Write *obj* as ``<build_dir>/manifest.json`` atomically (tests and the generator)."""
    path = Path(build_dir) / MANIFEST_NAME
    write_json(path, obj)
    return path
