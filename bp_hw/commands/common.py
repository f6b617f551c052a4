"""Helpers shared by the subcommands: stderr logging, the JSON summary, progress bars."""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print exactly one JSON object (the summary) on stdout; logs go to stderr")


def log(msg: str) -> None:
    """A human-readable log line; always stderr so that --json stdout stays clean."""
    print(msg, file=sys.stderr, flush=True)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        obj = float(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def emit_summary(args: argparse.Namespace, summary: dict, human: str | None = None) -> None:
    """With --json print ``summary`` as one JSON object on stdout; otherwise ``human`` (or key: value lines)."""
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(_jsonable(summary)) + "\n")
        sys.stdout.flush()
    else:
        if human is None:
            human = "\n".join(f"{k}: {v}" for k, v in _jsonable(summary).items())
        print(human)


def progress(iterable=None, total=None, desc: str = "", disable: bool | None = None, **kw):
    """A tqdm progress bar on stderr (hidden when stderr is not a terminal unless forced)."""
    from tqdm import tqdm
    if disable is None:
        disable = not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, disable=disable,
                dynamic_ncols=True, leave=False, **kw)
