"""``bp-hw flow``: train -> quantize -> generate -> simulate -> synth from one configuration.

Every step is the documented subcommand itself, run as ``python -m bp_hw.cli
STEP ... --json`` with its options taken from the step's table of the
configuration, so a flow is exactly a sequence of commands a user could type.
The output folder has a fixed layout::

    DIR/config.toml          effective configuration (re-run with `bp-hw flow DIR/config.toml --out ...`)
    DIR/1_train/             model.npz, loss.png, log.txt, summary.json
    DIR/2_quantize/          qmodel.json, error.png, mem/, log.txt, summary.json
    DIR/3_generate/build/    <name>.v, manifest.json; log.txt, summary.json beside it
    DIR/4_simulate/          log.txt, summary.json
    DIR/5_synth/             log.txt, summary.json (bitstream and report under 3_generate/build/<board>/)
    DIR/timings.json         seconds per step
    DIR/report.json, DIR/report.html

A failing step stops the flow with its one-line reason; earlier results stay.

With ``[train] model = "MODEL.onnx"`` (``bp-hw flow --model``) the train step is replaced by
``bp-hw import MODEL.onnx`` (1_train/model.npz; the other [train] options are not used), and for a
QONNX model with Quant nodes the quantize step by ``bp-hw import ... --qmodel``, which keeps the
model's own formats. The step table of the report says so in its note column.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import BpHwError
from .fileio import write_json, write_text

STEPS = ["train", "quantize", "generate", "simulate", "synth"]
FOLDERS = {"train": "1_train", "quantize": "2_quantize", "generate": "3_generate", "simulate": "4_simulate",
           "synth": "5_synth"}

DEFAULTS: dict = {
    "train": {"data": "iris", "activation": "sigmoid", "loss": "mse", "optimizer": "sgd", "lr": 0.5,
              "batch_size": 1, "epochs": 100, "seed": 0},
    "quantize": {"format": "Q4.12", "lut_bits": 10, "lut_range": 8, "rounding": "nearest-even",
                 "overflow": "saturate"},
    "generate": {"parallel": "1", "train": False},
    "simulate": {"enabled": True, "simulator": "verilator", "stall": 0.0, "seed": 0},
    "synth": {"enabled": True, "board": "icebreaker"},
}

#: Options that suit a built-in data set better than the general ones above, per step: xor has four
#: rows and needs thousands of epochs; MNIST 784-32-10 is the iCE40UP5K recipe of BENCHMARKS.md (8-bit
#: weights, the pixels as UQ0.8 integers, 8 DSPs busy on the first layer, its weights in SPRAM). Options
#: given in the configuration or on the command line win.
DATA_DEFAULTS: dict = {
    "xor": {"train": {"layers": "2,4,1", "lr": 0.5, "epochs": 3000}},
    "mnist": {"train": {"layers": "784,32,10", "epochs": 20},
              "quantize": {"format": "auto", "bits": 8, "input_format": "UQ0.8"},
              "generate": {"parallel": "4x2,1"}},
}

#: A float test accuracy at most this far above chance counts as no better than chance.
CHANCE_MARGIN = 0.05

# options the flow sets itself (paths, shared choices), not taken from the tables
_RESERVED = {"out", "json", "plot", "hex_dir", "enabled", "model", "qmodel", "build"}


@dataclass
class FlowConfig:
    """The effective configuration: one table per step."""

    tables: dict = field(default_factory=lambda: copy.deepcopy(DEFAULTS))
    #: (step, key) pairs given by the configuration file or :meth:`set`, not defaults.
    given: set = field(default_factory=set)

    @classmethod
    def load(cls, path: str | Path | None) -> "FlowConfig":
        cfg = cls()
        if path is None:
            return cfg
        path = Path(path)
        if not path.is_file():
            raise BpHwError(f"configuration {path} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise BpHwError(f"{path} is not valid TOML: {exc}") from None
        unknown = set(data) - set(STEPS)
        if unknown:
            raise BpHwError(f"{path}: unknown tables {', '.join(sorted(unknown))}; use {', '.join(STEPS)}")
        for step, table in data.items():
            if not isinstance(table, dict):
                raise BpHwError(f"{path}: [{step}] must be a table")
            cfg.tables[step].update(table)
            cfg.given.update((step, key) for key in table)
        return cfg

    def set(self, step: str, key: str, value) -> None:
        if value is not None:
            self.tables[step][key] = value
            self.given.add((step, key))

    def apply_data_defaults(self) -> None:
        """Fill the options nobody gave with those that suit the data set (:data:`DATA_DEFAULTS`)."""
        for step, table in DATA_DEFAULTS.get(self.tables["train"].get("data"), {}).items():
            for key, value in table.items():
                if (step, key) not in self.given:
                    self.tables[step][key] = value

    def enabled(self, step: str) -> bool:
        return bool(self.tables[step].get("enabled", True))

    def to_toml(self) -> str:
        lines = ["# bp-hw flow configuration (written by the flow: re-run it with `bp-hw flow THIS_FILE --out DIR`)"]
        for step in STEPS:
            lines.append(f"\n[{step}]")
            for key, value in self.tables[step].items():
                lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _options(table: dict) -> list[str]:
    """A step's table as command-line options (``key_name = v`` -> ``--key-name v``)."""
    argv = []
    for key, value in table.items():
        if key in _RESERVED or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            if value:
                argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


