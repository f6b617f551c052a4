"""The LFSR that drives stochastic rounding — its exact bit sequence is part of the spec.

A 32-bit Galois LFSR shifting right, with feedback polynomial
``x^32 + x^22 + x^2 + x + 1`` (maximal length, period 2^32 - 1):

    step(s):  out = s & 1;  s = s >> 1;  if out: s = s ^ 0x80200003

The state must never be zero (a zero seed is replaced by ``DEFAULT_SEED``).
Every stochastic rounding takes the state *after* one step and uses its low
``k`` bits as the random offset ``r`` in ``[0, 2^k)`` (``k`` = number of bits
dropped; for ``k > 32`` the 32 bits are placed at the top of the ``k``-bit
field). Elements of an array are rounded in C (row-major) order, one step each.
The hardware keeps one such register per rounding site and steps it exactly
when the model does.
"""

from __future__ import annotations

import numpy as np

TAPS = 0x80200003
WIDTH = 32
MASK = (1 << WIDTH) - 1
DEFAULT_SEED = 0xACE1ACE1


def step(state: int) -> int:
    """One step of the Galois LFSR."""
    out = state & 1
    state >>= 1
    if out:
        state ^= TAPS
    return state


class LFSR:
    """A stateful LFSR producing the random offsets of stochastic rounding."""

    def __init__(self, seed: int = DEFAULT_SEED):
        seed = int(seed) & MASK
        self.state = seed if seed else DEFAULT_SEED

    def next_states(self, n: int) -> np.ndarray:
        """Advance ``n`` steps; return the ``n`` states after each step (uint64)."""
        out = np.empty(n, dtype=np.uint64)
        s = self.state
        for i in range(n):
            out_bit = s & 1
            s >>= 1
            if out_bit:
                s ^= TAPS
            out[i] = s
        self.state = s
        return out

    def offsets(self, n: int, bits: int) -> np.ndarray:
        """``n`` random offsets in ``[0, 2^bits)`` as int64 (see the module doc)."""
        states = self.next_states(n).astype(np.int64)
        if bits <= 0:
            return np.zeros(n, dtype=np.int64)
        if bits <= WIDTH:
            return states & ((1 << bits) - 1)
        return states << (bits - WIDTH)


def lane_seed(seed: int, layer: int, p_out: int, p_in: int) -> int:
    """Initial state of the LFSR of multiplier ``(p_out, p_in)`` of layer ``layer``.

    ``seed ^ (layer << 16) ^ (p_out << 8) ^ p_in`` in 32 bits, zero replaced by
    :data:`DEFAULT_SEED` (the fixed-point trainer and the hardware both take it from here).
    """
    s = (int(seed) ^ (int(layer) << 16) ^ (int(p_out) << 8) ^ int(p_in)) & MASK
    return s if s else DEFAULT_SEED
