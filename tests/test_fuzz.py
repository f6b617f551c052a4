"""Random designs (issue #15): the generator is valid, deterministic and covers what it promises; 20 random
designs (two of them training designs) match their specs in Verilator co-simulation and lint clean; corrupted
designs are reported with the command that reproduces them; every design the fuzzer caught is a named
regression test.

The co-simulation run's seed is ``BP_HW_FUZZ_SEED``; tests/conftest.py picks a new one for every session
that does not set it (so every CI run covers new designs) and prints it in the log's header; it is also in
the assertion message and in the test's ``fuzz_seed`` property.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import bp_hw.fuzz as fuzz
import bp_hw.hdl.emit as emit
from bp_hw import cli
from bp_hw.cosim.verify import random_vectors, verify
from bp_hw.errors import BpHwError
from bp_hw.fixed.folding import Folding, divisors
from bp_hw.fixed.qmodel import ACTIVATIONS, QModel
from bp_hw.fixed.rounding import ROUNDING_MODES
from bp_hw.fixed.trainer import COSTS
from bp_hw.fuzz import (INFERENCE_ROUNDING, MAX_BITS, MAX_FAN, MAX_LANES, MAX_LAYERS, MIN_BITS, FuzzDesign,
                        check_design, kind_of, legal_foldings, legal_parallel, lint_build, random_design, run_fuzz)
from bp_hw.plan.manifest import load_qmodel, read_manifest, write_manifest
from fixtures.simulators import need

N_DESIGNS = 20
N_VECTORS = 100
#: Of the CI run's 20 designs: training designs, and inference designs of more than 3 layers or a width
#: over 12 (their Verilog takes several times longer to build; benchmarks/bench_fuzz.py runs hundreds).
CI_TRAINING = 2
CI_LARGE = 1
FIXTURES = Path(__file__).parent / "fixtures" / "fuzz"


def run_seed() -> int:
    return int(os.environ["BP_HW_FUZZ_SEED"])


# -- the generator ---------------------------------------------------------------------------------------

def test_inference_designs_are_deterministic_valid_and_cover_every_option():
    seen = Counter()
    for seed in range(400):
        d = random_design(seed)
        again = random_design(seed)
        assert d.to_dict() == again.to_dict(), seed
        assert FuzzDesign.from_dict(json.loads(json.dumps(d.to_dict()))).to_dict() == d.to_dict(), seed
        q = d.qmodel
        assert QModel.from_dict(q.to_dict()).to_dict() == q.to_dict(), seed
        plan = d.plan()
        assert plan.kind == "inference" and len(plan.layers) == len(q.layers), seed
        assert 1 <= len(q.layers) <= MAX_LAYERS and all(1 <= n <= MAX_FAN for n in q.sizes), (seed, q.sizes)
        seen["unsigned_in"] += not q.input_fmt.signed
        seen[f"layers{len(q.layers)}"] += 1
        seen[f"class_{d.size_class}"] += 1
        seen["wide_prime"] += any(n > 12 and all(n % k for k in range(2, n)) for n in q.sizes)
        seen["fan_over_40"] += max(q.sizes) > 40
        seen[f"input_{d.input_mode}"] += 1
        seen[f"input_source_{plan.layers[0].input_source}"] += 1
        seen[f"weights_{d.weights if isinstance(d.weights, str) else 'list'}"] += 1
        seen[f"board_{d.board}"] += 1
        seen["no_taps"] += not d.taps
        seen["loaded"] += plan.load is not None
        seen["logic_multipliers"] += any(x.logic_multipliers for x in plan.layers)
        for layer, p, lp in zip(q.layers, d.parallel, plan.layers):
            f = Folding.of(layer.fan_in, layer.fan_out, p)
            assert p in legal_foldings(layer.fan_in, layer.fan_out) and f.lanes <= MAX_LANES
            assert lp.fold == f
            seen["oxi"] += isinstance(p, str)
            seen["p_in"] += f.lanes_in > 1
            for fmt in (layer.in_fmt, layer.weight_fmt, layer.out_fmt, layer.z_fmt):
                assert MIN_BITS <= fmt.width <= MAX_BITS, (seed, fmt)
            seen[layer.activation] += 1
            seen[layer.rounding] += 1
            seen[layer.overflow] += 1
            seen["unsigned_out"] += not layer.out_fmt.signed
            for m in lp.memories:
                seen[f"place_{m.kind}_{m.placement}"] += 1
            if layer.lut is not None:
                seen["sym"] += layer.lut.symmetric
                seen["interp"] += layer.lut.interpolate
                seen["lut_over_8_bits"] += layer.lut.addr_bits > 8
    # 400 seeds cover every option the generator offers.
    want = [*ACTIVATIONS, *INFERENCE_ROUNDING, "saturate", "symmetric", "wrap", "unsigned_in", "unsigned_out",
            "sym", "interp", "lut_over_8_bits", "oxi", "p_in", *(f"layers{n}" for n in range(1, 6)),
            "class_small", "class_medium", "class_large", "wide_prime", "fan_over_40",
            "input_None", "input_vector", "input_beats", "input_source_buffer", "input_source_payload",
            *(f"weights_{w}" for w in ("auto", "rom", "block", "logic", "spram", "list")),
            "board_None", "board_icebreaker", "board_ulx3s-85f", "no_taps", "loaded", "logic_multipliers",
            "place_weights_block", "place_weights_logic", "place_weights_spram", "place_weights_const"]
    assert not [w for w in want if not seen[w]], seen
    assert seen["class_small"] > seen["class_medium"] > seen["class_large"]


def test_training_designs_are_deterministic_valid_and_cover_every_option():
    seen = Counter()
    for seed in range(150):
        d = random_design(seed, "training")
        assert d.to_dict() == random_design(seed, "training").to_dict(), seed
        assert d.to_dict() != random_design(seed).to_dict()
        plan = d.plan()
        assert plan.kind == "training" and d.train is not None, seed
        assert 1 <= len(d.qmodel.layers) <= MAX_LAYERS and max(d.qmodel.sizes) <= MAX_FAN
        X, y = d.data_set()
        Xq, sat = d.qmodel.quantize_inputs(X)
        assert np.array_equal(d.qmodel.input_fmt.to_float(Xq), X)    # the data quantize exactly
        assert sorted(set(y.tolist())) == list(range(d.classes)) and d.classes <= max(2, d.qmodel.sizes[-1])
        t = d.train
        seen[t.update_rounding] += 1
        seen[t.cost] += 1
        seen[f"batch{t.batch}"] += 1
        seen["lr_shift" if t.lr.startswith("2^") else "lr_factor"] += 1
        seen["delta_format"] += t.delta_format is not None
        seen["error_format"] += t.error_format is not None
        seen["every_sample"] += d.every_sample
        seen[f"epochs{d.epochs}"] += 1
        seen["oxi"] += any(isinstance(p, str) for p in d.parallel)
        seen["unsigned_in"] += not d.qmodel.input_fmt.signed
        seen["deep"] += len(d.qmodel.layers) >= 4
        seen["wide"] += max(d.qmodel.sizes) > 12
        for layer in d.qmodel.layers:
            seen[layer.activation] += 1
    want = [*ROUNDING_MODES, *ACTIVATIONS, *COSTS, "batch1", "batch2", "batch4", "batch8", "lr_shift", "lr_factor", "delta_format", "error_format", "every_sample",
            "epochs1", "epochs2", "oxi", "unsigned_in", "deep", "wide"]
    assert not [w for w in want if not seen[w]], seen


def test_legal_parallel_lists_exactly_what_the_folding_accepts():
    for fan_in in range(1, 13):
        for fan_out in range(1, 13):
            ok = []
            for p in range(1, fan_in * fan_out + 1):
                try:
                    Folding.of(fan_in, fan_out, p)
                    ok.append(p)
                except BpHwError:
                    pass
            assert legal_parallel(fan_in, fan_out) == ok, (fan_in, fan_out)


@pytest.mark.parametrize("fan_in,fan_out", [(1, 1), (6, 4), (12, 12), (7, 13), (60, 84), (97, 100)])
def test_legal_foldings_are_every_folding_once(fan_in, fan_out):
    specs = legal_foldings(fan_in, fan_out)
    folds = [Folding.of(fan_in, fan_out, p) for p in specs]
    assert len(set(folds)) == len(folds) == len(divisors(fan_in)) * len(divisors(fan_out))
    assert {(f.lanes_out, f.lanes_in) for f in folds} == {(o, i) for o in divisors(fan_out) for i in divisors(fan_in)}
    assert all(f.spec == p for f, p in zip(folds, specs))   # the shortest spelling, round-tripped
    assert all(isinstance(p, int) for p in legal_parallel(fan_in, fan_out) if p in specs)
    capped = legal_foldings(fan_in, fan_out, 8)
    assert capped and all(Folding.of(fan_in, fan_out, p).lanes <= 8 for p in capped)


def test_kind_of_a_seed_follows_the_training_fraction():
    assert {kind_of(s, 0.0) for s in range(100)} == {"inference"}
    assert {kind_of(s, 1.0) for s in range(100)} == {"training"}
    share = sum(kind_of(s, 0.2) == "training" for s in range(2000)) / 2000
    assert 0.15 < share < 0.25
    assert [kind_of(s, 0.2) for s in range(50)] == [kind_of(s, 0.2) for s in range(50)]
    with pytest.raises(BpHwError, match="kind"):
        random_design(1, "both")


def test_lint_waivers_are_the_projects():
    from test_hdl_network import AMARANTH_WAIVERS
    assert list(fuzz.LINT_WAIVERS) == AMARANTH_WAIVERS


def test_reproduce_command_names_the_kind():
    assert fuzz.reproduce_command(7, "training", "verilator", 0.3, 100, "o") == \
        "bp-hw fuzz --designs 1 --seed 7 --train-fraction 1 --simulator verilator --stall 0.3 --vectors 100 --out o"
    assert "--train-fraction 0 " in fuzz.reproduce_command(7, "inference", "icarus", 0, 5, "o", lint=True)


def test_bad_fuzz_arguments_are_one_line(tmp_path, capsys):
    for argv, needle in ((["--designs", "0"], "--designs"), (["--train-fraction", "2"], "--train-fraction"),
                         (["--vectors", "0"], "--vectors"), (["--stall", "1"], "--stall")):
        rc = cli.main(["fuzz", *argv, "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert rc == 2 and needle in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


# -- random designs in co-simulation ----------------------------------------------------------------------

def _lanes(d: FuzzDesign) -> int:
    return sum(Folding.of(L.fan_in, L.fan_out, p).lanes for L, p in zip(d.qmodel.layers, d.parallel))


def _small(d: FuzzDesign) -> bool:
    """A design that builds in seconds: small widths, at most 3 layers, at most 32 lanes."""
    return d.size_class == "small" and len(d.qmodel.layers) <= 3 and _lanes(d) <= 32


def ci_designs(seed: int) -> list[tuple[int, str]]:
    """The CI run's designs, drawn from the generator from ``seed`` on: the first small ones of each kind,
    and the first inference design of 4-5 layers or wider layers (at most 64 lanes)."""
    out, s = [], seed
    want = {"inference": N_DESIGNS - CI_TRAINING - CI_LARGE, "training": CI_TRAINING, "large": CI_LARGE}
    while any(want.values()):
        for kind in ("inference", "training"):
            d = random_design(s, kind)
            key = kind if _small(d) else "large" if kind == "inference" and _lanes(d) <= 64 else None
            if key and want[key]:
                want[key] -= 1
                out.append((s, kind))
                break
        s += 1
    return out


def test_ci_designs_are_twenty_of_each_share():
    chosen = ci_designs(123_000)
    assert len(chosen) == N_DESIGNS == len({s for s, _ in chosen})
    assert sum(k == "training" for _, k in chosen) == CI_TRAINING
    assert sum(not _small(random_design(s, k)) for s, k in chosen) == CI_LARGE


@pytest.mark.slow
def test_random_designs_match_their_specs_in_verilator(tmp_path, record_property):
    need("verilator")
    seed = run_seed()
    record_property("fuzz_seed", seed)
    designs = ci_designs(seed)
    print(f"fuzz run seed {seed}: designs {designs}")
    results = run_fuzz(N_DESIGNS, seed, simulator="verilator", stall=0.3, vectors=N_VECTORS, out_dir=tmp_path,
                       lint=True, designs=designs)
    failed = [r for r in results if not r["ok"]]
    assert len(results) == N_DESIGNS
    assert all(r["vectors"] == N_VECTORS for r in results if r["kind"] == "inference")
    assert all(r["vectors"] == r["samples"] > 0 for r in results if r["kind"] == "training")
    assert not failed, (f"fuzz run seed {seed}: {len(failed)} of {N_DESIGNS} designs fail: "
                        + "; ".join(f"{r['seed']} {r['kind']} {r['sizes']} {r['formats']} P={r['parallel']} "
                                    f"{r['activations']} {r['io']} {r['memory']} lint={r['lint'][:1]} "
                                    f"first={r['first']} -> {r['reproduce']}" for r in failed))


def _corrupt_spec(build: Path) -> None:
    """The build's spec (qmodel.json) gets W_0[0, 0] changed and its digest rewritten: the hardware is
    the generated one, the checker's expectation is not."""
    manifest = read_manifest(build)
    bad = load_qmodel(manifest)
    w, fmt = bad.layers[0].weights, bad.layers[0].weight_fmt
    w[0, 0] = fmt.max_int if w[0, 0] != fmt.max_int else fmt.min_int
    bad.save(manifest.qmodel_path)
    write_manifest(replace(manifest, qmodel_sha256=hashlib.sha256(manifest.qmodel_path.read_bytes()).hexdigest()))


