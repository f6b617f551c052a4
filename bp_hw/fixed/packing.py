"""How a layer's weights and biases are laid out in the memories of ``P`` lanes.

The hardware visits a layer in the order of its :class:`~bp_hw.fixed.folding.Folding`:
lane ``p`` (of ``P_out``) serves neurons ``g * P_out + p``; its weight memory
holds word ``g * chunks + c`` = the ``P_in`` weights of that neuron for inputs
``c * P_in .. c * P_in + P_in - 1``, the lowest input in the low bits, each
element in two's complement in the weight format's width. Its bias memory holds
word ``g`` = the bias of neuron ``g * P_out + p``. The inference ROMs and the
training RAMs share this layout; the training access port, the memory images
and the tests read it from here.

The training access port addresses the parameters flat, layer by layer: every
weight row-major (``W[i, j]`` at ``i * fan_in + j``), then every bias
(:func:`flat_params`, :func:`unflat_params`, :func:`load_params`).
"""

from __future__ import annotations

import numpy as np

from .folding import Folding
from .qmodel import QLayer, QModel

__all__ = ["pack_word", "unpack_word", "lane_weight_words", "lane_bias_words", "flat_params", "unflat_params",
           "load_params"]


def pack_word(values, width: int) -> int:
    """Integers ``values`` as one word: element ``k`` in bits ``[k * width, (k + 1) * width)``."""
    mask = (1 << width) - 1
    word = 0
    for k, v in enumerate(values):
        word |= (int(v) & mask) << (k * width)
    return word


def unpack_word(word: int, width: int, count: int, signed: bool = True) -> list[int]:
    """The ``count`` elements of a word written by :func:`pack_word`."""
    mask = (1 << width) - 1
    out = []
    for k in range(count):
        v = (int(word) >> (k * width)) & mask
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def lane_weight_words(layer: QLayer, fold: Folding, lane: int) -> list[int]:
    """Weight memory contents of output lane ``lane``: ``groups * chunks`` words of ``P_in`` weights."""
    width = layer.weight_fmt.width
    k_in = fold.lanes_in
    return [pack_word(layer.weights[g * fold.lanes_out + lane, c * k_in:(c + 1) * k_in], width)
            for g in range(fold.groups) for c in range(fold.chunks)]


def lane_bias_words(layer: QLayer, fold: Folding, lane: int) -> list[int]:
    """Bias memory contents of output lane ``lane``: ``groups`` words (bias format, before bias_shift)."""
    width = layer.bias_fmt.width
    return [pack_word([layer.biases[g * fold.lanes_out + lane]], width) for g in range(fold.groups)]


def flat_params(qmodel: QModel) -> np.ndarray:
    """Every weight (row-major) then every bias, layer by layer: the access port's address order."""
    return np.concatenate([np.concatenate([L.weights.reshape(-1), L.biases]) for L in qmodel.layers])


def unflat_params(qmodel: QModel, flat) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` per layer of ``qmodel``'s shapes from a flat vector in address order."""
    out, pos = [], 0
    flat = np.asarray(flat, dtype=np.int64)
    for L in qmodel.layers:
        W = flat[pos:pos + L.macs].reshape(L.fan_out, L.fan_in)
        pos += L.macs
        out.append((W, flat[pos:pos + L.fan_out]))
        pos += L.fan_out
    return out


def load_params(qmodel: QModel, flat) -> QModel:
    """A copy of ``qmodel`` holding the parameters ``flat`` (address order)."""
    q = QModel.from_dict(qmodel.to_dict())
    for L, (W, b) in zip(q.layers, unflat_params(qmodel, flat)):
        L.weights, L.biases = W.copy(), b.copy()
    return q
