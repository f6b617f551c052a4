"""One small layer, symbolically: the hardware's outputs equal the spec's for every input vector.

The reference side is the integer model itself (:meth:`bp_hw.fixed.qmodel.QModel.predict`), not a
second description of the arithmetic: the input format is narrow enough (``FAN_IN`` inputs of at most
3 bits) that the spec is evaluated on every input vector the format allows, once, in numpy, and the
results become a table the property reads. The solver then picks any sequence of input vectors (and
any stall pattern on both streams) and the property asserts that every output the generated
:class:`~bp_hw.hdl.network.Network` hands over equals the table's entry for its input: the dot product
through the MAC lane, the rescale's rounding and overflow, and the activation table, all on the gates.

:func:`neuron_model` makes the layer: ``FAN_IN`` inputs, ``FAN_OUT`` neurons, seeded random weights,
quantized with the :class:`~bp_hw.fixed.quantizer.QuantConfig` given (formats, rounding, overflow,
table). :data:`CASES` are the configurations the proofs cover: two format pairs, every deterministic
rounding mode, every overflow mode.

Mutant ``other_rounding``: the hardware built from the same layer with a different rounding mode
than the spec's table (the reference still the original).
"""

from __future__ import annotations

import itertools

import numpy as np
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib.memory import Memory

from ..fixed import QuantConfig, quantize_model
from ..fixed.packing import pack_word
from ..fixed.qmodel import QModel
from ..fixed.rounding import OVERFLOW_MODES, ROUNDING_MODES
from ..hdl.network import Network
from ..modelfile import FloatModel
from ..plan.hardware import make_plan
from .streams import Counter, keeps_contract

__all__ = ["FAN_IN", "FAN_OUT", "CASES", "MUTANTS", "neuron_model", "NeuronSpec"]

FAN_IN, FAN_OUT = 4, 2
#: (input format, weight/activation format) pairs: a signed and an unsigned 3-bit input.
FORMATS = (("Q1.2", "Q3.5"), ("UQ1.2", "Q2.6"))
#: Every (formats, rounding, overflow) the neuron proofs cover.
CASES = tuple((inp, fmt, rounding, overflow) for (inp, fmt), rounding, overflow in
              itertools.product(FORMATS, [r for r in ROUNDING_MODES if r != "stochastic"], OVERFLOW_MODES))
MUTANTS = {"other_rounding": "neuron"}
#: Samples the wrapper keeps in flight (more is asserted not to happen).
IN_FLIGHT = 8


def neuron_model(input_fmt: str, fmt: str, rounding: str, overflow: str, seed: int = 3) -> QModel:
    """A ``FAN_IN``-``FAN_OUT`` sigmoid layer quantized as the case says (6-bit table)."""
    rng = np.random.default_rng(seed)
    model = FloatModel(layers=[FAN_IN, FAN_OUT], weights=[rng.normal(0, 2.0, (FAN_OUT, FAN_IN))],
                       biases=[rng.normal(0, 1.0, FAN_OUT)], activations=["sigmoid"], loss="mse",
                       norm_mean=np.zeros(FAN_IN), norm_std=np.ones(FAN_IN), n_classes=FAN_OUT)
    q, _ = quantize_model(model, QuantConfig(format=fmt, input_format=input_fmt, rounding=rounding,
                                             overflow=overflow, lut_bits=6, lut_range=4.0))
    return q


class NeuronSpec(Elaboratable):
    """The formal wrapper: the layer's network against the spec's table. Free inputs (:attr:`ports`):
    ``i_valid``, ``i_payload``, ``o_ready``; unless ``stalls``, inputs come back to back and outputs
    are always taken (the stream proofs cover the stalls; this one the values)."""

    def __init__(self, q: QModel, parallel="1", mutant: str | None = None, stalls: bool = False):
        if mutant is not None and mutant not in MUTANTS:
            raise ValueError(f"unknown mutant {mutant!r}; choose from {sorted(MUTANTS)}")
        self.q = q
        self.stalls = stalls
        in_w = q.input_fmt.width
        if in_w * q.sizes[0] > 12:
            raise ValueError("the neuron proof tabulates every input vector: at most 12 input bits")
        # every input vector, in payload order (entry = the payload's bits)
        lo, hi = q.input_fmt.min_int, q.input_fmt.max_int
        grid = np.array(list(itertools.product(range(lo, hi + 1), repeat=q.sizes[0])))
        self.table = [0] * (1 << (in_w * q.sizes[0]))
        for row, out in zip(grid, q.predict(grid)):
            self.table[pack_word(row, in_w)] = pack_word(out, q.output_fmt.width)
        built = q
        if mutant == "other_rounding":
            d = q.to_dict()
            modes = [r for r in ROUNDING_MODES if r not in ("stochastic", q.layers[0].rounding)]
            for layer in d["layers"]:
                layer["rounding"] = modes[0]
            built = QModel.from_dict(d)
        self.plan = make_plan(built, parallel)
        self.net = Network(self.plan, primitives=False)
        self.i_valid, self.o_ready = Signal(), Signal()
        self.i_payload = Signal(in_w * q.sizes[0])
        self.ports = (self.i_valid, self.i_payload, self.o_ready)

    def elaborate(self, platform):
        m = Module()
        m.submodules.net = net = self.net
        m.d.comb += Assume(~ResetSignal(), "reset stays low: registers start at their initial values")
        m.d.comb += [net.i.valid.eq(self.i_valid), net.i.payload.eq(self.i_payload), net.o.ready.eq(self.o_ready)]
        keeps_contract(m, net.i.valid, net.i.ready, net.i.payload.as_value(), "i", assume=True)
        if not self.stalls:
            m.d.comb += [Assume(self.i_valid, "inputs back to back"), Assume(self.o_ready, "outputs always taken")]
        in_fire, out_fire = net.i.valid & net.i.ready, net.o.valid & net.o.ready
        limit = 255
        n_in = Counter(m, in_fire, limit, "vectors_in").value
        n_out = Counter(m, out_fire, limit, "vectors_out").value
        # the inputs in flight, in order; the output's is the oldest
        slot_bits = (IN_FLIGHT - 1).bit_length()     # IN_FLIGHT is a power of two: the counts wrap onto it
        m.submodules.inputs = inputs = Memory(shape=len(self.i_payload), depth=IN_FLIGHT, init=[])
        wp, rp = inputs.write_port(), inputs.read_port(domain="comb")
        m.d.comb += [wp.en.eq(in_fire), wp.addr.eq(n_in[:slot_bits]), wp.data.eq(self.i_payload), rp.addr.eq(n_out[:slot_bits])]
        m.submodules.spec = spec = Memory(shape=len(net.o.payload.as_value()), depth=len(self.table), init=self.table)
        sp = spec.read_port(domain="comb")
        m.d.comb += sp.addr.eq(rp.data)
        m.d.comb += [
            Assert(n_in - n_out <= IN_FLIGHT - 1, "fewer samples in flight than the wrapper keeps"),
            Assert(~out_fire | (net.o.payload.as_value() == sp.data), "the output equals the spec's for its input"),
            Cover(out_fire & (n_out == 1), "a second output checked"),
            Cover(out_fire & ~net.i.ready & net.i.valid, "an output checked while the input waits"),
        ]
        return m
