"""The ``bp-hw`` command line.

Each subcommand lives in its own module under :mod:`bp_hw.commands` and
provides ``add_parser(subparsers)`` and ``run(args) -> int``. This module only
wires them together and enforces the CLI contract of DESIGN.md:

* ``--json``: stdout carries exactly one JSON object; logs go to stderr.
* A :class:`~bp_hw.errors.BpHwError` (or a bad option) becomes one line on
  stderr and exit status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import BpHwError

#: Subcommand name -> module under bp_hw.commands.
COMMANDS = {
    "train": "train",
    "quantize": "quantize",
    "generate": "generate",
    "simulate": "simulate",
    "synth": "synth",
    "run": "run_board",
    "flow": "flow",
    "explore": "explore",
    "fuzz": "fuzz",
    "import": "import_model",
    "export": "export",
    "predict": "predict",
    "prove": "prove",
}


#: What ``bp-hw --help`` says first (plain text for a terminal, unlike the docstrings).
DESCRIPTION = ("Train an MLP, quantize it to fixed point, generate its Verilog, check in simulation that "
               "the hardware computes the integer model bit for bit, and synthesize it for an FPGA board.")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="bp-hw", description=DESCRIPTION, epilog="Run bp-hw COMMAND --help for a "
                            "command's options.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"bp-hw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, module in COMMANDS.items():
        # Every command must load: a broken one stops the CLI, naming it (no command goes missing silently).
        try:
            mod = importlib.import_module(f".commands.{module}", __package__)
        except ImportError as exc:
            raise ImportError(f"bp-hw: the {name!r} command (bp_hw.commands.{module}) cannot be imported: "
                              f"{exc}; the bp-hw installation is broken") from exc
        p = mod.add_parser(sub, name)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except BpHwError as exc:
        sys.stderr.write(f"bp-hw {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("bp-hw: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
