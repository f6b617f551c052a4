"""The hardware plan and the manifest: numbers without gates, one schema for every build kind."""

import json
from pathlib import Path

import numpy as np
import pytest

from bp_hw.errors import BpHwError
from bp_hw.fixed.lfsr import DEFAULT_SEED, lane_seed
from bp_hw.fixed.packing import lane_weight_words, pack_word, unpack_word
from bp_hw.plan import BOARDS, DEVICES, make_plan, read_manifest
from bp_hw.plan.hardware import LAYER_PIPELINE, MAC_LATENCY, parse_parallel
from bp_hw.plan.manifest import MANIFEST_VERSION, Manifest, manifest_from_plan, plan_from_manifest, write_manifest
from bp_hw.train_start import seeded_qmodel


@pytest.fixture(scope="module")
def iris_q():
    return seeded_qmodel("iris", [4, 8, 3])[0]


def _build_dir(tmp_path, plan, name="net", **kw):
    """A build folder holding what the manifest names (an empty Verilog file and the qmodel)."""
    (tmp_path / f"{name}.v").write_text("")
    plan.qmodel.save(tmp_path / "qmodel.json")
    return manifest_from_plan(plan, name, tmp_path, qmodel="qmodel.json", **kw)


def test_parse_parallel():
    assert parse_parallel("8,3", 2) == [8, 3]
    assert parse_parallel(4, 3) == [4, 4, 4]
    with pytest.raises(BpHwError, match="lists 3 values"):
        parse_parallel("8,3,1", 2)
    with pytest.raises(BpHwError, match="P or OxI"):
        parse_parallel("a,b", 2)
    assert parse_parallel("4x2,5", 2) == ["4x2", 5]
    with pytest.raises(BpHwError, match="write P or OxI"):
        parse_parallel("4x,5", 2)


def test_explicit_folding_and_its_canonical_spelling(iris_q):
    """``OxI`` names both factors; the plan keeps the shortest spelling that gives it back."""
    plan = make_plan(iris_q, "2x2,3x1")
    f = plan.layers[0].fold
    assert (f.lanes_out, f.lanes_in, f.groups, f.chunks) == (2, 2, 4, 2)
    assert plan.parallel == ["2x2", 3]
    assert [x.fold for x in make_plan(iris_q, plan.parallel).layers] == [x.fold for x in plan.layers]
    with pytest.raises(BpHwError, match="3 does not divide the 8 neurons.*P_out can be 1, 2, 4, 8"):
        make_plan(iris_q, "3x1,3")
    with pytest.raises(BpHwError, match="valid: 1, 2, 4, 8, 16, 32"):
        make_plan(iris_q, "5,3")


def test_beats_input_buffer_plan(iris_q):
    """Beats of P_in elements, chunks beats per vector, a ping-pong buffer of 2 * chunks words."""
    plan = make_plan(iris_q, "2x2,3", input_mode="beats")
    assert plan.inp.beats == 2 and plan.inp.vector.elements == 2 and plan.inp.vector_elements == 4
    assert plan.layers[0].input_source == "buffer"
    buf = [m for m in plan.memories if m.kind == "buffer"]
    assert len(buf) == 1 and (buf[0].depth, buf[0].width) == (4, 2 * iris_q.input_fmt.width)
    assert make_plan(iris_q, 1).inp.beats == 1           # 64 bits: a vector by default
    with pytest.raises(BpHwError, match="input mode"):
        make_plan(iris_q, 1, input_mode="bytes")


