"""Device capacities and a fast resource estimate from a network's manifest.

The estimate runs in milliseconds, before yosys, so that a network that cannot
fit the chosen device is refused with one line instead of after minutes of
synthesis. DSP blocks and block RAM are counted from the datapath shape and
are close to what yosys infers; LUTs and flip-flops come from a linear model
calibrated on synthesized designs and are good to about +-30 %.

Manifest fields used (``manifest.json`` of a build folder)
------------------------------------------------------------
``ports.in`` / ``ports.out``: ``elements``, ``width``
    The UART wrapper's shift registers and the network's I/O registers.
``layers``: a list, one entry per layer, each with
    ``fan_in``, ``fan_out``
        Layer shape.
    ``lanes``
        P, the number of parallel MAC lanes (multipliers) of the layer.
    ``input_bits``, ``weight_bits``
        Multiplier operand widths (activations x weights).
    ``acc_bits``
        Accumulator width.
    ``out_bits`` (optional, default ``input_bits``)
        Width of the layer's output elements.
    ``bias_bits`` (optional, default 0 = no bias memory)
    ``lut_entries``, ``lut_bits`` (optional, default 0)
        The activation LUT ROM of the layer (0 for ReLU / no activation).
    ``weight_memories`` (optional, default ``lanes``)
        How many memories the weights are split into (one per lane by default),
        each ``ceil(fan_in * fan_out / weight_memories)`` deep.
``memories`` (optional)
    If the generator lists its memories exactly — ``[{"name", "depth",
    "width", "count", "style"}]`` — they replace the per-layer memory
    derivation. Memories of at most 2 kbit count as LUTs (yosys maps small
    ROMs to logic) unless ``"style": "block"`` (the memory has
    ``ram_style="block"``); a layer's ``rom_style: "block"`` does the same for
    its derived memories.

The generator's own manifest spelling (``multipliers``, ``lanes_out``,
``lanes_in``, ``groups``, ``chunks``, ``in_format``/``weight_format``/
``bias_format``/``out_format``, ``acc_width``, ``lut.rom_words``,
``lut.roms``) is read as well; see :func:`_normalise`.

Without ``layers`` the estimate falls back to one layer from ``ports`` with
``lanes`` = 1 and 16-bit operands, which is only good for a sanity check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import BpHwError

__all__ = ["Device", "DEVICES", "device", "estimate_resources", "fit_problems", "check_fit"]


@dataclass(frozen=True)
class Device:
    """What one FPGA offers to the flow."""
    name: str
    family: str
    luts: int                  # LUT4s (iCE40: logic cells = LUT4 + FF)
    ffs: int
    dsps: int                  # SB_MAC16 / MULT18X18D
    dsp_a_bits: int            # widest signed operand one DSP block multiplies
    dsp_b_bits: int
    brams: int                 # EBR blocks (SB_RAM40_4K / DP16KD)
    bram_shapes: tuple = ()    # (depth, width) configurations of one block
    sprams: int = 0            # iCE40UP SB_SPRAM256KA (16K x 16)
    notes: str = ""

    @property
    def bram_bits(self) -> int:
        return max(d * w for d, w in self.bram_shapes)


DEVICES = {
    "iCE40UP5K": Device(
        "iCE40UP5K", "ice40", luts=5280, ffs=5280, dsps=8, dsp_a_bits=16, dsp_b_bits=16,
        brams=30, bram_shapes=((256, 16), (512, 8), (1024, 4), (2048, 2)), sprams=4,
        notes="5280 LCs, 8 SB_MAC16 (16x16), 30 EBR of 4 kbit, 4 SPRAM of 256 kbit"),
    "LFE5U-85F": Device(
        "LFE5U-85F", "ecp5", luts=83640, ffs=83640, dsps=156, dsp_a_bits=18, dsp_b_bits=18,
        brams=208, bram_shapes=((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
        notes="83640 LUT4s, 156 MULT18X18D, 208 DP16KD of 18 kbit"),
}

# LUT/FF model, calibrated on synthesized designs (benchmarks/bench_synth.py): the toy layer
# (4x3, 64x10 P=2) and generated networks (4-8-3 P=1 and 4,3; 64-32-10 P=1), each with the
# UART wrapper, on both devices. Within ~+-30 % of nextpnr's counts on all of them.
_WRAPPER_FFS = 180          # UART RX/TX, deframer/framer FSMs, CRC, reset and LED counters
_LAYER_FFS = 180            # sequencer, pipeline flags, rescale and activation registers per layer
_WRAPPER_LOGIC = 200        # LUTs beyond those paired with a flip-flop
_LAYER_LOGIC = 150
# iCE40 logic cells pair one LUT with one FF, so every FF costs a cell (a shift register bit
# has no LUT of its own); ECP5 slices pack LUTs and FFs separately.
_LUTS_PER_FF = {"ice40": 1.0, "ecp5": 0.4}
# Selecting one of fan_in registered inputs for the multipliers: a LUT4 is one 2:1 mux on
# iCE40; ECP5's PFU muxes halve that.
_MUX_LUTS_PER_INPUT_BIT = {"ice40": 0.5, "ecp5": 0.25}
# yosys leaves small ROMs in LUTs (observed: <= 512 bits always, 16 kbit never) unless they
# carry ram_style="block"; below this many bits a memory is counted as logic.
_LOGIC_ROM_BITS = 2048
_BITS_PER_LUT = 8           # a ROM in LUT4s: 16 bits per LUT plus the output multiplexers


def device(name: str) -> Device:
    try:
        return DEVICES[name]
    except KeyError:
        raise BpHwError(f"unknown device {name!r}; known: {', '.join(DEVICES)}") from None


def _bram_blocks(depth: int, width: int, dev: Device) -> int:
    """Blocks one depth x width memory takes (the best block configuration)."""
    if depth <= 0 or width <= 0:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in dev.bram_shapes)


def _dsps_per_multiplier(a_bits: int, b_bits: int, dev: Device) -> int:
    return math.ceil(a_bits / dev.dsp_a_bits) * math.ceil(b_bits / dev.dsp_b_bits)


def _width(fmt_name) -> int:
    from .fixed import QFormat
    return QFormat.parse(fmt_name).width


def _normalise(layer: dict) -> dict:
    """One layer in the estimate's terms, from either manifest spelling (see the module docstring).

    The generator's manifest (``bp_hw.hdl.emit``) says ``multipliers``,
    ``lanes_out``/``lanes_in``, ``groups``/``chunks``, ``*_format`` names,
    ``acc_width`` and ``lut.rom_words``/``lut.roms``; it keeps one weight ROM
    per output lane (``lanes_in`` weights per word) and one bias and LUT ROM per
    output lane.
    """
    if "in_format" in layer:
        lanes_out = int(layer.get("lanes_out", 1))
        lanes_in = int(layer.get("lanes_in", 1))
        w_bits = _width(layer["weight_format"])
        out = {
            "fan_in": int(layer["fan_in"]), "fan_out": int(layer["fan_out"]),
            "lanes": int(layer.get("multipliers", lanes_out * lanes_in)),
            "input_bits": _width(layer["in_format"]), "weight_bits": w_bits,
            "acc_bits": int(layer["acc_width"]), "out_bits": _width(layer["out_format"]),
            "memories": [
                {"name": f"layer{layer.get('index', 0)}.weights", "count": lanes_out,
                 "depth": int(layer.get("groups", 1)) * int(layer.get("chunks", 1)), "width": lanes_in * w_bits},
                {"name": f"layer{layer.get('index', 0)}.bias", "count": lanes_out,
                 "depth": int(layer.get("groups", 1)), "width": _width(layer["bias_format"])},
            ],
        }
        out["in_mem"] = layer.get("input") == "bram"
        out["out_mem"] = layer.get("output_slots") == "bram"
        if out["out_mem"]:  # the ping-pong output slots, one neuron group per word
            out["memories"].append({"name": f"layer{layer.get('index', 0)}.slots", "count": 1, "style": "block",
                                    "depth": 2 * int(layer.get("groups", 1)),
                                    "width": lanes_out * _width(layer["out_format"])})
        lut = layer.get("lut")
        if lut:
            out["memories"].append({"name": f"layer{layer.get('index', 0)}.lut", "count": int(lut.get("roms", 1)),
                                    "depth": int(lut["rom_words"]), "width": _width(layer["out_format"])})
        return out
    out = dict(layer)
    out.setdefault("lanes", 1)
    return out


def _layers(manifest: dict) -> list[dict]:
    layers = manifest.get("layers")
    if layers:
        return [_normalise(layer) for layer in layers]
    p = manifest["ports"]
    return [{"fan_in": p["in"]["elements"], "fan_out": p["out"]["elements"], "lanes": 1,
             "input_bits": p["in"]["width"], "weight_bits": 16, "acc_bits": 40}]


def _memories(manifest: dict, layers: list[dict]) -> list[dict]:
    if manifest.get("memories"):
        return [dict(m, count=m.get("count", 1)) for m in manifest["memories"]]
    mems = []
    for k, layer in enumerate(layers):
        if "memories" in layer:
            mems += [dict(m) for m in layer["memories"]]
            continue
        fan_in, fan_out = int(layer["fan_in"]), int(layer["fan_out"])
        lanes = max(1, int(layer.get("lanes", 1)))
        n_mem = max(1, int(layer.get("weight_memories", lanes)))
        mems.append({"name": f"layer{k}.weights", "depth": math.ceil(fan_in * fan_out / n_mem),
                     "width": int(layer["weight_bits"]), "count": n_mem, "style": layer.get("rom_style")})
        if layer.get("bias_bits"):
            mems.append({"name": f"layer{k}.bias", "depth": math.ceil(fan_out / lanes),
                         "width": int(layer["bias_bits"]), "count": lanes})
        if layer.get("lut_entries") and layer.get("lut_bits"):
            mems.append({"name": f"layer{k}.lut", "depth": int(layer["lut_entries"]),
                         "width": int(layer["lut_bits"]), "count": int(layer.get("lut_copies", 1))})
    return mems


def estimate_resources(manifest: dict, dev: str | Device) -> dict:
    """Estimated use of ``dev`` by the network of ``manifest`` plus the board's UART wrapper.

    Returns ``{"device", "luts", "ffs", "dsps", "brams", "memories": [...],
    "capacity": {...}}``; ``memories`` lists each memory with the blocks it takes.
    """
    dev = device(dev) if isinstance(dev, str) else dev
    layers = _layers(manifest)
    ports = manifest["ports"]
    wrapper_bits = 8 * (int(ports["in"]["elements"]) * ((int(ports["in"]["width"]) + 7) // 8)
                        + int(ports["out"]["elements"]) * ((int(ports["out"]["width"]) + 7) // 8))

    dsps = 0
    ffs = _WRAPPER_FFS + wrapper_bits
    extra_luts = 0.0
    for layer in layers:
        lanes = max(1, int(layer.get("lanes", 1)))
        a, b, acc = int(layer["input_bits"]), int(layer["weight_bits"]), int(layer["acc_bits"])
        dsps += lanes * _dsps_per_multiplier(a, b, dev)
        # The layer reads its input in place (through a multiplexer, unless it comes from the
        # previous layer's slot RAM) and keeps two output vectors (unless its slots are in RAM);
        # per lane the accumulator (+ operand registers outside the DSP on ECP5).
        in_vec = int(layer["fan_in"]) * a
        out_vec = int(layer["fan_out"]) * int(layer.get("out_bits", a))
        lane_ffs = acc + (2 * (a + b) if dev.family == "ecp5" else 0)
        ffs += _LAYER_FFS + (0 if layer.get("out_mem") else 2 * out_vec) + lanes * lane_ffs
        extra_luts += _LAYER_LOGIC + (0 if layer.get("in_mem") else _MUX_LUTS_PER_INPUT_BIT[dev.family] * in_vec)

    memories = _memories(manifest, layers)
    brams = 0
    for mem in memories:
        bits = int(mem["depth"]) * int(mem["width"])
        if bits <= _LOGIC_ROM_BITS and mem.get("style") != "block":
            mem["blocks"] = 0
            extra_luts += mem["count"] * bits / _BITS_PER_LUT
        else:
            mem["blocks"] = mem["count"] * _bram_blocks(int(mem["depth"]), int(mem["width"]), dev)
        brams += mem["blocks"]
    luts = _LUTS_PER_FF[dev.family] * ffs + _WRAPPER_LOGIC + extra_luts
    return {
        "device": dev.name, "luts": int(round(luts)), "ffs": int(ffs), "dsps": int(dsps), "brams": int(brams),
        "memory_bits": int(sum(m["depth"] * m["width"] * m["count"] for m in memories)),
        "memories": memories,
        "capacity": {"luts": dev.luts, "ffs": dev.ffs, "dsps": dev.dsps, "brams": dev.brams},
    }


_WHAT = {"dsps": "DSP blocks", "brams": "block RAMs", "luts": "LUTs", "ffs": "flip-flops"}


def fit_problems(estimate: dict, lut_margin: float = 1.0) -> list[str]:
    """Resources the estimate exceeds, most constrained first, as phrases for an error message.

    LUTs and FFs are an estimate: they only count as exceeded beyond
    ``lut_margin`` x capacity.
    """
    problems = []
    cap = estimate["capacity"]
    for key in ("dsps", "brams", "luts", "ffs"):
        need, have = estimate[key], cap[key]
        limit = have * (lut_margin if key in ("luts", "ffs") else 1.0)
        if need > limit:
            approx = "about " if key in ("luts", "ffs") else ""
            problems.append((need / max(have, 1), f"{_WHAT[key]}: needs {approx}{need}, {estimate['device']} "
                                                  f"has {have} ({need - have} short)"))
    return [text for _, text in sorted(problems, reverse=True)]


def check_fit(estimate: dict, lut_margin: float = 1.0) -> None:
    """Raise a one-line :class:`BpHwError` if the estimate does not fit its device."""
    problems = fit_problems(estimate, lut_margin)
    if problems:
        hint = "; fewer MAC lanes (P) or a bigger device" if "DSP" in problems[0] or "LUT" in problems[0] \
            else "; smaller layers, narrower weights or a bigger device"
        raise BpHwError(f"network does not fit {estimate['device']}: " + "; ".join(problems) + hint)
