"""Random designs: a seeded generator of valid inference configurations, checked in co-simulation.

:func:`random_design` turns a seed into a small quantized MLP (1-3 layers,
fan-in and fan-out 1-12, primes included) built directly from integer weights
and biases: every activation of :data:`~bp_hw.fixed.qmodel.ACTIVATIONS`,
weight/activation/input formats of 3-18 bits (unsigned inputs and outputs
where the integer model allows them), every deterministic rounding mode and
every overflow mode, LUT sizes and ranges, symmetric and interpolated tables,
and a legal ``P`` per layer (a divisor of fan-out, or fan-out times a divisor
of fan-in). A draw the model's constructors reject (a LUT too fine to
interpolate, say) is redrawn from the same random stream, so a seed always
names one design.

:func:`run_fuzz` generates each design into its own folder and verifies it
with :func:`bp_hw.cosim.verify.verify` (random stalls, random input vectors
over the whole input format). Design ``k`` of a run with seed ``S`` has design
seed ``S + k``, so a failing design is reproduced by
``bp-hw fuzz --designs 1 --seed S+k``.

This slice builds **inference designs only**; training designs (``generate
--train`` checked against the fixed-point trainer) are a later slice, and
:func:`random_design` always returns ``None`` as the training spec.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .errors import BpHwError
from .fixed.lut import LUT_FUNCTIONS, ActivationLUT
from .fixed.qformat import QFormat
from .fixed.qmodel import ACTIVATIONS, QLayer, QModel
from .fixed.rounding import OVERFLOW_MODES, ROUNDING_MODES

__all__ = ["INFERENCE_ROUNDING", "MIN_BITS", "MAX_BITS", "MAX_FAN", "MAX_LAYERS", "random_design",
           "legal_parallel", "describe_design", "run_fuzz", "reproduce_command"]

#: Rounding modes an inference rescale can use (stochastic rounding is for training updates).
INFERENCE_ROUNDING = tuple(m for m in ROUNDING_MODES if m != "stochastic")
MIN_BITS, MAX_BITS = 3, 18
MAX_FAN = 12
MAX_LAYERS = 3
#: Draws a seed may take before the generator gives up (a bug in the generator, not bad luck).
MAX_DRAWS = 100


def legal_parallel(fan_in: int, fan_out: int) -> list[int]:
    """Every ``P`` the folding accepts: divisors of fan_out, and fan_out times a divisor of fan_in."""
    divs = lambda n: [d for d in range(1, n + 1) if n % d == 0]  # noqa: E731
    return sorted(set(divs(fan_out)) | {fan_out * d for d in divs(fan_in)})


def _fmt(rng: np.random.Generator, signed: bool = True) -> QFormat:
    width = int(rng.integers(MIN_BITS, MAX_BITS + 1))
    lo = 1 if signed else 0
    int_bits = int(rng.integers(lo, min(width, 6) + 1))   # at least one fraction bit most of the time
    return QFormat(int_bits, width - int_bits, signed)


def _ints(rng: np.random.Generator, fmt: QFormat, shape) -> np.ndarray:
    """Integers of ``fmt``: over the whole range, or (more often) a narrower spread around 0."""
    if rng.random() < 0.3:
        return rng.integers(fmt.min_int, fmt.max_int + 1, size=shape, dtype=np.int64)
    spread = max(1, (fmt.max_int - fmt.min_int) >> int(rng.integers(1, 5)))
    v = rng.integers(-spread, spread + 1, size=shape, dtype=np.int64)
    return np.clip(v, fmt.min_int, fmt.max_int)


def _layer(rng: np.random.Generator, fan_in: int, fan_out: int, in_fmt: QFormat) -> QLayer:
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
        out_fmt = _fmt(rng, signed=activation == "tanh" or bool(rng.random() < 0.5))
        lut = ActivationLUT(function=activation, addr_bits=int(rng.integers(1, 9)),
                            in_range=float(2 ** int(rng.integers(0, 4))), in_fmt=z_fmt, out_fmt=out_fmt,
                            symmetric=bool(rng.random() < 0.5), interpolate=bool(rng.random() < 0.5),
                            rounding=str(rng.choice(INFERENCE_ROUNDING)))
    else:
        z_fmt = out_fmt = _fmt(rng, signed=activation == "identity" or bool(rng.random() < 0.5))
    return QLayer(weights=_ints(rng, weight_fmt, (fan_out, fan_in)), biases=_ints(rng, bias_fmt, (fan_out,)),
                  activation=activation, in_fmt=in_fmt, weight_fmt=weight_fmt, bias_fmt=bias_fmt, z_fmt=z_fmt,
                  out_fmt=out_fmt, rounding=rounding, overflow=ovf, lut=lut)


def _draw(rng: np.random.Generator) -> tuple[QModel, list[int]]:
    n_layers = int(rng.integers(1, MAX_LAYERS + 1))
    sizes = [int(rng.integers(1, MAX_FAN + 1)) for _ in range(n_layers + 1)]
    input_fmt = _fmt(rng, signed=bool(rng.random() < 0.7))
    layers, fmt = [], input_fmt
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        layer = _layer(rng, fan_in, fan_out, fmt)
        layers.append(layer)
        fmt = layer.out_fmt
    parallel = [int(rng.choice(legal_parallel(a, b))) for a, b in zip(sizes, sizes[1:])]
    q = QModel(layers=layers, input_fmt=input_fmt, norm_mean=np.zeros(sizes[0]), norm_std=np.ones(sizes[0]),
               n_classes=max(2, sizes[-1]), source={"fuzz": True})
    return q, parallel


def random_design(seed: int) -> tuple[QModel, list[int], None]:
    """The design of ``seed``: ``(qmodel, parallel, train_spec)``; the train spec is None (inference only).

    Draws the constructors reject are redrawn from the same stream (deterministic in the seed).
    """
    rng = np.random.default_rng([0xF022, int(seed)])
    last = None
    for _ in range(MAX_DRAWS):
        try:
            q, parallel = _draw(rng)
        except BpHwError as exc:
            last = exc
            continue
        q.source["fuzz_seed"] = int(seed)
        return q, parallel, None
    raise AssertionError(f"the fuzz generator made no valid design in {MAX_DRAWS} draws for seed {seed}: {last}")


def describe_design(q: QModel, parallel: list[int]) -> dict:
    """The columns of the fuzz table for one design."""
    return {
        "sizes": "-".join(map(str, q.sizes)),
        "formats": " ".join([q.input_fmt.name] + [f"{l.weight_fmt.name}/{l.out_fmt.name}" for l in q.layers]),
        "parallel": ",".join(map(str, parallel)),
        "activations": ",".join(
            l.activation + (f"[{l.lut.addr_bits}b{'s' if l.lut.symmetric else ''}{'i' if l.lut.interpolate else ''}]"
                            if l.lut is not None else "") for l in q.layers),
        "modes": ",".join(f"{l.rounding}/{l.overflow}" for l in q.layers),
    }


def reproduce_command(seed: int, simulator: str, stall: float, vectors: int, out_dir) -> str:
    return (f"bp-hw fuzz --designs 1 --seed {seed} --simulator {simulator} --stall {stall:g} "
            f"--vectors {vectors} --out {out_dir}")


def run_fuzz(n: int, seed: int, simulator: str = "verilator", stall: float = 0.3, vectors: int = 200,
             out_dir: str | Path = "fuzz", on_result=None) -> list[dict]:
    """Generate and co-simulate ``n`` random designs (seeds ``seed .. seed + n - 1``); one dict per design.

    Each dict has the design's seed and table columns, ``vectors``, ``mismatches`` (output vectors
    that differ, are missing or extra, plus tap mismatches), ``ok``, ``seconds``, the first mismatch
    (``first``, as :meth:`~bp_hw.cosim.verify.Mismatch.to_json`) and, when it failed, ``reproduce``.
    """
    from .cosim.verify import random_vectors, verify
    from .hdl.emit import generate

    if n < 1:
        raise BpHwError(f"--designs must be at least 1, got {n}")
    if vectors < 1:
        raise BpHwError(f"--vectors must be at least 1, got {vectors}")
    out_dir = Path(out_dir)
    results = []
    for k in range(n):
        s = seed + k
        t0 = time.perf_counter()
        q, parallel, _train = random_design(s)
        build = out_dir / f"design_{s}"
        generate(q, parallel, build, name=f"fuzz_{s}")
        x = random_vectors(q.input_fmt, vectors, q.sizes[0], s)
        v = verify(build, x, simulator, stall=stall, seed=s)
        r = {"seed": s, **describe_design(q, parallel), "vectors": v.vectors, "mismatches": v.mismatches,
             "missing": v.missing, "extra": v.extra, "tap_mismatches": v.tap_mismatches, "timed_out": v.timed_out,
             "ok": v.ok, "build": str(build), "seconds": round(time.perf_counter() - t0, 2),
             "first": v.first.to_json(q.input_fmt, q.output_fmt) if v.first is not None else None}
        if not v.ok:
            r["reproduce"] = reproduce_command(s, simulator, stall, vectors, out_dir)
        results.append(r)
        if on_result:
            on_result(r)
    return results
