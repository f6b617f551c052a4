"""A small compile cache for Verilator's runtime objects; run as ``python -m bp_hw.cosim.objcache``.

Every Verilator build compiles the same runtime (``verilated.cpp``,
``verilated_vpi.cpp``, ``verilated_timing.cpp``, ...) again: about 17 s of
the 22 s it takes to build the iris 4-8-3 harness on one core, although only
the design's own ``Vtop__ALL.cpp`` changed. Verilator's makefile runs every
compile through ``$(OBJCACHE)`` (meant for ``ccache``); the runner sets
``OBJCACHE`` to this module, which is handed the compiler command line::

    python -m bp_hw.cosim.objcache c++ <flags> -c -o verilated.o <root>/include/verilated.cpp

Only sources under ``$VERILATOR_ROOT/include`` are cached (they include
nothing generated per design); everything else runs the compiler unchanged.
The key is the whole command line, the source's size and mtime, and the
compiler binary's identity, so any change of flags, tools or Verilator
version compiles afresh. Entries are written atomically (rename), so
concurrent builds (``pytest -n``) never see a half-written object.

``BP_HW_OBJCACHE=0`` turns it off; ``BP_HW_CACHE_DIR`` moves it (default
``$XDG_CACHE_HOME/bp-hw`` or ``~/.cache/bp-hw``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["cache_root", "enabled", "make_variable", "compile_cached"]


def cache_root() -> Path:
    base = os.environ.get("BP_HW_CACHE_DIR")
    if base:
        return Path(base) / "objcache"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "bp-hw" / "objcache"


def enabled() -> bool:
    return os.environ.get("BP_HW_OBJCACHE", "1").lower() not in ("0", "no", "false", "off")


def make_variable() -> str | None:
    """The ``OBJCACHE=...`` make argument, or ``None`` when caching is off or impossible."""
    if not enabled():
        return None
    try:
        cache_root().mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    python = sys.executable
    if not python or any(c.isspace() for c in python):
        return None  # make would split the path
    return f"OBJCACHE={python} -m bp_hw.cosim.objcache"


def _cacheable(cmd: list[str]) -> tuple[Path, Path] | None:
    """(source, object) of a runtime compile, or ``None`` for anything else."""
    root = os.environ.get("VERILATOR_ROOT")
    if not root or "-c" not in cmd or "-o" not in cmd:
        return None
    out_index = cmd.index("-o") + 1
    if out_index >= len(cmd):
        return None
    include = Path(root).resolve() / "include"
    sources = [Path(a) for a in cmd if a.endswith((".cpp", ".cc", ".c"))]
    if len(sources) != 1:
        return None
    source = sources[0].resolve()
    if include not in source.parents or not source.is_file():
        return None
    return source, Path(cmd[out_index])


def _key(cmd: list[str], source: Path) -> str:
    h = hashlib.sha256()
    h.update("\0".join(cmd).encode())
    st = source.stat()
    h.update(f"{source}:{st.st_size}:{st.st_mtime_ns}".encode())
    compiler = shutil.which(cmd[0])
    if compiler:
        cst = Path(compiler).resolve().stat()
        h.update(f"{Path(compiler).resolve()}:{cst.st_size}:{cst.st_mtime_ns}".encode())
    return h.hexdigest()


def compile_cached(cmd: list[str]) -> int:
    target = _cacheable(cmd) if enabled() else None
    if target is None:
        return subprocess.call(cmd)
    source, obj = target
    dep = obj.with_suffix(".d")
    entry = cache_root() / _key(cmd, source)
    if (entry / "obj.o").is_file():
        shutil.copyfile(entry / "obj.o", obj)
        if (entry / "obj.d").is_file():
            shutil.copyfile(entry / "obj.d", dep)
        return 0
    status = subprocess.call(cmd)
    if status == 0 and obj.is_file():
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".tmp"))
            shutil.copyfile(obj, tmp / "obj.o")
            if dep.is_file():
                shutil.copyfile(dep, tmp / "obj.d")
            try:
                tmp.rename(entry)
            except OSError:  # another build stored it first
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass  # caching is an optimisation only
    return status


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.stderr.write("usage: python -m bp_hw.cosim.objcache COMPILER ARGS...\n")
        sys.exit(2)
    sys.exit(compile_cached(sys.argv[1:]))
