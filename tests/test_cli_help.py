"""``bp-hw --help`` and every ``bp-hw SUB --help`` are plain text for a terminal."""

import re
import subprocess
import sys

import pytest

from bp_hw.cli import COMMANDS


def _help(*argv) -> str:
    proc = subprocess.run([sys.executable, "-m", "bp_hw.cli", *argv, "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_top_level_help_is_plain_text_and_lists_every_command():
    text = _help()
    assert "``" not in text and ":mod:" not in text
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s+\S", text, re.M), name   # each command with a one-line help


@pytest.mark.parametrize("command", list(COMMANDS))
def test_subcommand_help_is_plain_text(command):
    text = _help(command)
    assert text.startswith(f"usage: bp-hw {command}")
    assert "``" not in text and not re.search(r":(mod|class|func|data):`", text), text