def _corrupting_generate(real):
    def gen(q, parallel, out_dir, **kw):
        manifest = real(q, parallel, out_dir, **kw)
        _corrupt_spec(Path(out_dir))
        return read_manifest(out_dir)
    return gen


def _sensitive_seed() -> int:
    """The first inference design seed whose layer-0 outputs change under the corruption."""
    for seed in range(100):
        q = random_design(seed).qmodel
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
    assert (f"bp-hw fuzz --designs 1 --seed {seed} --train-fraction 0 --simulator verilator --stall 0.3 "
            f"--vectors {N_VECTORS}") in out
    # The same build checked directly: verify pins the first failure to layer 0, neuron 0.
    build = tmp_path / f"design_{seed}"
    q = load_qmodel(read_manifest(build))
    v = verify(build, random_vectors(q.input_fmt, N_VECTORS, q.sizes[0], seed), "verilator", stall=0.3, seed=seed)
    assert not v.ok and v.tap_mismatches > 0
    assert v.first is not None and v.first.layer == 0 and v.first.neuron == 0


def _small_training_seed() -> int:
    """A cheap training design: one or two layers, no wider than 6."""
    for seed in range(1000):
        d = random_design(seed, "training")
        if len(d.qmodel.layers) <= 2 and max(d.qmodel.sizes) <= 6:
            return seed
    raise AssertionError("no small training design below seed 1000")


