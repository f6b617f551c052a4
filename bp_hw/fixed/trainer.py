"""On-chip training in integer arithmetic — the spec the hardware weight-update unit matches.

One training step on sample ``(x, t)`` (``t`` in the output format: 1.0 for
the right class, 0 — or -1.0 for tanh — elsewhere), for the layers from last
to first. ``f_o`` is a layer's output fraction bits, ``f_e`` / ``f_d`` its
error / delta fraction bits, ``f_w``, ``f_b``, ``f_a`` weight, bias and input
fraction bits, and ``eta = eta_int / 2^f_eta``:

1. **Forward**: the integer model (:meth:`QModel.predict`), keeping every
   layer's input ``a`` and output ``o``.
2. **Output error**: ``e = overflow(round_shift(o - t, f_o - f_e), err_fmt)``.
3. **Derivative** from the layer's output ``o`` (``ONE = 2^f_o``):
   sigmoid ``d = round_shift(o * (ONE - o), f_o)``; tanh
   ``d = ONE - round_shift(o * o, f_o)``; ReLU ``d = ONE if o > 0 else 0``;
   identity ``d = ONE``.
4. **Delta**: ``delta = overflow(round_shift(e * d, f_e + f_o - f_d), delta_fmt)``.
   With ``cost = "cross-entropy"`` the last layer (sigmoid or tanh) takes
   ``d = ONE`` instead of step 3, as identity does: the derivative of the
   cross-entropy ``-sum t log o + (1 - t) log(1 - o)`` through a sigmoid output
   (or of its ``(1 + o) / 2`` form through tanh, targets -1/1) is ``o - t``,
   so ``delta = overflow(round_shift(e, f_e - f_d), delta_fmt)``.
   (:attr:`LayerTrainFormats.derivative` names what step 3 computes per layer.)
5. **Error of the layer below**, with the weights *before* this step's update::

       e_prev[j] = overflow(round_shift(sum_i W[i, j] * delta[i], f_w + f_d - f_e_prev), err_fmt_prev)

6. **Update**, ``g = delta * eta_int`` (exact)::

       W[i, j] = overflow(W[i, j] - round_shift(g[i] * a[j], f_d + f_eta + f_a - f_w, mode), w_fmt)
       b[i]    = overflow(b[i]    - round_shift(g[i],        f_d + f_eta - f_b,       mode), b_fmt)

   (the bias is the weight of a constant input 1.0). Rounding steps 2-5 use
   the layer's (deterministic) rescale rounding; the update uses
   ``update_rounding``. Rescale shifts ``<= 0`` are exact left shifts.

   **Mini-batch** (``batch = B > 1``, ``B = 2^m``): instead of updating, every
   training sample adds its exact terms to per-parameter sums, the first sample
   of a batch starting them from zero::

       S_W[i, j] = sum_batch g[i] * a[j]        S_b[i] = sum_batch g[i]

   and the batch's ``B``-th training sample, after adding its own, updates with
   the mean (one rounding per parameter per batch)::

       W[i, j] = overflow(W[i, j] - round_shift(S_W[i, j], k_w + m, mode), w_fmt)
       b[i]    = overflow(b[i]    - round_shift(S_b[i],    k_b + m, mode), b_fmt)

   (``k_w``, ``k_b`` the shifts above; :attr:`LayerTrainFormats.weight_update_shift`
   and ``bias_update_shift`` include ``m``). Every sample of a batch runs its
   forward pass and step 5 through the weights from before the batch. Batches
   are counted over *training* samples from reset, regardless of epochs: the
   samples left over at the end of an epoch (a data set that is not a multiple
   of ``B``) stay in the sums and the batch completes with the next epoch's first
   samples; inference samples (``train = 0``) neither count nor touch the sums.
   Reading the parameters mid-batch gives the weights from before the batch.
   The sums are exact: ``S_W`` needs ``g_width + signed_width(a) + m`` bits,
   ``S_b`` ``g_width + m`` (:attr:`LayerTrainFormats.grad_width`,
   ``bias_grad_width``). ``B = 1`` is the update above, after every sample.

**Stochastic update rounding** draws from one LFSR (``lfsr.py``) per
multiplier of the layer — lane ``(p_out, p_in)`` of its
:class:`~bp_hw.fixed.folding.Folding`, seeded by :func:`~bp_hw.fixed.lfsr.lane_seed` (``seed ^ (l << 16) ^ (p_out << 8) ^ p_in``)
(zero replaced as the LFSR does) — stepping once per update it rounds (with
mini-batches: only at the batch ends), in
the hardware's visiting order: for each input chunk ``c``, for each neuron
group ``g``: weight ``(g * P_out + p_out, c * P_in + p_in)``; then for each
group ``g`` the bias of neuron ``g * P_out + p_out`` (on ``p_in = 0`` only).
Deterministic modes give the same result for every folding.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import BpHwError
from .folding import Folding
from .lfsr import LFSR, lane_seed
from .packing import flat_params
from .qformat import QFormat
from .qmodel import QModel, guard_bits, signed_width
from .rounding import overflow, round_shift, rounding_mode

#: Costs the output delta can be taken from (module doc, step 4).
COSTS = ("mse", "cross-entropy")

_POW2 = re.compile(r"^\s*2\s*\^\s*\(?\s*(-?\d+)\s*\)?\s*$")


def parse_lr(text, frac_bits: int = 12) -> tuple[int, int]:
    """Learning rate -> ``(eta_int, f_eta)`` with ``eta = eta_int / 2^f_eta``.

    ``"2^-3"`` (or ``0.125``) is a pure shift ``(1, 3)``; another value is
    rounded to ``frac_bits`` fraction bits (trailing zero bits removed).
    """
    if isinstance(text, str):
        m = _POW2.match(text)
        if m:
            k = -int(m.group(1))
            if k < 0:
                raise BpHwError(f"learning rate {text} is above 1; use 2^0 or less")
            return 1, k
        try:
            value = float(text)
        except ValueError:
            raise BpHwError(f"learning rate {text!r}: write a power of two such as 2^-3 or a number") from None
    else:
        value = float(text)
    if not (0 < value <= 1) or not math.isfinite(value):
        raise BpHwError(f"learning rate must be in (0, 1], got {value}")
    k = -math.log2(value)
    if k == int(k):
        return 1, int(k)
    eta_int = round(value * (1 << frac_bits))
    if eta_int == 0:
        raise BpHwError(f"learning rate {value} rounds to 0 with {frac_bits} fraction bits")
    f = frac_bits
    while eta_int % 2 == 0:
        eta_int //= 2
        f -= 1
    return eta_int, f


@dataclass
class TrainSpec:
    """Settings of on-chip training (round-trips through to_dict/from_dict)."""

    lr: str = "2^-1"                    # default: converges on xor 2-4-1 and iris 4-8-3 at Q4.12
    lr_bits: int = 12                   # fraction bits of a non-power-of-two learning rate
    delta_format: str | None = None     # default Q1.(W-1), W the layer's output width
    error_format: str | None = None     # default the layer's output format
    update_rounding: str = "nearest-even"
    seed: int = 1
    cost: str = "mse"                   # "mse" | "cross-entropy" (module doc, step 4)
    batch: int = 1                      # mini-batch size B, a power of two (module doc, step 6)

    def __post_init__(self):
        self.update_rounding = rounding_mode(self.update_rounding)
        if self.cost not in COSTS:
            raise BpHwError(f"cost {self.cost!r}: use one of {', '.join(COSTS)}")
        if not isinstance(self.batch, int) or self.batch < 1 or self.batch & (self.batch - 1):
            raise BpHwError(f"batch size must be a power of two (1, 2, 4, ...), got {self.batch}")
        parse_lr(self.lr, self.lr_bits)
        for fmt in (self.delta_format, self.error_format):
            if fmt is not None:
                QFormat.parse(fmt)

    @property
    def eta(self) -> tuple[int, int]:
        return parse_lr(self.lr, self.lr_bits)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSpec":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise BpHwError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**d)


@dataclass
class LayerTrainFormats:
    """Per-layer formats of the backward pass and the shifts they imply (module doc, steps 2-6).

    The shifts are computed here once; the trainer and the hardware both read them.
    """

    err_fmt: QFormat
    delta_fmt: QFormat
    derivative: str                  # step 3's function: the activation, "identity" (d = ONE) for the
                                     # output layer under cross-entropy
    output_error_shift: int          # step 2 (last layer): o - t from f_o to f_e
    delta_shift: int                 # step 4: e * d from f_e + f_o to f_d
    error_below_shift: int | None    # step 5: sum W * delta from f_w + f_d to the layer below's f_e
    weight_update_shift: int         # step 6: g * a from f_d + f_eta + f_a to f_w (+ log2 B: the mean)
    bias_update_shift: int           # step 6: g from f_d + f_eta to f_b (+ log2 B)
    # Widths of the integers the backward pass holds (none can overflow; the hardware sizes its
    # registers from these):
    g_width: int                     # g = delta * eta_int, signed
    operand_a_width: int             # the shared multipliers' A operand: w (FWD, ERR) or g (UPD)
    operand_b_width: int             # ... B operand: a (FWD, UPD) or delta (ERR)
    error_acc_width: int             # step 5: sum over fan_out products W * delta
    weight_step_width: int           # step 6: round_shift(g * a, k_w) (or of S_W)
    bias_step_width: int             # step 6: round_shift(g, k_b) (or of S_b)
    batch: int = 1                   # B
    grad_width: int | None = None    # mini-batch sums S_W (B > 1), signed
    bias_grad_width: int | None = None   # ... S_b

    @property
    def batch_log2(self) -> int:
        return self.batch.bit_length() - 1

    def to_dict(self) -> dict:
        return {"error_format": self.err_fmt.name, "delta_format": self.delta_fmt.name,
                "derivative": self.derivative,
                "output_error_shift": self.output_error_shift, "delta_shift": self.delta_shift,
                "error_below_shift": self.error_below_shift, "weight_update_shift": self.weight_update_shift,
                "bias_update_shift": self.bias_update_shift, "g_width": self.g_width,
                "operand_a_width": self.operand_a_width, "operand_b_width": self.operand_b_width,
                "error_acc_width": self.error_acc_width, "weight_step_width": self.weight_step_width,
                "bias_step_width": self.bias_step_width, "batch": self.batch, "grad_width": self.grad_width,
                "bias_grad_width": self.bias_grad_width}


def layer_formats(qmodel: QModel, spec: TrainSpec) -> list[LayerTrainFormats]:
    fmts = []
    for layer in qmodel.layers:
        width = layer.out_fmt.width
        delta = QFormat.parse(spec.delta_format) if spec.delta_format else QFormat(1, width - 1)
        err = QFormat.parse(spec.error_format) if spec.error_format else layer.out_fmt
        if not (delta.signed and err.signed):
            raise BpHwError("delta and error formats must be signed")
        fmts.append((err, delta))
    last = qmodel.layers[-1]
    if spec.cost == "cross-entropy" and last.activation not in ("sigmoid", "tanh"):
        raise BpHwError(f"the cross-entropy output delta (o - t) needs sigmoid or tanh outputs, this network's "
                        f"are {last.activation}: use --cost mse")
    eta_int, eta_frac = spec.eta
    out = []
    for l, (layer, (err, delta)) in enumerate(zip(qmodel.layers, fmts)):
        ce = spec.cost == "cross-entropy" and l == len(qmodel.layers) - 1
        fo, fe, fd = layer.out_fmt.frac_bits, err.frac_bits, delta.frac_bits
        below = layer.weight_fmt.frac_bits + fd - fmts[l - 1][0].frac_bits if l > 0 else None
        m = spec.batch.bit_length() - 1
        k_w = fd + eta_frac + layer.in_fmt.frac_bits - layer.weight_fmt.frac_bits + m
        k_b = fd + eta_frac - layer.bias_fmt.frac_bits + m
        g_width = delta.width + max(1, eta_int.bit_length())
        a_width = max(signed_width(layer.weight_fmt), g_width if eta_int != 1 else delta.width)
        b_width = max(signed_width(layer.in_fmt), delta.width)
        # what the update rounds: one product g * a (g), or the batch's sum of B of them
        term_w = g_width + signed_width(layer.in_fmt) + m if m else a_width + b_width
        term_b = g_width + m
        out.append(LayerTrainFormats(
            err, delta, "identity" if ce else layer.activation, output_error_shift=fo - fe, delta_shift=fe + fo - fd, error_below_shift=below,
            weight_update_shift=k_w, bias_update_shift=k_b, g_width=g_width,
            operand_a_width=a_width, operand_b_width=b_width,
            # the sum of fan_out products, with the accumulator's guard-bit rule (and a sign bit spare)
            error_acc_width=a_width + b_width + guard_bits(layer.fan_out) + 1,
            weight_step_width=term_w + 2 + max(0, -k_w),
            bias_step_width=max(a_width, term_b) + 2 + max(0, -k_b),
            batch=spec.batch, grad_width=term_w if m else None, bias_grad_width=term_b if m else None))
    return out


def target_format(qmodel: QModel) -> QFormat:
    """The format targets are given in: the output format, widened to ``Q2.f`` when it cannot
    hold 1.0 (or -1.0 for tanh), which :func:`targets_for` produces."""
    last = qmodel.layers[-1]
    fmt = last.out_fmt
    one = 1 << fmt.frac_bits
    low = -one if last.activation == "tanh" else 0
    if fmt.min_int <= low and fmt.max_int >= one:
        return fmt
    return QFormat(2, fmt.frac_bits)


def targets_for(qmodel: QModel, y) -> np.ndarray:
    """Integer targets in the output format: ONE for the true class, 0 (or -ONE for tanh) elsewhere."""
    last = qmodel.layers[-1]
    one = 1 << last.out_fmt.frac_bits
    low = -one if last.activation == "tanh" else 0
    y = np.asarray(y, dtype=np.int64)
    n_out = last.fan_out
    if n_out == 1:
        return np.where(y == 1, one, low)[:, None].astype(np.int64)
    T = np.full((y.size, n_out), low, dtype=np.int64)
    T[np.arange(y.size), y] = one
    return T


def derivative(activation: str, out: np.ndarray, frac: int, rounding: str) -> np.ndarray:
    """sigma'(z) from the layer output, with ``frac`` fraction bits (see the module doc, step 3)."""
    one = 1 << frac
    if activation == "sigmoid":
        return round_shift(out * (one - out), frac, rounding)
    if activation == "tanh":
        return one - round_shift(out * out, frac, rounding)
    if activation == "relu":
        return np.where(out > 0, one, 0).astype(np.int64)
    return np.full_like(out, one)


