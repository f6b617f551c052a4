"""On-chip training: the network that infers and learns one sample at a time, bit-exact with the spec.

The spec is :class:`bp_hw.fixed.trainer.FixedTrainer` (its module doc lists
every integer step); :class:`TrainNetwork` schedules those steps on one
:class:`~bp_hw.hdl.train_layer.TrainLayer` per layer and exposes the weights
through an access port.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fixed.qmodel import QModel, signed_width
from ..fixed.trainer import FixedTrainer, TrainSpec, target_format
from .arith import shape_of
from .network import parse_parallel
from .train_layer import TrainLayer


def train_spec_of(spec) -> TrainSpec:
    """A :class:`TrainSpec` from a TrainSpec, ``None`` (the defaults) or a ``spec_dict()``-style dict."""
    if spec is None:
        return TrainSpec()
    if isinstance(spec, TrainSpec):
        return spec
    d = dict(spec)
    for derived in ("eta_int", "eta_frac", "layers"):
        d.pop(derived, None)
    return TrainSpec.from_dict(d)


def access_signature(depth: int, width: int) -> wiring.Signature:
    """The weight access port as seen from the host: ``addr``, ``wdata``, ``we`` out, ``rdata`` in."""
    return wiring.Signature({"addr": Out(range(max(depth, 2))), "wdata": Out(signed(width)), "we": Out(1),
                             "rdata": In(signed(width))})


class TrainNetwork(wiring.Component):
    """The quantized MLP with on-chip backpropagation, one sample at a time (SGD).

    Each sample runs a forward pass (FWD) layer by layer; its outputs leave
    on ``o``; a training sample then runs, from the last layer down, the
    output delta, and per layer ``l`` the error of the layer below through
    the old weights (ERR, ``l > 0``) and the weight/bias update (UPD), with
    the delta of layer ``l - 1`` computed as soon as ERR(``l``) ends (UPD(``l``)
    overlaps it). Sample ``n + 1`` is accepted only when sample ``n``'s update
    is written, so it sees the new weights: exactly
    :meth:`FixedTrainer.step` (or, with ``train = 0``, :meth:`QModel.predict`).

    Parameters
    ----------
    qmodel : QModel
        Formats, LUTs and the initial weights (the RAM contents after reset).
    spec : TrainSpec, dict (``FixedTrainer.spec_dict()``) or None
        Learning rate, delta/error formats, update rounding, LFSR seed.
    parallel : int, str or list
        Multipliers ``P`` per layer, as for :class:`~bp_hw.hdl.network.Network`;
        the same ``P`` serves the forward and both backward passes.

    Ports
    -----
    i : In(stream.Signature(StructLayout({"x": ArrayLayout(in, n_in), "t": ArrayLayout(target, n_out), "train": 1})))
        Input vector, target (:attr:`target_fmt`: the output format, widened to ``Q2.f``
        if it cannot hold 1.0; values as the trainer's ``targets_for``) and mode
        (``train`` 1: learn from this sample; 0: infer only). Accepted only while idle
        and ``o`` is free (or being taken).
    o : Out(stream.Signature(ArrayLayout(out, n_out)))
        The forward outputs of every sample (before its update), in order, held until taken.
    wacc : In(access_signature(...))
        Weight access, only while ``busy`` is low (writes while busy are ignored).
        Flat address map, layer by layer from :attr:`bases`: ``W_l[i, j]`` at
        ``bases[l] + i * fan_in + j``, then ``b_l[i]`` at ``bases[l] + fan_in * fan_out + i``.
        ``we`` writes the low bits of ``wdata`` (two's complement in the element's format).
        ``rdata`` is the element (sign-extended) at the ``addr`` presented
        :attr:`READ_LATENCY` cycles earlier; one address per cycle, reads see every earlier write.
    busy : Out(1)
        A sample is being processed (or a write is on its way): no new input, no access.

    Reset (``rst``) returns the controller and the LFSRs to their initial state; the RAMs
    keep their contents (they start from the quantized model's weights at configuration).

    Multipliers: ``P`` per layer shared by FWD, ERR and UPD (operands from the RAM
    output or registers through a 2:1 multiplexer, product registered), plus the
    delta unit's two (sigmoid/tanh) and one more when ``eta_int != 1``.

    Cycles: :attr:`infer_cycles` / :attr:`train_cycles` from one input transfer to
    the next when inputs are always there and ``o`` is always taken.
    """

    READ_LATENCY = 4

    def __init__(self, qmodel: QModel, spec=None, parallel=1):
        self.qmodel = qmodel
        self.spec = train_spec_of(spec)
        self.parallel = parse_parallel(parallel, len(qmodel.layers))
        ref = FixedTrainer(qmodel, self.spec, self.parallel)
        self.formats, self.folds = ref.formats, ref.folds
        self.eta_int, self.eta_frac = ref.eta_int, ref.eta_frac
        self.spec_dict = ref.spec_dict()
        layers = qmodel.layers
        self.access_width = max(max(signed_width(L.weight_fmt), signed_width(L.bias_fmt)) for L in layers)
        self.bases = []
        base = 0
        for L in layers:
            self.bases.append(base)
            base += L.macs + L.fan_out
        self.access_depth = base
        n = len(layers)
        self.engines = [
            TrainLayer(L, self.folds[l], l, l == n - 1, self.formats[l],
                       self.formats[l - 1].err_fmt if l > 0 else None, self.eta_int, self.eta_frac,
                       self.spec.update_rounding, self.spec.seed, self.access_width,
                       target_fmt=target_format(qmodel) if l == n - 1 else None)
            for l, L in enumerate(layers)]
        for eng in self.engines:      # built for their cycle counts too; elaborated with the network
            eng._MustUse__silence = True
        self.target_fmt = target_format(qmodel)
        payload = data.StructLayout({
            "x": data.ArrayLayout(shape_of(qmodel.input_fmt), qmodel.sizes[0]),
            "t": data.ArrayLayout(shape_of(self.target_fmt), qmodel.sizes[-1]),
            "train": 1,
        })
        super().__init__({
            "i": In(stream.Signature(payload)),
            "o": Out(stream.Signature(data.ArrayLayout(shape_of(qmodel.output_fmt), qmodel.sizes[-1]))),
            "wacc": In(access_signature(self.access_depth, self.access_width)),
            "busy": Out(1),
        })

    # -- analytic cycle counts ------------------------------------------------------------
    @property
    def infer_cycles(self) -> int:
        """Cycles per inference sample: accept, the forward passes, the hand-over to ``o``, idle again."""
        return 2 + sum(e.fwd_cycles for e in self.engines)

    @property
    def train_cycles(self) -> int:
        """Cycles per training sample (the critical path through the deltas, ERRs and the last UPD)."""
        e = self.engines
        t = 1 + sum(x.fwd_cycles for x in e)          # fwd_done of the last layer, after the accept cycle
        ends = []
        for l in range(len(e) - 1, -1, -1):
            t += e[l].delta_cycles                    # bwd_start(l)
            issue = e[l].fold.cycles if l > 0 else 0  # ERR's issue precedes UPD's
            ends.append(t + issue + e[l].upd_cycles)
            if l > 0:
                t += e[l].err_cycles                  # err_done(l) = delta_start(l - 1)
        return max(ends) + 1

    @property
    def multipliers(self) -> int:
        return sum(x.multipliers for x in self.engines)

    def address_map(self) -> list[dict]:
        """The access port's flat address map (for the manifest and the host)."""
        out = []
        for l, L in enumerate(self.qmodel.layers):
            out.append({
                "layer": l, "weights_base": self.bases[l], "weights_shape": [L.fan_out, L.fan_in],
                "weight_format": L.weight_fmt.name, "biases_base": self.bases[l] + L.macs, "biases": L.fan_out,
                "bias_format": L.bias_fmt.name,
            })
        return out

    def elaborate(self, platform):
        m = Module()
        e = self.engines
        n = len(e)
        for l, eng in enumerate(e):
            m.submodules[f"layer{l}"] = eng

        x = Signal.like(self.i.payload.x)
        t = Signal.like(self.i.payload.t)
        train = Signal()
        go = Signal()
        fwd_pend = Signal()
        upd_pend = Signal(n)
        o_valid = Signal()
        o_data = Signal.like(self.o.payload)
        we1, we2 = Signal(), Signal()
        idle = ~go & ~fwd_pend & (upd_pend == 0)
        m.d.comb += [self.busy.eq(~idle | we1 | we2), self.o.valid.eq(o_valid), self.o.payload.eq(o_data)]
        # a write being presented or on its way keeps the next sample out (it would land mid-pass)
        m.d.comb += self.i.ready.eq(idle & ~self.wacc.we & ~we1 & ~we2 & (~o_valid | self.o.ready))
        accept = self.i.valid & self.i.ready
        m.d.sync += go.eq(accept)
        with m.If(accept):
            m.d.sync += [x.eq(self.i.payload.x), t.eq(self.i.payload.t), train.eq(self.i.payload.train),
                         fwd_pend.eq(1), upd_pend.eq(self.i.payload.train.replicate(n))]

        # forward chain
        m.d.comb += e[0].fwd_start.eq(go)
        m.d.comb += e[0].a.eq(x)
        for l in range(1, n):
            m.d.comb += [e[l].fwd_start.eq(e[l - 1].fwd_done), e[l].a.eq(e[l - 1].y)]
        with m.If(self.o.ready & o_valid):
            m.d.sync += o_valid.eq(0)
        with m.If(e[-1].fwd_done):
            m.d.sync += [o_data.eq(e[-1].y), o_valid.eq(1), fwd_pend.eq(0)]

        # backward chain
        m.d.comb += [e[-1].t.eq(t), e[-1].delta_start.eq(e[-1].fwd_done & train)]
        for l in range(n):
            m.d.comb += e[l].bwd_start.eq(e[l].delta_done)
            with m.If(e[l].upd_done):
                m.d.sync += upd_pend[l].eq(0)
            if l > 0:
                m.d.comb += [e[l - 1].e_in.eq(e[l].e_out), e[l - 1].delta_start.eq(e[l].err_done)]

        # weight access: s1 = layer decode (registered), s2 = element decode in the layer, s3 = RAM data
        acc = self.wacc
        hits = []
        for l, eng in enumerate(e):
            base, size = self.bases[l], eng.size
            hit = Signal(name=f"acc_hit{l}")
            off = Signal(range(size), name=f"acc_off{l}")
            inside = acc.addr < base + size
            if base:
                inside &= acc.addr >= base
            m.d.sync += [hit.eq(inside), off.eq(acc.addr - base)]
            m.d.comb += [eng.acc_hit.eq(hit), eng.acc_off.eq(off), eng.acc_we.eq(we1)]
            hits.append(hit)
        wdata1 = Signal.like(acc.wdata)
        m.d.sync += [we1.eq(acc.we & idle), wdata1.eq(acc.wdata), we2.eq(we1)]
        for eng in e:
            m.d.comb += eng.acc_wdata.eq(wdata1)
        hit2 = Signal(n)
        hit3 = Signal(n)
        m.d.sync += [hit2.eq(Cat(*hits)), hit3.eq(hit2)]
        rdata = Signal.like(acc.rdata)
        for l, eng in enumerate(e):
            with m.If(hit3[l]):
                m.d.sync += rdata.eq(eng.acc_rdata)
        m.d.comb += acc.rdata.eq(rdata)
        return m


def train_manifest(net: TrainNetwork) -> dict:
    """The ``training`` section of a training build's manifest: interface, address map, cycles, formats."""
    q = net.qmodel
    layout = net.i.payload.shape()
    fields = {}
    for name, field in layout:
        if name == "train":
            fields[name] = {"offset": field.offset, "width": 1, "meaning": "1: train on this sample, 0: infer only"}
        else:
            fmt = q.input_fmt if name == "x" else net.target_fmt
            elements = q.sizes[0] if name == "x" else q.sizes[-1]
            fields[name] = {"offset": field.offset, "elements": elements, "width": fmt.width,
                            "signed": fmt.signed, "format": fmt.name}
    fields["t"]["meaning"] = ("target: 1.0 for the true class, 0 (-1.0 for tanh) elsewhere, with the output's "
                              "fraction bits (format widened if the output format cannot hold 1.0)")
    layers = []
    for l, (L, eng) in enumerate(zip(q.layers, net.engines)):
        f = eng.fold
        layers.append({
            "index": l, "parallel": f.lanes, "lanes_out": f.lanes_out, "lanes_in": f.lanes_in,
            "groups": f.groups, "chunks": f.chunks,
            "error_format": net.formats[l].err_fmt.name, "delta_format": net.formats[l].delta_fmt.name,
            "update_shift_weights": eng.k_w, "update_shift_biases": eng.k_b,
            "fwd_cycles": eng.fwd_cycles, "err_cycles": eng.err_cycles if l > 0 else None,
            "upd_cycles": eng.upd_cycles, "delta_cycles": eng.delta_cycles, "multipliers": eng.multipliers,
            "weight_ram_bits": L.macs * L.weight_fmt.width, "bias_ram_bits": L.fan_out * L.bias_fmt.width,
        })
    return {
        "ports": {
            "in": {"payload": "i__payload", "valid": "i__valid", "ready": "i__ready",
                   "payload_width": layout.size, "fields": fields},
            "out": {"payload": "o__payload", "valid": "o__valid", "ready": "o__ready",
                    "elements": q.sizes[-1], "width": q.output_fmt.width, "signed": q.output_fmt.signed,
                    "format": q.output_fmt.name,
                    "meaning": "forward outputs of every sample (before its update), in input order"},
            "access": {"addr": "wacc__addr", "wdata": "wacc__wdata", "we": "wacc__we", "rdata": "wacc__rdata",
                       "addr_width": len(net.wacc.addr), "data_width": net.access_width,
                       "depth": net.access_depth, "read_latency": net.READ_LATENCY,
                       "usage": "only while busy is low; rdata (sign-extended) is the element at the addr "
                                "presented read_latency cycles earlier; we writes the low bits of wdata"},
            "busy": "busy",
        },
        "address_map": net.address_map(),
        "spec": net.spec_dict,
        "eta": net.eta_int / 2 ** net.eta_frac,
        "cycles_per_infer_sample": net.infer_cycles,
        "cycles_per_train_sample": net.train_cycles,
        "multipliers": net.multipliers,
        "layers": layers,
    }
