"""How ``P`` MAC lanes cover a layer — shared by the generator and the fixed-point trainer.

The folding fixes the order in which hardware visits a layer's weights, which
the on-chip trainer's stochastic rounding (one LFSR per multiplier) follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BpHwError


@dataclass(frozen=True)
class Folding:
    """How ``P`` lanes cover a layer: ``P_out`` neurons at once, ``P_in`` inputs per neuron per cycle.

    ``P <= fan_out``: ``P_out = P`` must divide ``fan_out``, ``P_in = 1``.
    ``P > fan_out``: ``P_out = fan_out`` and ``P_in = P / fan_out`` must divide ``fan_in``.
    The layer then needs ``groups * chunks = MACs / P`` cycles per sample.
    """

    lanes: int
    lanes_out: int
    lanes_in: int
    groups: int   # neuron groups of P_out
    chunks: int   # input chunks of P_in

    @classmethod
    def of(cls, fan_in: int, fan_out: int, p: int, layer_index: int = 0) -> "Folding":
        where = f"layer {layer_index} ({fan_in} inputs, {fan_out} neurons)"
        if p < 1:
            raise BpHwError(f"parallelism for {where} must be at least 1, got {p}")
        if p > fan_in * fan_out:
            raise BpHwError(f"parallelism {p} exceeds the {fan_in * fan_out} MACs of {where}")
        if p <= fan_out:
            if fan_out % p:
                raise BpHwError(f"parallelism {p} does not divide the {fan_out} neurons of {where}; "
                                f"use a divisor of {fan_out}")
            return cls(p, p, 1, fan_out // p, fan_in)
        if p % fan_out or fan_in % (p // fan_out):
            raise BpHwError(f"parallelism {p} for {where} must be a divisor of {fan_out} or {fan_out} times "
                            f"a divisor of {fan_in}")
        return cls(p, fan_out, p // fan_out, 1, fan_in // (p // fan_out))

    @property
    def cycles(self) -> int:
        return self.groups * self.chunks
