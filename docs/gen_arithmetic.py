"""Regenerate the generated parts of docs/arithmetic.md from the code.

    python docs/gen_arithmetic.py          # rewrite the blocks in place
    python docs/gen_arithmetic.py --check  # exit 1 if the document is out of date

Two blocks are generated, each between ``<!-- BEGIN generated:NAME -->`` and
``<!-- END generated:NAME -->``: ``lut-table`` (max abs error of LUT
configurations, from ``ActivationLUT.max_abs_error``) and ``example`` (one
neuron of a small model worked through by hand, with the integer model's own
intermediates). tests/test_fixed_arithmetic_doc.py recomputes both.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from bp_hw.fixed import ActivationLUT, QFormat, QuantConfig, quantize_model
from bp_hw.modelfile import FloatModel

DOC = Path(__file__).with_name("arithmetic.md")
LUT_BITS = range(6, 13)
LUT_RANGES = (4.0, 8.0)
LUT_OUT_FORMATS = ("Q4.12", "Q2.6")
LUT_MODES = (("direct", False, False), ("symmetric", True, False), ("interpolated", False, True),
             ("symmetric + interpolated", True, True))


def lut_for(out_fmt: str, rng: float, bits: int, symmetric: bool, interpolate: bool) -> ActivationLUT | None:
    """The sigmoid table the quantizer builds for ``--act-format out_fmt --lut-range rng --lut-bits bits``."""
    out = QFormat.parse(out_fmt)
    z_fmt = QFormat(int(math.log2(rng)) + 1, out.frac_bits)
    if interpolate and out.frac_bits + int(math.log2(rng)) + 1 - bits < 1:
        return None
    return ActivationLUT("sigmoid", bits, rng, z_fmt, out, symmetric=symmetric, interpolate=interpolate)


def lut_rows() -> list[dict]:
    rows = []
    for out_fmt in LUT_OUT_FORMATS:
        for rng in LUT_RANGES:
            for bits in LUT_BITS:
                row = {"out": out_fmt, "range": rng, "bits": bits}
                for name, sym, interp in LUT_MODES:
                    lut = lut_for(out_fmt, rng, bits, sym, interp)
                    row[name] = None if lut is None else lut.max_abs_error()
                h = 2 * rng / (1 << bits)
                row["bound"] = 0.25 * h / 2 + QFormat.parse(out_fmt).step / 2
                rows.append(row)
    return rows


def fmt_err(v) -> str:
    return "n/a" if v is None else f"{v:.3e}"


def lut_table_markdown() -> str:
    head = ["out format", "range R", "address bits", "z format"] + [m[0] for m in LUT_MODES] \
        + ["direct bound h/8 + q/2"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in lut_rows():
        z = QFormat(int(math.log2(r["range"])) + 1, QFormat.parse(r["out"]).frac_bits)
        cells = [r["out"], f"{r['range']:g}", str(r["bits"]), z.name] + [fmt_err(r[m[0]]) for m in LUT_MODES] \
            + [fmt_err(r["bound"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- the worked example --------------------------------------------------------------------------

EXAMPLE_MODEL = {
    "layers": [2, 3, 2],
    "weights": [[[0.75, -1.3], [2.1, 0.4], [-0.6, 1.9]], [[1.5, -2.0, 0.7], [-1.1, 0.9, 1.2]]],
    "biases": [[0.25, -0.5, 0.1], [0.3, -0.2]],
    "activations": ["sigmoid", "softmax"],
    "norm_mean": [5.0, 3.0],
    "norm_std": [0.8, 0.5],
    "x_raw": [5.9, 2.7],
}


def example_model() -> FloatModel:
    m = EXAMPLE_MODEL
    return FloatModel(layers=m["layers"], weights=[np.array(w) for w in m["weights"]],
                      biases=[np.array(b) for b in m["biases"]], activations=m["activations"], loss="mse",
                      norm_mean=np.array(m["norm_mean"]), norm_std=np.array(m["norm_std"]), n_classes=2)


def example() -> dict:
    """Every number of the worked example, taken from the quantized model and its integer model."""
    fm = example_model()
    q, _ = quantize_model(fm, QuantConfig(format="Q4.12", lut_bits=10, lut_range=8))
    x_raw = np.array([EXAMPLE_MODEL["x_raw"]])
    x_norm = fm.normalize(x_raw)[0]
    x_int, _ = q.quantize_inputs(x_raw)
    out, traces = q.predict(x_int, trace=True)
    l0, l1 = q.layers
    t0 = traces[0]
    n = 0  # the neuron worked by hand
    lut = l0.lut
    idx = int(t0["index"][0, n])
    centre = float(lut.sample_points()[idx])
    return {
        "x_raw": EXAMPLE_MODEL["x_raw"], "x_norm": x_norm.tolist(), "x_int": x_int[0].tolist(),
        "w_float": EXAMPLE_MODEL["weights"][0][n], "w_int": l0.weights[n].tolist(),
        "b_float": EXAMPLE_MODEL["biases"][0][n], "b_int": int(l0.biases[n]),
        "products": [int(w) * int(a) for w, a in zip(l0.weights[n], x_int[0])],
        "bias_shift": l0.bias_shift, "product_frac": l0.product_frac, "acc_width": l0.acc_width,
        "acc": int(t0["acc"][0, n]), "rescale_shift": l0.rescale_shift, "z": int(t0["z"][0, n]),
        "index_shift": lut.index_shift, "index": idx, "centre": centre,
        "table_value": int(lut.table[idx]), "out": int(t0["out"][0, n]),
        "float_z": float(fm.forward(x_norm[None, :])[0][0][0, n]),
        "float_a": float(fm.forward(x_norm[None, :])[0][1][0, n]),
        "hidden_out": t0["out"][0].tolist(), "logits": out[0].tolist(),
        "layer1_acc": traces[1]["acc"][0].tolist(), "layer1_rescale_shift": l1.rescale_shift,
        "class": int(q.classify(out)[0]),
        "float_logits": fm.forward(x_norm[None, :])[1][0][0].tolist(),
    }


def example_markdown(ex: dict) -> str:
    xn = ex["x_norm"]
    m = EXAMPLE_MODEL
    lines = [
        "Model: 2-3-2, sigmoid hidden layer, softmax output (an `identity` layer in the integer model),",
        f"`--format Q4.12 --lut-bits 10 --lut-range 8`. Normalisation mean {m['norm_mean']}, std {m['norm_std']}.",
        f"Raw input `{ex['x_raw']}`. We follow hidden neuron 0 (weights {ex['w_float']}, bias {ex['b_float']}).",
        "",
        "1. **Normalise and quantize the inputs** (Q4.12, 12 fraction bits, nearest-even):",
        f"   `({m['x_raw'][0]} - {m['norm_mean'][0]}) / {m['norm_std'][0]} = {xn[0]!r}`, "
        f"`x 4096 = {xn[0] * 4096!r}` -> **{ex['x_int'][0]}**;",
        f"   `({m['x_raw'][1]} - {m['norm_mean'][1]}) / {m['norm_std'][1]} = {xn[1]!r}`, "
        f"`x 4096 = {xn[1] * 4096!r}` -> **{ex['x_int'][1]}**.",
        f"2. **Weights and bias** (Q4.12): `{ex['w_float'][0]} x 4096` -> **{ex['w_int'][0]}**, "
        f"`{ex['w_float'][1]} x 4096` -> **{ex['w_int'][1]}**; bias `{ex['b_float']} x 4096` -> **{ex['b_int']}**.",
        f"3. **Accumulate**: products have {ex['product_frac']} fraction bits; the bias is shifted left by "
        f"`bias_shift = {ex['product_frac']} - 12 = {ex['bias_shift']}`:",
        f"   `{ex['w_int'][0]} x {ex['x_int'][0]} + {ex['w_int'][1]} x {ex['x_int'][1]} + "
        f"({ex['b_int']} << {ex['bias_shift']})`",
        f"   `= {ex['products'][0]} + {ex['products'][1]} + {ex['b_int'] << ex['bias_shift']}` = **acc {ex['acc']}** "
        f"(fits the {ex['acc_width']}-bit accumulator: 32-bit products + ceil(log2(2 + 1)) = 2 guard bits).",
        f"4. **Rescale** to z in Q4.12: drop `{ex['product_frac']} - 12 = {ex['rescale_shift']}` bits, nearest-even: "
        f"`{ex['acc']} / 2^{ex['rescale_shift']} = {ex['acc'] / 2 ** ex['rescale_shift']!r}` -> **z {ex['z']}** "
        f"(`{ex['z'] / 4096!r}`; in range, no saturation).",
        f"5. **Table index**: `s = 12 + log2(8) + 1 - 10 = {ex['index_shift']}`; "
        f"`idx = floor({ex['z']} / 2^{ex['index_shift']}) + 512 = {ex['index']}`.",
        f"6. **Lookup**: entry {ex['index']} is sigmoid at the bin centre `-8 + ({ex['index']} + 1/2) x 16/1024 = "
        f"{ex['centre']!r}`: `sigmoid({ex['centre']!r}) x 4096 = "
        f"{4096 / (1 + math.exp(-ex['centre']))!r}` -> **{ex['table_value']}**, so the neuron outputs "
        f"**{ex['out']}** (`{ex['out'] / 4096!r}`).",
        f"   The float model has z = `{ex['float_z']!r}`, sigmoid = `{ex['float_a']!r}`: "
        f"error `{abs(ex['out'] / 4096 - ex['float_a']):.3e}`.",
        f"7. **The other layer** works the same way: hidden outputs {ex['hidden_out']} give output accumulators "
        f"{ex['layer1_acc']}, rescaled by {ex['layer1_rescale_shift']} bits to logits **{ex['logits']}** "
        f"(float logits {[round(v, 5) for v in ex['float_logits']]}).",
        f"8. **Class**: argmax of the logits -> **class {ex['class']}**.",
        "",
        "<!-- example-data " + json.dumps(ex) + " -->",
    ]
    return "\n".join(lines)


def render(text: str) -> str:
    blocks = {"lut-table": lut_table_markdown(), "example": example_markdown(example())}
    for name, body in blocks.items():
        pat = re.compile(rf"(<!-- BEGIN generated:{name} -->\n).*?(<!-- END generated:{name} -->)", re.S)
        if not pat.search(text):
            raise SystemExit(f"{DOC}: no block {name}")
        text = pat.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the document differs from the code")
    args = ap.parse_args()
    old = DOC.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print(f"{DOC} is out of date; run python docs/gen_arithmetic.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
