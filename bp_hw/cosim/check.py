"""Compare what the hardware produced with what the integer model expects, in bulk.

The harness logs every transfer in order, so every fault of the stream shows up
here: a lost sample as fewer outputs (and a shift: output i equals expected
i + 1), a duplicated one as extra outputs (output i equals expected i - 1), a
reordered one as a mismatch, X/Z bits as ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bp_hw.cosim.runner import SimResult

__all__ = ["CheckReport", "compare_arrays", "compare_outputs", "first_tap_mismatch"]


@dataclass
class CheckReport:
    """The outcome of one comparison; ``ok`` only if every output matched and none is missing or extra."""

    n_expected: int
    n_received: int
    inputs_sent: int
    mismatched: np.ndarray  # indices (into the expected order) whose output differs or is unknown
    unknown: np.ndarray  # indices whose output had X/Z bits
    timed_out: bool
    first_mismatch: int | None
    first_element: int | None
    expected_row: np.ndarray | None
    got_row: np.ndarray | None
    hints: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return max(0, self.n_expected - self.n_received)

    @property
    def extra(self) -> int:
        return max(0, self.n_received - self.n_expected)

    @property
    def n_mismatches(self) -> int:
        """Vectors not verified: differing outputs plus missing ones."""
        return int(len(self.mismatched)) + self.missing

    @property
    def ok(self) -> bool:
        return self.n_mismatches == 0 and self.extra == 0 and not self.timed_out

    def summary(self) -> str:
        """One line for logs and the CLI."""
        if self.ok:
            return f"{self.n_expected} vectors, all outputs match"
        parts = [f"{self.n_mismatches} of {self.n_expected} vectors wrong"]
        if self.missing:
            parts.append(f"{self.missing} outputs missing")
        if self.extra:
            parts.append(f"{self.extra} extra outputs")
        if self.inputs_sent < self.n_expected:
            parts.append(f"DUT accepted only {self.inputs_sent} inputs")
        if self.timed_out:
            parts.append("watchdog fired (no transfer for too long)")
        if len(self.unknown):
            parts.append(f"{len(self.unknown)} outputs with X/Z bits")
        if self.first_mismatch is not None:
            parts.append(f"first at vector {self.first_mismatch}"
                         + (f" element {self.first_element}" if self.first_element is not None else ""))
        return "; ".join(parts)

    def describe(self, width: int | None = None) -> str:
        """A few lines: the summary, the first bad vector expected vs got, and hints."""
        lines = [self.summary()]
        if self.first_mismatch is not None and self.expected_row is not None:
            lines.append(f"  vector {self.first_mismatch}: expected {_fmt(self.expected_row, width)}")
            got = "(no output)" if self.got_row is None else _fmt(self.got_row, width)
            lines.append(f"  {' ' * len(str(self.first_mismatch))}         got      {got}")
        lines += [f"  hint: {h}" for h in self.hints]
        return "\n".join(lines)


def _fmt(row: np.ndarray, width: int | None) -> str:
    vals = [int(v) for v in np.asarray(row).ravel()]
    if width is None:
        return "[" + ", ".join(str(v) for v in vals) + "]"
    digits = (width + 3) // 4
    return "[" + ", ".join(f"{v} (0x{v & ((1 << width) - 1):0{digits}x})" for v in vals) + "]"


def compare_arrays(expected: np.ndarray, got: np.ndarray, *, unknown: np.ndarray | None = None,
                   inputs_sent: int | None = None, timed_out: bool = False) -> CheckReport:
    """Compare *got* (received rows, in order) with *expected* (n, elements)."""
    expected = np.asarray(expected, dtype=np.int64)
    got = np.asarray(got, dtype=np.int64)
    if expected.ndim == 1:
        expected = expected[:, None]
    if got.ndim == 1:
        got = got[:, None]
    n, m = len(expected), len(got)
    unknown = np.zeros(m, bool) if unknown is None else np.asarray(unknown, bool)
    k = min(n, m)
    if got.shape[1:] != expected.shape[1:]:
        raise ValueError(f"expected rows of shape {expected.shape[1:]}, got {got.shape[1:]}")
    differs = np.any(expected[:k] != got[:k], axis=1) | unknown[:k]
    mismatched = np.flatnonzero(differs)
    first = int(mismatched[0]) if len(mismatched) else (k if n > m else None)
    first_element = exp_row = got_row = None
    if first is not None:
        exp_row = expected[first]
        if first < m:
            got_row = got[first]
            diff = np.flatnonzero(exp_row != got_row)
            first_element = int(diff[0]) if len(diff) else None
    hints = _stream_hints(expected, got, first) if first is not None and first < k else []
    if n != m and not hints:
        hints.append("output count differs from input count: samples were lost or duplicated")
    return CheckReport(n_expected=n, n_received=m, inputs_sent=n if inputs_sent is None else inputs_sent,
                       mismatched=mismatched, unknown=np.flatnonzero(unknown), timed_out=timed_out,
                       first_mismatch=first, first_element=first_element, expected_row=exp_row,
                       got_row=got_row, hints=hints)


def _stream_hints(expected: np.ndarray, got: np.ndarray, i: int) -> list[str]:
    """Recognise the stream faults from where the sequences line up again."""
    n, m = len(expected), len(got)
    tail = min(8, n - i - 1, m - i)
    if tail > 0 and np.array_equal(got[i:i + tail], expected[i + 1:i + 1 + tail]):
        return [f"outputs from {i} on equal the expected outputs shifted by one: sample {i} was lost"]
    tail = min(8, n - i, m - i - 1)
    if i > 0 and tail > 0 and np.array_equal(got[i], expected[i - 1]) \
            and np.array_equal(got[i + 1:i + 1 + tail], expected[i:i + tail]):
        return [f"output {i} repeats output {i - 1}: a sample was duplicated"]
    if i + 1 < min(n, m) and np.array_equal(got[i], expected[i + 1]) and np.array_equal(got[i + 1], expected[i]):
        return [f"outputs {i} and {i + 1} are swapped: the stream reordered samples"]
    return []


def compare_outputs(expected: np.ndarray, result: SimResult) -> CheckReport:
    """Compare a run's outputs with *expected* (n, n_out) in order."""
    return compare_arrays(expected, result.outputs, unknown=result.unknown,
                          inputs_sent=result.inputs_sent, timed_out=result.timed_out)


def first_tap_mismatch(expected_taps: dict[str, np.ndarray], result: SimResult,
                       order: list[str] | None = None) -> tuple[str, int, int | None] | None:
    """Locate the earliest stage where the hardware differs: ``(tap, vector, element)``.

    Taps are checked in *order* (default: the order of *expected_taps*, which
    should follow the datapath); within the first differing tap the earliest
    vector and element are reported. ``None`` when every tap matches.
    """
    for name in order or list(expected_taps):
        if name not in result.taps:
            continue
        report = compare_arrays(expected_taps[name], result.taps[name], unknown=result.tap_unknown.get(name))
        if report.n_mismatches or report.extra:
            return name, int(report.first_mismatch if report.first_mismatch is not None
                             else report.n_received), report.first_element
    return None
