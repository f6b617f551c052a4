"""One trainable layer: weight/bias RAMs, ``P`` multipliers shared by three passes, a per-neuron delta unit.

The arithmetic is :mod:`bp_hw.fixed.trainer`'s (the spec), step by step; the
component only schedules it. See :class:`TrainLayer`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..fixed.lfsr import TAPS, WIDTH as LFSR_WIDTH
from ..fixed.qformat import QFormat
from ..fixed.qmodel import signed_width
from ..plan.hardware import TrainLayerPlan, train_upd_tail
from .activation import ActivationUnit
from .arith import overflow, round_parts, round_shift, shape_of
from .mac import Accumulator, ProductStage
from .pipeline import delay
from .rescale import Rescale

__all__ = ["Pass", "TrainLayer"]



class Pass(enum.Enum, shape=2):
    """What the shared multipliers are doing (the issue stage's opcode)."""
    FWD = 0    # forward: w * a
    ERR = 1    # error of the layer below: w * delta
    UPD = 2    # update: g * a, then the biases

def as_signed(v, fmt: QFormat):
    """``v`` (a value of ``fmt``'s shape) as a signed value of the same number."""
    return v.as_signed() if fmt.signed else Cat(v, Const(0, 1)).as_signed()


class OneWord(wiring.Component):
    """A memory of one word in flip-flops, with a memory's synchronous read port and write port.

    ``read.data`` is the word as it was in the cycle before (a write in that cycle not yet
    seen, as a non-transparent read port); ``write.en`` has one bit per ``granularity`` bits.
    The addresses are there for the ports' shape and ignored. (A block RAM or LUT RAM for one
    word wastes a block and gave yosys' ECP5 LUT-RAM mapping trouble.)
    """

    def __init__(self, width: int, init: int = 0, granularity: int | None = None):
        self.width, self.init = width, init
        self.granularity = granularity or width
        super().__init__({
            "read": In(wiring.Signature({"addr": Out(1), "en": Out(1), "data": In(width)})),
            "write": In(wiring.Signature({"addr": Out(1), "data": Out(width),
                                          "en": Out(width // self.granularity)})),
        })

    def elaborate(self, platform):
        m = Module()
        word = Signal(self.width, init=self.init)
        m.d.sync += self.read.data.eq(word)
        gr = self.granularity
        for i in range(self.width // gr):
            with m.If(self.write.en[i]):
                m.d.sync += word[i * gr:(i + 1) * gr].eq(self.write.data[i * gr:(i + 1) * gr])
        return m


def ram(m, name: str, width: int, depth: int, init: list, placement: str, granularity: int | None = None):
    """``(read port, write port)`` of a RAM of ``depth`` words placed as the plan says (``block``:
    block RAM, ``logic``; ``auto``: left to synthesis), a :class:`OneWord` for one word."""
    if depth == 1:
        m.submodules[name] = word = OneWord(width, init[0] if init else 0, granularity)
        return word.read, word.write
    attrs = {"ram_style": placement} if placement in ("block", "logic") else {}
    m.submodules[name] = mem = Memory(shape=unsigned(width), depth=depth, init=init, attrs=attrs)
    return mem.read_port(domain="sync"), mem.write_port(granularity=granularity) if granularity else mem.write_port()


def lfsr_next(state):
    """The Galois LFSR of :mod:`bp_hw.fixed.lfsr`, one step."""
    return Cat(state[1:], Const(0, 1)) ^ Mux(state[0], Const(TAPS, LFSR_WIDTH), Const(0, LFSR_WIDTH))


def stochastic_shift(x, k: int, state):
    """``floor((x + u) / 2^k)`` with ``u`` from the LFSR ``state`` (taken after its step)."""
    if k <= 0:
        return x << (-k)
    u = state[:k] if k <= LFSR_WIDTH else Cat(Const(0, k - LFSR_WIDTH), state)
    return (x + u) >> k


def const_divmod(m: Module, x, d: int, n: int, name: str):
    """``(x // d, x % d)`` for ``0 <= x < n * d`` by comparisons (no divider, no multiplier)."""
    q = Signal(range(max(n, 2)), name=f"{name}_q")
    r = Signal(range(max(d, 2)), name=f"{name}_r")
    if d == 1:
        m.d.comb += [q.eq(x), r.eq(0)]
        return q, r
    if n == 1:
        m.d.comb += [q.eq(0), r.eq(x)]
        return q, r
    if d & (d - 1) == 0:
        b = d.bit_length() - 1
        m.d.comb += [q.eq(x >> b), r.eq(x[:b])]
        return q, r
    with m.If(x < d):
        m.d.comb += [q.eq(0), r.eq(x)]
    for j in range(1, n):
        cond = (x >= j * d) if j == n - 1 else ((x >= j * d) & (x < (j + 1) * d))
        with m.If(cond):
            m.d.comb += [q.eq(j), r.eq(x - j * d)]
    return q, r


class TrainLayer(wiring.Component):
    """Layer ``l`` of :class:`~bp_hw.hdl.backprop.TrainNetwork`: its RAMs and the passes that use them.

    Storage: one weight RAM per output lane ``p`` (``P_out`` of them), word
    ``g * chunks + c`` packing the ``P_in`` weights of neuron ``g * P_out + p``
    for inputs ``c * P_in ..`` (lowest input in the low bits: the inference
    ROM layout, :mod:`bp_hw.fixed.packing`), and one bias RAM per lane
    (word ``g``). Each RAM has one synchronous read port and one write port.
    Registers hold the output ``y`` (``a_l``), ``delta_l`` (and ``g = delta * eta_int``)
    and, for ``l > 0``, the error ``e_out`` (``e_{l-1}``) of the layer below.

    ``P_out x P_in`` multipliers serve three passes, one RAM word per cycle: one
    :class:`~bp_hw.hdl.mac.ProductStage` per lane (the inference MAC lane's
    operand and product registers) fed through operand multiplexers
    (``A in {w, g}``, ``B in {a, delta}``). A pass issues its first word in the
    cycle after its start pulse (the issue stage runs from registers only); the cycle counts are the plan's
    (:class:`~bp_hw.plan.hardware.TrainLayerPlan`: ``fwd_cycles`` ... ``delta_cycles``,
    tails from the last issue ``TRAIN_*_TAIL``):

    * FWD (``fwd_start``): ``g`` outer, ``c`` inner; per lane an
      :class:`~bp_hw.hdl.mac.Accumulator` sums ``(b << bias_shift) + sum w * a``
      (as the inference :class:`~bp_hw.hdl.mac.MACLane`), a
      :class:`~bp_hw.hdl.rescale.Rescale` and an :class:`ActivationUnit` -> ``y``.
      Last issue to ``fwd_done``: RAM read, product stage 2, accumulator 2,
      rescale 3, ``y`` register (9) + activation latency.
    * ERR (l > 0): ``c`` outer, ``g`` inner; per input ``j = c * P_in + k`` an
      Accumulator sums ``sum_p w * delta`` across the lanes and over the groups,
      a Rescale brings it into ``e_out[j]``. Last issue to ``err_done``: 9.
    * UPD: same order as ERR (the spec's stochastic visiting order), then the
      ``groups`` biases; ``W -= round(g * a)``, ``b -= round(g)`` from the
      products (with mini-batches, B > 1: the sum so far plus the product goes
      to the sums RAM four cycles after the read, and only the batch's last
      sample rounds and writes ``W``, ``b``), written back seven cycles after the
      read (eight with B > 1; each word once per pass: no hazard). Last issue to
      ``upd_done``: :func:`~bp_hw.plan.hardware.train_upd_tail` (RAM read,
      product stage, [sum,] rounding split, subtract, subtract with the clamp
      decisions, write request, write-back). UPD starts at ``bwd_start`` for
      layer 0, right after ERR's issue otherwise.

    ``bwd_start`` runs ERR then UPD back to back (UPD alone for layer 0);
    ``err_done`` and ``upd_done`` pulse when each finishes. The delta unit
    (``delta_start``) visits one neuron per cycle from the start pulse:
    ``e`` (``o - t`` rescaled for the last layer, else ``e_in``), the
    derivative from ``y``, ``delta = overflow(round_shift(e * d))`` and
    ``g = delta * eta_int``, pipelined with at most one carry chain or one
    multiplier per stage; done ``TRAIN_DELTA_TAIL`` = 11 cycles after its last
    neuron (12 with a multiplying ``eta_int``). Every ``*_done`` is high for one cycle, the first
    in which the results are readable.

    Stochastic update rounding: one 32-bit LFSR per multiplier ``(p, k)``,
    stepped once per rounded update (the bias updates on ``k = 0``).

    Products: on DSP blocks (2 cycles), in logic (``plan.logic_multipliers``, 3) or in the plan's
    instantiated DSP cell (``plan.dsp_cell``, 3: the block's registers and a fabric one; the delta
    unit's likewise, ``plan.delta_cell``), after ``plan.operand_latency`` operand registers; with
    ``primitives`` False a cell is built as registers and a ``*`` with the same cycles.

    Access (while no pass runs): ``acc_off`` is the layer-local flat offset
    (weights row-major ``i * fan_in + j``, then the biases) with ``acc_hit``;
    a write (``acc_we``) lands two cycles later; ``acc_rdata`` is the element
    ``4 + plan.operand_latency`` cycles after ``acc_off``, from a register (the RAM output's word,
    lane and bias selection take a cycle of their own, and on the ECP5 the word comes from the operand
    registers: after a DP16KD's clock-to-out they limited the digits top to 97 and then 108 MHz).
    """

    def __init__(self, plan: TrainLayerPlan, access_width: int, update_rounding: str, eta_frac: int,
                 primitives: bool = True):
        self.plan = plan
        self.primitives = primitives
        layer = self.layer = plan.layer
        self.fold, self.index, self.last = plan.fold, plan.index, plan.last
        self.fmts, self.prev_err_fmt = plan.formats, plan.prev_err_fmt
        self.target_fmt = plan.target_fmt
        self.eta_int, self.eta_frac = plan.eta_int, eta_frac
        self.update_rounding = update_rounding
        self.access_width = access_width
        self.act_latency = plan.activation_latency
        self.size = plan.access_size
        fmts, prev_err_fmt, target_fmt = self.fmts, self.prev_err_fmt, self.target_fmt
        ports = {
            "a": In(data.ArrayLayout(shape_of(layer.in_fmt), layer.fan_in)),
            "y": Out(data.ArrayLayout(shape_of(layer.out_fmt), layer.fan_out)),
            "fwd_start": In(1), "fwd_done": Out(1),
            "delta_start": In(1), "delta_done": Out(1),
            "bwd_start": In(1), "upd_done": Out(1),
            "acc_off": In(range(self.size)), "acc_hit": In(1), "acc_we": In(1),
            "acc_wdata": In(signed(access_width)), "acc_rdata": Out(signed(access_width)),
        }
        if self.last:
            ports["t"] = In(data.ArrayLayout(shape_of(target_fmt), layer.fan_out))
        else:
            ports["e_in"] = In(data.ArrayLayout(shape_of(fmts.err_fmt), layer.fan_out))
        if self.index > 0:
            ports["e_out"] = Out(data.ArrayLayout(shape_of(prev_err_fmt), layer.fan_in))
            ports["err_done"] = Out(1)
        if self.fmts.batch > 1:
            ports["batch_first"] = In(1)
            ports["batch_last"] = In(1)
        super().__init__(ports)
        #: which RAMs are written this cycle: bit p lane p's weight RAM, bit P + p its bias RAM (not a
        #: port: :mod:`bp_hw.formal.training` proves they are written only in the layer's update)
        self.ram_writes = Signal(2 * self.fold.lanes_out)

    def elaborate(self, platform):
        m = Module()
        L, f = self.layer, self.fold
        P, K, G, C = f.lanes_out, f.lanes_in, f.groups, f.chunks
        w_fmt, b_fmt, a_fmt, o_fmt = L.weight_fmt, L.bias_fmt, L.in_fmt, L.out_fmt
        d_fmt = self.fmts.delta_fmt
        ww, bw = w_fmt.width, b_fmt.width
        words = max(G * C, 2)
        gw = self.fmts.g_width               # g = delta * eta_int, signed (widths from the spec)
        a_w = self.fmts.operand_a_width
        b_w = self.fmts.operand_b_width
        stochastic = self.update_rounding == "stochastic"

        # -- per-neuron registers: delta and g = delta * eta_int
        delta = Signal(data.ArrayLayout(signed(d_fmt.width), L.fan_out))
        gval = delta if self.eta_int == 1 else Signal(data.ArrayLayout(signed(gw), L.fan_out))

        # -- RAMs
        wports, bports, sports, sbports = [], [], [], []
        place = {mem.kind + ("_b" if mem.name.endswith("bias_sums") else ""): mem.placement
                 for mem in self.plan.memories}
        for p in range(P):
            wports.append(ram(m, f"wram{p}", ww * K, G * C, self.plan.weight_words(p), place["weights"], ww))
            bports.append(ram(m, f"bram{p}", bw, G, self.plan.bias_words(p), place["biases"]))
            if self.fmts.batch > 1:   # the mini-batch sums, laid out as the weights (no initial contents needed)
                gw_ = self.fmts.grad_width
                sports.append(ram(m, f"sram{p}", gw_ * K, G * C, [], place["grad_sums"], gw_))
                sbports.append(ram(m, f"sbram{p}", self.fmts.bias_grad_width, G, [], place["grad_sums_b"]))

        # -- sequencer (issue stage): one RAM word per cycle, the first in the cycle after the start
        # pulse (g, c, waddr and bias_phase are back at 0 whenever no pass runs)
        run = Signal()
        op = Signal(Pass)
        g = Signal(range(max(G, 2)))
        c = Signal(range(max(C, 2)))
        waddr = Signal(range(words))
        bias_phase = Signal()
        has_err = self.index > 0
        issue = run           # registers only: the start pulses load them
        iop = op              # the pass of this cycle's issue
        with m.If(self.fwd_start):
            m.d.sync += [run.eq(1), op.eq(Pass.FWD)]
        with m.Elif(self.bwd_start):
            m.d.sync += [run.eq(1), op.eq(Pass.ERR if has_err else Pass.UPD)]
        fwd_last_issue = (g == G - 1) & (c == C - 1)
        with m.If(issue):
            with m.If(iop == Pass.FWD):
                m.d.sync += waddr.eq(waddr + 1)
                with m.If(c == C - 1):
                    m.d.sync += c.eq(0)
                    with m.If(g == G - 1):
                        m.d.sync += [run.eq(0), g.eq(0), waddr.eq(0)]
                    with m.Else():
                        m.d.sync += g.eq(g + 1)
                with m.Else():
                    m.d.sync += c.eq(c + 1)
            with m.Elif(bias_phase):
                with m.If(g == G - 1):
                    m.d.sync += [run.eq(0), g.eq(0), bias_phase.eq(0)]
                with m.Else():
                    m.d.sync += g.eq(g + 1)
            with m.Else():   # ERR or UPD weights: c outer, g inner; address g * C + c
                with m.If(g == G - 1):
                    m.d.sync += [g.eq(0), waddr.eq(c + 1)]
                    with m.If(c == C - 1):
                        m.d.sync += [c.eq(0), waddr.eq(0)]
                        with m.If(iop == Pass.ERR):
                            m.d.sync += op.eq(Pass.UPD)
                        with m.Else():
                            m.d.sync += bias_phase.eq(1)
                    with m.Else():
                        m.d.sync += c.eq(c + 1)
                with m.Else():
                    m.d.sync += [g.eq(g + 1), waddr.eq(waddr + C)]

        # issue-stage flags
        i_first = Mux(iop == Pass.FWD, c == 0, g == 0)
        i_last = Mux(iop == Pass.FWD, c == C - 1, g == G - 1)
        i_fin = Mux(iop == Pass.UPD, bias_phase & (g == G - 1), fwd_last_issue)

        # -- access decode (stage s2 of the network's access pipeline)
        x_bias = Signal()
        x_p = Signal(range(max(P, 2)))
        x_word = Signal(range(words))
        x_g = Signal(range(max(G, 2)))
        x_k = Signal(range(max(K, 2)))
        x_wdata = Signal(signed(self.access_width))
        off = self.acc_off
        is_b = off >= L.macs
        row, col = const_divmod(m, off, L.fan_in, L.fan_out, "row")
        brow = Signal(range(max(L.fan_out, 2)))
        m.d.comb += brow.eq(off - L.macs)
        neuron = Mux(is_b, brow, row)
        ng, np_ = const_divmod(m, neuron, P, G, "neu")
        cc, kk = const_divmod(m, col, K, C, "col")
        m.d.sync += [x_bias.eq(is_b), x_p.eq(np_), x_g.eq(ng), x_word.eq(ng * C + cc if C > 1 else ng),
                     x_k.eq(kk), x_wdata.eq(self.acc_wdata)]
        # per lane: an access write to its weight RAM (byte-enable mask) or bias RAM, decoded here
        x_wmask = [Signal(K, name=f"x_wmask_{p}") for p in range(P)]
        x_bwe = [Signal(name=f"x_bwe_{p}") for p in range(P)]
        for p in range(P):
            hit = self.acc_hit & self.acc_we & (np_ == p)
            m.d.sync += [x_wmask[p].eq(Mux(hit & ~is_b, Const(1, K) << kk, 0)), x_bwe[p].eq(hit & is_b)]

        for p, ((wr, ww_), (br, bw_)) in enumerate(zip(wports, bports)):
            m.d.comb += [wr.en.eq(1), br.en.eq(1),
                         wr.addr.eq(Mux(issue, waddr, x_word)), br.addr.eq(Mux(issue, g, x_g))]
        for (sr, _), (sbr, _) in zip(sports, sbports):
            m.d.comb += [sr.en.eq(1), sbr.en.eq(1), sr.addr.eq(waddr), sbr.addr.eq(g)]

        # -- stage 1: RAM data; operands registered
        s1_op = Signal(Pass)
        s1_v = Signal()
        s1_first, s1_last, s1_fin, s1_bias = Signal(), Signal(), Signal(), Signal()
        s1_g = Signal.like(g)
        s1_c = Signal.like(c)
        m.d.sync += [s1_v.eq(issue), s1_op.eq(iop), s1_first.eq(i_first), s1_last.eq(i_last), s1_fin.eq(i_fin),
                     s1_bias.eq(bias_phase), s1_g.eq(g), s1_c.eq(c)]
        a_chunk = Signal(data.ArrayLayout(signed(b_w), K))   # B operand for FWD/UPD: input chunk c
        d_lane = Signal(data.ArrayLayout(signed(b_w), P))    # B operand for ERR: delta of the lane's neuron
        g_lane = Signal(data.ArrayLayout(signed(a_w), P))    # A operand for UPD: g of the lane's neuron
        a_arr = data.View(data.ArrayLayout(data.ArrayLayout(shape_of(a_fmt), K), C), self.a.as_value())
        for k in range(K):
            m.d.sync += a_chunk[k].eq(as_signed(a_arr[c][k], a_fmt))
        for p in range(P):
            d_sel = data.View(data.ArrayLayout(data.ArrayLayout(signed(d_fmt.width), P), G), delta.as_value())
            g_sel = data.View(data.ArrayLayout(data.ArrayLayout(gval.shape().elem_shape, P), G), gval.as_value())
            m.d.sync += [d_lane[p].eq(d_sel[g][p]), g_lane[p].eq(g_sel[g][p])]

        # -- stages 2-3: the shared multipliers (A x B through the operand multiplexers)
        prods = []
        hold = self.plan.operand_latency
        w_held, b_held = [], []    # the RAM words after the operand registers (also read by the access port)
        for p in range(P):
            m.submodules[f"products{p}"] = ps = ProductStage(signed(a_w), signed(b_w), K,
                                                             in_logic=self.plan.logic_multipliers,
                                                             cell=self.plan.dsp_cell, primitive=self.primitives)
            m.d.comb += ps.en.eq(1)
            # plan.operand_latency: the multiplexers' inputs registered first (the RAM word next to its RAM)
            op, w_in, g_in, d_in = (delay(m, v, hold, f"{n}_{p}") for v, n in
                                    ((s1_op, "op_sel"), (wports[p][0].data, "w_op"), (g_lane[p], "g_op"),
                                     (d_lane[p], "d_op")))
            a_in = delay(m, a_chunk, hold, f"a_op_{p}")
            w_held.append(w_in)
            b_held.append(delay(m, bports[p][0].data, hold, f"b_read_{p}"))
            w_in = data.View(data.ArrayLayout(shape_of(w_fmt), K), w_in)
            a_in = data.View(a_chunk.shape(), a_in)
            for k in range(K):
                m.d.comb += [ps.a[k].eq(Mux(op == Pass.UPD, g_in, w_in[k])),
                             ps.b[k].eq(Mux(op == Pass.ERR, d_in, a_in[k]))]
            prods.append(ps)
        prod_shape = prods[0].prod_shape
        plat = self.plan.lane_product_latency     # operand registers + prods[p].latency (2 on DSP blocks, 3 in logic or a cell)
        S = 1 + plat                              # issue to the cycle the products are readable ("stage 3")

        # what travels beside the products: the sideband, the old weights and biases, g
        def follow(value, name):
            return delay(m, value, plat, name)
        s3_v, s3_op, s3_first, s3_last, s3_fin, s3_bias, s3_g, s3_c = (
            follow(s, f"s3_{n}") for s, n in ((s1_v, "v"), (s1_op, "op"), (s1_first, "first"), (s1_last, "last"),
                                               (s1_fin, "fin"), (s1_bias, "bias"), (s1_g, "g"), (s1_c, "c")))
        w3 = [follow(wr.data, f"w3_{p}") for p, (wr, _) in enumerate(wports)]
        b3 = [follow(br.data, f"b3_{p}") for p, (br, _) in enumerate(bports)]
        g3 = [follow(g_lane[p], f"g3_{p}") for p in range(P)]
        fwd3 = s3_v & (s3_op == Pass.FWD)
        err3 = s3_v & (s3_op == Pass.ERR)
        upd3 = s3_v & (s3_op == Pass.UPD)

        # -- FWD: per lane, (b << bias_shift) + sum w * a (an Accumulator, as the inference lane)
        fwd_accs = []
        for p in range(P):
            m.submodules[f"acc{p}"] = acc = Accumulator(prod_shape, K, L.acc_width, shape_of(b_fmt), L.bias_shift)
            m.d.comb += [acc.en.eq(1), acc.valid.eq(fwd3), acc.first.eq(s3_first), acc.last.eq(s3_last),
                         acc.p.eq(prods[p].p), acc.bias.eq(b3[p])]
            fwd_accs.append(acc)

        # -- UPD: the term x (the product g * a, or with mini-batches the batch's sum so far), its
        # rounding split (q, up) at stage R, d = old - q at R + 1, r = d - up and the clamp decisions at
        # R + 2, the clamped value written back at R + 3 = UPD_WRITE (module doc)
        mode = self.update_rounding
        k_w, k_b = self.fmts.weight_update_shift, self.fmts.bias_update_shift
        batched = self.fmts.batch > 1
        upd_wr = train_upd_tail(self.fmts.batch, plat) - 2    # issue to the cycle the write request is formed
        R = upd_wr - 3                      # the cycle in which x is readable (S, or S + 1 with the sum)
        if batched:
            # stage 3: the sums so far (the batch's first sample starts from 0), written back at stage 4
            gw_, bgw = self.fmts.grad_width, self.fmts.bias_grad_width
            sum4 = [[Signal(signed(gw_), name=f"sum4_{p}_{k}") for k in range(K)] for p in range(P)]
            bsum4 = [Signal(signed(bgw), name=f"bsum4_{p}") for p in range(P)]
            s3w = [data.View(data.ArrayLayout(signed(gw_), K), follow(sr.data, f"s3_{p}"))
                   for p, (sr, _) in enumerate(sports)]
            sb3 = [follow(sbr.data.as_signed(), f"sb3_{p}") for p, (sbr, _) in enumerate(sbports)]
            for p in range(P):
                m.d.sync += [sum4[p][k].eq(Mux(self.batch_first, 0, s3w[p][k]) + prods[p].p[k]) for k in range(K)]
                m.d.sync += bsum4[p].eq(Mux(self.batch_first, 0, sb3[p]) + g3[p])
            upd4, s4_bias, s4_g = (delay(m, sig, 1, f"s4_{n}") for sig, n in ((upd3, "upd"), (s3_bias, "bias"),
                                                                               (s3_g, "g")))
            saddr4 = delay(m, waddr, S + 1, "saddr4")
            for p, ((_, swp), (_, sbwp)) in enumerate(zip(sports, sbports)):
                m.d.comb += [swp.addr.eq(saddr4), swp.data.eq(Cat(*sum4[p])),
                             swp.en.eq(Mux(upd4 & ~s4_bias, (1 << K) - 1, 0)),
                             sbwp.addr.eq(s4_g), sbwp.data.eq(bsum4[p]), sbwp.en.eq(upd4 & s4_bias)]
            xw, xb = [[v for v in row] for row in sum4], bsum4
            rounds = self.batch_last     # only the batch's last sample updates the parameters
        else:
            xw, xb = [[prods[p].p[k] for k in range(K)] for p in range(P)], g3
            rounds = 1
        updR = delay(m, upd3, R - S, "updR")
        sR_bias = delay(m, s3_bias, R - S, "sR_bias")
        wR = [delay(m, w3[p], R - S, f"wR_{p}") for p in range(P)]
        bR = [delay(m, b3[p], R - S, f"bR_{p}") for p in range(P)]
        qw = [[None] * K for _ in range(P)]
        upw = [[None] * K for _ in range(P)]
        qb, upb = [None] * P, [None] * P
        for p in range(P):
            nxt = []
            if stochastic:   # one LFSR per multiplier, stepped once per rounded update (k = 0: the biases too)
                for k in range(K):
                    state = Signal(LFSR_WIDTH, name=f"lfsr_{p}_{k}", init=self.plan.lfsr_seeds[(p, k)])
                    nxt.append(Signal(LFSR_WIDTH, name=f"lfsr_next_{p}_{k}"))
                    m.d.comb += nxt[k].eq(lfsr_next(state))
                    with m.If(updR & rounds & (~sR_bias if k else 1)):
                        m.d.sync += state.eq(nxt[k])
            for k in range(K + 1):      # k == K: the bias (on lane k = 0's LFSR)
                x = xb[p] if k == K else xw[p][k]
                kk = k_b if k == K else k_w
                if stochastic:
                    q_expr, up_expr = stochastic_shift(x, kk, nxt[k % K]), Const(0, 1)
                else:
                    q_expr, up_expr = round_parts(x, kk, mode)
                q = Signal(q_expr.shape(), name=f"uq_{p}_{k}")
                up = Signal(name=f"uup_{p}_{k}")
                m.d.sync += [q.eq(q_expr), up.eq(up_expr)]
                if k == K:
                    qb[p], upb[p] = q, up
                else:
                    qw[p][k], upw[p][k] = q, up
        wR1 = [delay(m, wR[p], 1, f"wR1_{p}") for p in range(P)]
        bR1 = [delay(m, bR[p], 1, f"bR1_{p}") for p in range(P)]

        def clamp_stages(old, q, up, fmt, name):
            """d = old - q (R + 1); r = d - up and overflow()'s clamp decisions (R + 2); the value (comb)."""
            d = Signal(signed(max(len(q), signed_width(fmt)) + 1), name=f"{name}_d")
            m.d.sync += d.eq(as_signed(old, fmt) - q)
            up2 = delay(m, up, 1, f"{name}_up")
            r = Signal(signed(len(d) + 1), name=f"{name}_r")
            m.d.sync += r.eq(d - up2)
            if L.overflow == "wrap":
                return overflow(r, fmt, "wrap")
            lo, hi = fmt.min_int, fmt.max_int
            if L.overflow == "symmetric" and fmt.signed:
                lo = -hi
            above, below = Signal(name=f"{name}_above"), Signal(name=f"{name}_below")
            m.d.sync += [above.eq((d > hi) & ~((d == hi + 1) & up2)), below.eq((d < lo) | ((d == lo) & up2))]
            return overflow(Mux(above, hi, Mux(below, lo, r)), fmt, "wrap")

        new_w, new_b = [], []
        for p in range(P):
            old_w = data.View(data.ArrayLayout(shape_of(w_fmt), K), wR1[p])
            new_w.append(Cat(*[clamp_stages(old_w[k], qw[p][k], upw[p][k], w_fmt, f"nw_{p}_{k}") for k in range(K)]))
            new_b.append(clamp_stages(bR1[p], qb[p], upb[p], b_fmt, f"nb_{p}"))
        upd_w = delay(m, upd3, upd_wr - S, "upd_w")
        sw_bias, sw_fin, sw_g = (delay(m, sig, upd_wr - S, f"sw_{n}")
                                 for sig, n in ((s3_bias, "bias"), (s3_fin, "fin"), (s3_g, "g")))
        write = upd_w & rounds
        # the UPD write address is the issue address upd_wr cycles ago
        addr_w = delay(m, waddr, upd_wr, "waddr_w")

        # -- UPD write-back: the request registered (so that the RAM's write inputs come from registers
        # through one multiplexer: the access port's decoded writes while idle), written a cycle later
        wreq = Signal(name="upd_wreq")
        breq = Signal(name="upd_breq")
        wreq_addr = Signal.like(waddr, name="upd_wreq_addr")
        breq_addr = Signal.like(g, name="upd_breq_addr")
        m.d.sync += [wreq.eq(write & ~sw_bias), breq.eq(write & sw_bias), wreq_addr.eq(addr_w), breq_addr.eq(sw_g)]
        for p, ((_, wwp), (_, bwp)) in enumerate(zip(wports, bports)):
            wreq_data = Signal(ww * K, name=f"upd_wreq_data_{p}")
            breq_data = Signal(bw, name=f"upd_breq_data_{p}")
            m.d.sync += [wreq_data.eq(new_w[p]), breq_data.eq(new_b[p])]
            m.d.comb += [wwp.addr.eq(Mux(wreq, wreq_addr, x_word)),
                         wwp.data.eq(Mux(wreq, wreq_data, Cat(*[x_wdata[:ww]] * K))),
                         wwp.en.eq(Mux(wreq, (1 << K) - 1, x_wmask[p])),
                         bwp.addr.eq(Mux(breq, breq_addr, x_g)), bwp.data.eq(Mux(breq, breq_data, x_wdata[:bw])),
                         bwp.en.eq(breq | x_bwe[p])]
        m.d.comb += self.ram_writes.eq(Cat(*[wwp.en.any() for _, wwp in wports], *[bwp.en.any() for _, bwp in bports]))
        upd_done = Signal()
        m.d.sync += upd_done.eq(delay(m, upd_w & sw_fin, 1, "upd_fin"))
        m.d.comb += self.upd_done.eq(upd_done)

        # results of an accumulation, Accumulator.LATENCY + Rescale.LATENCY after its last term
        def rescaled(value, name):
            return delay(m, value, Accumulator.LATENCY + Rescale.LATENCY, name)

        # -- ERR: per input j = c * P_in + k, sum over the groups of sum_p w * delta, rescaled into e_out[j]
        if has_err:
            pe = self.prev_err_fmt
            e_reg = Signal(data.ArrayLayout(data.ArrayLayout(shape_of(pe), K), C))
            m.d.comb += self.e_out.as_value().eq(e_reg.as_value())
            e_new = []
            for k in range(K):
                m.submodules[f"eacc{k}"] = acc = Accumulator(prod_shape, P, self.fmts.error_acc_width)
                m.submodules[f"erescale{k}"] = rs = Rescale(self.fmts.error_acc_width, self.fmts.error_below_shift,
                                                            L.rounding, L.overflow, pe)
                m.d.comb += [acc.en.eq(1), acc.valid.eq(err3), acc.first.eq(s3_first), acc.last.eq(s3_last),
                             rs.en.eq(1), rs.acc.eq(acc.acc)]
                for p in range(P):
                    m.d.comb += acc.p[p].eq(prods[p].p[k])
                e_new.append(rs.z)
            e_v, e_fin, e_c = rescaled(err3 & s3_last, "e_v"), rescaled(s3_fin, "e_fin"), rescaled(s3_c, "e_c")
            with m.If(e_v):
                for cc in range(C):   # explicit decoder: no incomplete case over the index
                    with m.If(e_c == cc):
                        m.d.sync += [e_reg[cc][k].eq(e_new[k]) for k in range(K)]
            err_done = Signal()
            m.d.sync += err_done.eq(e_v & e_fin)
            m.d.comb += self.err_done.eq(err_done)

        # -- FWD: rescale (the inference Rescale), activation, output registers
        z_v, z_fin, z_g = rescaled(fwd3 & s3_last, "z_v"), rescaled(s3_fin, "z_fin"), rescaled(s3_g, "z_g")
        acts = []
        for p in range(P):
            m.submodules[f"rescale{p}"] = rs = Rescale(L.acc_width, L.rescale_shift, L.rounding, L.overflow, L.z_fmt)
            m.submodules[f"act{p}"] = act = ActivationUnit(self.plan)
            m.d.comb += [rs.en.eq(1), rs.acc.eq(fwd_accs[p].acc), act.en.eq(1), act.valid.eq(z_v), act.z.eq(rs.z)]
            acts.append(act)
        side = delay(m, Cat(z_g, z_fin), self.act_latency, "y_side")
        y_g, y_fin = side[:len(z_g)], side[len(z_g)]
        y_store = Signal(data.ArrayLayout(data.ArrayLayout(shape_of(o_fmt), P), G))
        m.d.comb += self.y.as_value().eq(y_store.as_value())
        with m.If(acts[0].y_valid):
            for gg in range(G):
                with m.If(y_g == gg):
                    for p in range(P):
                        m.d.sync += y_store[gg][p].eq(acts[p].y)
        fwd_done = Signal()
        m.d.sync += fwd_done.eq(acts[0].y_valid & y_fin)
        m.d.comb += self.fwd_done.eq(fwd_done)

        # -- access read-back: element (lane, k) or bias, registered 4 + hold cycles after acc_off
        # (plan.operand_latency more on a family with slow block RAM outputs: the words from the operand registers)
        x3_bias = delay(m, x_bias, 1 + hold, "x3_bias")
        x3_p = delay(m, x_p, 1 + hold, "x3_p")
        x3_k = delay(m, x_k, 1 + hold, "x3_k")
        for p in range(P):
            welem = Signal(shape_of(w_fmt), name=f"welem_{p}")
            m.d.comb += welem.eq(w_held[p].word_select(x3_k, ww) if K > 1 else w_held[p])
            bdat = Signal(shape_of(b_fmt), name=f"bdat_{p}")
            m.d.comb += bdat.eq(b_held[p])
            with m.If(x3_p == p):
                m.d.sync += self.acc_rdata.eq(Mux(x3_bias, bdat, welem))

        self._elaborate_delta(m, delta, gval, gw)
        return m

    def _elaborate_delta(self, m, delta, gval, gw):
        """The per-neuron unit: e, derivative, delta, g; one neuron per cycle, pipelined (module doc).

        Stages from the neuron's visit cycle ``t0`` (each one carry chain or one multiplier at most),
        with the products on DSP blocks (``D`` = 2 cycles per product stage; 3 in logic shifts what
        follows): t0 select ``o``, ``t`` / ``e_in``; t1 ``o - t``, the derivative product's operands
        ``o``, ``ONE - o`` (t1-t2), ``e``'s rescale (t2-t4, last layer); t3-t4 its rounding; t5-t6
        ``e * d``; t7-t9 the delta rescale; t10 store ``delta`` (``plan.delta_store``; and
        ``g = delta * eta_int``, stored at t11).
        """
        L = self.layer
        o_fmt, e_fmt, d_fmt = L.out_fmt, self.fmts.err_fmt, self.fmts.delta_fmt
        fo = o_fmt.frac_bits
        kind = self.fmts.derivative     # the activation whose derivative step 3 computes
        one = 1 << fo
        n = L.fan_out
        # one neuron per cycle from the cycle of the start pulse (i is back at 0 when idle)
        run = Signal()
        i = Signal(range(max(n, 2)))
        visit = run | self.delta_start
        with m.If(visit):
            with m.If(i == n - 1):
                m.d.sync += [run.eq(0), i.eq(0)]
            with m.Else():
                m.d.sync += [run.eq(1), i.eq(i + 1)]
        # t0: select the neuron's output and target (or error)
        ow = signed_width(o_fmt)
        o1 = Signal(signed(ow))
        m.d.sync += o1.eq(as_signed(self.y[i], o_fmt))
        D = self.plan.delta_product_latency
        e_ready = Signal(shape_of(e_fmt))        # the error, readable at t(3 + D) (t5)
        if self.last:
            t1 = Signal(signed(signed_width(self.target_fmt)))
            m.d.sync += t1.eq(as_signed(self.t[i], self.target_fmt))
            diff2 = Signal(signed(max(ow, len(t1)) + 1))
            m.d.sync += diff2.eq(o1 - t1)                        # t1
            m.submodules.out_error = rs = Rescale(len(diff2), self.fmts.output_error_shift, L.rounding,
                                                  L.overflow, e_fmt)   # t2-t4
            m.d.comb += [rs.en.eq(1), rs.acc.eq(diff2)]
            m.d.comb += e_ready.eq(delay(m, rs.z, D - 2 if kind in ("sigmoid", "tanh") else 0, "delta_e"))
        else:
            e1 = Signal(shape_of(e_fmt))
            m.d.sync += e1.eq(self.e_in[i])
            m.d.comb += e_ready.eq(delay(m, e1, 2 + (D if kind in ("sigmoid", "tanh") else 2), "delta_e"))
        # the derivative: LUT outputs lie within [-ONE, ONE] (sigmoid [0, ONE])
        dw = fo + 2                      # holds -ONE .. ONE
        d6 = Signal(signed(dw))
        q7 = Signal(signed(e_fmt.width + dw + 1))
        if kind in ("sigmoid", "tanh"):
            # t1-t2: o * (ONE - o) or o * o (operand and product registers)
            m.submodules.deriv_product = dp = ProductStage(signed(dw), signed(dw), in_logic=self.plan.delta_logic,
                                                           cell=self.plan.delta_cell, primitive=self.primitives)
            m.d.comb += [dp.en.eq(1), dp.a[0].eq(o1), dp.b[0].eq(one - o1 if kind == "sigmoid" else o1)]
            q_expr, up_expr = round_parts(dp.p[0], fo, L.rounding)
            q4 = Signal(q_expr.shape())
            up4 = Signal()
            m.d.sync += [q4.eq(q_expr), up4.eq(up_expr)]                             # t3
            r5 = Signal(signed(dw + 1))
            m.d.sync += r5.eq(q4 + up4)                                              # t4
            # t5-t6: e * d, the operands taken from r5 and the error as they become readable
            m.submodules.error_product = ep = ProductStage(signed(e_fmt.width), signed(dw),
                                                           in_logic=self.plan.delta_logic,
                                                           cell=self.plan.delta_cell, primitive=self.primitives)
            m.d.comb += [ep.en.eq(1), ep.a[0].eq(as_signed(e_ready, e_fmt)),
                         ep.b[0].eq(r5 if kind == "sigmoid" else one - r5)]
            m.d.comb += q7.eq(ep.p[0])
        else:
            o5 = delay(m, o1, 4, "delta_o")
            m.d.sync += d6.eq(Mux(o5 > 0, one, 0) if kind == "relu" else one)       # t5
            e6 = delay(m, e_ready, 1, "delta_e6")
            # t6: e * d is a shift for ReLU / identity
            m.d.sync += q7.eq(Mux(d6 != 0, as_signed(e6, e_fmt) << fo, 0))
        # t7-t9: delta = overflow(round_shift(e * d))
        m.submodules.delta_rescale = drs = Rescale(len(q7), self.fmts.delta_shift, L.rounding, L.overflow, d_fmt)
        m.d.comb += [drs.en.eq(1), drs.acc.eq(q7)]
        v10 = delay(m, visit, self.plan.delta_store, "delta_v")
        idx10 = delay(m, i, self.plan.delta_store, "delta_i")
        # t10: store delta (and g)
        for j in range(n):
            with m.If(v10 & (idx10 == j)):
                m.d.sync += delta[j].eq(drs.z)
        done = Signal()
        if self.eta_int == 1:
            m.d.sync += done.eq(v10 & (idx10 == n - 1))
        else:
            g11 = Signal(signed(gw))
            m.d.sync += g11.eq(drs.z * self.eta_int)
            v11, idx11 = delay(m, v10, 1, "delta_v11"), delay(m, idx10, 1, "delta_i11")
            for j in range(n):
                with m.If(v11 & (idx11 == j)):
                    m.d.sync += gval[j].eq(g11)
            m.d.sync += done.eq(v11 & (idx11 == n - 1))
        m.d.comb += self.delta_done.eq(done)
