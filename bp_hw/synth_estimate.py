"""A fast resource estimate of a design on a device, from its hardware plan or its manifest.

The estimate runs in milliseconds, before yosys, so that a network that cannot
fit the chosen device is refused with one line instead of after minutes of
synthesis. DSP blocks and block RAM are counted from the datapath's shape and
the memories' placement and are close to what yosys infers; LUTs and
flip-flops come from a linear model calibrated on synthesized designs and are
good to about +-30 %.

What it reads (a :class:`~bp_hw.plan.hardware.HardwarePlan` and a
:class:`~bp_hw.plan.manifest.Manifest` state the same things):

* the input and output streams' fields: the UART wrapper's shift registers;
* per layer: ``fan_in``, ``fan_out``, the multipliers and their operand widths
  (the layer's input and weight formats), the accumulator width, the output
  width, whether the input comes from the slot RAM before it and whether the
  output slots are a RAM (the plan's ``input_source``/``output_slots``, the
  manifest's ``input``/``output_slots``); a training design's layers also have
  the delta unit's multipliers;
* the memories, by placement: ``"block"`` takes block RAM whatever its size,
  ``"logic"`` LUTs, ``"auto"`` (left to yosys, which keeps small ROMs in logic)
  LUTs up to 2 kbit and block RAM above, ``"const"`` (one word) nothing. A ROM
  counts with its live bits only: yosys drops the bit lanes that are the same
  in every word (the sign and integer bits of a sigmoid table: a 1024 x 16
  table is 1024 x 12, 3 iCE40 EBR, not 4).

The ROM contents are the plan's, so a manifest is estimated through its plan
(:func:`~bp_hw.plan.manifest.plan_from_manifest`: the quantized model it names,
its parallelism and training spec). A manifest that names no quantized model
(Verilog from elsewhere) is estimated from its ``layers`` and ``memories`` at
their full widths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import BpHwError
from .fixed import QFormat
from .plan.boards import Device, device as lookup_device
from .plan.hardware import HardwarePlan, TrainLayerPlan, dsps_per_multiplier
from .plan.manifest import Manifest, plan_from_manifest

__all__ = ["estimate_resources", "fit_problems", "fit_hint", "check_fit"]

# LUT/FF model, calibrated on synthesized designs (benchmarks/bench_synth.py): generated
# networks (4-8-3 P=1 and 4,3; 64-32-10 P=1) and a one-layer 4x3 / 64x10 P=2 network, each
# with the UART wrapper, on both devices. Within ~+-30 % of nextpnr's counts on all of them.
_WRAPPER_FFS = 180          # UART RX/TX, deframer/framer FSMs, CRC, reset and LED counters
_LAYER_FFS = 180            # sequencer, pipeline flags, rescale and activation registers per layer
# per output lane beyond its accumulators: rescale stages, activation address and output, sideband.
# Fitted to the board tops with the link on its own clock (2026-12-06, UP5K): iris P=1 1222 FFs,
# digits 64-32-10 P=1 1584, MNIST 784-32-10 4x2,1 (9 lanes) 2096; about 110 per lane were missing.
_LANE_FFS = 110
# LUTs beyond those paired with a flip-flop: the link of protocol 2 (FIFO and queue control, CRC-16
# trees, frame decoding) measured about 400 more than the first link's 200 (iris P=1 on the UP5K:
# 1766 LCs with it, 1360 with the first).
_WRAPPER_LOGIC = 600
_LAYER_LOGIC = 150
# iCE40 logic cells pair one LUT with one FF, so every FF costs a cell (a shift register bit
# has no LUT of its own); ECP5 slices pack LUTs and FFs separately.
_LUTS_PER_FF = {"ice40": 1.0, "ecp5": 0.4}
# Selecting one of fan_in registered inputs for the multipliers: a LUT4 is one 2:1 mux on
# iCE40; ECP5's PFU muxes halve that.
_MUX_LUTS_PER_INPUT_BIT = {"ice40": 0.5, "ecp5": 0.25}
# yosys leaves small ROMs in LUTs (observed: <= 512 bits always, 16 kbit never) unless they
# carry ram_style="block"; an "auto" memory of at most this many bits is counted as logic.
_LOGIC_ROM_BITS = 2048
# a product in LUTs (ProductStage in_logic): one adder cell per partial-product bit, about
_LUTS_PER_LOGIC_PRODUCT_BIT = 1.2
_BITS_PER_LUT = 8           # a ROM in LUT4s: 16 bits per LUT plus the output multiplexers
# Training layers (TrainLayer), fitted to the training board tops of iris 4-8-3 Q4.12 at P=1 and 8,3
# (2026-12-06, link on its own clock): ECP5-85F 3745 / 8404 FFs and 3646 / 7444 LUT4, iCE40UP5K P=1
# 3619 FFs, 2988 LUT4, 5464 LCs (more than the device: nextpnr cannot place it); the sample's
# three copies (the crossing's two registers, the network's) are counted apart from the layers.
_TRAIN_LAYER_FFS = 255       # delta unit, error and update sequencing, LFSR
_TRAIN_LANE_FFS = 420        # per lane: ERR and UPD pipelines (rounding parts, step, clamp, write request)
_TRAIN_LANE_LOGIC = {"ice40": 350, "ecp5": 260}   # per lane: adders and multiplexers of ERR and UPD


@dataclass(frozen=True)
class _Layer:
    """One layer in the estimate's terms."""

    fan_in: int
    fan_out: int
    multipliers: int
    in_bits: int
    weight_bits: int
    acc_bits: int
    out_bits: int
    in_ram: bool           # reads its input from the slot RAM or the input buffer (no input multiplexer)
    out_ram: bool          # its output slots are a RAM (no output vector registers)
    logic_products: int = 0           # of the multipliers, those built as adder trees in LUTs (no DSP blocks)
    lanes_out: int = 1                # output lanes (each with its accumulator, rescale, activation)
    dsp_cell: bool = False            # products in instantiated DSP cells (their operand registers inside)
    train_lanes: int = 0              # a training layer's MAC lanes (0: inference)
    delta_bits: int = 0               # ... and its delta format's width


