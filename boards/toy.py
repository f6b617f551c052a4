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
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
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
    block_rom: bool = True   # ask yosys to put the weight ROMs in block RAM however small
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
        # input transfer -> o.valid: groups * n_in issue cycles + 5 pipeline stages
        return self.groups * self.n_in + 5

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
    ``config.latency_cycles`` = ``ceil(n_out / lanes) * n_in + 5`` cycles from
    the transfer on ``i`` to ``o.valid``; the next input is accepted the cycle
    after the transfer on ``o``. Each lane is: weight ROM (registered read) ->
    operand registers -> registered product (these three map onto one DSP
    block) -> accumulator in fabric, split in two halves with a registered carry.
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
        v3, first3, last3, lastg3 = Signal(), Signal(), Signal(), Signal()
        v4, first4 = Signal(), Signal()
        g1, g2, g3 = (Signal.like(g_cnt, name=f"g{k}") for k in (1, 2, 3))
        m.d.sync += [
            v1.eq(busy), first1.eq(i_cnt == 0), last1.eq(last_i), lastg1.eq(last_g), g1.eq(g_cnt),
            v2.eq(v1), first2.eq(first1), last2.eq(last1), lastg2.eq(lastg1), g2.eq(g1),
            v3.eq(v2), first3.eq(first2), last3.eq(last2), lastg3.eq(lastg2), g3.eq(g2),
            v4.eq(v3), first4.eq(first3),
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
            # ram_style: without it yosys maps small ROMs onto LUTs, not block RAM.
            rom = Memory(shape=signed(W), depth=len(init), init=init,
                         attrs={"ram_style": "block"} if c.block_rom else None)
            m.submodules[f"rom{lane}"] = rom
            rd = rom.read_port()
            m.d.comb += rd.addr.eq(g_cnt * c.n_in + i_cnt)

            # Stage 1 -> 2: registered operands; 2 -> 3: registered product and accumulate.
            a2 = Signal(signed(W), name=f"a2_{lane}")
            b2 = Signal(signed(W), name=f"b2_{lane}")
            m.d.sync += [a2.eq(x1), b2.eq(rd.data)]
            prod = Signal(signed(2 * W), name=f"prod{lane}")
            m.d.sync += prod.eq(a2 * b2)
            # The accumulator is split in two halves with a registered carry between
            # them: a 35-bit carry chain in iCE40 fabric alone caps Fmax near 40 MHz.
            # The low half takes the product in stage 3, the high half one cycle later.
            lo_w = c.acc_width // 2
            hi_w = c.acc_width - lo_w
            acc_lo = Signal(lo_w, name=f"acc_lo{lane}")
            acc_hi = Signal(signed(hi_w), name=f"acc_hi{lane}")
            carry = Signal(name=f"carry{lane}")
            prod_hi = Signal(signed(hi_w), name=f"prod_hi{lane}")
            lo_sum = Signal(lo_w + 1, name=f"lo_sum{lane}")
            m.d.comb += lo_sum.eq(Mux(first3, 0, acc_lo) + prod.as_unsigned()[:lo_w])
            with m.If(v3):
                m.d.sync += [acc_lo.eq(lo_sum[:lo_w]), carry.eq(lo_sum[lo_w])]
            m.d.sync += prod_hi.eq(prod >> lo_w)
            with m.If(v4):
                m.d.sync += acc_hi.eq(Mux(first4, 0, acc_hi) + prod_hi + carry)
            # The low half, delayed to line up with the high half (it is already
            # taking the next group's first product when the high half finishes).
            acc_lo_d = Signal(lo_w, name=f"acc_lo_d{lane}")
            m.d.sync += acc_lo_d.eq(acc_lo)
            acc = Signal(signed(c.acc_width), name=f"acc{lane}")
            m.d.comb += acc.eq(Cat(acc_lo_d, acc_hi))
            results.append(acc)

        # Stage 4: rescale, saturate and store the finished group.
        done = Signal()
        last4, lastg4, g4 = Signal(), Signal(), Signal.like(g3)
        m.d.sync += [last4.eq(last3), lastg4.eq(lastg3), g4.eq(g3)]
        m.d.sync += done.eq(v4 & last4)
        gdone = Signal.like(g3)
        lastg5 = Signal()
        m.d.sync += [gdone.eq(g4), lastg5.eq(lastg4)]
        y = Signal(data.ArrayLayout(signed(W), c.groups * c.lanes))
        with m.If(done):
            for lane, acc in enumerate(results):
                # In range iff the bits above the output's sign bit all equal the sign:
                # an and/or-reduce, faster on iCE40 than two wide compares on carry chains.
                top = acc[c.frac_bits + W - 1:]
                in_range = top.all() | ~top.any()
                sat = Mux(in_range, acc[c.frac_bits:c.frac_bits + W],
                          Mux(acc[-1], Const(lo, signed(W)), Const(hi, signed(W))))
                with m.Switch(gdone):
                    for g in range(c.groups):
                        with m.Case(g):
                            m.d.sync += y[g * c.lanes + lane].eq(sat)
            with m.If(lastg5):
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
        "macs": c.lanes,                        # multipliers, as the generator's manifest counts them
        "mac_ops_per_inference": c.n_in * c.n_out,
        "qmodel": "qmodel.json",
        "layers": [{
            "fan_in": c.n_in, "fan_out": c.n_out, "lanes": c.lanes,
            "input_bits": c.width, "weight_bits": c.width, "acc_bits": c.acc_width,
            "lut_entries": 0, "lut_bits": 0, "cycles": c.groups * c.n_in,
            "rom_style": "block" if c.block_rom else None,
        }],
    }
    write_json(build_dir / "manifest.json", manifest)
    return build_dir


def toy_config_from_qmodel(path: str | Path) -> ToyConfig:
    return ToyConfig(**json.loads(Path(path).read_text())["toy"])