@pytest.mark.slow
def test_corrupted_training_design_is_reported_with_its_reproducer(tmp_path, monkeypatch, capsys):
    need("verilator")
    seed = _small_training_seed()
    monkeypatch.setattr(emit, "generate", _corrupting_generate(emit.generate))
    rc = cli.main(["fuzz", "--designs", "1", "--seed", str(seed), "--train-fraction", "1", "--json",
                   "--out", str(tmp_path)])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 1 and summary["failed"] == [seed]
    r = summary["results"][0]
    assert r["kind"] == "training" and r["weight_mismatches"] > 0 and not r["ok"]
    # the spec starts from the corrupted weight: the very first read-back differs there
    w = r["first_weight"]
    assert w["readback"] == 0 and w["layer"] == 0 and w["neuron"] == 0 and w["input"] == 0
    assert r["reproduce"].startswith(f"bp-hw fuzz --designs 1 --seed {seed} --train-fraction 1 ")


def test_lint_check_can_fail(tmp_path, monkeypatch):
    need("verilator")
    d = random_design(_sensitive_seed())
    d.generate(tmp_path / "b")
    assert lint_build(tmp_path / "b") == []
    monkeypatch.setattr(fuzz, "LINT_WAIVERS", ())   # Amaranth's own warning classes come back
    found = lint_build(tmp_path / "b")
    assert found and all(line.startswith("%Warning-") for line in found)


