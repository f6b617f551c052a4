"""docs/architecture.md: its pictures are up to date and its schema table covers every manifest key."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bp_hw.plan import make_plan
from bp_hw.plan.manifest import manifest_from_plan
from bp_hw.train_start import seeded_qmodel

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_pictures_are_generated_from_the_plan():
    proc = subprocess.run([sys.executable, str(DOCS / "gen_architecture.py"), "--check"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


def _keys(obj, prefix=""):
    """Dotted keys of a manifest (list items as ``name[]``), leaves and sections alike."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + k
            yield from _keys(v, prefix + k + ".")
    elif isinstance(obj, list) and obj and isinstance(obj[0], dict):
        yield from _keys(obj[0], prefix[:-1] + "[].")


@pytest.mark.parametrize("train", [None, True])
def test_schema_table_names_every_manifest_key(tmp_path, train):
    q, _, _ = seeded_qmodel("iris", [4, 8, 3])
    plan = make_plan(q, 1, train=train, taps=True)
    (tmp_path / "n.v").write_text("")
    doc = (DOCS / "architecture.md").read_text()
    table = doc[doc.index("## `manifest.json`, field by field"):doc.index("## Recipes")]
    words = {w for code in re.findall(r"`([^`]+)`", table) for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code)}
    keys = set(_keys(manifest_from_plan(plan, "n", tmp_path, qmodel="q.json").to_json()))
    skip = {"spec."}   # the TrainSpec's own fields are listed by name in one row
    missing = sorted(k for k in keys if k.split(".")[-1].rstrip("[]") not in words
                     and not any(k.startswith("training." + s) for s in skip))
    assert not missing, f"docs/architecture.md does not describe {missing}"