@dataclass
class StepResult:
    step: str
    status: str             # ok | failed | skipped
    seconds: float = 0.0
    summary: dict | None = None
    reason: str | None = None
    returncode: int = 0


class Flow:
    """Runs the steps into ``out_dir`` (see the module doc)."""

    def __init__(self, config: FlowConfig, out_dir: str | Path, log=None):
        self.config = config
        self.out = Path(out_dir)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.results: list[StepResult] = []
        #: True when the imported model (``[train] model``) carries QONNX formats: quantize = import --qmodel.
        self.imported_quantized = False
        #: ``{"accuracy", "chance"}`` when the float model is no better than guessing, else None.
        self.no_better_than_chance: dict | None = None

    def folder(self, step: str) -> Path:
        return self.out / FOLDERS[step]

    @property
    def build_dir(self) -> Path:
        return self.folder("generate") / "build"

    def argv(self, step: str) -> list[str]:
        t = self.config.tables
        data = t["train"].get("data", "iris")
        d = self.folder(step)
        model = t["train"].get("model")
        if step == "train" and model:
            return ["import", str(model), "--out", str(d / "model.npz"), "--data", str(data)]
        if step == "quantize" and model and self.imported_quantized:
            return ["import", str(model), "--out", str(d / "model.npz"), "--qmodel", str(d / "qmodel.json"),
                    "--data", str(data)]
        if step == "train":
            return ["train", *_options(t["train"]), "--out", str(d / "model.npz"), "--plot", str(d / "loss.png")]
        if step == "quantize":
            table = dict(t["quantize"])
            table.setdefault("data", data)
            return ["quantize", str(self.folder("train") / "model.npz"), *_options(table),
                    "--out", str(d / "qmodel.json"), "--plot", str(d / "error.png"), "--hex-dir", str(d / "mem")]
        if step == "generate":
            table = dict(t["generate"])
            if self.config.enabled("synth") and not table.get("train"):
                # place the memories for the device the synth step builds for (SPRAM on the UP5K)
                table.setdefault("board", t["synth"].get("board", "icebreaker"))
            return ["generate", str(self.folder("quantize") / "qmodel.json"), *_options(table),
                    "--out", str(self.build_dir)]
        if step == "simulate":
            table = dict(t["simulate"])
            table.setdefault("data", data)
            if t["generate"].get("train"):
                table.setdefault("train", True)
            return ["simulate", str(self.build_dir), *_options(table)]
        if step == "synth":
            return ["synth", str(self.build_dir), *_options(t["synth"])]
        raise ValueError(step)

    def run_step(self, step: str, index: int) -> StepResult:
        d = self.folder(step)
        d.mkdir(parents=True, exist_ok=True)
        argv = self.argv(step)
        if not self.config.enabled(step):
            self.log(f"[{index}/{len(STEPS)}] {step}: skipped")
            return StepResult(step, "skipped")
        self.log(f"[{index}/{len(STEPS)}] {step}: bp-hw {' '.join(argv)}")
        t0 = time.perf_counter()
        with open(d / "log.txt", "w") as log_file:
            log_file.write("$ bp-hw " + " ".join(argv) + " --json\n")
            log_file.flush()
            proc = subprocess.run([sys.executable, "-m", "bp_hw.cli", *argv, "--json"], stdout=subprocess.PIPE,
                                  stderr=log_file, text=True)
        seconds = time.perf_counter() - t0
        summary = None
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        if lines:
            try:
                summary = json.loads(lines[-1])
            except json.JSONDecodeError:
                summary = None
        if proc.returncode != 0 or summary is None:
            reason = _last_line(d / "log.txt") or f"exit status {proc.returncode}"
            self.log(f"    {step} failed ({seconds:.1f} s): {reason}")
            return StepResult(step, "failed", seconds, summary, reason, proc.returncode or 1)
        write_json(d / "summary.json", summary)
        self.log(f"    {step} ok ({seconds:.1f} s)")
        return StepResult(step, "ok", seconds, summary)

    def check_inputs(self) -> None:
        """Refuse bad inputs before anything is written: a missing or unreadable data set or model, a
        format that does not parse, an unknown board, layer sizes or a ``parallel`` that the network
        cannot take. (A step that fails for another reason keeps the results before it.)"""
        from .data import load_dataset
        from .fixed.folding import Folding
        from .fixed.qformat import QFormat
        from .plan.boards import board
        from .plan.hardware import parse_parallel
        t = self.config.tables
        model = t["train"].get("model")
        if model and not Path(model).is_file():
            raise BpHwError(f"--model {model} does not exist; give an .onnx file")
        ds = load_dataset(str(t["train"].get("data", "iris")))
        for key in ("format", "weight_format", "bias_format", "act_format", "input_format"):
            value = t["quantize"].get(key)
            if value is not None and not str(value).startswith("auto"):
                QFormat.parse(str(value))
        if self.config.enabled("synth"):
            board(str(t["synth"].get("board", "icebreaker")))
        if model:
            return      # the layer sizes are the model's, known once it is imported
        layers = t["train"].get("layers")
        if isinstance(layers, str):
            try:
                layers = [int(v) for v in layers.split(",")]
            except ValueError:
                raise BpHwError(f"--layers must be comma-separated integers such as 4,8,3, got {layers!r}") from None
        sizes = list(layers) if layers else [ds.n_features, 8, ds.n_classes]
        if sizes[0] != ds.n_features:
            raise BpHwError(f"--layers starts with {sizes[0]} inputs but the data has {ds.n_features} features")
        parallel = parse_parallel(t["generate"].get("parallel", "1"), len(sizes) - 1)
        for l, (n_in, n_out, p) in enumerate(zip(sizes, sizes[1:], parallel)):
            Folding.of(n_in, n_out, p, l)

    def run(self) -> int:
        """Run every step; 0 on success, else the failing step's exit status."""
        self.config.apply_data_defaults()
        self.check_inputs()
        self.out.mkdir(parents=True, exist_ok=True)
        write_text(self.out / "config.toml", self.config.to_toml())
        status = 0
        for index, step in enumerate(STEPS, 1):
            result = self.run_step(step, index)
            self.results.append(result)
            self._write_timings()
            if result.status == "failed":
                status = result.returncode
                break
            model = self.config.tables["train"].get("model")
            if model and step == "train" and result.status == "ok":
                result.reason = f"replaced by bp-hw import {model}"
                self.imported_quantized = bool((result.summary or {}).get("quantized"))
            elif model and step == "quantize" and result.status == "ok" and self.imported_quantized:
                result.reason = "formats from the model's QONNX Quant nodes (bp-hw import --qmodel)"
            if step == "train" and result.summary:
                self._check_chance(result.summary)
        from .report import write_report
        write_report(self)
        return status

    def _check_chance(self, train_summary: dict) -> None:
        accuracy = train_summary.get("test_accuracy")
        chance = chance_accuracy(self.config.tables["train"].get("data", "iris"))
        if accuracy is None or chance is None or accuracy > chance + CHANCE_MARGIN:
            return
        self.no_better_than_chance = {"accuracy": accuracy, "chance": chance}
        self.log(f"    warning: float test accuracy {accuracy:.3f} is no better than chance ({chance:.3f}): "
                 f"the model has not learnt the task; change the [train] options (epochs, lr, activation)")

    def _write_timings(self) -> None:
        write_json(self.out / "timings.json",
                   {r.step: round(r.seconds, 3) for r in self.results} | {
                       "total": round(sum(r.seconds for r in self.results), 3)})

    def summary(self) -> dict:
        by = {r.step: r for r in self.results}
        out = {"out": str(self.out), "steps": {r.step: r.status for r in self.results},
               "seconds": {r.step: round(r.seconds, 2) for r in self.results},
               "report": str(self.out / "report.html")}
        failed = [r for r in self.results if r.status == "failed"]
        if failed:
            out["failed_step"] = failed[0].step
            out["reason"] = failed[0].reason
        tr = by.get("train")
        if tr and tr.summary:
            out["float_test_accuracy"] = tr.summary.get("test_accuracy")
        if self.config.tables["train"].get("model"):
            out["train_step"] = f"replaced by bp-hw import {self.config.tables['train']['model']}"
            if tr and tr.summary:
                out["float_accuracy"] = tr.summary.get("float_accuracy")
        if self.no_better_than_chance:
            out["float_no_better_than_chance"] = self.no_better_than_chance
        q = by.get("quantize")
        if q and q.summary:
            out["fixed_test_accuracy"] = q.summary.get("fixed_accuracy")
        g = by.get("generate")
        if g and g.summary:
            out["latency_cycles"] = g.summary.get("latency_cycles")
            out["interval_cycles"] = g.summary.get("interval_cycles")
        s = by.get("simulate")
        if s and s.summary:
            out["vectors"] = s.summary.get("vectors", s.summary.get("samples"))
            out["mismatches"] = s.summary.get("mismatches", s.summary.get("output_mismatches"))
        y = by.get("synth")
        if y and y.summary:
            for key in ("luts", "dsps", "brams", "sprams", "fmax_mhz", "clock_mhz", "timing_met", "bitstream"):
                out[key] = y.summary.get(key)
        return out


def chance_accuracy(data: str) -> float | None:
    """The accuracy of guessing: the larger of 1/classes and the commonest class's share (None if unreadable)."""
    from .data import load_dataset
    try:
        ds = load_dataset(data)
    except BpHwError:
        return None
    counts = np.bincount(ds.y, minlength=ds.n_classes)
    return float(max(1.0 / ds.n_classes, counts.max() / counts.sum()))


def _last_line(path: Path) -> str | None:
    try:
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    except OSError:
        return None
    lines = [ln for ln in lines if not ln.startswith("$ bp-hw")]
    return lines[-1] if lines else None