# -- regressions: designs the fuzzer caught, kept as fixtures (tests/fixtures/fuzz) -------------------------

def _fixture(name: str) -> FuzzDesign:
    return FuzzDesign.from_dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def test_seed_1005_relu_of_an_unsigned_z_lints_clean(tmp_path):
    """Generator v2 seed 1005 (11-9, ReLU with z in UQ5.9): the ReLU compared an unsigned z with 0, a
    constant comparison (Verilator UNSIGNED). An unsigned z now passes through."""
    need("verilator")
    d = _fixture("seed_1005")
    assert d.qmodel.layers[0].activation == "relu" and not d.qmodel.layers[0].z_fmt.signed
    d.generate(tmp_path / "b")
    assert lint_build(tmp_path / "b") == []


@pytest.mark.slow
def test_seed_1005_relu_of_an_unsigned_z_matches_in_verilator(tmp_path):
    need("verilator")
    r = check_design(_fixture("seed_1005"), tmp_path / "b", vectors=N_VECTORS)
    assert r["ok"], r


def test_seed_777003_one_entry_lut_lints_clean(tmp_path):
    """Generator v3 seed 777003 (4-9, sigmoid with a symmetric 1-address-bit table: one stored entry): the
    table's one-word memory had a zero-width address, which Amaranth writes as ``[-1:0]`` (Verilator
    ASCRANGE). A one-entry table is now a constant."""
    need("verilator")
    d = _fixture("seed_777003")
    lut = d.qmodel.layers[0].lut
    assert lut.symmetric and lut.addr_bits == 1 and not lut.interpolate
    d.generate(tmp_path / "b")
    assert lint_build(tmp_path / "b") == []