def _plan_layers(plan: HardwarePlan) -> list[_Layer]:
    training = plan.training
    layers = []
    for x in plan.layers:
        L = x.layer
        layers.append(_Layer(
            L.fan_in, L.fan_out, training.layers[x.index].multipliers if training else x.multipliers,
            L.in_fmt.width, L.weight_fmt.width, L.acc_width, L.out_fmt.width,
            in_ram=training is None and x.input_source != "payload",
            out_ram=training is None and x.output_slots == "bram",
            logic_products=_logic_products(training.layers[x.index]) if training else
            x.multipliers * x.logic_multipliers,
            lanes_out=x.fold.lanes_out,
            dsp_cell=(training.layers[x.index].dsp_cell if training else x.dsp_cell) is not None,
            train_lanes=training.layers[x.index].fold.lanes if training else 0,
            delta_bits=training.layers[x.index].formats.delta_fmt.width if training else 0))
    return layers


def _logic_products(x: TrainLayerPlan) -> int:
    """A training layer's multipliers the plan builds in logic: its lanes' and its delta unit's."""
    return x.fold.lanes * x.logic_multipliers + len(x.delta_products) * x.delta_logic


def _manifest_layers(manifest: Manifest) -> list[_Layer]:
    training = manifest.training
    layers = []
    for x in manifest.layers:
        layers.append(_Layer(
            x.fan_in, x.fan_out, int(training.layers[x.index]["multipliers"]) if training else x.multipliers,
            QFormat.parse(x.in_format).width, QFormat.parse(x.weight_format).width, x.acc_width,
            QFormat.parse(x.out_format).width, in_ram=x.input in ("bram", "buffer"), out_ram=x.output_slots == "bram",
            lanes_out=x.lanes_out, dsp_cell=x.dsp_cell is not None,
            train_lanes=(int(training.layers[x.index]["lanes_out"]) * int(training.layers[x.index]["lanes_in"])
                         if training else 0),
            delta_bits=QFormat.parse(training.layers[x.index]["delta_format"]).width if training else 0))
    return layers


def _live_width(width: int, memories) -> int:
    """Bits of a ``width``-bit word that vary within one of ``memories`` (lists of words), the most of them."""
    mask = (1 << width) - 1
    live = 0
    for words in memories:
        ones = zeros = 0
        for word in words:
            ones |= word
            zeros |= ~word & mask
        live = max(live, bin(ones & zeros).count("1"))
    return live


def _plan_word_widths(plan: HardwarePlan) -> dict[str, int]:
    """Per memory of ``plan``: the word bits synthesis keeps (all of a RAM's, a ROM's live bits)."""
    layers = plan.training.layers if plan.training is not None else plan.layers
    widths = {}
    for mem in plan.memories:
        x = layers[mem.layer]
        lanes = range(mem.count)
        if mem.writable:
            widths[mem.name] = mem.width
        elif mem.kind == "weights":
            widths[mem.name] = _live_width(mem.width, [x.weight_words(k) for k in lanes])
        elif mem.kind == "biases":
            widths[mem.name] = _live_width(mem.width, [x.bias_words(k) for k in lanes])
        elif mem.kind == "lut":
            widths[mem.name] = _live_width(mem.width, [x.lut.rom_words])
        else:
            raise ValueError(f"memory {mem.name}: no contents known for a read-only {mem.kind!r} memory")
    return widths


