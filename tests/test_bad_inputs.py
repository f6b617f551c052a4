"""Bad inputs, as a table (issue #15): every subcommand refuses each kind of bad input with one line that
names the problem and what to change, exit status 2, no traceback, and leaves no file behind.

Each row is (command, the bad input, the argument list, a pattern the error line must match). The files
the rows use are made once per module in a fixtures folder (a small xor model, its quantized model and
build, and broken copies of them); each row runs in an empty working folder and must leave that folder
empty and the fixtures folder unchanged.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from bp_hw import cli
from bp_hw.fixed.qformat import QFormat
from bp_hw.fixed.qmodel import QLayer, QModel

ERROR_LINE = re.compile(r"^bp-hw(?: (?P<cmd>[a-z]+))?: error: (?P<msg>.+)$")


def _write_broken_copies(d: Path) -> None:
    """Broken versions of the good files (see the module doc)."""
    (d / "nan.csv").write_text("1,2,0\nnan,3,1\n0,1,1\n")
    np.savez(d / "inf.npz", X=np.array([[0.0, 1.0], [np.inf, 0.0], [1.0, 1.0]]), y=np.array([0, 1, 0]))
    np.savez(d / "flat.npz", X=np.array([0.0, 1.0, 2.0]), y=np.array([0, 1, 0]))
    (d / "binary.csv").write_bytes(b"\xff\xfe\x00\x01garbage")
    (d / "garbage.npz").write_bytes(b"not an archive \x00\xff")
    (d / "garbage.json").write_text("{not json")
    (d / "garbage.onnx").write_bytes(b"\x08\x07garbage")
    (d / "bad.toml").write_text("not = [toml")
    (d / "folder.csv").mkdir()
    model = dict(np.load(d / "model.npz"))
    model["W0"] = model["W0"].copy()
    model["W0"][0, 0] = np.nan
    np.savez(d / "nan_model.npz", **model)
    q = json.loads((d / "q.json").read_text())
    nan_q = json.loads(json.dumps(q))
    nan_q["layers"][0]["weights"][0][0] = float("nan")
    (d / "nan_q.json").write_text(json.dumps(nan_q))
    (d / "v99_q.json").write_text(json.dumps({**q, "version": 99}))
    shutil.copytree(d / "build", d / "digest_build")
    changed = json.loads((d / "digest_build" / "qmodel.json").read_text())
    changed["layers"][0]["biases"][0] += 1
    (d / "digest_build" / "qmodel.json").write_text(json.dumps(changed))
    shutil.copytree(d / "build", d / "v99_build")
    manifest = json.loads((d / "v99_build" / "manifest.json").read_text())
    (d / "v99_build" / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))


def _big_qmodel(path: Path) -> None:
    """64-64-64 at Q4.12: 8192 16-bit weights, more block RAM than the iCE40UP5K has at P = 1."""
    f = QFormat(4, 12)
    rng = np.random.default_rng(0)
    layers = [QLayer(weights=rng.integers(-100, 100, (64, 64)), biases=np.zeros(64, dtype=np.int64),
                     activation="relu", in_fmt=f, weight_fmt=f, bias_fmt=f, z_fmt=f, out_fmt=f) for _ in range(2)]
    QModel(layers=layers, input_fmt=f, norm_mean=np.zeros(64), norm_std=np.ones(64), n_classes=64).save(path)


def _nan_onnx(d: Path) -> None:
    """An ONNX MLP (scikit-learn's, from tests/fixtures/onnx) with a NaN weight; nothing without onnx."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return
    m = onnx.load(Path(__file__).parent / "fixtures" / "onnx" / "sklearn_mlp_relu.onnx")
    for init in m.graph.initializer:
        a = numpy_helper.to_array(init).copy()
        if a.ndim == 2:
            a.flat[0] = np.nan
            init.CopyFrom(numpy_helper.from_array(a, init.name))
            break
    onnx.save(m, d / "nan.onnx")


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad_inputs")
    for argv in (["train", "--data", "xor", "--layers", "2,3,1", "--epochs", "5", "--out", str(d / "model.npz")],
                 ["quantize", str(d / "model.npz"), "--format", "Q4.12", "--lut-bits", "6", "--out", str(d / "q.json")],
                 ["generate", str(d / "q.json"), "--out", str(d / "build")]):
        assert cli.main(argv) == 0, argv
    _big_qmodel(d / "big_q.json")
    assert cli.main(["generate", str(d / "big_q.json"), "--no-taps", "--out", str(d / "big_build")]) == 0
    _write_broken_copies(d)
    _nan_onnx(d)
    return d


# (command, bad input, argv with {F} = the fixtures folder and {W} = the empty working folder, pattern)
CASES = [
    # train
    ("train", "missing data file", "--data {F}/missing.csv --out {W}/m.npz", r"data file not found.*give an existing"),
    ("train", "unreadable data file", "--data {F}/binary.csv --out {W}/m.npz", r"cannot read data file.*UTF-8"),
    ("train", "a folder as data file", "--data {F}/folder.csv --out {W}/m.npz", r"is a folder; give a \.csv"),
    ("train", "NaN in data", "--data {F}/nan.csv --out {W}/m.npz", r"'nan' is not finite \(NaN/inf are not allowed\)"),
    ("train", "inf in data", "--data {F}/inf.npz --out {W}/m.npz", r"sample 1 is inf \(NaN/inf are not allowed\)"),
    ("train", "data of the wrong shape", "--data {F}/flat.npz --out {W}/m.npz", r"X must be 2-D \(samples, features\)"),
    ("train", "layers that do not fit the data", "--data xor --layers 3,4,1 --out {W}/m.npz",
     r"starts with 3 inputs but the data has 2 features"),
    # quantize
    ("quantize", "missing model", "{F}/missing.npz --out {W}/q.json", r"model file not found"),
    ("quantize", "unreadable model", "{F}/garbage.npz --out {W}/q.json", r"not a bp-hw model file"),
    ("quantize", "NaN in weights", "{F}/nan_model.npz --out {W}/q.json", r"NaN or infinite weights.*train again"),
    ("quantize", "NaN in data", "{F}/model.npz --data {F}/nan.csv --out {W}/q.json", r"NaN/inf are not allowed"),
    ("quantize", "data of the wrong shape", "{F}/model.npz --data iris --out {W}/q.json",
     r"iris has 4 features but the model takes 2"),
    ("quantize", "a format too narrow for its LUT", "{F}/model.npz --format Q4.4 --lut-interpolate --lut-bits 10 "
     "--out {W}/q.json", r"interpolation needs a table coarser than the input.*use at most 7 address bits"),
    ("quantize", "an impossible format", "{F}/model.npz --format Q40.12 --out {W}/q.json", r"widths must be 2\.\.32"),
    # generate
    ("generate", "missing quantized model", "{F}/missing.json --out {W}/b", r"missing\.json does not exist"),
    ("generate", "unreadable quantized model", "{F}/garbage.json --out {W}/b", r"is not a quantized model \(not JSON"),
    ("generate", "NaN in weights", "{F}/nan_q.json --out {W}/b", r"layer 0 weights must be integers, found nan.*re-run"),
    ("generate", "quantized model of an unknown version", "{F}/v99_q.json --out {W}/b",
     r"version 99 is not supported.*re-run `bp-hw quantize`"),
    ("generate", "a --parallel that does not fit", "{F}/q.json --parallel 5 --out {W}/b",
     r"parallelism 5 for layer 0 \(2 inputs, 3 neurons\) must be one of 1, 3, 6"),
    ("generate", "a --parallel per layer of the wrong length", "{F}/q.json --parallel 1,1,1 --out {W}/b",
     r"lists 3 values but the network has 2 layers"),
    ("generate", "an unknown board", "{F}/q.json --board nosuch --out {W}/b", r"unknown board 'nosuch'; choose one of"),
    ("generate", "a network too large", "{F}/big_q.json --weights spram --board icebreaker --parallel 64,64 "
     "--out {W}/b", r"need 128 SPRAM blocks.*iCE40UP5K has 4: fewer output lanes"),
    ("generate", "SPRAM weights without a device", "{F}/q.json --weights spram --out {W}/b",
     r"needs a device with SPRAM.*--board icebreaker"),
    ("generate", "an output folder that is a file", "{F}/q.json --out {F}/q.json", r"is a file; give a folder"),
    # simulate
    ("prove", "missing build", "{F}/missing_build", r"does not exist; give the build folder"),
    ("prove", "no build, no --neuron, no --link", "", r"give a build folder \(bp-hw prove BUILD\), --neuron or --link"),
    ("prove", "manifest of an unknown version", "{F}/v99_build", r"version"),
    ("prove", "qmodel.json whose digest does not match", "{F}/digest_build", r"changed since the hardware was generated"),
    ("prove", "a depth of 0", "{F}/build --depth 0", r"--depth must be at least 1"),
    ("simulate", "missing build", "{F}/missing_build", r"does not exist; give the build folder"),
    ("simulate", "a file as build folder", "{F}/garbage.npz", r"is a file, not a build folder"),
    ("simulate", "qmodel.json whose digest does not match", "{F}/digest_build --vectors 10",
     r"qmodel\.json changed since the hardware was generated; re-run `bp-hw generate`"),
    ("simulate", "manifest of an unknown version", "{F}/v99_build --vectors 10",
     r"manifest version 99; this bp-hw reads version \d+: re-run `bp-hw generate`"),
    ("simulate", "data of the wrong shape", "{F}/build --data iris", r"iris has 4 features but the design takes 2"),
    ("simulate", "NaN in data", "{F}/build --data {F}/nan.csv", r"NaN/inf are not allowed"),
    ("simulate", "training run of an inference build", "{F}/build --train",
     r"holds an inference design: simulate it without --train"),
    ("simulate", "a waveform file of an unknown kind", "{F}/build --waves {W}/w.txt", r"use a \.fst or \.vcd"),
    # synth
    ("synth", "missing build", "{F}/missing_build --board icebreaker", r"does not exist; give the build folder"),
    ("synth", "qmodel.json whose digest does not match", "{F}/digest_build --board icebreaker --estimate-only",
     r"changed since the hardware was generated; re-run `bp-hw generate`"),
    ("synth", "manifest of an unknown version", "{F}/v99_build --board icebreaker --estimate-only",
     r"manifest version 99"),
    ("synth", "an unknown board", "{F}/build --board nosuch", r"invalid choice: 'nosuch' \(choose from"),
    ("synth", "a network too large", "{F}/big_build --board icebreaker --estimate-only",
     r"does not fit iCE40UP5K: block RAMs: needs \d+, iCE40UP5K has 30.*weights in SPRAM"),
    # run (on a board: every refusal comes before the serial port is opened, bar the port itself)
    ("run", "missing build", "--build {F}/missing_build --port {F}/no_port --data xor",
     r"does not exist; give the build folder"),
    ("run", "qmodel.json whose digest does not match", "--build {F}/digest_build --port {F}/no_port --data xor",
     r"changed since the hardware was generated"),
    ("run", "manifest of an unknown version", "--build {F}/v99_build --port {F}/no_port --data xor",
     r"manifest version 99"),
    ("run", "data of the wrong shape", "--build {F}/build --port {F}/no_port --data iris",
     r"iris has 4 features; the network takes 2 inputs"),
    ("run", "missing serial port", "--build {F}/build --port {F}/no_port --data xor", r"cannot open serial port"),
    # flow (refused before the output folder is made)
    ("flow", "missing configuration", "{F}/missing.toml --out {W}/f", r"configuration .*missing\.toml does not exist"),
    ("flow", "unreadable configuration", "{F}/bad.toml --out {W}/f", r"is not valid TOML"),
    ("flow", "missing data file", "--data {F}/missing.csv --out {W}/f", r"data file not found"),
    ("flow", "NaN in data", "--data {F}/nan.csv --out {W}/f", r"NaN/inf are not allowed"),
    ("flow", "an impossible format", "--data xor --format Q40.12 --out {W}/f", r"widths must be 2\.\.32"),
    ("flow", "a --parallel that does not fit", "--data iris --parallel 8,4 --out {W}/f",
     r"parallelism 4 for layer 1 \(8 inputs, 3 neurons\) must be one of"),
    ("flow", "layers that do not fit the data", "--data xor --layers 3,4,1 --out {W}/f",
     r"starts with 3 inputs but the data has 2 features"),
    ("flow", "an unknown board", "--data xor --board nosuch --out {W}/f", r"invalid choice: 'nosuch'"),
    ("flow", "missing ONNX model", "--model {F}/missing.onnx --data xor --out {W}/f", r"does not exist; give an \.onnx"),
    # explore
    ("explore", "missing model", "{F}/missing.npz --out {W}/e", r"model file not found"),
    ("explore", "NaN in weights", "{F}/nan_model.npz --data xor --out {W}/e", r"NaN or infinite weights"),
    ("explore", "data of the wrong shape", "{F}/model.npz --data iris --out {W}/e", r"data has 4 features, the model takes 2"),
    ("explore", "a --parallel that does not fit", "{F}/model.npz --data xor --parallel 1;5 --out {W}/e",
     r"--parallel 5: parallelism 5 for layer 0 .* must be one of 1, 3, 6"),
    ("explore", "an unknown board", "{F}/model.npz --data xor --board nosuch --out {W}/e", r"unknown board|invalid choice"),
    # fuzz
    ("fuzz", "no designs", "--designs 0 --out {W}/z", r"--designs must be at least 1"),
    ("fuzz", "a training fraction above 1", "--train-fraction 2 --out {W}/z", r"--train-fraction must be in \[0, 1\]"),
    # import
    ("import", "missing ONNX model", "{F}/missing.onnx --out {W}/m.npz", r"ONNX model not found"),
    ("import", "unreadable ONNX model", "{F}/garbage.onnx --out {W}/m.npz", r"not a readable ONNX model"),
    ("import", "NaN in weights", "{F}/nan.onnx --out {W}/m.npz", r"NaN or infinite weights"),
    # export
    ("export", "missing model", "{F}/missing.npz --onnx {W}/m.onnx", r"model file not found"),
    ("export", "NaN in float weights", "{F}/nan_model.npz --onnx {W}/m.onnx", r"NaN or infinite weights"),
    ("export", "NaN in integer weights", "{F}/nan_q.json --onnx {W}/m.onnx", r"must be integers, found nan"),
    ("export", "quantized model of an unknown version", "{F}/v99_q.json --onnx {W}/m.onnx", r"version 99 is not"),
    # predict
    ("predict", "missing model", "{F}/missing.npz --data xor", r"model file not found"),
    ("predict", "data of the wrong shape", "{F}/model.npz --data iris", r"4 features but the model takes 2"),
    ("predict", "NaN in data", "{F}/model.npz --data {F}/nan.csv", r"NaN/inf are not allowed"),
    ("predict", "NaN in weights", "{F}/nan_model.npz --data xor", r"NaN or infinite weights"),
    ("predict", "NaN in integer weights", "{F}/nan_q.json --data xor", r"must be integers, found nan"),
    ("predict", "an output folder for a file", "{F}/model.npz --data xor --out {F}/folder.csv", r"is a folder"),
]


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.mark.parametrize("command,problem,argv,pattern", CASES,
                         ids=[f"{c}: {p}" for c, p, _, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(command, problem, argv, pattern, fixtures, tmp_path,
                                                         capsys):
    if "nan.onnx" in argv and not (fixtures / "nan.onnx").exists():
        pytest.skip("onnx is not installed (pip install -e .[onnx])")
    work = tmp_path / "work"
    work.mkdir()
    before = _snapshot(fixtures)
    args = [command, *[a.format(F=fixtures, W=work) for a in argv.split()]]
    try:
        rc = cli.main(args)
    except SystemExit as exc:     # argparse's own refusals
        rc = exc.code
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, (args, err)
    assert "Traceback" not in err, err
    assert lines and ERROR_LINE.match(lines[-1]), err
    assert sum(bool(ERROR_LINE.match(ln)) for ln in lines) == 1, err
    assert re.search(pattern, lines[-1]), (pattern, lines[-1])
    assert out == "", out
    assert list(work.iterdir()) == [], list(work.iterdir())
    assert _snapshot(fixtures) == before, set(_snapshot(fixtures)) ^ set(before)


def test_every_subcommand_has_rows():
    assert {c for c, _, _, _ in CASES} == set(cli.COMMANDS)
    for kind in ("missing", "NaN", "wrong shape", "digest", "unknown version", "unknown board", "too large",
                 "too narrow for its LUT", "--parallel that does not fit", "unreadable"):
        assert any(kind in p for _, p, _, _ in CASES), kind