@dataclass
class StepResult:
    outputs: np.ndarray                       # (n_out,) forward outputs before the update
    deltas: list = field(default_factory=list)  # per layer, (fan_out,)
    errors: list = field(default_factory=list)  # per layer, (fan_out,)
    saturations: int = 0


class FixedTrainer:
    """Trains a copy of a :class:`QModel` sample by sample, exactly as the hardware does."""

    def __init__(self, qmodel: QModel, spec: TrainSpec | None = None, parallel=None):
        self.spec = spec or TrainSpec()
        self.model = copy.deepcopy(qmodel)
        self.formats = layer_formats(self.model, self.spec)
        self.eta_int, self.eta_frac = self.spec.eta
        par = parallel if parallel is not None else [1] * len(self.model.layers)
        if isinstance(par, int):
            par = [par] * len(self.model.layers)
        self.folds = [Folding.of(layer.fan_in, layer.fan_out, p, l)
                      for l, (layer, p) in enumerate(zip(self.model.layers, par))]
        self._orders = [self._update_order(f) for f in self.folds]
        self.lfsrs = [{lane: LFSR(lane_seed(self.spec.seed, l, *lane)) for lane in order}
                      for l, order in enumerate(self._orders)]
        self.batch = self.spec.batch
        self.pending = 0        # training samples in the current mini-batch's sums
        self.sums = [(np.zeros_like(L.weights), np.zeros_like(L.biases)) for L in self.model.layers]
        self.saturations = 0
        self.samples = 0

    @staticmethod
    def _update_order(f: Folding) -> dict:
        """Per multiplier (p_out, p_in): the (neuron, input) it rounds, in order; input -1 is the bias."""
        order = {}
        for po in range(f.lanes_out):
            for pi in range(f.lanes_in):
                seq = [(g * f.lanes_out + po, c * f.lanes_in + pi) for c in range(f.chunks) for g in range(f.groups)]
                if pi == 0:
                    seq += [(g * f.lanes_out + po, -1) for g in range(f.groups)]
                order[(po, pi)] = (np.array([s[0] for s in seq], dtype=np.int64),
                                   np.array([s[1] for s in seq], dtype=np.int64))
        return order

    # -- one sample ---------------------------------------------------------------------
    def step(self, x, t) -> StepResult:
        """One SGD step on integer input ``x`` (n_in,) and integer target ``t`` (n_out,)."""
        q = self.model
        x = np.asarray(x, dtype=np.int64).reshape(1, -1)
        t = np.asarray(t, dtype=np.int64).reshape(-1)
        out, traces = q.predict(x, trace=True)
        acts = [x[0]] + [tr["out"][0] for tr in traces]
        res = StepResult(outputs=out[0].copy())
        res.deltas = [None] * len(q.layers)
        res.errors = [None] * len(q.layers)
        last = q.layers[-1]
        fe = self.formats[-1].err_fmt
        e, sat = overflow(round_shift(acts[-1] - t, self.formats[-1].output_error_shift, last.rounding),
                          fe, last.overflow)
        res.saturations += sat
        for l in range(len(q.layers) - 1, -1, -1):
            layer, fmts = q.layers[l], self.formats[l]
            d = derivative(fmts.derivative, acts[l + 1], layer.out_fmt.frac_bits, layer.rounding)
            delta, sat = overflow(round_shift(e * d, fmts.delta_shift, layer.rounding), fmts.delta_fmt,
                                  layer.overflow)
            res.saturations += sat
            res.errors[l], res.deltas[l] = e, delta
            if l > 0:  # error of the layer below, through the weights before the update
                below = self.formats[l - 1].err_fmt
                s = delta @ layer.weights
                e, sat = overflow(round_shift(s, fmts.error_below_shift, layer.rounding), below, layer.overflow)
                res.saturations += sat
            res.saturations += self._update(l, delta, acts[l])
        self.pending = (self.pending + 1) % self.batch
        self.saturations += res.saturations
        self.samples += 1
        return res

    def _update(self, l: int, delta: np.ndarray, a: np.ndarray) -> int:
        layer, fmts = self.model.layers[l], self.formats[l]
        g = delta * self.eta_int
        raw_w = g[:, None] * a[None, :]
        if self.batch > 1:   # mini-batch: sum the terms, update at the batch's last sample
            sw, sb = self.sums[l]
            if self.pending:
                raw_w, g = sw + raw_w, sb + g
            self.sums[l] = (raw_w, g)
            if self.pending != self.batch - 1:
                return 0
        k_w, k_b = fmts.weight_update_shift, fmts.bias_update_shift
        mode = self.spec.update_rounding
        if mode != "stochastic":
            dw = round_shift(raw_w, k_w, mode)
            db = round_shift(g, k_b, mode)
        else:
            dw = np.empty_like(raw_w)
            db = np.empty_like(g)
            for lane, (rows, cols) in self._orders[l].items():
                lfsr = self.lfsrs[l][lane]
                is_w = cols >= 0
                values = np.where(is_w, raw_w[rows, np.maximum(cols, 0)], g[rows])
                shifts = np.where(is_w, k_w, k_b)
                # one LFSR step per element, in order; each element uses its own shift
                states = lfsr.next_states(values.size).astype(np.int64)
                rounded = np.empty_like(values)
                for k in (int(v) for v in np.unique(shifts)):
                    sel = shifts == k
                    if k > 0:
                        u = states[sel] & ((1 << k) - 1) if k <= 32 else states[sel] << (k - 32)
                        rounded[sel] = (values[sel] + u) >> k
                    else:
                        rounded[sel] = values[sel] << (-k)
                dw[rows[is_w], cols[is_w]] = rounded[is_w]
                db[rows[~is_w]] = rounded[~is_w]
        w_new, sw = overflow(layer.weights - dw, layer.weight_fmt, layer.overflow)
        b_new, sb = overflow(layer.biases - db, layer.bias_fmt, layer.overflow)
        layer.weights, layer.biases = w_new, b_new
        return sw + sb

    # -- epochs ---------------------------------------------------------------------------
    def epoch(self, X, T, order=None) -> np.ndarray:
        """Train on every sample of ``X`` / ``T`` (in ``order``); returns each sample's forward outputs."""
        X = np.asarray(X, dtype=np.int64)
        T = np.asarray(T, dtype=np.int64)
        idx = np.arange(X.shape[0]) if order is None else np.asarray(order)
        return np.array([self.step(X[i], T[i]).outputs for i in idx])

    def run(self, X, T, train=None, readback=()) -> tuple[np.ndarray, dict]:
        """A stream of samples as the training hardware takes it, one after the other.

        Sample ``s`` is a training step when ``train[s]`` is set (default: every
        sample) and an inference otherwise. Returns every sample's forward outputs
        ``(n, n_out)`` and ``{s: flat parameters after sample s}`` for ``s`` in
        ``readback`` (the access port's order, :func:`~bp_hw.fixed.packing.flat_params`).
        """
        X = np.asarray(X, dtype=np.int64)
        T = np.asarray(T, dtype=np.int64)
        train = np.ones(len(X), dtype=np.int64) if train is None else np.asarray(train)
        points = {int(s) for s in readback}
        outputs, snapshots = [], {}
        for s in range(len(X)):
            if train[s]:
                outputs.append(self.step(X[s], T[s]).outputs)
            else:
                outputs.append(self.model.predict(X[s:s + 1])[0])
            if s in points:
                snapshots[s] = flat_params(self.model)
        return np.array(outputs, dtype=np.int64).reshape(len(X), -1), snapshots

    def spec_dict(self) -> dict:
        """What the hardware generator and the manifest need to know about training."""
        return spec_dict(self.spec, self.formats)


def spec_dict(spec: TrainSpec, formats: list[LayerTrainFormats]) -> dict:
    """A training spec with its derived learning rate and per-layer formats (the manifest's ``training.spec``)."""
    eta_int, eta_frac = spec.eta
    return {**spec.to_dict(), "eta_int": eta_int, "eta_frac": eta_frac, "layers": [f.to_dict() for f in formats]}


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of an epoch (host side; the hardware just takes the stream in this order)."""
    return np.random.default_rng([int(seed), 0x7EA1, int(epoch)]).permutation(n)
