"""docs/arithmetic.md agrees with the code: the LUT error table and the worked example.

The numbers are parsed out of the document and recomputed here: the table
entries with ActivationLUT.max_abs_error(), the example by following the
document's steps in exact integer/rational arithmetic and by running the
integer model.
"""

import importlib.util
import json
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from bp_hw.fixed import QuantConfig, quantize_model

DOCS = Path(__file__).resolve().parent.parent / "docs"
TEXT = (DOCS / "arithmetic.md").read_text()


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_arithmetic", DOCS / "gen_arithmetic.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lut_table_rows():
    block = TEXT.split("<!-- BEGIN generated:lut-table -->")[1].split("<!-- END generated:lut-table -->")[0]
    lines = [l for l in block.strip().splitlines() if l.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in l.strip("|").split("|")))) for l in lines[2:]]


@pytest.mark.parametrize("out, rng, bits, mode", [
    ("Q4.12", "8", "10", "direct"), ("Q4.12", "8", "10", "interpolated"), ("Q4.12", "4", "6", "symmetric"),
    ("Q2.6", "8", "8", "direct"), ("Q2.6", "4", "7", "symmetric + interpolated"), ("Q4.12", "8", "12", "direct"),
])
def test_documented_lut_errors_match_recomputation(out, rng, bits, mode):
    gen = load_generator()
    rows = [r for r in lut_table_rows() if (r["out format"], r["range R"], r["address bits"]) == (out, rng, bits)]
    assert len(rows) == 1
    sym, interp = {"direct": (False, False), "symmetric": (True, False), "interpolated": (False, True),
                   "symmetric + interpolated": (True, True)}[mode]
    lut = gen.lut_for(out, float(rng), int(bits), sym, interp)
    assert rows[0][mode] == f"{lut.max_abs_error():.3e}"


def test_requirement_row_is_within_2e3_plus_one_step():
    row = next(r for r in lut_table_rows() if (r["out format"], r["range R"], r["address bits"]) == ("Q4.12", "8", "10"))
    assert float(row["direct"]) < 2e-3 + 2 ** -12


def test_table_covers_the_documented_grid():
    rows = lut_table_rows()
    assert {(r["out format"], r["range R"]) for r in rows} == {("Q4.12", "4"), ("Q4.12", "8"), ("Q2.6", "4"), ("Q2.6", "8")}
    assert {int(r["address bits"]) for r in rows} == set(range(6, 13))


def example_data():
    m = re.search(r"<!-- example-data (\{.*?\}) -->", TEXT)
    assert m, "worked example data missing"
    return json.loads(m.group(1))


def test_worked_example_by_hand_rules():
    ex = example_data()
    gen = load_generator()
    m = gen.EXAMPLE_MODEL
    # Step 1: inputs, nearest-even of the exact scaled value.
    for k in range(2):
        xn = (m["x_raw"][k] - m["norm_mean"][k]) / m["norm_std"][k]
        assert ex["x_int"][k] == round(Fraction(xn) * 4096)
    # Step 2: parameters.
    assert ex["w_int"] == [round(Fraction(w) * 4096) for w in m["weights"][0][0]]
    assert ex["b_int"] == round(Fraction(m["biases"][0][0]) * 4096)
    # Step 3: the exact accumulator.
    acc = sum(w * a for w, a in zip(ex["w_int"], ex["x_int"])) + ex["b_int"] * 2 ** 12
    assert acc == ex["acc"] and abs(acc) < 2 ** (ex["acc_width"] - 1)
    # Step 4: rescale by 12 bits, nearest-even (Python's round on a Fraction is half-even).
    z = round(Fraction(acc, 2 ** 12))
    assert z == ex["z"] and -(2 ** 15) <= z < 2 ** 15
    # Step 5-6: centred table of 1024 bins over [-8, 8).
    idx = math.floor(Fraction(z, 2 ** 6)) + 512
    centre = Fraction(-8) + (idx + Fraction(1, 2)) * Fraction(16, 1024)
    assert idx == ex["index"] and float(centre) == ex["centre"]
    assert ex["out"] == round(Fraction(1 / (1 + math.exp(-float(centre)))) * 4096)
    # The text shows the same numbers.
    assert f"**acc {ex['acc']}**" in TEXT and f"**z {ex['z']}**" in TEXT and f"**{ex['out']}**" in TEXT


def test_worked_example_equals_the_integer_model():
    ex = example_data()
    gen = load_generator()
    fm = gen.example_model()
    q, _ = quantize_model(fm, QuantConfig(format="Q4.12", lut_bits=10, lut_range=8))
    x_int, _ = q.quantize_inputs(np.array([gen.EXAMPLE_MODEL["x_raw"]]))
    out, tr = q.predict(x_int, trace=True)
    assert x_int[0].tolist() == ex["x_int"]
    assert (int(tr[0]["acc"][0, 0]), int(tr[0]["z"][0, 0]), int(tr[0]["index"][0, 0]), int(tr[0]["out"][0, 0])) == \
        (ex["acc"], ex["z"], ex["index"], ex["out"])
    assert tr[0]["out"][0].tolist() == ex["hidden_out"] and out[0].tolist() == ex["logits"]
    assert int(q.classify(out)[0]) == ex["class"]


def test_document_is_up_to_date():
    gen = load_generator()
    assert gen.render(TEXT) == TEXT, "run python docs/gen_arithmetic.py"
