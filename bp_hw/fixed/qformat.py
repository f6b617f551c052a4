"""Fixed-point number formats.

``Q<i>.<f>`` is signed with ``i`` integer bits *including* the sign bit and
``f`` fraction bits: width ``i + f``, integer range ``[-2^(w-1), 2^(w-1) - 1]``,
real value ``n / 2^f``. ``UQ<i>.<f>`` is the unsigned variant (range
``[0, 2^w - 1]``). hls4ml's spelling ``fixed<W,I>`` / ``ufixed<W,I>`` (``W``
total width, ``I`` integer bits, sign included for ``fixed``) is accepted too,
so ``fixed<16,4>`` is ``Q4.12`` and ``ufixed<8,1>`` is ``UQ1.7``.

Integer bits may be zero or negative and fraction bits may be negative (a
format such as ``Q-2.10`` holds small values only); the width must be 2..32.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import BpHwError

MIN_WIDTH = 2
MAX_WIDTH = 32

_Q_RE = re.compile(r"^\s*(U?)Q(-?\d+)\.(-?\d+)\s*$", re.IGNORECASE)
_HLS_RE = re.compile(r"^\s*(u?)fixed\s*<\s*(-?\d+)\s*,\s*(-?\d+)\s*>\s*$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class QFormat:
    """A two's complement (or unsigned) fixed-point format."""

    int_bits: int
    frac_bits: int
    signed: bool = True

    def __post_init__(self):
        if not (MIN_WIDTH <= self.width <= MAX_WIDTH):
            raise BpHwError(f"fixed-point format {self.name} has width {self.width}; "
                            f"widths must be {MIN_WIDTH}..{MAX_WIDTH} bits")

    # -- parsing and printing -------------------------------------------------
    @classmethod
    def parse(cls, text: "str | QFormat") -> "QFormat":
        """Parse ``Q4.12``, ``UQ1.7``, ``fixed<16,4>`` or ``ufixed<8,1>``."""
        if isinstance(text, QFormat):
            return text
        if not isinstance(text, str):
            raise BpHwError(f"not a fixed-point format: {text!r}")
        m = _Q_RE.match(text)
        if m:
            unsigned, i, f = m.group(1), int(m.group(2)), int(m.group(3))
            return cls(i, f, signed=not unsigned)
        m = _HLS_RE.match(text)
        if m:
            unsigned, w, i = m.group(1), int(m.group(2)), int(m.group(3))
            if w <= 0:
                raise BpHwError(f"fixed-point format {text!r}: width must be positive")
            return cls(i, w - i, signed=not unsigned)
        raise BpHwError(f"unknown fixed-point format {text!r}; write Q<int>.<frac> "
                        f"(e.g. Q4.12), UQ<int>.<frac>, fixed<W,I> or ufixed<W,I>")

    @property
    def name(self) -> str:
        return f"{'' if self.signed else 'U'}Q{self.int_bits}.{self.frac_bits}"

    def __str__(self) -> str:
        return self.name

    # -- ranges ---------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.int_bits + self.frac_bits

    @property
    def min_int(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def step(self) -> float:
        """The value of one least significant bit."""
        return 2.0 ** -self.frac_bits

    @property
    def min_value(self) -> float:
        return self.min_int * self.step

    @property
    def max_value(self) -> float:
        return self.max_int * self.step

    # -- conversions ----------------------------------------------------------
    def to_float(self, ints) -> np.ndarray:
        """Real values of integers in this format (exact in float64 up to 53 bits)."""
        return np.asarray(ints, dtype=np.int64).astype(np.float64) * self.step

    def to_hex(self, ints) -> list[str]:
        """Two's complement hex strings, ``ceil(width / 4)`` digits each."""
        digits = (self.width + 3) // 4
        mask = (1 << self.width) - 1
        return [format(int(v) & mask, f"0{digits}x") for v in np.asarray(ints).ravel()]

    def from_bits(self, raw) -> np.ndarray:
        """Interpret raw unsigned bit patterns of ``width`` bits as integers of this format."""
        raw = np.asarray(raw, dtype=np.int64) & ((1 << self.width) - 1)
        if self.signed:
            raw = np.where(raw >= (1 << (self.width - 1)), raw - (1 << self.width), raw)
        return raw
