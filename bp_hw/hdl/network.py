"""The network: layer engines chained by valid/ready streams, several samples in flight."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import BpHwError
from ..fixed.folding import Folding
from ..fixed.qmodel import QModel
from .arith import shape_of
from .layer import LayerEngine


def parse_parallel(spec, n_layers: int) -> list[int]:
    """``1``, ``"4"`` or ``"8,3"`` -> one P per layer (a single value applies to every layer)."""
    if isinstance(spec, int):
        values = [spec]
    elif isinstance(spec, (list, tuple)):
        values = [int(v) for v in spec]
    else:
        try:
            values = [int(v) for v in str(spec).split(",") if v.strip()]
        except ValueError:
            raise BpHwError(f"--parallel takes integers separated by commas, got {spec!r}") from None
    if len(values) == 1:
        values = values * n_layers
    if len(values) != n_layers:
        raise BpHwError(f"--parallel lists {len(values)} values but the network has {n_layers} layers")
    return values


class Network(wiring.Component):
    """The quantized MLP as pipelined hardware.

    Layer ``l`` is a :class:`~bp_hw.hdl.layer.LayerEngine` with ``parallel[l]``
    lanes; each layer's output slots are the next layer's input buffer, so
    different samples occupy different layers at once. Where the producer's
    ``P_out`` equals the consumer's ``P_in`` the slots are a block RAM read one
    word (neuron group) per cycle (:attr:`mem_links`); elsewhere they are
    registers read through a multiplexer.

    Ports
    -----
    i : In(stream.Signature(ArrayLayout(input shape, n_in)))
        Input vectors (``QModel.input_fmt``, element ``k`` in bits ``[k W, (k+1) W)``).
    o : Out(stream.Signature(ArrayLayout(output shape, n_out)))
        Output vectors (``QModel.output_fmt``), in input order; nothing is lost
        or duplicated under back-pressure on either side.
    tap<l> : Out(Signature(payload: ArrayLayout(..., fan_out_l), valid: 1)), with ``taps=True``
        A copy of layer ``l``'s output vector, ``valid`` for one cycle per sample
        (when it is handed on, or, for slots in block RAM, from monitor registers that
        exist only with ``taps=True`` and do not touch the datapath): co-simulation uses it to name the first
        layer and neuron that differ from the integer model.

    Latency: :attr:`latency` cycles from the edge that transfers an input to
    the edge that transfers its output (the sum of the layer latencies), when nothing stalls. Steady-state initiation interval:
    :attr:`interval` = the slowest layer's ``MACs / P`` cycles.
    """

    def __init__(self, qmodel: QModel, parallel=1, taps: bool = False):
        self.qmodel = qmodel
        self.parallel = parse_parallel(parallel, len(qmodel.layers))
        folds = [Folding.of(layer.fan_in, layer.fan_out, p, index)
                 for index, (layer, p) in enumerate(zip(qmodel.layers, self.parallel))]
        # Between two layers whose word shapes agree (the producer's P_out is the consumer's P_in,
        # e.g. every P = 1 boundary) the output slots live in block RAM instead of registers.
        self.mem_links = [up.lanes_out == down.lanes_in for up, down in zip(folds, folds[1:])]
        self.engines = []
        for index, (layer, p) in enumerate(zip(qmodel.layers, self.parallel)):
            mem_in = index > 0 and self.mem_links[index - 1]
            mem_out = index < len(folds) - 1 and self.mem_links[index]
            self.engines.append(LayerEngine(layer, p, index, in_groups=folds[index - 1].groups if mem_in else None,
                                            out_mem=mem_out, tap=taps and mem_out))
        self.taps = taps
        ports = {
            "i": In(stream.Signature(data.ArrayLayout(shape_of(qmodel.input_fmt), qmodel.sizes[0]))),
            "o": Out(stream.Signature(data.ArrayLayout(shape_of(qmodel.output_fmt), qmodel.sizes[-1]))),
        }
        if taps:
            for l, layer in enumerate(qmodel.layers):
                ports[f"tap{l}"] = Out(wiring.Signature({
                    "payload": Out(data.ArrayLayout(shape_of(layer.out_fmt), layer.fan_out)),
                    "valid": Out(1)}))
        super().__init__(ports)

    @property
    def latency(self) -> int:
        """Input transfer to output transfer.

        A later layer starts issuing the cycle after the slot before it fills, so
        each layer but the last adds its pipeline less the hand-over cycle, and
        each later layer adds its issue cycles.
        """
        return (sum(e.latency - 1 for e in self.engines) + 1
                + sum(e.interval for e in self.engines[1:]))

    @property
    def standalone_latency(self) -> int:
        """Cycles from presenting an input to an idle network to its output transfer: the first
        layer's issue cycles (its input transfer comes with the last of them) plus :attr:`latency`."""
        return self.latency + self.engines[0].interval

    @property
    def interval(self) -> int:
        return max(e.interval for e in self.engines)

    @property
    def macs(self) -> int:
        """Multipliers instantiated (sum of lanes times inputs per lane)."""
        return sum(e.fold.lanes for e in self.engines)

    def elaborate(self, platform):
        m = Module()
        for l, engine in enumerate(self.engines):
            m.submodules[f"layer{l}"] = engine
        wiring.connect(m, wiring.flipped(self.i), self.engines[0].i)
        for up, down, mem in zip(self.engines, self.engines[1:], self.mem_links):
            if mem:
                wiring.connect(m, up.om, down.im)
            else:
                wiring.connect(m, up.o, down.i)
        wiring.connect(m, self.engines[-1].o, wiring.flipped(self.o))
        if self.taps:
            for l, engine in enumerate(self.engines):
                tap = getattr(self, f"tap{l}")
                if engine.out_mem:
                    m.d.comb += [tap.payload.eq(engine.mon.payload), tap.valid.eq(engine.mon.valid)]
                else:
                    m.d.comb += [tap.payload.eq(engine.o.payload), tap.valid.eq(engine.o.valid & engine.o.ready)]
        return m
