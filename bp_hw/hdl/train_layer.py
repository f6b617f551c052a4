"""One trainable layer: weight/bias RAMs, ``P`` multipliers shared by three passes, a per-neuron delta unit.

The arithmetic is :mod:`bp_hw.fixed.trainer`'s (the spec), step by step; the
component only schedules it. See :class:`TrainLayer`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..fixed.lfsr import TAPS, WIDTH as LFSR_WIDTH
from ..fixed.qformat import QFormat
from ..fixed.qmodel import signed_width
from ..plan.hardware import TrainLayerPlan
from .activation import ActivationUnit
from .arith import overflow, round_shift, shape_of

OP_FWD, OP_ERR, OP_UPD = 0, 1, 2

def as_signed(v, fmt: QFormat):
    """``v`` (a value of ``fmt``'s shape) as a signed value of the same number."""
    return v.as_signed() if fmt.signed else Cat(v, Const(0, 1)).as_signed()


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

    ``P_out x P_in`` multipliers with operand multiplexers (``A in {w, g}``,
    ``B in {a, delta}``) serve three passes, one RAM word per cycle:

    * FWD (``fwd_start``): ``g`` outer, ``c`` inner; per lane
      ``acc = (b << bias_shift) + sum w * a``, rescale, :class:`ActivationUnit`
      -> ``y``. Done ``cycles + 5 + activation latency`` cycles after start.
    * ERR (l > 0): ``c`` outer, ``g`` inner; per input ``j = c * P_in + k``:
      ``sum_p w * delta`` (an adder tree across lanes) accumulated over the
      groups, then rescaled into ``e_out[j]``. Done ``cycles + 4`` after start.
    * UPD: same order as ERR (the spec's stochastic visiting order), then the
      ``groups`` biases; ``W -= round(g * a)``, ``b -= round(g)``, written back
      three cycles after the read (each word once per pass: no hazard).
      Done ``cycles + groups + 4`` after its first issue cycle minus one
      (after ``bwd_start`` for layer 0; right after ERR's issue otherwise).

    ``bwd_start`` runs ERR then UPD back to back (UPD alone for layer 0);
    ``err_done`` and ``upd_done`` pulse when each finishes. The delta unit
    (``delta_start``) visits one neuron per cycle:
    ``e`` (``o - t`` rescaled for the last layer, else ``e_in``), the
    derivative from ``y``, ``delta = overflow(round_shift(e * d))`` and
    ``g = delta * eta_int``; done ``fan_out + 6`` cycles after start
    (``+ 1`` with a multiplying ``eta_int``). Every ``*_done`` is high for
    one cycle, the first in which the results are readable.

    Stochastic update rounding: one 32-bit LFSR per multiplier ``(p, k)``,
    stepped once per rounded update (the bias updates on ``k = 0``).

    Access (while no pass runs): ``acc_off`` is the layer-local flat offset
    (weights row-major ``i * fan_in + j``, then the biases) with ``acc_hit``;
    a write (``acc_we``) lands two cycles later; ``acc_rdata`` is the element
    three cycles after ``acc_off`` (combinational from the RAM output).
    """

    def __init__(self, plan: TrainLayerPlan, access_width: int, update_rounding: str, eta_frac: int):
        self.plan = plan
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
        super().__init__(ports)

    # -- cycle counts (the plan's; checked against the simulator in the tests) ----------------
    @property
    def fwd_cycles(self) -> int:
        return self.plan.fwd_cycles

    @property
    def err_cycles(self) -> int:
        return self.plan.err_cycles

    @property
    def upd_cycles(self) -> int:
        return self.plan.upd_cycles

    @property
    def delta_cycles(self) -> int:
        return self.plan.delta_cycles

    @property
    def multipliers(self) -> int:
        return self.plan.multipliers

    # -- shapes ---------------------------------------------------------------------------
    @property
    def k_w(self) -> int:
        return self.fmts.weight_update_shift

    @property
    def k_b(self) -> int:
        return self.fmts.bias_update_shift

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
        wports, bports = [], []
        for p in range(P):
            words_init = self.plan.weight_words(p)
            wmem = Memory(shape=unsigned(ww * K), depth=words, init=words_init + [0] * (words - len(words_init)))
            bmem = Memory(shape=unsigned(bw), depth=max(G, 2), init=self.plan.bias_words(p) + [0] * (G < 2))
            m.submodules[f"wram{p}"] = wmem
            m.submodules[f"bram{p}"] = bmem
            wports.append((wmem.read_port(domain="sync"), wmem.write_port(granularity=ww)))
            bports.append((bmem.read_port(domain="sync"), bmem.write_port()))

        # -- sequencer (issue stage): one RAM word per cycle
        run = Signal()
        op = Signal(2)
        g = Signal(range(max(G, 2)))
        c = Signal(range(max(C, 2)))
        waddr = Signal(range(words))
        bias_phase = Signal()
        has_err = self.index > 0
        fwd_last_issue = (g == G - 1) & (c == C - 1)
        with m.If(self.fwd_start):
            m.d.sync += [run.eq(1), op.eq(OP_FWD), g.eq(0), c.eq(0), waddr.eq(0), bias_phase.eq(0)]
        with m.Elif(self.bwd_start):
            m.d.sync += [run.eq(1), op.eq(OP_ERR if has_err else OP_UPD), g.eq(0), c.eq(0), waddr.eq(0),
                         bias_phase.eq(0)]
        with m.Elif(run):
            with m.If(op == OP_FWD):
                m.d.sync += waddr.eq(waddr + 1)
                with m.If(c == C - 1):
                    m.d.sync += c.eq(0)
                    with m.If(g == G - 1):
                        m.d.sync += run.eq(0)
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
                        with m.If(op == OP_ERR):
                            m.d.sync += op.eq(OP_UPD)
                        with m.Else():
                            m.d.sync += bias_phase.eq(1)
                    with m.Else():
                        m.d.sync += c.eq(c + 1)
                with m.Else():
                    m.d.sync += [g.eq(g + 1), waddr.eq(waddr + C)]

        # issue-stage flags
        i_first = Mux(op == OP_FWD, c == 0, g == 0)
        i_last = Mux(op == OP_FWD, c == C - 1, g == G - 1)
        i_fin = Mux(op == OP_FWD, fwd_last_issue, Mux(op == OP_ERR, fwd_last_issue, bias_phase & (g == G - 1)))

        # -- access decode (stage s2 of the network's access pipeline)
        x_bias = Signal()
        x_p = Signal(range(max(P, 2)))
        x_word = Signal(range(words))
        x_g = Signal(range(max(G, 2)))
        x_k = Signal(range(max(K, 2)))
        x_we = Signal()
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
                     x_k.eq(kk), x_we.eq(self.acc_hit & self.acc_we), x_wdata.eq(self.acc_wdata)]

        for p, ((wr, ww_), (br, bw_)) in enumerate(zip(wports, bports)):
            m.d.comb += [wr.en.eq(1), br.en.eq(1),
                         wr.addr.eq(Mux(run, waddr, x_word)), br.addr.eq(Mux(run, g, x_g))]

        # -- stage 1: RAM data; operands registered
        s1_op = Signal(2)
        s1_v = Signal()
        s1_first, s1_last, s1_fin, s1_bias = Signal(), Signal(), Signal(), Signal()
        s1_g = Signal.like(g)
        s1_c = Signal.like(c)
        m.d.sync += [s1_v.eq(run), s1_op.eq(op), s1_first.eq(i_first), s1_last.eq(i_last), s1_fin.eq(i_fin),
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
        w1 = [[Signal(signed(ww), name=f"w1_{p}_{k}") for k in range(K)] for p in range(P)]
        for p, (wr, _) in enumerate(wports):
            for k in range(K):
                m.d.comb += w1[p][k].eq(wr.data[k * ww:(k + 1) * ww].as_signed() if w_fmt.signed
                                        else wr.data[k * ww:(k + 1) * ww])

        # -- stage 2: products (A x B, registered)
        prod = [[Signal(signed(a_w + b_w), name=f"prod_{p}_{k}") for k in range(K)] for p in range(P)]
        for p in range(P):
            for k in range(K):
                A = Mux(s1_op == OP_UPD, g_lane[p], w1[p][k])
                B = Mux(s1_op == OP_ERR, d_lane[p], a_chunk[k])
                m.d.sync += prod[p][k].eq(A * B)
        s2_v, s2_first, s2_last, s2_fin, s2_bias = Signal(), Signal(), Signal(), Signal(), Signal()
        s2_op = Signal(2)
        s2_g = Signal.like(g)
        s2_c = Signal.like(c)
        m.d.sync += [s2_v.eq(s1_v), s2_op.eq(s1_op), s2_first.eq(s1_first), s2_last.eq(s1_last),
                     s2_fin.eq(s1_fin), s2_bias.eq(s1_bias), s2_g.eq(s1_g), s2_c.eq(s1_c)]
        w2 = [[Signal(signed(ww), name=f"w2_{p}_{k}") for k in range(K)] for p in range(P)]
        b2 = [Signal(shape_of(b_fmt), name=f"b2_{p}") for p in range(P)]
        g2 = [Signal(signed(a_w), name=f"g2_{p}") for p in range(P)]
        for p in range(P):
            m.d.sync += [b2[p].eq(bports[p][0].data), g2[p].eq(g_lane[p])]
            for k in range(K):
                m.d.sync += w2[p][k].eq(w1[p][k])

        # -- stage 3: FWD accumulate / ERR accumulate across lanes / UPD rounding
        s3_v, s3_last, s3_fin, s3_bias = Signal(), Signal(), Signal(), Signal()
        s3_op = Signal(2)
        s3_g = Signal.like(g)
        s3_c = Signal.like(c)
        m.d.sync += [s3_v.eq(s2_v), s3_op.eq(s2_op), s3_last.eq(s2_last), s3_fin.eq(s2_fin),
                     s3_bias.eq(s2_bias), s3_g.eq(s2_g), s3_c.eq(s2_c)]
        accs = [Signal(signed(L.acc_width), name=f"acc_{p}") for p in range(P)]
        for p in range(P):
            total = sum(prod[p][1:], prod[p][0])
            base = as_signed(b2[p], b_fmt) << L.bias_shift
            with m.If(s2_v & (s2_op == OP_FWD)):
                m.d.sync += accs[p].eq(Mux(s2_first, base, accs[p]) + total)
        if has_err:
            eaccs = [Signal(signed(self.fmts.error_acc_width), name=f"eacc_{k}") for k in range(K)]
            for k in range(K):
                across = sum((prod[p][k] for p in range(1, P)), prod[0][k])
                with m.If(s2_v & (s2_op == OP_ERR)):
                    m.d.sync += eaccs[k].eq(Mux(s2_first, 0, eaccs[k]) + across)

        # UPD: dw = round(g * a, k_w) / db = round(g, k_b), one LFSR step each (stochastic)
        dw3 = [[Signal(signed(self.fmts.weight_step_width), name=f"dw3_{p}_{k}") for k in range(K)]
               for p in range(P)]
        w3 = [[Signal(signed(ww), name=f"w3_{p}_{k}") for k in range(K)] for p in range(P)]
        b3 = [Signal(shape_of(b_fmt), name=f"b3_{p}") for p in range(P)]
        db3 = [Signal(signed(self.fmts.bias_step_width), name=f"db3_{p}") for p in range(P)]
        upd2 = s2_v & (s2_op == OP_UPD)
        mode = self.update_rounding
        for p in range(P):
            m.d.sync += b3[p].eq(b2[p])
            for k in range(K):
                m.d.sync += w3[p][k].eq(w2[p][k])
                if stochastic:
                    state = Signal(LFSR_WIDTH, name=f"lfsr_{p}_{k}", init=self.plan.lfsr_seeds[(p, k)])
                    nxt = Signal(LFSR_WIDTH, name=f"lfsr_next_{p}_{k}")
                    m.d.comb += nxt.eq(lfsr_next(state))
                    steps = upd2 & ~s2_bias if k else upd2
                    with m.If(steps):
                        m.d.sync += state.eq(nxt)
                    m.d.sync += dw3[p][k].eq(stochastic_shift(prod[p][k], self.k_w, nxt))
                    if k == 0:
                        m.d.sync += db3[p].eq(stochastic_shift(g2[p], self.k_b, nxt))
                else:
                    m.d.sync += dw3[p][k].eq(round_shift(prod[p][k], self.k_w, mode))
                    if k == 0:
                        m.d.sync += db3[p].eq(round_shift(g2[p], self.k_b, mode))

        # -- stage 4: UPD write-back, ERR result, FWD rescale
        upd3 = s3_v & (s3_op == OP_UPD)
        addr1, addr2, addr3 = (Signal(range(words), name=f"waddr{s}") for s in (1, 2, 3))
        m.d.sync += [addr1.eq(waddr), addr2.eq(addr1), addr3.eq(addr2)]
        for p, ((_, wwp), (_, bwp)) in enumerate(zip(wports, bports)):
            new_w = Cat(*[overflow(as_signed(w3[p][k], w_fmt) - dw3[p][k], w_fmt, L.overflow) for k in range(K)])
            new_b = overflow(as_signed(b3[p], b_fmt) - db3[p], b_fmt, L.overflow)
            # the UPD write address is the issue address three cycles ago
            x_sel = x_we & (x_p == p) if P > 1 else x_we
            with m.If(upd3 & ~s3_bias):
                m.d.comb += [wwp.addr.eq(addr3), wwp.data.eq(new_w), wwp.en.eq((1 << K) - 1)]
            with m.Elif(x_sel & ~x_bias):
                m.d.comb += [wwp.addr.eq(x_word), wwp.data.eq(Cat(*[x_wdata[:ww]] * K)),
                             wwp.en.eq(Const(1, K) << x_k)]
            with m.If(upd3 & s3_bias):
                m.d.comb += [bwp.addr.eq(s3_g), bwp.data.eq(new_b), bwp.en.eq(1)]
            with m.Elif(x_sel & x_bias):
                m.d.comb += [bwp.addr.eq(x_g), bwp.data.eq(x_wdata[:bw]), bwp.en.eq(1)]
        upd_done = Signal()
        m.d.sync += upd_done.eq(upd3 & s3_fin)
        m.d.comb += self.upd_done.eq(upd_done)

        if has_err:
            pe = self.prev_err_fmt
            shift = self.fmts.error_below_shift
            e_reg = Signal(data.ArrayLayout(data.ArrayLayout(shape_of(pe), K), C))
            m.d.comb += self.e_out.as_value().eq(e_reg.as_value())
            with m.If(s3_v & (s3_op == OP_ERR) & s3_last):
                for k in range(K):
                    e_new = Signal(shape_of(pe), name=f"e_new_{k}")
                    m.d.comb += e_new.eq(overflow(round_shift(eaccs[k], shift, L.rounding), pe, L.overflow))
                    for cc in range(C):   # explicit decoder: no incomplete case over the index
                        with m.If(s3_c == cc):
                            m.d.sync += e_reg[cc][k].eq(e_new)
            err_done = Signal()
            m.d.sync += err_done.eq(s3_v & (s3_op == OP_ERR) & s3_fin)
            m.d.comb += self.err_done.eq(err_done)

        # FWD: rescale at stage 4, activation, output registers
        z_v = Signal()
        z_fin = Signal()
        z_g = Signal.like(g)
        fwd3 = s3_v & (s3_op == OP_FWD) & s3_last
        m.d.sync += [z_v.eq(fwd3), z_fin.eq(fwd3 & s3_fin), z_g.eq(s3_g)]
        acts = []
        for p in range(P):
            z = Signal(shape_of(L.z_fmt), name=f"z_{p}")
            m.d.sync += z.eq(overflow(round_shift(accs[p], L.rescale_shift, L.rounding), L.z_fmt, L.overflow))
            act = ActivationUnit(self.plan)
            m.submodules[f"act{p}"] = act
            m.d.comb += [act.en.eq(1), act.valid.eq(z_v), act.z.eq(z)]
            acts.append(act)
        side = Cat(z_g, z_fin)
        for _ in range(self.act_latency):
            nxt = Signal.like(side)
            m.d.sync += nxt.eq(side)
            side = nxt
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

        # -- access read-back: element (lane, k) or bias, three cycles after acc_off
        x3_bias = Signal()
        x3_p = Signal.like(x_p)
        x3_k = Signal.like(x_k)
        m.d.sync += [x3_bias.eq(x_bias), x3_p.eq(x_p), x3_k.eq(x_k)]
        for p, ((wr, _), (br, _)) in enumerate(zip(wports, bports)):
            welem = Signal(shape_of(w_fmt), name=f"welem_{p}")
            m.d.comb += welem.eq(wr.data.word_select(x3_k, ww) if K > 1 else wr.data)
            bdat = br.data.as_signed() if b_fmt.signed else br.data
            with m.If(x3_p == p):
                m.d.comb += self.acc_rdata.eq(Mux(x3_bias, bdat, welem))

        self._elaborate_delta(m, delta, gval, gw)
        return m

    def _elaborate_delta(self, m, delta, gval, gw):
        """The per-neuron unit: e, derivative, delta, g; one neuron per cycle, pipelined."""
        L = self.layer
        o_fmt, e_fmt, d_fmt = L.out_fmt, self.fmts.err_fmt, self.fmts.delta_fmt
        fo = o_fmt.frac_bits
        one = 1 << fo
        n = L.fan_out
        run = Signal()
        i = Signal(range(max(n, 2)))
        with m.If(self.delta_start):
            m.d.sync += [run.eq(1), i.eq(0)]
        with m.Elif(run):
            with m.If(i == n - 1):
                m.d.sync += [run.eq(0), i.eq(0)]
            with m.Else():
                m.d.sync += i.eq(i + 1)
        # d0: select the neuron's output and error
        o0 = Signal(shape_of(o_fmt))
        m.d.comb += o0.eq(self.y[i])
        ow = signed_width(o_fmt) + 1
        o1 = Signal(signed(ow))
        dw = max(ow, fo + 1) + 1          # holds ONE even when the output format cannot
        om1 = Signal(signed(dw))
        e1 = Signal(shape_of(e_fmt))
        if self.last:
            diff = as_signed(o0, o_fmt) - as_signed(self.t[i], self.target_fmt)
            e0 = overflow(round_shift(diff, self.fmts.output_error_shift, L.rounding), e_fmt, L.overflow)
        else:
            e0 = self.e_in[i]
        m.d.sync += [o1.eq(as_signed(o0, o_fmt)), e1.eq(e0)]
        if L.activation == "sigmoid":
            m.d.sync += om1.eq(one - as_signed(o0, o_fmt))
        else:
            m.d.sync += om1.eq(as_signed(o0, o_fmt))
        v = [run]
        idx = [i]
        for _ in range(6):
            nv, ni = Signal(), Signal.like(i)
            m.d.sync += [nv.eq(v[-1]), ni.eq(idx[-1])]
            v.append(nv)
            idx.append(ni)
        # d1: o * (ONE - o) or o * o
        p2 = Signal(signed(ow + dw))
        o2 = Signal(signed(ow))
        e2 = Signal.like(e1)
        m.d.sync += [o2.eq(o1), e2.eq(e1)]
        if L.activation in ("sigmoid", "tanh"):
            m.d.sync += p2.eq(o1 * om1)
        # d2: derivative
        d3 = Signal(signed(dw + 1))   # 0 <= d <= ONE: LUT outputs lie within [-1, 1]
        e3 = Signal.like(e1)
        m.d.sync += e3.eq(e2)
        if L.activation == "sigmoid":
            m.d.sync += d3.eq(round_shift(p2, fo, L.rounding))
        elif L.activation == "tanh":
            m.d.sync += d3.eq(one - round_shift(p2, fo, L.rounding))
        elif L.activation == "relu":
            m.d.sync += d3.eq(Mux(o2 > 0, one, 0))
        else:
            m.d.sync += d3.eq(one)
        # d3: e * d
        q4 = Signal(signed(e_fmt.width + dw + 2))
        if L.activation in ("sigmoid", "tanh"):
            m.d.sync += q4.eq(as_signed(e3, e_fmt) * d3)
        else:
            m.d.sync += q4.eq(Mux(d3 != 0, as_signed(e3, e_fmt) << fo, 0))
        # d4: delta
        delta5 = Signal(signed(d_fmt.width))
        m.d.sync += delta5.eq(overflow(round_shift(q4, self.fmts.delta_shift, L.rounding), d_fmt, L.overflow))
        # d5: store delta (and g)
        for j in range(n):
            with m.If(v[5] & (idx[5] == j)):
                m.d.sync += delta[j].eq(delta5)
        done = Signal()
        if self.eta_int == 1:
            m.d.sync += done.eq(v[5] & (idx[5] == n - 1))
        else:
            g6 = Signal(signed(gw))
            m.d.sync += g6.eq(delta5 * self.eta_int)
            for j in range(n):
                with m.If(v[6] & (idx[6] == j)):
                    m.d.sync += gval[j].eq(g6)
            m.d.sync += done.eq(v[6] & (idx[6] == n - 1))
        m.d.comb += self.delta_done.eq(done)
