"""Regenerate the datapath pictures of docs/architecture.md from the plan.

    python docs/gen_architecture.py          # write docs/datapath-*.svg
    python docs/gen_architecture.py --check  # exit 1 if a picture is out of date

The pictures are :func:`bp_hw.plan.diagram.datapath_svg` of the seeded iris
4-8-3 model (``bp_hw.train_start.seeded_qmodel``) for an inference design at
P = 1, one at P = 8,3, and the training design at P = 1.
tests/test_architecture_doc.py runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bp_hw.plan import make_plan
from bp_hw.plan.diagram import datapath_svg
from bp_hw.train_start import seeded_qmodel

DOCS = Path(__file__).parent
PICTURES = {"datapath-iris-P1.svg": (1, None), "datapath-iris-P8.3.svg": ("8,3", None),
            "datapath-iris-train-P1.svg": (1, True)}


def pictures() -> dict[str, str]:
    q, _, _ = seeded_qmodel("iris", [4, 8, 3])
    return {name: datapath_svg(make_plan(q, par, train=train)) for name, (par, train) in PICTURES.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a picture is out of date")
    args = ap.parse_args(argv)
    stale = []
    for name, text in pictures().items():
        path = DOCS / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python docs/gen_architecture.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
