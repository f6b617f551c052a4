"""Toy DUTs that follow the generator's port contract, for proving the harness.

These stand in for the real network while it does not exist, and stay useful
as fast self-tests of the co-simulation machinery (tests, benchmarks, the
Makefile flow). Each computes, per input vector x, ``y[j] = sum_k C[j][k] * x[k]``
wrapped to the output width; :func:`toy_expected` is its numpy model.

Faults (``fault=``) corrupt a toy on purpose so that tests can show the checker
fails: ``"coeff"`` (C[0][0] off by one), ``"drop"`` (the pipeline ignores
back-pressure, losing samples under output stalls) and ``"dup"`` (an output
that was stalled is sent twice).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from amaranth import Const, Module, Signal, signed
from amaranth.back import verilog
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from bp_hw.cosim.manifest import write_manifest
from bp_hw.fileio import write_text

FAULTS = (None, "coeff", "drop", "dup")


def _hw_coeffs(coeffs: np.ndarray, fault: str | None) -> list[list[int]]:
    c = np.array(coeffs, dtype=np.int64)
    if fault == "coeff":
        c[0, 0] += 1
    return c.tolist()


def _stream_ports(n_in: int, w_in: int, n_out: int, w_out: int) -> dict:
    return {"i": In(stream.Signature(data.ArrayLayout(signed(w_in), n_in))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(w_out), n_out)))}


class PipelineToy(wiring.Component):
    """Linear map through a stall-all pipeline: one vector per cycle.

    Parameters: ``coeffs`` (n_out x n_in ints), ``w_in``/``w_out`` element
    widths, ``latency`` (register stages >= 1), ``fault``, ``tap`` (expose
    stage 0 as a debug tap).
    Ports: ``i`` input stream (n_in x signed(w_in)), ``o`` output stream
    (n_out x signed(w_out)); with ``tap``, ``t_stage0`` (payload and valid,
    valid once per sample as it leaves stage 0), the way the generator exposes
    per-layer results. Latency ``latency`` cycles, interval 1; every stage
    holds while the output is valid and not taken.
    """

    def __init__(self, coeffs, *, w_in: int = 16, w_out: int = 16, latency: int = 3,
                 fault: str | None = None, tap: bool = False):
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}")
        if latency < 1:
            raise ValueError("latency must be >= 1")
        self.coeffs = np.asarray(coeffs, dtype=np.int64)
        self.n_out, self.n_in = self.coeffs.shape
        self.w_in, self.w_out, self.latency, self.fault = w_in, w_out, latency, fault
        ports = _stream_ports(self.n_in, w_in, self.n_out, w_out)
        layout = data.ArrayLayout(signed(w_out), self.n_out)
        self.taps = ["t_stage0"] if tap else []
        if tap:
            # A monitor, not a stream: payload and valid only (no ready to back-pressure).
            ports["t_stage0"] = Out(wiring.Signature({"payload": Out(layout), "valid": Out(1)}))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        c = _hw_coeffs(self.coeffs, self.fault)
        layout = data.ArrayLayout(signed(self.w_out), self.n_out)
        valid = [Signal(name=f"valid{s}") for s in range(self.latency)]
        stage = [Signal(layout, name=f"stage{s}") for s in range(self.latency)]
        was_stalled = Signal()

        advance = Signal()
        if self.fault == "drop":
            m.d.comb += advance.eq(1)
        elif self.fault == "dup":
            m.d.comb += advance.eq(~valid[-1] | (self.o.ready & ~was_stalled))
            m.d.sync += was_stalled.eq(valid[-1] & ~self.o.ready)
        else:
            m.d.comb += advance.eq(~valid[-1] | self.o.ready)
        m.d.comb += [
            self.i.ready.eq(advance),
            self.o.valid.eq(valid[-1]),
            self.o.payload.eq(stage[-1]),
        ]
        if self.taps:
            m.d.comb += [self.t_stage0.valid.eq(valid[0] & advance), self.t_stage0.payload.eq(stage[0])]
        with m.If(advance):
            m.d.sync += valid[0].eq(self.i.valid)
            for j in range(self.n_out):
                acc = sum(self.i.payload[k] * Const(c[j][k], signed(33)) for k in range(self.n_in))
                m.d.sync += stage[0][j].eq(acc)
            for s in range(1, self.latency):
                m.d.sync += [valid[s].eq(valid[s - 1]), stage[s].eq(stage[s - 1])]
        return m


class SerialToy(wiring.Component):
    """Linear map computed one input element per cycle, results queued in a FIFO.

    Accepts a vector only when idle, spends ``n_in`` cycles multiplying and
    accumulating (all outputs in parallel), then waits for room in an output
    FIFO of ``fifo_depth`` entries. Interval ``n_in + 2`` cycles when the sink
    keeps up; the FIFO fills and the input stalls when it does not, so this toy
    exercises occupancy and back-pressure like a folded (P = 1) layer engine.
    """

    def __init__(self, coeffs, *, w_in: int = 16, w_out: int = 16, fifo_depth: int = 2,
                 fault: str | None = None):
        if fault not in (None, "coeff"):
            raise ValueError("SerialToy supports fault=None or 'coeff'")
        self.coeffs = np.asarray(coeffs, dtype=np.int64)
        self.n_out, self.n_in = self.coeffs.shape
        self.w_in, self.w_out, self.fifo_depth, self.fault = w_in, w_out, fifo_depth, fault
        self.taps: list[str] = []
        super().__init__(_stream_ports(self.n_in, w_in, self.n_out, w_out))

    def elaborate(self, platform):
        m = Module()
        c = _hw_coeffs(self.coeffs, self.fault)
        out_layout = data.ArrayLayout(signed(self.w_out), self.n_out)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=out_layout.size, depth=self.fifo_depth)

        x = Signal(data.ArrayLayout(signed(self.w_in), self.n_in))
        k = Signal(range(self.n_in + 1))
        acc = Signal(out_layout)
        # A small ROM per output row, indexed by the element counter.
        x_k = Signal(signed(self.w_in))
        m.d.comb += x_k.eq(x[k])
        coeff_k = [Signal(signed(33), name=f"coeff_k{j}") for j in range(self.n_out)]
        for j in range(self.n_out):
            with m.Switch(k):
                for kk in range(self.n_in):
                    with m.Case(kk):
                        m.d.comb += coeff_k[j].eq(c[j][kk])

        m.d.comb += [
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o.ready),
            fifo.w_data.eq(acc),
        ]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [x.eq(self.i.payload), k.eq(0), acc.eq(0)]
                    m.next = "MAC"
            with m.State("MAC"):
                for j in range(self.n_out):
                    m.d.sync += acc[j].eq(acc[j] + x_k * coeff_k[j])
                m.d.sync += k.eq(k + 1)
                with m.If(k == self.n_in - 1):
                    m.next = "PUSH"
            with m.State("PUSH"):
                m.d.comb += fifo.w_en.eq(1)
                with m.If(fifo.w_rdy):
                    m.next = "IDLE"
        return m


def toy_expected(coeffs, inputs: np.ndarray, w_out: int) -> np.ndarray:
    """numpy model of the toys: ``inputs @ coeffs.T`` wrapped to signed ``w_out`` bits."""
    y = np.asarray(inputs, dtype=np.int64) @ np.asarray(coeffs, dtype=np.int64).T
    mask = (1 << w_out) - 1
    y = y & mask
    return np.where(y >= (1 << (w_out - 1)), y - (1 << w_out), y)


def emit_toy(dut: PipelineToy | SerialToy, build_dir: str | Path, name: str = "toy", *,
             latency: int | None = None, interval: int | None = None,
             extra: dict | None = None) -> Path:
    """Write ``<build_dir>/<name>.v`` and a manifest for *dut*; return the build folder."""
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(dut, name=name)
    path = build_dir / f"{name}.v"
    if not path.is_file() or path.read_text() != text:
        write_text(path, text)
    manifest = {
        "name": name, "verilog": f"{name}.v", "toplevel": name, "clock": "clk", "reset": "rst",
        "ports": {
            "in": {"payload": "i__payload", "valid": "i__valid", "ready": "i__ready",
                   "elements": dut.n_in, "width": dut.w_in, "signed": True},
            "out": {"payload": "o__payload", "valid": "o__valid", "ready": "o__ready",
                    "elements": dut.n_out, "width": dut.w_out, "signed": True},
        },
        "taps": [{"name": t, "payload": f"{t}__payload", "valid": f"{t}__valid",
                  "elements": dut.n_out, "width": dut.w_out, "signed": True}
                 for t in getattr(dut, "taps", [])],
        "latency_cycles": latency if latency is not None else getattr(dut, "latency", None),
        "interval_cycles": interval,
        **(extra or {}),
    }
    write_manifest(build_dir, manifest)
    return build_dir


def random_coeffs(n_out: int, n_in: int, seed: int = 0, magnitude: int = 100) -> np.ndarray:
    """Distinct small integer coefficients for a toy."""
    rng = np.random.default_rng(seed)
    return rng.integers(-magnitude, magnitude + 1, size=(n_out, n_in), dtype=np.int64)


def random_inputs(n: int, n_in: int, width: int, seed: int = 0) -> np.ndarray:
    """Random signed ``width``-bit input vectors, full range."""
    rng = np.random.default_rng(seed)
    return rng.integers(-(1 << (width - 1)), 1 << (width - 1), size=(n, n_in), dtype=np.int64)


__all__: Sequence[str] = ("PipelineToy", "SerialToy", "toy_expected", "emit_toy",
                          "random_coeffs", "random_inputs", "FAULTS")
