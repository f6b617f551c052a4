"""Fast tests of the co-simulation plumbing that need no simulator run."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

from bp_hw.cosim import tools
from bp_hw.cosim.check import compare_arrays
from bp_hw.cosim.harness import harness_verilog
from bp_hw.cosim.hexio import check_range, pack_hex, read_log
from bp_hw.cosim.runner import payload_hex
from bp_hw.errors import BpHwError
from bp_hw.plan.hardware import make_plan
from bp_hw.plan.manifest import manifest_from_plan
from bp_hw.train_start import seeded_qmodel


@pytest.mark.parametrize("width,elements", [(16, 4), (13, 3), (64, 2), (1, 5), (7, 1)])
def test_hex_round_trip(tmp_path, width, elements):
    rng = np.random.default_rng(width)
    hi = (1 << (width - 1)) if width < 64 else np.iinfo(np.int64).max
    x = rng.integers(-(1 << (width - 1)), hi, size=(50, elements), dtype=np.int64)
    lines = pack_hex(x, width).decode().split()
    for line, row in zip(lines, x):
        assert int(line, 16) == sum((int(v) & ((1 << width) - 1)) << (k * width) for k, v in enumerate(row))
    log = tmp_path / "log.txt"
    log.write_text("".join(f"{i:016x} {line}\n" for i, line in enumerate(lines)))
    cycles, values, unknown = read_log(log, elements, width, True)
    assert np.array_equal(values, x) and np.array_equal(cycles, np.arange(50)) and not unknown.any()


def test_unknown_bits_are_flagged(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text(f"{0:016x} 0001000200030004\n{1:016x} 00010002000x0004\n")
    _, values, unknown = read_log(log, 4, 16, True)
    assert unknown.tolist() == [False, True]
    assert values[0].tolist() == [4, 3, 2, 1]


def test_range_check():
    assert check_range(np.array([[-8, 7]]), 4, True, "x").dtype == np.int64
    with pytest.raises(BpHwError, match="does not fit"):
        check_range(np.array([[8]]), 4, True, "x")
    with pytest.raises(BpHwError, match="integers"):
        check_range(np.array([[0.5]]), 4, True, "x")


def test_compare_recognises_stream_faults():
    exp = np.arange(40).reshape(20, 2)
    assert compare_arrays(exp, exp).ok
    lost = compare_arrays(exp, np.delete(exp, 5, axis=0))
    assert not lost.ok and lost.missing == 1 and lost.first_mismatch == 5 and "lost" in lost.hints[0]
    dup = compare_arrays(exp, np.insert(exp, 6, exp[5], axis=0))
    assert not dup.ok and dup.extra == 1 and "duplicated" in dup.hints[0]
    swapped = exp.copy()
    swapped[[3, 4]] = swapped[[4, 3]]
    sw = compare_arrays(exp, swapped)
    assert sw.mismatched.tolist() == [3, 4] and "swapped" in sw.hints[0]
    wrong = exp.copy()
    wrong[7, 1] += 1
    w = compare_arrays(exp, wrong)
    assert w.mismatched.tolist() == [7] and w.first_element == 1 and not w.hints


def _manifest(tmp_path, parallel="1", train=None, taps=True):
    q, _, _ = seeded_qmodel("xor", [2, 3, 1])
    plan = make_plan(q, parallel, train=train, taps=taps)
    return manifest_from_plan(plan, "net", tmp_path)


def test_inference_harness_connects_the_manifests_ports_and_taps(tmp_path):
    m = _manifest(tmp_path)
    text = harness_verilog(m)
    assert "(inference body)" in text and f"    {m.toplevel} dut (" in text
    for port in (m.inp, m.out):
        assert f".{port.payload}(" in text and f".{port.valid}(" in text and f".{port.ready}(" in text
    for k, tap in enumerate(m.taps):
        assert f".{tap.payload}(tap{k}_data)" in text and f"tap{k}_file" in text
    assert "localparam IN_BITS = 32;" in text and "w_file" not in text


def test_training_harness_reads_the_access_port_from_the_manifest(tmp_path):
    m = _manifest(tmp_path, train=True)
    acc = m.training.access
    text = harness_verilog(m)
    assert "(training body)" in text and f".{m.training.busy}(busy)" in text
    for key in ("addr", "wdata", "we", "rdata"):
        assert f".{acc[key]}(acc_{key})" in text
    assert f"localparam DEPTH = {acc['depth']};" in text and f"localparam LAT = {acc['read_latency']};" in text
    assert f"localparam IN_BITS = {m.inp.payload_width};" in text and "tap0" not in text


def test_wide_elements_are_refused(tmp_path):
    m = _manifest(tmp_path, taps=False)
    wide = replace(m, out=replace(m.out, fields=(replace(m.out.fields[0], width=65),)))
    with pytest.raises(BpHwError, match="65-bit"):
        harness_verilog(wide)


def test_training_payload_fields_are_packed_where_the_manifest_says(tmp_path):
    m = _manifest(tmp_path, train=True)
    x, t, train = np.array([[1, -32768], [0, 5]]), np.array([[4096], [-1]]), np.array([1, 0])
    words = [int(line, 16) for line in payload_hex(m.inp, {"x": x, "t": t, "train": train}).decode().split()]
    fx, ft, fb = m.inp.field("x"), m.inp.field("t"), m.inp.field("train")
    assert (words[0] >> fx.offset) & 0xFFFF == 1 and (words[0] >> (fx.offset + fx.width)) & 0xFFFF == 0x8000
    assert (words[0] >> ft.offset) & 0xFFFF == 4096 and (words[1] >> ft.offset) & 0xFFFF == 0xFFFF
    assert [(w >> fb.offset) & 1 for w in words] == [1, 0] and all(w >> m.inp.payload_width == 0 for w in words)
    with pytest.raises(BpHwError, match="shape"):
        payload_hex(m.inp, {"x": x, "t": t[:1], "train": train})
    with pytest.raises(BpHwError, match="does not fit"):
        payload_hex(m.inp, {"x": x, "t": t, "train": np.array([2, 0])})


def test_verilator_found_without_setup(monkeypatch):
    monkeypatch.delenv("VERILATOR_ROOT", raising=False)
    tools._find_verilator.cache_clear()
    try:
        info = tools.find_simulator("verilator")
    except BpHwError as exc:
        pytest.skip(str(exc))
    finally:
        tools._find_verilator.cache_clear()
    assert info.version >= (5, 36)
    assert os.environ["VERILATOR_ROOT"] == info.root
    assert os.path.join(info.root, "bin") in os.environ["PATH"].split(os.pathsep)


def test_missing_simulator_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    tools._find_icarus.cache_clear()
    try:
        with pytest.raises(BpHwError) as err:
            tools.find_simulator("icarus")
    finally:
        tools._find_icarus.cache_clear()
    message = str(err.value)
    assert "\n" not in message and "apt-get install iverilog" in message
    with pytest.raises(BpHwError, match="choose one of"):
        tools.find_simulator("modelsim")
