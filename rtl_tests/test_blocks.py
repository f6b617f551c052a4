"""Per-block co-simulation: each block emitted to Verilog from Amaranth, run on Verilator and Icarus.

MAC lane and activation unit through classic cocotb benches (``tb_mac.py``,
``tb_activation.py``: one await per clock); the layer engine and the network
through the free-running stream harness (:mod:`bp_hw.cosim.harness`), checked
in bulk. Every expectation comes from the integer model in ``bp_hw.fixed``.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog

from bp_hw.cosim.check import compare_outputs, first_tap_mismatch
from bp_hw.cosim.manifest import write_manifest
from bp_hw.cosim.runner import run_vectors
from bp_hw.cosim.verify import random_vectors, verify
from bp_hw.fileio import write_text
from bp_hw.hdl.activation import ActivationUnit
from bp_hw.hdl.arith import shape_of
from bp_hw.hdl.emit import generate
from bp_hw.hdl.layer import LayerEngine
from bp_hw.hdl.mac import MACLane
from conftest import SIM_BUILD
from models import block_model, save_model

pytestmark = pytest.mark.slow

MODELS_DIR = SIM_BUILD / "models"
#: Icarus runs ~30x slower than Verilator: fewer vectors there.
VECTORS = {"verilator": 2000, "icarus": 150}


def _write_if_changed(path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        write_text(path, text)


@pytest.mark.parametrize("model,layer,lanes_in", [("net", 1, 2), ("relu", 0, 3)])
def test_mac_lane(cocotb_bench, model, layer, lanes_in):
    path = save_model(model, MODELS_DIR)
    ql = block_model(model).layers[layer]
    mac = MACLane(shape_of(ql.weight_fmt), shape_of(ql.in_fmt), shape_of(ql.bias_fmt), ql.bias_shift,
                  ql.acc_width, lanes_in)
    name = f"rtl_mac_{model}{layer}_p{lanes_in}"
    cocotb_bench(verilog.convert(mac, name=name, emit_src=False), name, "tb_mac",
                 env={"BP_QMODEL": str(path), "BP_LAYER": str(layer), "BP_LANES_IN": str(lanes_in),
                      "BP_SAMPLES": "30", "BP_STALL": "0.3"})


@pytest.mark.parametrize("model,layer", [("net", 0), ("interp", 1), ("relu", 0)],
                         ids=["sigmoid-symmetric", "sigmoid-interpolated", "relu"])
def test_activation_unit(cocotb_bench, simulator, model, layer):
    path = save_model(model, MODELS_DIR)
    unit = ActivationUnit(block_model(model).layers[layer])
    name = f"rtl_act_{model}{layer}"
    samples = "3000" if simulator == "verilator" else "600"
    cocotb_bench(verilog.convert(unit, name=name, emit_src=False), name, "tb_activation",
                 env={"BP_QMODEL": str(path), "BP_LAYER": str(layer), "BP_SAMPLES": samples, "BP_STALL": "0.3"})


def _layer_build(model: str, layer: int, parallel: int):
    """Emit one LayerEngine with a manifest the stream harness understands."""
    ql = block_model(model).layers[layer]
    engine = LayerEngine(ql, parallel, layer)
    name = f"rtl_layer_{model}{layer}_p{parallel}"
    folder = SIM_BUILD / name
    folder.mkdir(parents=True, exist_ok=True)
    _write_if_changed(folder / f"{name}.v", verilog.convert(engine, name=name, emit_src=False))

    def port(prefix, n, fmt):
        return {"payload": f"{prefix}__payload", "valid": f"{prefix}__valid", "ready": f"{prefix}__ready",
                "elements": n, "width": fmt.width, "signed": fmt.signed}

    write_manifest(folder, {"name": name, "ports": {"in": port("i", ql.fan_in, ql.in_fmt),
                                                    "out": port("o", ql.fan_out, ql.out_fmt)},
                            "latency_cycles": engine.latency, "interval_cycles": engine.interval})
    return folder, ql, engine


@pytest.mark.parametrize("stall", [0.0, 0.3])
@pytest.mark.parametrize("model,layer,parallel", [("net", 0, 2), ("relu", 0, 14)])
def test_layer_engine(simulator, model, layer, parallel, stall):
    folder, ql, engine = _layer_build(model, layer, parallel)
    x = random_vectors(ql.in_fmt, VECTORS[simulator], ql.fan_in, seed=7)
    expected = ql.forward(x)["out"]
    result = run_vectors(folder, x, simulator, stall=stall, seed=3)
    report = compare_outputs(expected, result)
    assert report.ok, report.describe(ql.out_fmt.width)
    if stall == 0:
        # The documented timing holds when nothing stalls.
        assert result.latency_cycles == engine.latency
        steady = np.diff(result.output_cycles.astype(np.int64))
        assert np.all(steady == engine.interval), np.unique(steady)


NETWORKS = [("net", "2,3"), ("interp", "1"), ("relu", "14,2")]


@pytest.mark.parametrize("stall", [0.0, 0.3])
@pytest.mark.parametrize("model,parallel", NETWORKS, ids=[f"{m}-P{p}" for m, p in NETWORKS])
def test_network(simulator, model, parallel, stall):
    path = save_model(model, MODELS_DIR)
    folder = SIM_BUILD / f"rtl_net_{model}_p{parallel.replace(',', '_')}"
    if not (folder / "manifest.json").is_file() or _stale(folder, path):
        generate(path, parallel, folder, name=f"rtl_net_{model}")
    q = block_model(model)
    x = random_vectors(q.input_fmt, VECTORS[simulator], q.sizes[0], seed=11)
    v = verify(folder, x, simulator, stall=stall, seed=5)
    assert v.ok, (v.mismatches, v.tap_mismatches, v.first, v.hints)
    assert v.vectors == len(x) and v.missing == 0 and v.extra == 0


def _stale(folder, qmodel_path) -> bool:
    import hashlib
    import json
    manifest = json.loads((folder / "manifest.json").read_text())
    return manifest.get("qmodel_sha256") != hashlib.sha256(qmodel_path.read_bytes()).hexdigest()
