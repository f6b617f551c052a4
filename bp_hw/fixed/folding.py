"""How ``P`` MAC lanes cover a layer — shared by the generator and the fixed-point trainer.

The folding fixes the order in which hardware visits a layer's weights, which
the on-chip trainer's stochastic rounding (one LFSR per multiplier) follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BpHwError

__all__ = ["Folding", "divisors", "valid_parallelism", "parse_lanes"]


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
    def of(cls, fan_in: int, fan_out: int, p, layer_index: int = 0) -> "Folding":
        """The folding for ``p`` lanes: an int (the rule above) or ``"OxI"`` (``P_out = O`` neurons at
        once, ``P_in = I`` inputs each: ``O`` must divide ``fan_out`` and ``I`` divide ``fan_in``)."""
        where = f"layer {layer_index} ({fan_in} inputs, {fan_out} neurons)"
        if isinstance(p, str):
            p_out, p_in = parse_lanes(p)
            bad = [f"{p_out} does not divide the {fan_out} neurons"] if fan_out % p_out else []
            bad += [f"{p_in} does not divide the {fan_in} inputs"] if fan_in % p_in else []
            if bad:
                raise BpHwError(f"parallelism {p} for {where}: {' and '.join(bad)}; P_out can be "
                                f"{_list(divisors(fan_out))}, P_in {_list(divisors(fan_in))}")
            return cls(p_out * p_in, p_out, p_in, fan_out // p_out, fan_in // p_in)
        if p < 1:
            raise BpHwError(f"parallelism for {where} must be at least 1, got {p}")
        if p > fan_in * fan_out:
            raise BpHwError(f"parallelism {p} exceeds the {fan_in * fan_out} MACs of {where}")
        if p <= fan_out:
            if fan_out % p:
                raise BpHwError(f"parallelism {p} does not divide the {fan_out} neurons of {where}; valid: "
                                f"{_list(valid_parallelism(fan_in, fan_out))} (or OxI, O a divisor of "
                                f"{fan_out} and I of {fan_in})")
            return cls(p, p, 1, fan_out // p, fan_in)
        if p % fan_out or fan_in % (p // fan_out):
            raise BpHwError(f"parallelism {p} for {where} must be one of "
                            f"{_list(valid_parallelism(fan_in, fan_out))} (or OxI, O a divisor of {fan_out} "
                            f"and I of {fan_in})")
        return cls(p, fan_out, p // fan_out, 1, fan_in // (p // fan_out))

    @property
    def spec(self):
        """The shortest spelling that gives this folding back: an int where :meth:`of` with an int
        gives it, else ``"OxI"``."""
        if self.lanes_in == 1 or self.groups == 1:
            return self.lanes
        return f"{self.lanes_out}x{self.lanes_in}"

    @property
    def cycles(self) -> int:
        return self.groups * self.chunks


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def valid_parallelism(fan_in: int, fan_out: int) -> list[int]:
    """Every int ``P`` that :meth:`Folding.of` accepts for this layer."""
    return divisors(fan_out) + [fan_out * d for d in divisors(fan_in)[1:]]


def parse_lanes(text: str) -> tuple[int, int]:
    """``"4x2"`` -> ``(4, 2)``."""
    parts = text.lower().split("x")
    try:
        p_out, p_in = (int(v) for v in parts)
    except ValueError:
        raise BpHwError(f"parallelism {text!r}: write P or OxI (e.g. 8 or 4x2)") from None
    if p_out < 1 or p_in < 1:
        raise BpHwError(f"parallelism {text!r}: both factors must be at least 1")
    return p_out, p_in


def _list(values: list[int], limit: int = 12) -> str:
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f", ... ({len(values)} choices)" if len(values) > limit else "")
