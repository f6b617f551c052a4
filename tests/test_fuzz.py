"""Random designs (issue #15, first slice): the generator is valid and deterministic, 20 random designs
match their integer models in Verilator co-simulation, and a corrupted design is reported with its reproducer.

The co-simulation run's seed is ``BP_HW_FUZZ_SEED``; tests/conftest.py picks a new one for every session
that does not set it (so every CI run covers new designs) and prints it in the log's header; it is also in
the assertion message and in the test's ``fuzz_seed`` property.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import numpy as np
import pytest

import bp_hw.hdl.emit as emit
from bp_hw import cli
from bp_hw.cosim.verify import random_vectors, verify
from bp_hw.fixed.qmodel import ACTIVATIONS, QModel
from bp_hw.fixed.folding import Folding
from bp_hw.fuzz import INFERENCE_ROUNDING, MAX_BITS, MIN_BITS, legal_parallel, random_design, run_fuzz
from bp_hw.plan.hardware import make_plan
from bp_hw.plan.manifest import load_qmodel, read_manifest, write_manifest
from fixtures.simulators import need

N_DESIGNS = 20
N_VECTORS = 100


def run_seed() -> int:
    return int(os.environ["BP_HW_FUZZ_SEED"])


def test_generator_is_deterministic_and_every_design_is_valid():
    seen = {"activations": set(), "rounding": set(), "overflow": set(), "unsigned_in": 0, "sym": 0, "interp": 0,
            "p_in": 0}
    for seed in range(200):
        q, parallel, train = random_design(seed)
        q2, parallel2, _ = random_design(seed)
        assert train is None
        assert q.to_dict() == q2.to_dict() and parallel == parallel2, seed
        assert QModel.from_dict(q.to_dict()).to_dict() == q.to_dict(), seed
        plan = make_plan(q, parallel)
        assert plan.kind == "inference" and len(plan.layers) == len(q.layers), seed
        assert 1 <= len(q.layers) <= 3 and all(1 <= n <= 12 for n in q.sizes), (seed, q.sizes)
        seen["unsigned_in"] += not q.input_fmt.signed
        for layer, p in zip(q.layers, parallel):
            assert p in legal_parallel(layer.fan_in, layer.fan_out)
            Folding.of(layer.fan_in, layer.fan_out, p)
            seen["p_in"] += p > layer.fan_out
            for fmt in (layer.in_fmt, layer.weight_fmt, layer.out_fmt, layer.z_fmt):
                assert MIN_BITS <= fmt.width <= MAX_BITS, (seed, fmt)
            seen["activations"].add(layer.activation)
            seen["rounding"].add(layer.rounding)
            seen["overflow"].add(layer.overflow)
            if layer.lut is not None:
                seen["sym"] += layer.lut.symmetric
                seen["interp"] += layer.lut.interpolate
    # 200 seeds cover every option the generator offers.
    assert seen["activations"] == set(ACTIVATIONS)
    assert seen["rounding"] == set(INFERENCE_ROUNDING)
    assert seen["overflow"] == {"saturate", "symmetric", "wrap"}
    assert min(seen["unsigned_in"], seen["sym"], seen["interp"], seen["p_in"]) > 0, seen
    assert [random_design(s)[1] for s in range(5)] != [random_design(s)[1] for s in range(5, 10)]


def test_legal_parallel_lists_exactly_what_the_folding_accepts():
    for fan_in in range(1, 13):
        for fan_out in range(1, 13):
            ok = []
            for p in range(1, fan_in * fan_out + 1):
                try:
                    Folding.of(fan_in, fan_out, p)
                    ok.append(p)
                except Exception:
                    pass
            assert legal_parallel(fan_in, fan_out) == ok, (fan_in, fan_out)


@pytest.mark.slow
def test_random_designs_match_their_integer_models_in_verilator(tmp_path, record_property):
    need("verilator")
    seed = run_seed()
    record_property("fuzz_seed", seed)
    results = run_fuzz(N_DESIGNS, seed, simulator="verilator", stall=0.3, vectors=N_VECTORS, out_dir=tmp_path)
    failed = [r for r in results if not r["ok"]]
    assert len(results) == N_DESIGNS and all(r["vectors"] == N_VECTORS for r in results)
    assert not failed, (f"fuzz run seed {seed}: {len(failed)} of {N_DESIGNS} designs mismatch: "
                        + "; ".join(f"{r['seed']} {r['sizes']} {r['formats']} P={r['parallel']} "
                                    f"{r['activations']} -> {r['reproduce']}" for r in failed))


def _corrupting_generate(real):
    """``generate``, then the build's spec (qmodel.json) gets W_0[0, 0] changed and its digest rewritten."""
    def gen(q, parallel, out_dir, **kw):
        manifest = real(q, parallel, out_dir, **kw)
        bad = load_qmodel(manifest)
        w = bad.layers[0].weights
        fmt = bad.layers[0].weight_fmt
        w[0, 0] = fmt.max_int if w[0, 0] != fmt.max_int else fmt.min_int
        bad.save(manifest.qmodel_path)
        write_manifest(replace(manifest, qmodel_sha256=hashlib.sha256(manifest.qmodel_path.read_bytes()).hexdigest()))
        return manifest
    return gen


def _sensitive_seed() -> int:
    """The first design seed whose layer-0 outputs change under the corruption (so a mismatch must show)."""
    for seed in range(100):
        q, _, _ = random_design(seed)
        x = random_vectors(q.input_fmt, N_VECTORS, q.sizes[0], seed)
        bad = QModel.from_dict(q.to_dict())
        fmt = bad.layers[0].weight_fmt
        w = bad.layers[0].weights
        w[0, 0] = fmt.max_int if w[0, 0] != fmt.max_int else fmt.min_int
        if (q.predict(x, trace=True)[1][0]["out"] != bad.predict(x, trace=True)[1][0]["out"]).any():
            return seed
    raise AssertionError("no design seed below 100 is sensitive to the corruption")


@pytest.mark.slow
def test_corrupted_design_is_reported_with_its_reproducer(tmp_path, monkeypatch, capsys):
    need("verilator")
    seed = _sensitive_seed()
    monkeypatch.setattr(emit, "generate", _corrupting_generate(emit.generate))
    rc = cli.main(["fuzz", "--designs", "1", "--seed", str(seed), "--vectors", str(N_VECTORS),
                   "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "MISMATCH" in out
    assert f"bp-hw fuzz --designs 1 --seed {seed} --simulator verilator --stall 0.3 --vectors {N_VECTORS}" in out
    # The same build checked directly: verify pins the first failure to layer 0, neuron 0.
    build = tmp_path / f"design_{seed}"
    q = load_qmodel(read_manifest(build))
    v = verify(build, random_vectors(q.input_fmt, N_VECTORS, q.sizes[0], seed), "verilator", stall=0.3, seed=seed)
    assert not v.ok and v.tap_mismatches > 0
    assert v.first is not None and v.first.layer == 0 and v.first.neuron == 0
