"""A toy network for the synthesis and board flow: one dense layer, no activation.

It has the port shapes of the generated network (DESIGN.md, "the network
contract") and does real work — signed W x W multiplies accumulated serially
from a weight ROM — so synthesis has DSP blocks and block RAM to find. It
stands in for :mod:`bp_hw.hdl` until the generator exists; it is not a model of
the real arithmetic (no bias, no activation, one layer).

Arithmetic (the toy's own spec, implemented by :func:`toy_expected`)::

    acc_j = sum_i w[j, i] * x[i]                      (exact, 2*W + guard bits)
    y_j   = saturate(acc_j >> shift, signed(W_out))   (arithmetic shift = floor)
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from bp_hw.fileio import write_json, write_text

__all__ = ["ToyConfig", "ToyNetwork", "toy_expected", "write_toy_build"]


@dataclass(frozen=True)
class ToyConfig:
    """Shape and contents of the toy layer."""
    n_in: int = 4
    n_out: int = 3
    width: int = 16          # input, weight and output width (two's complement)
    frac_bits: int = 12      # inputs and weights are Q(width-frac).frac
    lanes: int = 1           # parallel MAC lanes; lane k computes outputs k, k+P, ...
    seed: int = 0
    name: str = "toy"

    @property
    def groups(self) -> int:
        return math.ceil(self.n_out / self.lanes)

    @property
    def acc_width(self) -> int:
        return 2 * self.width + max(1, math.ceil(math.log2(self.n_in + 1)))

    def weights(self) -> np.ndarray:
        """Deterministic weights, shape (n_out, n_in), roughly uniform in [-1, 1)."""
        rng = np.random.default_rng(self.seed)
        one = 1 << self.frac_bits
        lo, hi = -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
        return np.clip(rng.integers(-one, one, size=(self.n_out, self.n_in)), lo, hi).astype(np.int64)

    # The manifest's timing figures, matched to ToyNetwork.elaborate.
    @property
    def latency_cycles(self) -> int:
        # input transfer -> o.valid: groups * n_in issue cycles + 4 pipeline stages
        return self.groups * self.n_in + 4

    @property
    def interval_cycles(self) -> int:
        # o.valid -> output transfer (1 cycle) -> i.ready (1 cycle) with both streams always ready
        return self.latency_cycles + 2


def toy_expected(config: ToyConfig, x: np.ndarray) -> np.ndarray:
    """Outputs of the toy layer for integer inputs ``x`` of shape (batch, n_in) or (n_in,)."""
    x = np.asarray(x, dtype=np.int64)
    acc = x @ config.weights().T
    y = acc >> config.frac_bits
    lo, hi = -(1 << (config.width - 1)), (1 << (config.width - 1)) - 1
    return np.clip(y, lo, hi)


class ToyNetwork(wiring.Component):
    """One dense layer y = sat((W x) >> frac_bits), computed by ``lanes`` serial MACs.

    Parameters
    ----------
    config : ToyConfig

    Ports
    -----
    i : In(stream.Signature(ArrayLayout(signed(width), n_in)))
        One input vector; accepted only while the layer is idle.
    o : Out(stream.Signature(ArrayLayout(signed(width), n_out)))
        The output vector; held until ``o.ready``.

    Latency
    -------
    ``config.latency_cycles`` = ``ceil(n_out / lanes) * n_in + 4`` cycles from
    the transfer on ``i`` to ``o.valid``; the next input is accepted the cycle
    after the transfer on ``o``. Each lane is: weight ROM (registered read) ->
    operand registers -> registered product -> accumulator, the shape yosys maps
    onto one DSP block.
    """

    def __init__(self, config: ToyConfig = ToyConfig()):
        self.config = config
        c = config
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(c.width), c.n_in))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(c.width), c.n_out))),
        })

    def elaborate(self, platform):
        c = self.config
        m = Module()
        W = c.width
        weights = c.weights()

        x = Signal(data.ArrayLayout(signed(W), c.n_in))
        busy = Signal()       # issuing multiplies
        active = Signal()     # from input transfer until output transfer
        i_cnt = Signal(range(max(c.n_in, 2)))
        g_cnt = Signal(range(max(c.groups, 2)))

        m.d.comb += self.i.ready.eq(~active)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [x.eq(self.i.payload), busy.eq(1), active.eq(1), i_cnt.eq(0), g_cnt.eq(0)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [self.o.valid.eq(0), active.eq(0)]

        # Stage 0: issue (i_cnt, g_cnt) while busy.
        last_i = i_cnt == c.n_in - 1
        last_g = g_cnt == c.groups - 1
        with m.If(busy):
            m.d.sync += i_cnt.eq(Mux(last_i, 0, i_cnt + 1))
            with m.If(last_i):
                m.d.sync += g_cnt.eq(g_cnt + 1)
                with m.If(last_g):
                    m.d.sync += busy.eq(0)

        # Control flags travel down the pipeline beside the data.
        v1, first1, last1, lastg1 = Signal(), Signal(), Signal(), Signal()
        v2, first2, last2, lastg2 = Signal(), Signal(), Signal(), Signal()
        v3, last3, lastg3 = Signal(), Signal(), Signal()
        g1, g2, g3 = (Signal.like(g_cnt, name=f"g{k}") for k in (1, 2, 3))
        m.d.sync += [
            v1.eq(busy), first1.eq(i_cnt == 0), last1.eq(last_i), lastg1.eq(last_g), g1.eq(g_cnt),
            v2.eq(v1), first2.eq(first1), last2.eq(last1), lastg2.eq(lastg1), g2.eq(g1),
            v3.eq(v2), last3.eq(last2), lastg3.eq(lastg2), g3.eq(g2),
        ]

        x1 = Signal(signed(W))
        m.d.sync += x1.eq(x[i_cnt])
        lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1

        results = []
        for lane in range(c.lanes):
            # Lane k's ROM holds rows k, k+P, ... (zero rows pad the last group).
            rows = [weights[j] if j < c.n_out else np.zeros(c.n_in, np.int64)
                    for j in range(lane, c.groups * c.lanes, c.lanes)]
            init = [int(v) for row in rows for v in row]
            rom = Memory(shape=signed(W), depth=len(init), init=init)
            m.submodules[f"rom{lane}"] = rom
            rd = rom.read_port()
            m.d.comb += rd.addr.eq(g_cnt * c.n_in + i_cnt)

            # Stage 1 -> 2: registered operands; 2 -> 3: registered product and accumulate.
            a2 = Signal(signed(W), name=f"a2_{lane}")
            b2 = Signal(signed(W), name=f"b2_{lane}")
            m.d.sync += [a2.eq(x1), b2.eq(rd.data)]
            prod = Signal(signed(2 * W), name=f"prod{lane}")
            m.d.sync += prod.eq(a2 * b2)
            acc = Signal(signed(c.acc_width), name=f"acc{lane}")
            # first2 marks the product of input 0 arriving at stage 3 next cycle.
            first3 = Signal(name=f"first3_{lane}")
            m.d.sync += first3.eq(first2)
            with m.If(v3):
                m.d.sync += acc.eq(Mux(first3, prod, acc + prod))
            results.append(acc)

        # Stage 4: rescale, saturate and store the finished group.
        done = Signal()
        m.d.sync += done.eq(v3 & last3)
        gdone = Signal.like(g3)
        lastg4 = Signal()
        m.d.sync += [gdone.eq(g3), lastg4.eq(lastg3)]
        y = Signal(data.ArrayLayout(signed(W), c.groups * c.lanes))
        with m.If(done):
            for lane, acc in enumerate(results):
                shifted = acc >> c.frac_bits
                sat = Mux(shifted > hi, Const(hi, signed(W)), Mux(shifted < lo, Const(lo, signed(W)), shifted))
                with m.Switch(gdone):
                    for g in range(c.groups):
                        with m.Case(g):
                            m.d.sync += y[g * c.lanes + lane].eq(sat)
            with m.If(lastg4):
                m.d.sync += self.o.valid.eq(1)
        m.d.comb += self.o.payload.eq(y.as_value()[:c.n_out * W])
        return m


def write_toy_build(build_dir: str | Path, config: ToyConfig = ToyConfig()) -> Path:
    """Write a build folder for the toy (manifest.json, qmodel.json, Verilog) as the generator would."""
    from amaranth.back import verilog

    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    net = ToyNetwork(config)
    write_text(build_dir / "toy.v", verilog.convert(net, name="toy"))
    write_json(build_dir / "qmodel.json", {"toy": asdict(config), "weights": config.weights().tolist()})
    c = config
    manifest = {
        "name": c.name,
        "generator": "toy",
        "verilog": "toy.v",
        "toplevel": "toy",
        "ports": {
            "in": {"elements": c.n_in, "width": c.width, "signed": True, "frac_bits": c.frac_bits},
            "out": {"elements": c.n_out, "width": c.width, "signed": True, "frac_bits": c.frac_bits},
        },
        "latency_cycles": c.latency_cycles,
        "interval_cycles": c.interval_cycles,
        "macs": c.n_in * c.n_out,
        "qmodel": "qmodel.json",
        "layers": [{
            "fan_in": c.n_in, "fan_out": c.n_out, "lanes": c.lanes,
            "input_bits": c.width, "weight_bits": c.width, "acc_bits": c.acc_width,
            "lut_entries": 0, "lut_bits": 0, "cycles": c.groups * c.n_in,
        }],
    }
    write_json(build_dir / "manifest.json", manifest)
    return build_dir


def toy_config_from_qmodel(path: str | Path) -> ToyConfig:
    return ToyConfig(**json.loads(Path(path).read_text())["toy"])