@pytest.mark.slow
def test_seed_777003_one_entry_lut_matches_in_verilator(tmp_path):
    need("verilator")
    r = check_design(_fixture("seed_777003"), tmp_path / "b", vectors=N_VECTORS)
    assert r["ok"], r


def test_per_layer_spram_weights_are_checked_like_spram_for_all(tmp_path):
    """A per-layer list naming SPRAM went unchecked: no device, or more SPRAM than it has, was planned anyway."""
    from bp_hw.plan.hardware import make_plan
    q = random_design(_sensitive_seed()).qmodel
    with pytest.raises(BpHwError, match="needs a device with SPRAM"):
        make_plan(q, 1, weights=["spram"] * len(q.layers))
    big = random_design(next(s for s in range(1000) if max(random_design(s).qmodel.sizes) > 40)).qmodel
    lanes = [f"{L.fan_out}x1" for L in big.layers]
    with pytest.raises(BpHwError, match="SPRAM blocks"):
        make_plan(big, lanes, device="iCE40UP5K", weights=["spram"] * len(big.layers))


@pytest.mark.parametrize("mode", INFERENCE_ROUNDING)
@pytest.mark.parametrize("shift", [5, 6, 7, 9])
def test_seed_500006_round_shift_past_the_top_matches_spec(mode, shift):
    """Training seed 500006 (6-5-3, 1x3,1x5, B4, lr 0.226 = 29/2^7) needs a rounding shift as wide as its
    value or wider; ``arith.round_parts`` indexed bit ``k - 1`` of the value and raised IndexError while
    building the design. A 6-bit value shifted by 5-9 now rounds as the spec does."""
    from amaranth.sim import Simulator
    from test_hdl_components import _Rescale
    from bp_hw.fixed.rounding import overflow, round_shift
    from bp_hw.fixed.qformat import QFormat
    fmt = QFormat(8, 0)
    dut = _Rescale(6, shift, mode, fmt, "saturate")
    xs = np.arange(-32, 32, dtype=np.int64)
    expected, _ = overflow(round_shift(xs, shift, mode), fmt, "saturate")
    got = []

    async def tb(ctx):
        for x in xs:
            ctx.set(dut.x, int(x))
            got.append(ctx.get(dut.y))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    np.testing.assert_array_equal(np.array(got), expected)


