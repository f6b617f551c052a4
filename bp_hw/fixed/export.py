"""Memory images of a quantized model for ``$readmemh``, plus an index of them.

Each image is a text file with one word per line, in hex, ``ceil(width / 4)``
digits, two's complement in the tensor's format width (so ``-1`` in a 12-bit
format is ``fff``). No address markers: line ``n`` is address ``n``.

Files written into the output folder, for every layer ``l``:

* ``layer{l}_weights.hex`` — ``fan_out * fan_in`` words, **row-major by
  neuron**: address ``i * fan_in + j`` holds ``W[i, j]``, the weight from input
  ``j`` to neuron ``i``. A neuron's weights are therefore contiguous, in input
  order.
* ``layer{l}_biases.hex`` — ``fan_out`` words, address ``i`` holds ``b[i]``
  (in the bias format, not yet shifted by ``bias_shift``).
* ``layer{l}_lut.hex`` (sigmoid/tanh layers) — what the hardware's ROM holds
  (:attr:`~bp_hw.fixed.lut.ActivationLUT.rom_table`): for direct lookup the
  stored table (all ``N`` entries, or only the upper half when the table is
  symmetric, mirrored by ``rom_address``); with interpolation the effective
  table of ``N + 1`` entries (the ROM reads two neighbours at a time).

``memories.json`` lists every file with its layer, kind, format, width,
depth, signedness and order, so that a generator or a user's own RTL can size
its memories without reading the quantized model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BpHwError
from ..fileio import write_json, write_text
from .qformat import QFormat
from .qmodel import QModel

INDEX_NAME = "memories.json"
INDEX_FORMAT = "bp-hw-memories"
INDEX_VERSION = 1

WEIGHT_ORDER = "row-major by neuron: address i*fan_in + j holds W[i, j] (input j -> neuron i)"
BIAS_ORDER = "address i holds b[i] of neuron i (bias format, before bias_shift)"
LUT_ORDER = ("address k holds ROM word k: the stored table (direct lookup; symmetric: the upper half) "
             "or the effective table (interpolation)")


def hex_image(values, fmt: QFormat) -> str:
    """``$readmemh`` text for integers of ``fmt``: one two's complement word per line."""
    values = np.asarray(values, dtype=np.int64).ravel()
    if values.size and (values.min() < fmt.min_int or values.max() > fmt.max_int):
        raise BpHwError(f"values outside {fmt} cannot be written as {fmt.width}-bit words")
    return "".join(h + "\n" for h in fmt.to_hex(values))


def read_hex_image(path, fmt: QFormat) -> np.ndarray:
    """Read an image written by :func:`hex_image` back into integers of ``fmt``."""
    words = [line.strip() for line in Path(path).read_text().splitlines()]
    words = [w for w in words if w and not w.startswith("//")]
    return fmt.from_bits(np.array([int(w, 16) for w in words], dtype=np.int64))


def memory_entries(qmodel: QModel) -> list[dict]:
    """What :func:`export_hex` writes: one dict per image with its values (``values``) and metadata."""
    entries = []
    for l, layer in enumerate(qmodel.layers):
        entries.append({"layer": l, "kind": "weights", "file": f"layer{l}_weights.hex",
                        "format": layer.weight_fmt, "values": layer.weights.reshape(-1),
                        "shape": [layer.fan_out, layer.fan_in], "order": WEIGHT_ORDER})
        entries.append({"layer": l, "kind": "biases", "file": f"layer{l}_biases.hex",
                        "format": layer.bias_fmt, "values": layer.biases, "shape": [layer.fan_out],
                        "order": BIAS_ORDER, "bias_shift": layer.bias_shift})
        if layer.lut is not None:
            lut = layer.lut
            entries.append({"layer": l, "kind": "lut", "file": f"layer{l}_lut.hex", "format": lut.out_fmt,
                            "values": lut.rom_table, "shape": [lut.rom_table.size], "order": LUT_ORDER,
                            "function": lut.function, "addr_bits": lut.addr_bits, "range": lut.in_range,
                            "symmetric": lut.symmetric, "interpolate": lut.interpolate,
                            "index_shift": lut.index_shift, "effective_entries": lut.entries})
    return entries


def export_hex(qmodel: QModel, out_dir) -> dict:
    """Write every memory image and ``memories.json`` into ``out_dir``; return the index."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BpHwError(f"{out_dir} exists and is not a folder")
    entries = memory_entries(qmodel)
    texts = [hex_image(e["values"], e["format"]) for e in entries]  # validate everything before writing
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for e, text in zip(entries, texts):
        write_text(out_dir / e["file"], text)
        fmt = e["format"]
        meta = {k: v for k, v in e.items() if k not in ("values", "format")}
        meta.update(format=fmt.name, width=fmt.width, signed=fmt.signed, depth=int(np.size(e["values"])),
                    digits=(fmt.width + 3) // 4)
        files.append(meta)
    index = {"format": INDEX_FORMAT, "version": INDEX_VERSION,
             "encoding": "$readmemh: one hex word per line, two's complement in the format width",
             "sizes": qmodel.sizes, "files": files}
    write_json(out_dir / INDEX_NAME, index)
    return index
