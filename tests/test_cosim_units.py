"""Fast tests of the co-simulation plumbing that need no simulator run."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bp_hw.cosim import tools
from bp_hw.cosim.check import compare_arrays
from bp_hw.cosim.harness import harness_verilog
from bp_hw.cosim.hexio import check_range, pack_hex, read_log
from bp_hw.cosim.manifest import load_manifest
from bp_hw.errors import BpHwError


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


def _manifest(tmp_path, **extra):
    (tmp_path / "net.v").write_text("module net; endmodule\n")
    obj = {"name": "net", "ports": {
        "in": {"payload": "i__payload", "valid": "i__valid", "ready": "i__ready", "elements": 4, "width": 16},
        "out": {"payload": "o__payload", "valid": "o__valid", "ready": "o__ready", "elements": 3, "width": 16}},
        **extra}
    (tmp_path / "manifest.json").write_text(json.dumps(obj))
    return load_manifest(tmp_path)


def test_manifest_defaults_and_taps(tmp_path):
    m = _manifest(tmp_path, taps=[{"name": "l0", "payload": "t_l0__payload", "valid": "t_l0__valid",
                                   "elements": 8, "width": 16}])
    assert m.toplevel == "net" and m.clock == "clk" and m.reset == "rst" and m.reset_active_high
    assert m.inp.bits == 64 and m.out.signed and m.taps[0].name == "l0"
    text = harness_verilog(m)
    assert ".t_l0__payload(t_l0__payload_w)" in text and "tap0_file" in text


def test_manifest_errors_are_one_line(tmp_path):
    with pytest.raises(BpHwError, match="no manifest.json"):
        load_manifest(tmp_path)
    with pytest.raises(BpHwError, match="ready"):
        _manifest(tmp_path, ports={"in": {"payload": "a", "valid": "b", "elements": 1, "width": 8},
                                   "out": {"payload": "c", "valid": "d", "ready": "e", "elements": 1, "width": 8}})


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
