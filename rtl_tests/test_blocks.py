"""Per-block co-simulation: each block emitted to Verilog from Amaranth, run on Verilator and Icarus.

MAC lane, activation unit and the network's streams through classic cocotb
benches (``tb_mac.py``, ``tb_activation.py``, ``tb_network_stream.py``: one await
per clock, set-up in ``bench.py``); the layer engine and the network through
the free-running stream harness (:mod:`bp_hw.cosim.harness`), checked in bulk.
Components take their plan (:func:`bp_hw.plan.make_plan`); every expectation
comes from the integer model in ``bp_hw.fixed`` and every timing from the plan.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog

from bp_hw.cosim.check import compare_outputs
from bp_hw.cosim.runner import run_vectors
from bp_hw.cosim.verify import random_vectors, verify
from bp_hw.fileio import write_text
from bp_hw.fixed.qmodel import QModel
from bp_hw.hdl.activation import ActivationUnit
from bp_hw.hdl.arith import shape_of
from bp_hw.hdl.emit import generate
from bp_hw.hdl.layer import LayerEngine
from bp_hw.hdl.mac import MACLane
from bp_hw.plan.hardware import make_plan
from bp_hw.plan.manifest import manifest_from_plan, read_manifest, write_manifest
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
    mac = MACLane(*_mac_args(block_model(model).layers[layer]), lanes_in)
    name = f"rtl_mac_{model}{layer}_p{lanes_in}"
    cocotb_bench(verilog.convert(mac, name=name, emit_src=False), name, "tb_mac",
                 env={"BP_QMODEL": str(path), "BP_LAYER": str(layer), "BP_LANES_IN": str(lanes_in),
                      "BP_SAMPLES": "30", "BP_STALL": "0.3"})


@pytest.mark.parametrize("model,layer", [("net", 0), ("interp", 1), ("relu", 0)],
                         ids=["sigmoid-symmetric", "sigmoid-interpolated", "relu"])
def test_activation_unit(cocotb_bench, simulator, model, layer):
    path = save_model(model, MODELS_DIR)
    unit = ActivationUnit(make_plan(block_model(model), 1).layers[layer])
    name = f"rtl_act_{model}{layer}"
    samples = "3000" if simulator == "verilator" else "600"
    cocotb_bench(verilog.convert(unit, name=name, emit_src=False), name, "tb_activation",
                 env={"BP_QMODEL": str(path), "BP_LAYER": str(layer), "BP_SAMPLES": samples, "BP_STALL": "0.3"})


def _layer_build(model: str, layer: int, parallel: int):
    """Emit one LayerEngine alone, with the manifest of a one-layer plan (the harness's ports and timing)."""
    ql = block_model(model).layers[layer]
    q1 = QModel(layers=[ql], input_fmt=ql.in_fmt, norm_mean=np.zeros(ql.fan_in), norm_std=np.ones(ql.fan_in),
                n_classes=max(2, ql.fan_out))
    plan = make_plan(q1, parallel)
    x = plan.layers[0]
    assert x.input_source == "payload" and x.output_slots == "registers"  # streams in and out, like the ports
    engine = LayerEngine(x)
    name = f"rtl_layer_{model}{layer}_p{parallel}"
    folder = SIM_BUILD / name
    folder.mkdir(parents=True, exist_ok=True)
    _write_if_changed(folder / f"{name}.v", verilog.convert(engine, name=name, emit_src=False))
    write_manifest(manifest_from_plan(plan, name, folder))
    return folder, ql


@pytest.mark.parametrize("stall", [0.0, 0.3])
@pytest.mark.parametrize("model,layer,parallel", [("net", 0, 2), ("relu", 0, 14), ("interp", 1, 6)])
def test_layer_engine(simulator, model, layer, parallel, stall):
    folder, ql = _layer_build(model, layer, parallel)
    manifest = read_manifest(folder)
    x = random_vectors(ql.in_fmt, VECTORS[simulator], ql.fan_in, seed=7)
    expected = ql.forward(x)["out"]
    result = run_vectors(folder, x, simulator, stall=stall, seed=3)
    report = compare_outputs(expected, result)
    assert report.ok, report.describe(ql.out_fmt.width)
    if stall == 0:
        # The plan's timing holds when nothing stalls.
        assert result.latency_cycles == manifest.latency_cycles
        steady = np.diff(result.output_cycles.astype(np.int64))
        assert np.all(steady == manifest.interval_cycles), np.unique(steady)


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


@pytest.mark.parametrize("model,parallel", [("net", "2,3"), ("relu", "1")])
def test_network_streams_in_a_classic_bench(cocotb_bench, simulator, model, parallel):
    """The same networks driven from Python, cycle by cycle, independent of the Verilog harness."""
    path, name, text = _stream_design(model, parallel)
    samples = "300" if simulator == "verilator" else "60"
    cocotb_bench(text, name, "tb_network_stream", env={"BP_QMODEL": str(path), "BP_SAMPLES": samples,
                                                       "BP_STALL": "0.3"})


def _stream_design(model: str, parallel: str):
    """(qmodel path, module name, Verilog) of a generated network without taps (kept between runs)."""
    path = save_model(model, MODELS_DIR)
    name = f"rtl_stream_{model}_p{parallel.replace(',', '_')}"
    folder = SIM_BUILD / name / "build"
    if not (folder / "manifest.json").is_file() or _stale(folder, path):
        generate(path, parallel, folder, name=name, taps=False)
    return path, name, (folder / f"{name}.v").read_text()


def _stale(folder, qmodel_path) -> bool:
    import hashlib
    return read_manifest(folder).qmodel_sha256 != hashlib.sha256(qmodel_path.read_bytes()).hexdigest()


def _nudge_biases(d: dict, layer: int) -> None:
    """Move every bias of ``layer`` by 1/8 towards zero (stays in its format)."""
    d["layers"][layer]["biases"] = [b - 512 if b > 0 else b + 512 for b in d["layers"][layer]["biases"]]


def _flip_lut(d: dict, layer: int) -> None:
    d["layers"][layer]["lut"]["table"] = [v ^ 1 for v in d["layers"][layer]["lut"]["table"]]


def _misaligned_mac():
    """The MAC lane of layer 1 built with its bias aligned one bit off (the bench feeds it the model's
    operands, so the design is what must be wrong)."""
    w, a, b, bias_shift, acc_width = _mac_args(block_model("net").layers[1])
    return _converted(MACLane(w, a, b, bias_shift + 1, acc_width, 2), "rtl_mac_net1_p2_misaligned")


# bench -> (its module, the design, the environment, the corruption of the expectation (None: the
# design is corrupted)); the other designs are those of the passing tests above, their builds reused
CORRUPTED = {
    "mac": ("tb_mac", _misaligned_mac, {"BP_LAYER": "1", "BP_LANES_IN": "2", "BP_SAMPLES": "10"}, None),
    "activation": ("tb_activation",
                   lambda: _converted(ActivationUnit(make_plan(block_model("net"), 1).layers[0]), "rtl_act_net0"),
                   {"BP_LAYER": "0", "BP_SAMPLES": "200"}, lambda d: _flip_lut(d, 0)),
    "network": ("tb_network_stream", lambda: _stream_design("net", "2,3")[1:], {"BP_SAMPLES": "40"},
                lambda d: _nudge_biases(d, 1)),
}


def _converted(component, name: str):
    return name, verilog.convert(component, name=name, emit_src=False)


def _mac_args(ql):
    return shape_of(ql.weight_fmt), shape_of(ql.in_fmt), shape_of(ql.bias_fmt), ql.bias_shift, ql.acc_width


def _corrupted_model(model: str, edit, folder) -> str:
    d = block_model(model).to_dict()
    edit(d)
    path = folder / f"qmodel_{model}_corrupted.json"
    QModel.from_dict(d).save(path)
    return str(path)


@pytest.mark.parametrize("bench", list(CORRUPTED))
def test_benches_fail_on_a_corrupted_expectation(cocotb_bench, tmp_path, bench):
    """Each classic bench must fail when its design or its expectation (the quantized model it is handed)
    is wrong."""
    module, design, env, edit = CORRUPTED[bench]
    name, text = design()
    model = str(save_model("net", MODELS_DIR)) if edit is None else _corrupted_model("net", edit, tmp_path)
    env = {**env, "BP_QMODEL": model, "BP_STALL": "0.3"}
    with pytest.raises(AssertionError, match="cocotb tests failed"):
        cocotb_bench(text, name, module, env=env)