def _in_block_ram(placement: str, bits: int) -> bool:
    return placement == "block" or (placement == "auto" and bits > _LOGIC_ROM_BITS)


def estimate_resources(design: HardwarePlan | Manifest, dev: str | Device) -> dict:
    """Estimated use of ``dev`` by ``design`` (its plan or its manifest) plus the board's UART wrapper
    (its shift registers, and its receive FIFO and load buffer in block RAM).

    Returns ``{"device", "luts", "ffs", "dsps", "brams", "memory_bits", "memories": [...],
    "capacity": {...}}``; ``memories`` lists each memory with its placement and the
    block RAMs (``blocks``) or LUTs (``luts``) it takes with its ``live_width`` bits per word.
    """
    dev = lookup_device(dev) if isinstance(dev, str) else dev
    if isinstance(design, Manifest) and design.qmodel is not None:
        design = plan_from_manifest(design)
    if isinstance(design, HardwarePlan):
        layers, word_widths = _plan_layers(design), _plan_word_widths(design)
    else:
        layers, word_widths = _manifest_layers(design), {m.name: m.width for m in design.memories}
    # One input beat and the output vector travel in whole bytes through the wrapper's shift registers.
    byte_bits = lambda port: sum(8 * f.elements * ((f.width + 7) // 8) for f in port.fields)  # noqa: E731
    wrapper_bits = byte_bits(design.inp) + byte_bits(design.out)
    # The board top's clock-domain crossings (boards/crossing.py): a beat (or load word, or a training
    # access request) and its tag down, held and then in front of the network, and an output vector up;
    # the training network keeps its own copy of the sample (x, t) while it trains on it.
    bits = lambda port: sum(f.elements * f.width for f in port.fields)  # noqa: E731
    wrapper_bits += 2 * (bits(design.inp) + 1) + bits(design.out)
    if design.training is not None:
        wrapper_bits += bits(design.inp)

    dsps = 0
    ffs = _WRAPPER_FFS + wrapper_bits
    extra_luts = 0.0
    for layer in layers:
        a, b = layer.in_bits, layer.weight_bits
        extra_luts += layer.logic_products * a * b * _LUTS_PER_LOGIC_PRODUCT_BIT
        dsps += (layer.multipliers - layer.logic_products) * dsps_per_multiplier(a, b, dev)
        # The layer reads its input in place (through a multiplexer, unless it comes from the
        # previous layer's slot RAM) and keeps two output vectors (unless its slots are in RAM);
        # per lane the accumulator (+ operand registers outside the DSP on ECP5).
        lane_ffs = layer.acc_bits + (2 * (a + b) if dev.family == "ecp5" and not layer.dsp_cell else 0)
        ffs += _LAYER_FFS + (0 if layer.out_ram else 2 * layer.fan_out * layer.out_bits) \
            + layer.multipliers * lane_ffs + layer.lanes_out * _LANE_FFS
        extra_luts += _LAYER_LOGIC + (0 if layer.in_ram else _MUX_LUTS_PER_INPUT_BIT[dev.family] * layer.fan_in * a)
        if layer.train_lanes:
            # the training layer: outputs and deltas kept per neuron, the delta unit, ERR and UPD stages
            ffs += _TRAIN_LAYER_FFS + layer.train_lanes * _TRAIN_LANE_FFS \
                + layer.fan_out * (layer.out_bits + layer.delta_bits)
            extra_luts += layer.train_lanes * _TRAIN_LANE_LOGIC[dev.family]

    memories = []
    for mem in design.memories:
        width = word_widths[mem.name]
        bits = mem.depth * width
        entry = {"name": mem.name, "count": mem.count, "depth": mem.depth, "width": mem.width,
                 "live_width": width, "placement": mem.placement, "blocks": 0, "sprams": 0, "luts": 0}
        if mem.placement == "spram":
            entry["sprams"] = mem.count * dev.spram_blocks(mem.depth, mem.width)
        elif _in_block_ram(mem.placement, bits):
            entry["blocks"] = mem.count * dev.bram_blocks(mem.depth, width)
        elif mem.placement != "const":
            entry["luts"] = int(round(mem.count * bits / _BITS_PER_LUT))
            extra_luts += mem.count * bits / _BITS_PER_LUT
        memories.append(entry)
    memories += _link_memories(design, dev)
    luts = _LUTS_PER_FF[dev.family] * ffs + _WRAPPER_LOGIC + extra_luts
    return {
        "device": dev.name, "luts": int(round(luts)), "ffs": int(ffs), "dsps": int(dsps),
        "brams": int(sum(m["blocks"] for m in memories)),
        "sprams": int(sum(m["sprams"] for m in memories)),
        "memory_bits": int(sum(m.bits for m in design.memories)),
        "memories": memories,
        "capacity": {"luts": dev.luts, "ffs": dev.ffs, "dsps": dev.dsps, "brams": dev.brams, "sprams": dev.sprams},
    }


def _link_memories(design, dev: Device) -> list[dict]:
    """The board link's block RAMs: the receive FIFO, the answer queue and, for a network with a load port,
    the load buffer."""
    from .boards.frame import LOAD_BLOCK, TAG_BITS, TAG_DEPTH, rx_fifo_bytes
    request = 4 + design.inp.beats * sum(f.elements * ((f.width + 7) // 8) for f in design.inp.fields)
    # yosys maps the answer queue (a buffered FIFO's memory) to a block RAM as well
    out = [("link_rx_fifo", rx_fifo_bytes(request), 8), ("link_tags", TAG_DEPTH - 1, TAG_BITS)]
    if design.training is not None:   # the training link buffers parameter writes and reads
        width = design.training.access_width if isinstance(design, HardwarePlan) else \
            design.training.access["data_width"]
        out += [("link_write_buffer", LOAD_BLOCK, width), ("link_read_buffer", LOAD_BLOCK, width)]
    load = design.load
    if load is not None:
        width = load.data_width if isinstance(design, HardwarePlan) else load.port.field("data").width
        out.append(("link_load_buffer", LOAD_BLOCK, width))
    return [{"name": name, "count": 1, "depth": depth, "width": width, "live_width": width, "placement": "block",
             "blocks": dev.bram_blocks(depth, width), "sprams": 0, "luts": 0} for name, depth, width in out]


_WHAT = {"dsps": "DSP blocks", "brams": "block RAMs", "sprams": "SPRAM blocks", "luts": "LUTs",
         "ffs": "flip-flops"}


def fit_problems(estimate: dict, lut_margin: float = 1.0) -> list[str]:
    """Resources the estimate exceeds, most constrained first, as phrases for an error message.

    LUTs and FFs are an estimate: they only count as exceeded beyond
    ``lut_margin`` x capacity.
    """
    problems = []
    cap = estimate["capacity"]
    for key in ("dsps", "brams", "sprams", "luts", "ffs"):
        need, have = estimate[key], cap[key]
        limit = have * (lut_margin if key in ("luts", "ffs") else 1.0)
        if need > limit:
            approx = "about " if key in ("luts", "ffs") else ""
            problems.append((need / max(have, 1), f"{_WHAT[key]}: needs {approx}{need}, {estimate['device']} "
                                                  f"has {have} ({need - have} short)"))
    return [text for _, text in sorted(problems, reverse=True)]


def fit_hint(estimate: dict, design: HardwarePlan | None = None) -> str:
    """What would make a design fit, for the resource that is most short, never a knob already at
    its limit (one lane is as few as P goes; formats of 8 bits are as narrow as the hint goes; a
    device without SPRAM cannot take it)."""
    problems = fit_problems(estimate)
    if not problems:
        return ""
    worst = problems[0]
    at_one_lane = design is not None and all(x.fold.lanes == 1 for x in design.layers)
    narrow = design is not None and all(
        f.width <= 8 for x in design.layers
        for f in (x.layer.in_fmt, x.layer.weight_fmt, x.layer.bias_fmt, x.layer.out_fmt))
    has_spram = estimate["capacity"].get("sprams", 0) > 0
    uses_spram = estimate.get("sprams", 0) > 0
    hints = []
    if "DSP" in worst or "LUT" in worst or "flip-flops" in worst:
        if not at_one_lane:
            hints.append("fewer MAC lanes (P)")
        if not narrow:
            hints.append("narrower formats (e.g. --bits 8)")
    if "block RAM" in worst:
        if has_spram and not uses_spram:
            hints.append("weights in SPRAM (--weights spram or auto, with --board)")
        hints.append("narrower weights (8 bits pack two to a 16-bit word)")
        hints.append("a smaller LUT (--lut-bits 8)")
    if "SPRAM" in worst:
        hints.append("fewer output lanes (P_out) or narrower weights")
    hints.append("a bigger device (ulx3s-85f)" if estimate["device"] != "LFE5U-85F" else "smaller layers")
    return "; " + ", ".join(hints)


def check_fit(estimate: dict, lut_margin: float = 1.0, design: HardwarePlan | None = None) -> None:
    """Raise a one-line :class:`BpHwError` if the estimate does not fit its device, naming the
    resources short and what would make it fit."""
    problems = fit_problems(estimate, lut_margin)
    if problems:
        raise BpHwError(f"network does not fit {estimate['device']}: " + "; ".join(problems)
                        + fit_hint(estimate, design))
