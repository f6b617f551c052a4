"""Random designs: a seeded generator of valid configurations, each checked in co-simulation.

:func:`random_design` turns a seed and a kind (``"inference"`` or
``"training"``) into one :class:`FuzzDesign`: a quantized MLP built directly
from integer weights and biases, and everything ``generate`` takes for it.

* **Shape**: 1-5 layers, fan-in and fan-out 1-100 with primes drawn on
  purpose. Most designs are small (every width 1-12: one co-simulates in
  seconds), some medium (up to 40), a few large (a layer of 41-100).
* **Arithmetic**: every activation of :data:`~bp_hw.fixed.qmodel.ACTIVATIONS`;
  weight, bias, activation and input formats of 3-18 bits, unsigned inputs
  and outputs where the integer model allows them; every deterministic
  rounding mode and every overflow mode; LUT sizes (1-10 address bits),
  ranges, symmetric and interpolated tables.
* **Hardware**: a folding per layer drawn from *every* legal one
  (:func:`legal_foldings`: ``P_out`` a divisor of fan-out times ``P_in`` a
  divisor of fan-in, spelt as :attr:`Folding.spec` gives it, ``OxI`` where an
  int cannot say it), up to :data:`MAX_LANES` lanes a layer, foldings of many
  lanes less often (:data:`LANE_BIAS`); input as one vector, as beats into the input buffer, or the plan's default; weights where
  the plan can put them (``auto``, ``rom``, ``block``, ``logic``, ``spram`` or a
  list per layer; SPRAM on the iCEBreaker's iCE40UP5K, loaded through the load
  port); no board, or a board whose DSP count may push products into logic;
  with or without taps.
* **Training designs** (``generate --train``, checked against
  :class:`~bp_hw.fixed.trainer.FixedTrainer` by
  :func:`bp_hw.cosim.train_verify.verify_training`): the same shapes (smaller
  on average), a random :class:`~bp_hw.fixed.trainer.TrainSpec` (learning
  rate a shift or a fixed-point factor, every update rounding including
  stochastic, LFSR seed, delta and error formats, cost mse or cross-entropy,
  mini-batch of 1-8) and a random data set of integer inputs written next to
  the build.

A draw a constructor rejects (a LUT too fine to interpolate, say) is redrawn
from the same random stream, so a seed and a kind always name one design.

:func:`run_fuzz` generates each design into its own folder and checks it:
inference designs with :func:`bp_hw.cosim.verify.verify` (random stalls,
random input vectors over the whole input format, every tap compared),
training designs with :func:`~bp_hw.cosim.train_verify.verify_training`
(outputs of every sample, every weight read back after every epoch or
sample); with ``lint`` also Verilator ``--lint-only -Wall`` with
:data:`LINT_WAIVERS`. Design ``k`` of a run with seed ``S`` has design seed
``S + k``; it is a training design when :func:`kind_of` says so for the run's
training fraction, and ``bp-hw fuzz --designs 1 --seed S+k --train-fraction 1``
(or ``0``) reproduces it alone (:func:`reproduce_command`).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import BpHwError
from .fixed.folding import Folding, divisors
from .fixed.lut import LUT_FUNCTIONS, ActivationLUT
from .fixed.qformat import QFormat
from .fixed.qmodel import ACTIVATIONS, QLayer, QModel
from .fixed.rounding import OVERFLOW_MODES, ROUNDING_MODES
from .fixed.trainer import COSTS, TrainSpec

__all__ = ["KINDS", "INFERENCE_ROUNDING", "MIN_BITS", "MAX_BITS", "MAX_FAN", "MAX_LAYERS", "MAX_LANES",
           "WEIGHT_CHOICES", "BOARD_CHOICES", "LINT_WAIVERS", "FuzzDesign", "legal_parallel", "legal_foldings",
           "GENERATOR_VERSION", "kind_of", "random_design", "lint_build", "check_design", "run_fuzz",
           "reproduce_command"]

KINDS = ("inference", "training")
#: Rounding modes an inference rescale can use (stochastic rounding is for training updates).
INFERENCE_ROUNDING = tuple(m for m in ROUNDING_MODES if m != "stochastic")
MIN_BITS, MAX_BITS = 3, 18
MAX_FAN = 100
MAX_LAYERS = 5
#: Most lanes one layer gets (a fully parallel 12 x 12 layer; wider layers fold).
MAX_LANES = 144
#: A folding of ``L`` lanes is drawn with weight ``L ** -LANE_BIAS``.
LANE_BIAS = 0.5
#: Size classes: (share of designs, largest fan, smallest fan of the layer that makes the class).
SIZE_CLASSES = {"inference": ((0.72, 12, 1), (0.20, 40, 13), (0.08, 100, 41)),
                "training": ((0.85, 12, 1), (0.12, 40, 13), (0.03, 100, 41))}
PRIMES = tuple(n for n in range(2, MAX_FAN + 1) if all(n % d for d in range(2, int(n ** 0.5) + 1)))
WEIGHT_CHOICES = ("auto", "rom", "block", "logic", "spram", "per-layer")
#: Boards a design may be planned for (None: no device). A board's DSP count can move products into
#: logic; SPRAM weights need the iCEBreaker.
BOARD_CHOICES = (None, "icebreaker", "ulx3s-85f")
SPRAM_BOARD = "icebreaker"
#: Verilator -Wall warning classes Amaranth's Verilog back end produces for any design (the project's
#: list, tests/test_hdl_network.py): context-widened expressions (WIDTHEXPAND, WIDTHTRUNC),
#: ``reg x = init;`` declarations (PROCASSINIT), unused bits of its intermediate wires (UNUSEDSIGNAL)
#: and hierarchical module names (DECLFILENAME). The FPGA primitives' simulation models (Yosys's
#: cells_sim.v) are not ours and are not linted.
LINT_WAIVERS = ("WIDTHEXPAND", "WIDTHTRUNC", "PROCASSINIT", "UNUSEDSIGNAL", "DECLFILENAME")
#: Verilator's C++ optimisation for fuzz builds: each design runs for well under a second, and
#: ``-O0`` compiles a design's own code several times faster than the default ``-Os``.
FUZZ_CXX_OPT = "-O0"
#: Changes whenever a seed would name another design than before (reproduce commands hold within one).
GENERATOR_VERSION = 4
#: Mini-batch sizes of training designs (1: a step per sample), drawn alike.
TRAIN_BATCHES = (1, 1, 2, 4, 8)
#: Draws a seed may take before the generator gives up (a bug in the generator, not bad luck).
MAX_DRAWS = 200
#: The run's share of training designs is decided from this stream, apart from the designs' own.
_KIND_STREAM = 0xF023


@dataclass
class FuzzDesign:
    """One random design: the model and every argument of :func:`bp_hw.hdl.emit.generate` for it.

    Training designs also carry their data set's size and the run's shape (epochs, read-back
    after every sample or every epoch).
    """

    seed: int
    kind: str
    qmodel: QModel
    parallel: list                      # per layer: int or "OxI" (Folding.spec)
    input_mode: str | None = None       # inference: "vector", "beats" or None (the plan's default)
    weights: str | list = "auto"        # inference: one placement or one per layer
    board: str | None = None
    taps: bool = True
    train: TrainSpec | None = None
    samples: int = 0                    # training: rows of the random data set
    classes: int = 0
    epochs: int = 0
    every_sample: bool = False
    size_class: str = "small"
    notes: dict = field(default_factory=dict)

    @property
    def device(self) -> str | None:
        from .plan.boards import board  # noqa: PLC0415 - the registry only when planning
        return board(self.board).device if self.board else None

    def plan(self):
        """The design's :class:`~bp_hw.plan.hardware.HardwarePlan` (no gates)."""
        from .plan.hardware import make_plan  # noqa: PLC0415
        return make_plan(self.qmodel, self.parallel, device=self.device, train=self.train, taps=self.taps,
                         input_mode=self.input_mode, weights=self.weights)

    def generate(self, out_dir: str | Path):
        """Write the design (and, for training, its data set ``data.npz``) into ``out_dir``."""
        from .hdl.emit import generate  # noqa: PLC0415 - amaranth only when building
        manifest = generate(self.qmodel, self.parallel, out_dir, name=f"fuzz_{self.seed}", taps=self.taps,
                            train=self.train, device=self.device, input_mode=self.input_mode,
                            weights=self.weights)
        if self.kind == "training":
            X, y = self.data_set()
            np.savez(Path(out_dir) / "data.npz", X=X, y=y)
        return manifest

    def data_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Training data: inputs that quantize exactly to random integers of the input format, and
        labels with every one of the ``classes`` classes present."""
        rng = np.random.default_rng([0xDA7A, self.seed])
        fmt = self.qmodel.input_fmt
        X = fmt.to_float(_ints(rng, fmt, (self.samples, self.qmodel.sizes[0])))
        y = np.concatenate([np.arange(self.classes), rng.integers(0, self.classes, self.samples - self.classes)])
        return np.asarray(X, dtype=np.float64).reshape(self.samples, -1), rng.permutation(y)

    def to_dict(self) -> dict:
        """The design as JSON (a regression fixture keeps a failing design whatever the generator becomes)."""
        return {"generator": GENERATOR_VERSION, "seed": self.seed, "kind": self.kind,
                "qmodel": self.qmodel.to_dict(), "parallel": list(self.parallel), "input_mode": self.input_mode,
                "weights": self.weights if isinstance(self.weights, str) else list(self.weights),
                "board": self.board, "taps": self.taps, "train": self.train.to_dict() if self.train else None,
                "samples": self.samples, "classes": self.classes, "epochs": self.epochs,
                "every_sample": self.every_sample, "size_class": self.size_class}

    @classmethod
    def from_dict(cls, d: dict) -> "FuzzDesign":
        d = dict(d)
        d.pop("generator", None)
        d["qmodel"] = QModel.from_dict(d["qmodel"])
        d["train"] = TrainSpec.from_dict(d["train"]) if d.get("train") else None
        return cls(**d)

    def describe(self) -> dict:
        """The columns of the fuzz table."""
        q = self.qmodel
        if self.kind == "training":
            t = self.train
            mode = f"{t.cost} B{t.batch} lr {t.lr} {t.update_rounding}" + \
                (" d" + t.delta_format if t.delta_format else "") + (" e" + t.error_format if t.error_format else "")
            memory = f"{self.epochs}ep x {self.samples}" + (" every" if self.every_sample else "")
        else:
            mode = self.input_mode or "default"
            memory = self.weights if isinstance(self.weights, str) else "/".join(self.weights)
        return {
            "kind": self.kind,
            "sizes": "-".join(map(str, q.sizes)),
            "formats": " ".join([q.input_fmt.name] + [f"{l.weight_fmt.name}/{l.out_fmt.name}" for l in q.layers]),
            "parallel": ",".join(map(str, self.parallel)),
            "activations": ",".join(
                l.activation + (f"[{l.lut.addr_bits}b{'s' if l.lut.symmetric else ''}"
                                f"{'i' if l.lut.interpolate else ''}]" if l.lut is not None else "")
                for l in q.layers),
            "modes": ",".join(f"{l.rounding}/{l.overflow}" for l in q.layers),
            "io": mode,
            "memory": memory,
            "board": self.board or "-",
        }


# -- drawing -------------------------------------------------------------------------------------------

def legal_parallel(fan_in: int, fan_out: int) -> list[int]:
    """Every int ``P`` the folding accepts: divisors of fan_out, and fan_out times a divisor of fan_in."""
    return sorted(set(divisors(fan_out)) | {fan_out * d for d in divisors(fan_in)})


def legal_foldings(fan_in: int, fan_out: int, max_lanes: int | None = None) -> list:
    """Every folding of the layer (``P_out`` | fan_out, ``P_in`` | fan_in) as the shortest spelling
    :meth:`Folding.of` takes back (:attr:`Folding.spec`), up to ``max_lanes`` lanes."""
    out = []
    for p_out in divisors(fan_out):
        for p_in in divisors(fan_in):
            if max_lanes is None or p_out * p_in <= max_lanes:
                out.append(Folding.of(fan_in, fan_out, f"{p_out}x{p_in}").spec)
    return out


def kind_of(seed: int, train_fraction: float) -> str:
    """Whether design ``seed`` of a run with this share of training designs is a training design."""
    if train_fraction <= 0:
        return "inference"
    if train_fraction >= 1:
        return "training"
    return "training" if np.random.default_rng([_KIND_STREAM, int(seed)]).random() < train_fraction \
        else "inference"


def _fmt(rng: np.random.Generator, signed: bool = True, max_int_bits: int = 6) -> QFormat:
    width = int(rng.integers(MIN_BITS, MAX_BITS + 1))
    lo = 1 if signed else 0
    int_bits = int(rng.integers(lo, min(width, max_int_bits) + 1))   # at least one fraction bit mostly
    return QFormat(int_bits, width - int_bits, signed)


def _ints(rng: np.random.Generator, fmt: QFormat, shape) -> np.ndarray:
    """Integers of ``fmt``: over the whole range, or (more often) a narrower spread around 0."""
    if rng.random() < 0.3:
        return rng.integers(fmt.min_int, fmt.max_int + 1, size=shape, dtype=np.int64)
    spread = max(1, (fmt.max_int - fmt.min_int) >> int(rng.integers(1, 5)))
    v = rng.integers(-spread, spread + 1, size=shape, dtype=np.int64)
    return np.clip(v, fmt.min_int, fmt.max_int)


def _fan(rng: np.random.Generator, lo: int, hi: int) -> int:
    """A width in ``[lo, hi]``, a prime a quarter of the time when the range has one."""
    primes = [p for p in PRIMES if lo <= p <= hi]
    if primes and rng.random() < 0.25:
        return int(rng.choice(primes))
    return int(rng.integers(lo, hi + 1))


def _sizes(rng: np.random.Generator, kind: str) -> tuple[list[int], str]:
    n_layers = int(rng.integers(1, MAX_LAYERS + 1))
    shares = SIZE_CLASSES[kind]
    c = int(rng.choice(len(shares), p=[s for s, _, _ in shares]))
    _, hi, lo_big = shares[c]
    sizes = [_fan(rng, 1, hi) for _ in range(n_layers + 1)]
    if lo_big > 1:   # the width that puts the design in its class
        sizes[int(rng.integers(0, n_layers + 1))] = _fan(rng, lo_big, hi)
    return sizes, ("small", "medium", "large")[c]


def _layer(rng: np.random.Generator, fan_in: int, fan_out: int, in_fmt: QFormat, signed_out: bool) -> QLayer:
    activation = str(rng.choice(ACTIVATIONS))
    weight_fmt = _fmt(rng)
    product_frac = in_fmt.frac_bits + weight_fmt.frac_bits
    bias_width = int(rng.integers(MIN_BITS, MAX_BITS + 1))
    bias_frac = int(rng.integers(max(0, bias_width - 8), max(0, bias_width - 8) + 9))
    bias_frac = min(bias_frac, product_frac, bias_width - 1)
    bias_fmt = QFormat(bias_width - bias_frac, bias_frac)
    rounding = str(rng.choice(INFERENCE_ROUNDING))
    ovf = str(rng.choice(OVERFLOW_MODES))
    lut = None
    if activation in LUT_FUNCTIONS:
        z_fmt = _fmt(rng)
        out_fmt = _fmt(rng, signed=signed_out or activation == "tanh" or bool(rng.random() < 0.5))
        addr_bits = int(rng.integers(1, 9)) if rng.random() < 0.9 else int(rng.integers(9, 11))
        lut = ActivationLUT(function=activation, addr_bits=addr_bits,
                            in_range=float(2 ** int(rng.integers(0, 4))), in_fmt=z_fmt, out_fmt=out_fmt,
                            symmetric=bool(rng.random() < 0.5), interpolate=bool(rng.random() < 0.5),
                            rounding=str(rng.choice(INFERENCE_ROUNDING)))
    else:
        z_fmt = out_fmt = _fmt(rng, signed=signed_out or activation == "identity" or bool(rng.random() < 0.5))
    return QLayer(weights=_ints(rng, weight_fmt, (fan_out, fan_in)), biases=_ints(rng, bias_fmt, (fan_out,)),
                  activation=activation, in_fmt=in_fmt, weight_fmt=weight_fmt, bias_fmt=bias_fmt, z_fmt=z_fmt,
                  out_fmt=out_fmt, rounding=rounding, overflow=ovf, lut=lut)


def _model(rng: np.random.Generator, sizes: list[int], signed_out: bool) -> QModel:
    input_fmt = _fmt(rng, signed=bool(rng.random() < 0.7))
    layers, fmt = [], input_fmt
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        layer = _layer(rng, fan_in, fan_out, fmt, signed_out)
        layers.append(layer)
        fmt = layer.out_fmt
    return QModel(layers=layers, input_fmt=input_fmt, norm_mean=np.zeros(sizes[0]), norm_std=np.ones(sizes[0]),
                  n_classes=max(2, sizes[-1]), source={"fuzz": True})


def _spram_blocks(q: QModel, parallel: list, layers) -> int:
    """SPRAM blocks the weights of ``layers`` take on the iCEBreaker (the plan's count)."""
    from .plan.boards import board  # noqa: PLC0415
    dev = board(SPRAM_BOARD).fpga
    need = 0
    for l in layers:
        L = q.layers[l]
        f = Folding.of(L.fan_in, L.fan_out, parallel[l], l)
        if f.cycles > 1:
            need += f.lanes_out * dev.spram_blocks(f.cycles, f.lanes_in * L.weight_fmt.width)
    return need


def _placement(rng: np.random.Generator, q: QModel, parallel: list) -> tuple[str | list, str | None]:
    """Weights and board of an inference design: SPRAM only where the iCEBreaker's 4 blocks hold it."""
    from .plan.boards import board  # noqa: PLC0415
    n = len(q.layers)
    choice = str(rng.choice(WEIGHT_CHOICES))
    board_name = BOARD_CHOICES[int(rng.integers(0, len(BOARD_CHOICES)))]
    sprams = board(SPRAM_BOARD).fpga.sprams
    if choice == "spram":
        if _spram_blocks(q, parallel, range(n)) <= sprams:
            return "spram", SPRAM_BOARD
        choice = "auto"
    if choice != "per-layer":
        return choice, board_name
    places = [str(rng.choice(("rom", "block", "logic", "spram"))) for _ in range(n)]
    spram = [l for l, w in enumerate(places) if w == "spram"]
    while spram and _spram_blocks(q, parallel, spram) > sprams:
        places[spram.pop()] = "rom"
    return places, (SPRAM_BOARD if spram else board_name)


def _train_spec(rng: np.random.Generator) -> TrainSpec:
    if rng.random() < 0.5:
        lr = f"2^-{int(rng.integers(0, 6))}"
    else:
        lr = f"{float(rng.uniform(0.05, 1.0)):.3f}"
    fmt = lambda: _fmt(rng, max_int_bits=4).name  # noqa: E731 - signed, a few integer bits
    return TrainSpec(lr=lr, lr_bits=int(rng.integers(6, 15)), update_rounding=str(rng.choice(ROUNDING_MODES)),
                     seed=int(rng.integers(1, 1 << 16)),
                     delta_format=fmt() if rng.random() < 0.4 else None,
                     error_format=fmt() if rng.random() < 0.4 else None,
                     cost=str(rng.choice(COSTS)), batch=int(rng.choice(TRAIN_BATCHES)))


def _draw(rng: np.random.Generator, seed: int, kind: str) -> FuzzDesign:
    sizes, size_class = _sizes(rng, kind)
    train = _train_spec(rng) if kind == "training" else None
    # without an error format of their own, the layers' output formats are the error formats: signed
    q = _model(rng, sizes, signed_out=train is not None and train.error_format is None)
    parallel = []
    for a, b in zip(sizes, sizes[1:]):
        choices = legal_foldings(a, b, MAX_LANES)
        # every folding can come up, the many-lane ones less often (their Verilog takes longest to build)
        w = np.array([Folding.of(a, b, p).lanes ** -LANE_BIAS for p in choices])
        parallel.append(choices[int(rng.choice(len(choices), p=w / w.sum()))])
    d = FuzzDesign(seed, kind, q, parallel, train=train, size_class=size_class)
    if kind == "inference":
        d.input_mode = (None, "vector", "beats")[int(rng.integers(0, 3))]
        d.weights, d.board = _placement(rng, q, parallel)
        d.taps = bool(rng.random() < 0.85)
    else:
        d.board = BOARD_CHOICES[int(rng.integers(0, len(BOARD_CHOICES)))]
        d.classes = int(rng.integers(2, max(2, min(sizes[-1], 6)) + 1))
        d.samples = int(rng.integers(max(6, 2 * d.classes), 25))
        d.epochs = int(rng.integers(1, 3))
        d.every_sample = bool(rng.random() < 0.3)
    d.plan()   # a draw the plan refuses is redrawn
    return d


def random_design(seed: int, kind: str = "inference") -> FuzzDesign:
    """The design of ``seed`` and ``kind`` (deterministic in both; rejected draws are redrawn)."""
    if kind not in KINDS:
        raise BpHwError(f"design kind {kind!r}: use one of {', '.join(KINDS)}")
    rng = np.random.default_rng([0xF022, int(seed), KINDS.index(kind)])
    last = None
    for _ in range(MAX_DRAWS):
        try:
            d = _draw(rng, int(seed), kind)
        except BpHwError as exc:
            last = exc
            continue
        d.qmodel.source["fuzz_seed"] = int(seed)
        d.qmodel.source["fuzz_kind"] = kind
        return d
    raise AssertionError(f"the fuzz generator made no valid {kind} design in {MAX_DRAWS} draws for seed "
                         f"{seed}: {last}")


# -- checking ---------------------------------------------------------------------------------------

def lint_build(build_dir: str | Path) -> list[str]:
    """Verilator ``--lint-only -Wall`` (less :data:`LINT_WAIVERS`) on a build's Verilog; the warnings
    and errors it reports (empty when clean). Primitive models the design instantiates are read but
    not linted."""
    from .cosim.primitives import primitive_models, primitives_of  # noqa: PLC0415
    from .hdl.dsp import UNCONNECTED_INPUTS  # noqa: PLC0415
    from .cosim.tools import find_simulator  # noqa: PLC0415
    from .plan.manifest import read_manifest  # noqa: PLC0415
    manifest = read_manifest(build_dir)
    exe = find_simulator("verilator").executable
    with tempfile.TemporaryDirectory(prefix="bp_hw_lint_") as tmp:
        files = [str(p) for p in manifest.verilog]
        prims = primitive_models(manifest)
        if prims:
            model = Path(tmp) / "primitives.v"
            model.write_text(prims)
            config = Path(tmp) / "waive_primitives.vlt"
            # the primitives' pins left unconnected on purpose (bp_hw.hdl.dsp.UNCONNECTED_INPUTS)
            waive = "".join(f'lint_off -rule PINMISSING -file "*" -match "*missing pin: \'{pin}\'"\n'
                            for _, cell in primitives_of(manifest) for pin in UNCONNECTED_INPUTS.get(cell, ()))
            config.write_text(f'`verilator_config\nlint_off -file "{model}"\n{waive}')
            files = [str(config), *files, str(model)]
        cmd = [exe, "--lint-only", "-Wall", *[f"-Wno-{w}" for w in LINT_WAIVERS], *files,
               "--top-module", manifest.toplevel]
        res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    found = [line for line in re.findall(r"^%(?:Warning|Error)[^\n]*", res.stderr, re.M)
             if not line.startswith("%Error: Exiting due to")]
    if res.returncode != 0 and not found:
        found = [res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"]
    return found


def reproduce_command(seed: int, kind: str, simulator: str, stall: float, vectors: int, out_dir,
                      lint: bool = False) -> str:
    """The one command that runs design ``seed`` of ``kind`` alone, as the run did."""
    return (f"bp-hw fuzz --designs 1 --seed {seed} --train-fraction {int(kind == 'training')} "
            f"--simulator {simulator} --stall {stall:g} --vectors {vectors}" + (" --lint" if lint else "")
            + f" --out {out_dir}")


def _check_inference(d: FuzzDesign, build: Path, simulator: str, stall: float, vectors: int) -> dict:
    from .cosim.verify import random_vectors, verify  # noqa: PLC0415
    q = d.qmodel
    x = random_vectors(q.input_fmt, vectors, q.sizes[0], d.seed)
    v = verify(build, x, simulator, stall=stall, seed=d.seed)
    return {"vectors": v.vectors, "mismatches": v.mismatches + v.extra + v.tap_mismatches, "missing": v.missing,
            "extra": v.extra, "tap_mismatches": v.tap_mismatches, "timed_out": v.timed_out, "ok": v.ok,
            "cycles": v.cycles,
            "first": v.first.to_json(q.input_fmt, q.output_fmt) if v.first is not None else None}


def _check_training(d: FuzzDesign, build: Path, simulator: str, stall: float) -> dict:
    from .cosim.train_verify import verify_training  # noqa: PLC0415
    s = verify_training(build, str(build / "data.npz"), epochs=d.epochs, simulator=simulator, stall=stall,
                        seed=d.seed, every_sample=d.every_sample, test_fraction=0.25)
    first = s["first_output_mismatch"] or s["first_weight_mismatch"]
    return {"vectors": s["outputs_received"], "samples": s["samples"] + s["inference_samples"],
            "mismatches": s["output_mismatches"] + s["weight_mismatches"],
            "output_mismatches": s["output_mismatches"], "weight_mismatches": s["weight_mismatches"],
            "readbacks": s["readbacks"], "timed_out": s["timed_out"], "ok": s["ok"], "cycles": s["cycles"],
            "first": first, "first_output": s["first_output_mismatch"], "first_weight": s["first_weight_mismatch"]}


def run_fuzz(n: int, seed: int, simulator: str = "verilator", stall: float = 0.3, vectors: int = 200,
             out_dir: str | Path = "fuzz", train_fraction: float = 0.0, lint: bool = False,
             on_result=None, designs: list[tuple[int, str]] | None = None,
             cxx_opt: str | None = FUZZ_CXX_OPT) -> list[dict]:
    """Generate and check ``n`` random designs (seeds ``seed .. seed + n - 1``); one dict per design.

    Design ``s`` is a training design when :func:`kind_of` says so for ``train_fraction``
    (``designs``, a list of ``(seed, kind)``, names the designs instead of ``n`` and ``seed``).
    Each dict has the design's seed, kind and table columns, ``vectors`` (inference: input vectors; training: outputs received),
    ``mismatches`` (inference: output vectors that differ or are extra, plus tap mismatches;
    training: outputs and parameter values that differ), ``lint`` (the warnings, with ``lint``),
    ``ok``, ``seconds``, the first mismatch (``first``) and, when it failed, ``reproduce``. A design
    whose generation or check raises is a failure too, with ``error`` saying what and where.

    ``cxx_opt``: how Verilator's C++ of each design is optimised for this run
    (:data:`~bp_hw.cosim.runner.OPT_VARIABLE`; None: as for any build), unless the environment
    already says.
    """
    if n < 1 and designs is None:
        raise BpHwError(f"--designs must be at least 1, got {n}")
    if vectors < 1:
        raise BpHwError(f"--vectors must be at least 1, got {vectors}")
    if not 0.0 <= train_fraction <= 1.0:
        raise BpHwError(f"--train-fraction must be in [0, 1], got {train_fraction}")
    if not 0.0 <= stall < 1.0:
        raise BpHwError(f"--stall must be in [0, 1), got {stall}")
    from .cosim.tools import find_simulator  # noqa: PLC0415
    find_simulator(simulator)   # a missing simulator is the user's to fix, not a finding about a design
    out_dir = Path(out_dir)
    with _cxx_opt(cxx_opt):
        todo = designs if designs is not None else [(s, kind_of(s, train_fraction)) for s in range(seed, seed + n)]
        return _run(todo, simulator, stall, vectors, out_dir, lint, on_result)


@contextlib.contextmanager
def _cxx_opt(value: str | None):
    from .cosim.runner import OPT_VARIABLE  # noqa: PLC0415
    if value is None or os.environ.get(OPT_VARIABLE):
        yield
        return
    os.environ[OPT_VARIABLE] = value
    try:
        yield
    finally:
        os.environ.pop(OPT_VARIABLE, None)


def check_design(d: FuzzDesign, build: str | Path, simulator: str = "verilator", stall: float = 0.3,
                 vectors: int = 200, lint: bool = False) -> dict:
    """Generate ``d`` into ``build`` and check it (see :func:`run_fuzz` for the dict)."""
    t0 = time.perf_counter()
    build = Path(build)
    d.generate(build)
    if d.kind == "training":
        r = _check_training(d, build, simulator, stall)
    else:
        r = _check_inference(d, build, simulator, stall, vectors)
    r = {"seed": d.seed, **d.describe(), "size_class": d.size_class, **r, "build": str(build)}
    if lint:
        r["lint"] = lint_build(build)
        r["ok"] = r["ok"] and not r["lint"]
    r["seconds"] = round(time.perf_counter() - t0, 2)
    return r


def _crash(d: FuzzDesign, build: Path, exc: Exception, seconds: float) -> dict:
    """The row of a design whose generation or check raised: a failure like a mismatch, with where."""
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return {"seed": d.seed, **d.describe(), "size_class": d.size_class, "vectors": 0, "samples": 0,
            "mismatches": 0, "ok": False, "lint": [], "first": None, "build": str(build),
            "error": f"{type(exc).__name__}: {exc} ({Path(frame.filename).name}:{frame.lineno} in {frame.name})",
            "seconds": round(seconds, 2)}


def _run(todo, simulator, stall, vectors, out_dir, lint, on_result) -> list[dict]:
    results = []
    for s, kind in todo:
        d = random_design(s, kind)
        t0 = time.perf_counter()
        try:
            r = check_design(d, out_dir / f"design_{s}", simulator, stall, vectors, lint)
        except Exception as exc:  # noqa: BLE001 - a design that crashes the flow is a finding: report it
            r = _crash(d, out_dir / f"design_{s}", exc, time.perf_counter() - t0)
        if not r["ok"]:
            r["reproduce"] = reproduce_command(s, kind, simulator, stall, vectors, out_dir, lint)
        results.append(r)
        if on_result:
            on_result(r)
    return results
