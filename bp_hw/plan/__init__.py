"""The hardware plan, the board registry and ``manifest.json``: what to build, with no gates.

Free of Amaranth: it reads :mod:`bp_hw.fixed` and the board registry, and
everything below it (the HDL generator, co-simulation, synthesis, the host,
explore) reads it.
"""

from .boards import BOARDS, DEVICES, Board, Device, board, device
from .hardware import HardwarePlan, LayerPlan, MemoryPlan, TrainPlan, make_plan, parse_parallel
from .manifest import Manifest, load_qmodel, manifest_from_plan, read_manifest, write_manifest

__all__ = ["BOARDS", "DEVICES", "Board", "Device", "board", "device", "HardwarePlan", "LayerPlan", "MemoryPlan",
           "TrainPlan", "make_plan", "parse_parallel", "Manifest", "load_qmodel", "manifest_from_plan",
           "read_manifest", "write_manifest"]