@pytest.mark.parametrize("parallel, interval, multipliers", [(1, 32, 2), ("8,3", 8, 11), ("32,24", 1, 56)])
def test_inference_plan_figures(iris_q, parallel, interval, multipliers):
    plan = make_plan(iris_q, parallel)
    assert plan.kind == "inference"
    assert plan.interval == interval == max(-(-L.macs // p) for L, p in zip(iris_q.layers, plan.parallel))
    assert plan.multipliers == multipliers
    assert plan.mac_ops == 4 * 8 + 8 * 3
    # latency: each layer's pipeline (ROM, MAC lane, rescale, slot + activation), chained
    direct_lut = 2
    lane_sum = plan.layers[0].fold.lanes_in > 1         # several products a lane: their sum is registered
    assert plan.layers[0].latency == LAYER_PIPELINE + direct_lut + lane_sum == \
        1 + MAC_LATENCY + lane_sum + 3 + 1 + direct_lut
    assert plan.latency == sum(x.latency - 1 for x in plan.layers) + 1 + plan.layers[1].interval
    assert plan.standalone_latency == plan.latency + plan.layers[0].interval


def test_slots_in_bram_where_a_word_holds_whole_chunks(iris_q):
    p1 = make_plan(iris_q, 1)
    assert p1.mem_links == [True]
    assert [x.input_source for x in p1.layers] == ["payload", "bram"]
    assert p1.layers[1].in_word_chunks == 1 and p1.layers[1].in_groups == 8
    assert any(m.kind == "slots" and m.placement == "block" for m in p1.memories)
    p83 = make_plan(iris_q, "8,3")      # 8 neurons a word, 8 chunks of 1: registers cost less
    assert p83.mem_links == [False]
    assert not any(m.kind == "slots" for m in p83.memories)
    p12 = make_plan(iris_q, "1,1x2")    # a chunk of 2 inputs spans two words of 1 neuron: registers
    assert p12.mem_links == [False]
    wide = seeded_qmodel("iris", [4, 24, 3])[0]
    p41 = make_plan(wide, "4x1,1")      # a word of 4 neurons is 4 of the 24 chunks of the next layer
    assert p41.mem_links == [True]
    assert p41.layers[1].in_word_chunks == 4 and p41.layers[1].in_groups == 6
    assert p41.layers[1].word_latency == 1 and p1.layers[1].word_latency == 0   # the word is registered
    slots = next(m for m in p41.memories if m.kind == "slots")
    assert (slots.depth, slots.width) == (2 * 8, 4 * 16)   # two slots of 6 words, 8 words apart


def test_memories_follow_the_folding(iris_q):
    plan = make_plan(iris_q, "4,3")
    w0 = next(m for m in plan.memories if m.name == "layer0.weights")
    f = plan.layers[0].fold
    assert (w0.count, w0.depth, w0.width) == (f.lanes_out, f.groups * f.chunks, f.lanes_in * 16)
    assert w0.placement == "block"
    words = plan.layers[0].weight_words(1)
    assert len(words) == w0.depth
    # word g * chunks + c of lane p: weights of neuron g * P_out + p, inputs c * P_in ..
    L = iris_q.layers[0]
    for g in range(f.groups):
        for c in range(f.chunks):
            got = unpack_word(words[g * f.chunks + c], 16, f.lanes_in)
            assert got == L.weights[g * f.lanes_out + 1, c * f.lanes_in:(c + 1) * f.lanes_in].tolist()


def test_pack_word_round_trip():
    values = [-1, 5, -32768, 32767]
    assert unpack_word(pack_word(values, 16), 16, 4) == values
    assert pack_word([-1], 4) == 0xF


def test_lane_seeds_are_the_trainers(iris_q):
    plan = make_plan(iris_q, "8,3", train={"update_rounding": "stochastic", "seed": 7})
    seeds = plan.training.layers[1].lfsr_seeds
    assert seeds[(2, 0)] == 7 ^ (1 << 16) ^ (2 << 8)
    assert lane_seed(1 << 16, 1, 0, 0) == DEFAULT_SEED       # zero is replaced as the LFSR does
    from bp_hw.fixed.trainer import FixedTrainer, TrainSpec
    ref = FixedTrainer(iris_q, TrainSpec(update_rounding="stochastic", seed=7), [8, 3])
    assert {lane: lfsr.state for lane, lfsr in ref.lfsrs[1].items()} == seeds


def test_training_plan_figures(iris_q):
    plan = make_plan(iris_q, 1, train=True)
    t = plan.training
    assert plan.kind == "training" and plan.interval == t.train_cycles and plan.latency == t.infer_cycles
    assert t.access_depth == sum(L.macs + L.fan_out for L in iris_q.layers)
    amap = t.address_map()
    assert amap[1]["weights_base"] == 4 * 8 + 8 and amap[1]["biases_base"] == 40 + 24
    assert [x.name for x in plan.inp.fields] == ["x", "t", "train"]
    x, tt, flag = plan.inp.fields
    assert tt.offset == x.bits and flag.offset == x.bits + tt.bits and plan.inp.payload_width == flag.offset + 1
    # the widths the hardware sizes its registers by come from the spec
    fm = t.layers[1].formats
    assert fm.error_acc_width == fm.operand_a_width + fm.operand_b_width + 2 + 1   # fan_out 3: 2 guard bits


def test_plan_builds_no_component(iris_q):
    import sys
    before = {m for m in sys.modules if m.startswith("bp_hw.hdl")}
    make_plan(iris_q, "8,3", train=True)
    import bp_hw.plan.hardware as hw
    assert "amaranth" not in Path(hw.__file__).read_text()
    assert {m for m in sys.modules if m.startswith("bp_hw.hdl")} == before


BUILD_KINDS = {   # every kind of build the project makes: (parallel, training spec, board)
    "inference-P1": (1, None, None), "inference-P8,3": ("8,3", None, None),
    "training-P1": (1, True, None), "training-P8,3-stochastic": ("8,3", {"update_rounding": "stochastic"}, None),
    "inference-icebreaker": ("8,3", None, "icebreaker"), "inference-ulx3s-85f": (1, None, "ulx3s-85f"),
}


@pytest.mark.parametrize("kind", sorted(BUILD_KINDS))
def test_manifest_round_trips_every_build_kind(tmp_path, iris_q, kind):
    par, train, board = BUILD_KINDS[kind]
    plan = make_plan(iris_q, par, train=train, taps=True, device=board)
    m = _build_dir(tmp_path, plan, board=board)
    write_manifest(m)
    back = read_manifest(tmp_path)
    assert back.to_json() == m.to_json()
    assert json.loads((tmp_path / "manifest.json").read_text())["version"] == MANIFEST_VERSION
    assert back.kind == plan.kind and back.interval_cycles == plan.interval
    assert back.inp.payload_width == plan.inp.payload_width
    if plan.training is None:
        assert back.inp.elements == 4 and back.out.elements == 3 and len(back.taps) == 2
        assert back.device == (BOARDS[board].device if board else None)
    else:
        assert back.inp.elements is None and back.inp.field("t").elements == 3 and not back.taps
        assert back.training.cycles_per_train_sample == plan.training.train_cycles
    # the plan a build was made from comes back from its manifest
    again = plan_from_manifest(back)
    assert again.interval == plan.interval and again.kind == plan.kind and again.parallel == plan.parallel


def _write_raw(tmp_path, obj):
    (tmp_path / "net.v").write_text("")
    (tmp_path / "manifest.json").write_text(json.dumps(obj))


def test_manifest_of_another_version_is_one_line(tmp_path, iris_q):
    m = _build_dir(tmp_path, make_plan(iris_q, 1)).to_json()
    for version, expect in ((1, "manifest version 1"), (99, "manifest version 99"), (None, "version None")):
        _write_raw(tmp_path, {**m, "version": version})
        with pytest.raises(BpHwError, match=expect) as exc:
            read_manifest(tmp_path)
        assert "\n" not in str(exc.value)
    _write_raw(tmp_path, {"name": "x"})
    with pytest.raises(BpHwError, match="not a bp-hw manifest"):
        read_manifest(tmp_path)


def test_manifest_errors_name_what_the_user_gave(tmp_path):
    with pytest.raises(BpHwError, match="/nonexistent/build does not exist"):
        read_manifest("/nonexistent/build")
    with pytest.raises(BpHwError, match=f"no manifest.json in {tmp_path}"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(BpHwError, match="not a readable JSON manifest"):
        read_manifest(tmp_path)


def test_manifest_rejects_bad_port_names(tmp_path, iris_q):
    m = _build_dir(tmp_path, make_plan(iris_q, 1)).to_json()
    m["ports"]["in"]["payload"] = "i payload; drop"
    _write_raw(tmp_path, m)
    with pytest.raises(BpHwError, match="not a plain Verilog identifier"):
        read_manifest(tmp_path)


def test_qmodel_digest_is_checked(tmp_path, iris_q):
    from bp_hw.plan import load_qmodel
    m = _build_dir(tmp_path, make_plan(iris_q, 1))
    m.qmodel_sha256 = "0" * 64
    with pytest.raises(BpHwError, match="changed since the hardware was generated"):
        load_qmodel(m)


def test_board_registry_is_consistent():
    for b in BOARDS.values():
        assert b.device in DEVICES and b.fpga.family in ("ice40", "ecp5")
        assert b.default_mhz > 0 and b.board_clock_hz > 0