@pytest.mark.slow
def test_seed_500006_training_design_builds_and_matches_the_trainer(tmp_path):
    need("verilator")
    d = _fixture("seed_500006_training")
    assert d.kind == "training" and d.train.batch == 4
    r = check_design(d, tmp_path / "b", lint=True)
    assert r["ok"] and r["weight_mismatches"] == 0 and r["lint"] == [], r


@pytest.mark.slow
def test_seed_500013_training_products_in_logic_match_the_trainer(tmp_path):
    """5-7-4-7-3-4 on the iCEBreaker: past the 8 DSPs some products go to logic (3 cycles, not 2); the
    training layer's sideband must wait the lane's own product latency or the first output is wrong."""
    need("verilator")
    d = _fixture("seed_500013_training")
    assert d.kind == "training" and d.board == "icebreaker"
    assert any(x.logic_multipliers for x in d.plan().training.layers)
    r = check_design(d, tmp_path / "b", lint=True)
    assert r["ok"] and r["mismatches"] == 0 and r["weight_mismatches"] == 0 and r["lint"] == [], r


def test_a_design_that_crashes_is_a_failure_with_its_reproducer(tmp_path, monkeypatch, capsys):
    """A design whose generation raises (as seed 500006 did) is a row of the table, not the end of the run."""
    need("verilator")

    def broken(q, parallel, out_dir, **kw):
        raise IndexError("Index 18 is out of bounds for a 18-bit value")
    monkeypatch.setattr(emit, "generate", broken)
    rc = cli.main(["fuzz", "--designs", "2", "--seed", "5", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1 and out.count("ERROR") == 2
    assert "seed 5 error: IndexError: Index 18 is out of bounds" in out and "in broken)" in out
    assert "reproduce with: bp-hw fuzz --designs 1 --seed 6 --train-fraction 0" in out


def _first_output_after_a_back_to_back_load(plan, vector) -> list[int]:
    """Load the plan's image one word per cycle, present ``vector`` in the very next cycle, return the
    first output (Python simulator, the behavioural RAM)."""
    from amaranth.sim import Simulator
    from bp_hw.hdl.network import Network
    net = Network(plan, primitives=False)
    got = []

    async def tb(ctx):
        ctx.set(net.o.ready, 1)
        for addr, word in plan.load.image(plan):
            ctx.set(net.ld.payload.data, word)
            ctx.set(net.ld.payload.addr, addr)
            ctx.set(net.ld.valid, 1)
            await ctx.tick()
        ctx.set(net.ld.valid, 0)
        ctx.set(net.i.payload, [int(v) for v in vector])
        ctx.set(net.i.valid, 1)
        while not ctx.get(net.i.ready):
            await ctx.tick()
        await ctx.tick()
        ctx.set(net.i.valid, 0)
        for _ in range(10 * plan.standalone_latency + 100):
            if ctx.get(net.o.valid):
                got.extend(int(v) for v in ctx.get(net.o.payload))
                return
            await ctx.tick()

    sim = Simulator(net)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got


@pytest.mark.parametrize("name", ["seed_500039", "seed_500056", "seed_500079"])
def test_seeds_500039_500056_spram_vector_input_right_after_the_load(name):
    """Inference seeds 500039 (2-4, P 1x2), 500056 (7-2, P 1) and 500079 (12-10, P 2x2): weights in SPRAM,
    input as one vector.
    An input taken in the cycle after the last load transfer started its first weight read while that
    write still held the RAM's one address, so neuron 0 of the first sample came from an undefined word.
    The network now holds the input for that cycle."""
    d = _fixture(name)
    plan = d.plan()
    assert plan.load is not None and plan.layers[0].input_source == "payload"
    q = d.qmodel
    for x in random_vectors(q.input_fmt, 3, q.sizes[0], d.seed):
        assert _first_output_after_a_back_to_back_load(plan, x) == q.predict(x[None, :])[0].tolist()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["seed_500039", "seed_500056", "seed_500079"])
def test_seeds_500039_500056_spram_vector_input_match_in_verilator(name, tmp_path):
    need("verilator")
    r = check_design(_fixture(name), tmp_path / "b", stall=0.0, vectors=N_VECTORS)
    assert r["ok"], r
