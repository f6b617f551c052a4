"""Sigmoid and tanh as lookup tables: the contents and the lookup rule are the spec.

An :class:`ActivationLUT` covers the input range ``[-R, R)`` (``R`` a power of
two) with ``N = 2^addr_bits`` bins of width ``2R / N``. Its input ``z`` is an
integer of ``in_fmt`` (``f_z`` fraction bits); with

    s = f_z + log2(R) + 1 - addr_bits        (bits of z below the bin index)

**Direct lookup** (default): entry ``k`` holds ``f`` at the *centre* of bin ``k``,
``c_k = -R + (k + 1/2) * 2R/N``, quantized to ``out_fmt`` (rounding as given,
saturating). The lookup is

    idx = clamp(floor(z / 2^s) + N/2, 0, N - 1);   y = T[idx]

**Interpolation**: the ``N + 1`` entries hold ``f`` at the bin *edges*
``e_k = -R + k * 2R/N``; with ``z`` clamped to ``[-(N/2) 2^s, (N/2) 2^s - 1]``,
``u = z + (N/2) 2^s``, ``k = floor(u / 2^s)``, ``r = u mod 2^s``:

    y = T[k] + round_shift((T[k+1] - T[k]) * r, s, rounding)

(needs ``s >= 1``: the table must be coarser than the input).

**Symmetry** (optional) stores only the upper half ``H`` (entries ``k >= N/2``);
the lower half follows from ``sigmoid(-x) = 1 - sigmoid(x)`` and
``tanh(-x) = -tanh(x)``, mirrored about the centre of the table:

    direct:       T[k] = C - H[N - 1 - k - N/2]   for k < N/2
    interpolated: T[k] = C - H[N - k - N/2]       for k < N/2

with ``C = 2^f_out`` (the integer 1.0) for sigmoid and ``T[k] = -H[...]`` for
tanh. Because the mirrored entries are computed, not rounded, they can differ
from a full table by one step at rounding ties; the error bound below is taken
from the effective table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import BpHwError
from .qformat import QFormat
from .rounding import quantize_float, round_shift

FUNCTIONS = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
}
#: Activations computed through a lookup table (the others are logic: ReLU, identity).
LUT_FUNCTIONS = tuple(FUNCTIONS)


@dataclass
class ActivationLUT:
    """A sigmoid/tanh lookup table (see the module doc for the exact rule)."""

    function: str
    addr_bits: int
    in_range: float
    in_fmt: QFormat
    out_fmt: QFormat
    symmetric: bool = False
    interpolate: bool = False
    rounding: str = "nearest-even"
    table: np.ndarray = field(default=None, repr=False)  # stored entries (int64)

    def __post_init__(self):
        if self.function not in FUNCTIONS:
            raise BpHwError(f"no lookup table for activation {self.function!r}; "
                            f"tables exist for {', '.join(FUNCTIONS)}")
        if not (1 <= self.addr_bits <= 16):
            raise BpHwError(f"LUT address bits must be 1..16, got {self.addr_bits}")
        log2r = math.log2(self.in_range) if self.in_range > 0 else float("nan")
        if not (self.in_range > 0 and log2r == int(log2r)):
            raise BpHwError(f"LUT input range must be a power of two (e.g. 4, 8), got {self.in_range}")
        if self.function == "tanh" and not self.out_fmt.signed:
            raise BpHwError("tanh needs a signed output format")
        if self.interpolate and self.index_shift < 1:
            raise BpHwError(f"interpolation needs a table coarser than the input: with {self.in_fmt} and "
                            f"range {self.in_range:g}, use at most {self.addr_bits + self.index_shift - 1} "
                            f"address bits")
        if self.table is None:
            self.table = self._build()
        else:
            self.table = np.asarray(self.table, dtype=np.int64)
            if self.table.shape != (self.stored_entries,):
                raise BpHwError(f"LUT has {self.table.size} entries, expected {self.stored_entries}")

    # -- geometry -------------------------------------------------------------
    @property
    def entries(self) -> int:
        """Entries of the effective (full) table: N, or N + 1 when interpolating."""
        return (1 << self.addr_bits) + (1 if self.interpolate else 0)

    @property
    def stored_entries(self) -> int:
        n = 1 << self.addr_bits
        if self.symmetric:
            return n // 2 + (1 if self.interpolate else 0)
        return self.entries

    @property
    def index_shift(self) -> int:
        """``s``: the number of low bits of ``z`` below the table index."""
        return self.in_fmt.frac_bits + int(math.log2(self.in_range)) + 1 - self.addr_bits

    @property
    def bin_width(self) -> float:
        return 2.0 * self.in_range / (1 << self.addr_bits)

    # The constants the hardware's lookup is built from (``hdl/activation.py`` reads these, never
    # re-deriving them); :meth:`index` and :meth:`lookup` below use the same ones.
    @property
    def index_offset(self) -> int:
        """``N/2``: added to ``floor(z / 2^s)`` to give the direct-lookup index."""
        return (1 << self.addr_bits) // 2

    @property
    def index_max(self) -> int:
        """``N - 1``: the direct-lookup index is clamped to ``[0, index_max]``."""
        return (1 << self.addr_bits) - 1

    @property
    def interp_z_min(self) -> int:
        """Interpolation clamps ``z`` to ``[interp_z_min, interp_z_max]`` = ``[-(N/2) 2^s, (N/2) 2^s - 1]``
        (interpolation needs ``s >= 1``)."""
        if not self.interpolate:
            raise ValueError("the interpolation bounds exist only for an interpolating table")
        return -(self.index_offset << self.index_shift)

    @property
    def interp_z_max(self) -> int:
        return (self.index_offset << self.index_shift) - 1

    @property
    def rom_table(self) -> np.ndarray:
        """The words the hardware ROM holds, in address order.

        Direct lookup reads the stored table (the upper half when symmetric,
        mirrored through :meth:`rom_address`); interpolation reads two
        neighbouring entries of the effective table, so its ROM holds all of it.
        """
        return self.full_table() if self.interpolate else self.table.copy()

    def rom_address(self, idx):
        """ROM address of direct-lookup index ``idx``, and whether the entry is mirrored.

        Symmetric: ``idx >= N/2`` reads ``idx - N/2``; below, ``N/2 - 1 - idx`` mirrored.
        """
        idx = np.asarray(idx, dtype=np.int64)
        if not self.symmetric:
            return idx, np.zeros(idx.shape, dtype=bool)
        half = self.index_offset
        mirrored = idx < half
        return np.where(mirrored, half - 1 - idx, idx - half), mirrored

    @property
    def mirror_constant(self) -> int:
        """``C`` of the symmetric rule: the integer 1.0 for sigmoid, 0 for tanh."""
        return (1 << self.out_fmt.frac_bits) if self.function == "sigmoid" else 0

    def sample_points(self) -> np.ndarray:
        """The real inputs at which the effective table is sampled (centres or edges)."""
        n = 1 << self.addr_bits
        k = np.arange(self.entries, dtype=np.float64)
        offset = 0.0 if self.interpolate else 0.5
        return -self.in_range + (k + offset) * (2.0 * self.in_range / n)

    # -- contents -------------------------------------------------------------
    def _build(self) -> np.ndarray:
        f = FUNCTIONS[self.function]
        values, _ = quantize_float(f(self.sample_points()), self.out_fmt, self.rounding, "saturate")
        if self.symmetric:
            return values[(1 << self.addr_bits) // 2:].copy()
        return values

    def full_table(self) -> np.ndarray:
        """The effective table ``T`` (stored entries plus the mirrored half)."""
        if not self.symmetric:
            return self.table.copy()
        n = 1 << self.addr_bits
        half = n // 2
        k = np.arange(half)
        mirror = (n - 1 - k - half) if not self.interpolate else (n - k - half)
        h = self.table[mirror]
        lower = (self.mirror_constant - h) if self.function == "sigmoid" else -h
        return np.concatenate([lower, self.table])

    # -- lookup ---------------------------------------------------------------
    def index(self, z) -> np.ndarray:
        """Table index of each ``z`` for direct lookup (clamped)."""
        z = np.asarray(z, dtype=np.int64)
        return np.clip(round_shift(z, self.index_shift, "floor") + self.index_offset, 0, self.index_max)

    def lookup(self, z) -> tuple[np.ndarray, np.ndarray]:
        """``(y, idx)`` for integer inputs ``z`` of ``in_fmt``; ``idx`` is the (lower) table index."""
        t = self.full_table()
        z = np.asarray(z, dtype=np.int64)
        if not self.interpolate:
            idx = self.index(z)
            return t[idx], idx
        s = self.index_shift
        u = np.clip(z, self.interp_z_min, self.interp_z_max) - self.interp_z_min
        k = u >> s
        r = u & ((1 << s) - 1)
        y = t[k] + round_shift((t[k + 1] - t[k]) * r, s, self.rounding)
        return y, k

    # -- error ----------------------------------------------------------------
    def max_abs_error(self) -> float:
        """Max |LUT(z) - f(z)| over every representable input ``z`` of ``in_fmt``.

        Exhaustive over the input format (in chunks) up to 24 bits; wider inputs
        are checked at every bin edge, the neighbouring codes and 64 points per
        bin, which brackets the maximum of a monotonic function's step error.
        """
        f = FUNCTIONS[self.function]
        fmt = self.in_fmt
        worst = 0.0
        for z in self._error_probe_chunks():
            y, _ = self.lookup(z)
            err = np.abs(self.out_fmt.to_float(y) - f(fmt.to_float(z)))
            worst = max(worst, float(err.max()))
        return worst

    def _error_probe_chunks(self):
        fmt = self.in_fmt
        if fmt.width <= 24:
            chunk = 1 << 20
            for start in range(fmt.min_int, fmt.max_int + 1, chunk):
                yield np.arange(start, min(start + chunk, fmt.max_int + 1), dtype=np.int64)
            return
        n = 1 << self.addr_bits
        s = self.index_shift
        edges = (np.arange(n + 1, dtype=np.int64) - n // 2) << max(s, 0)
        probes = [edges, edges - 1, np.array([fmt.min_int, fmt.max_int], dtype=np.int64)]
        if s > 0:
            inner = (np.arange(64, dtype=np.int64) << s) // 64
            probes.append((edges[:-1, None] + inner[None, :]).ravel())
        z = np.clip(np.unique(np.concatenate(probes)), fmt.min_int, fmt.max_int)
        yield z

    # -- serialisation --------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "function": self.function, "addr_bits": self.addr_bits, "range": self.in_range,
            "in_format": self.in_fmt.name, "out_format": self.out_fmt.name,
            "symmetric": self.symmetric, "interpolate": self.interpolate, "rounding": self.rounding,
            "index_shift": self.index_shift, "table": [int(v) for v in self.table],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ActivationLUT":
        lut = cls(function=d["function"], addr_bits=int(d["addr_bits"]), in_range=float(d["range"]),
                  in_fmt=QFormat.parse(d["in_format"]), out_fmt=QFormat.parse(d["out_format"]),
                  symmetric=bool(d["symmetric"]), interpolate=bool(d["interpolate"]),
                  rounding=d.get("rounding", "nearest-even"), table=d["table"])
        return lut
