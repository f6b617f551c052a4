"""The board registry is the one board table: boards/README.md's table and the CLI choices follow it."""

import re
from pathlib import Path

import pytest

from bp_hw.boards.families import FAMILIES
from bp_hw.cli import build_parser
from bp_hw.plan import BOARDS, DEVICES

README = Path(__file__).resolve().parents[1] / "boards" / "README.md"


def _readme_rows() -> dict[str, list[str]]:
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 5:
            rows[cells[0].strip("`")] = cells
    return rows


def test_readme_board_table_is_the_registry():
    rows = _readme_rows()
    assert set(rows) == set(BOARDS)
    for name, b in BOARDS.items():
        _, device, clock, mhz, baud, bitstream = rows[name]
        assert device == b.device and clock.startswith(f"{b.board_clock_hz / 1e6:g} MHz")
        assert FAMILIES[b.family].pll_primitive in clock
        assert re.match(rf"{b.default_mhz:g}\b", mhz) and baud == str(b.uart_baud)
        assert bitstream.endswith(f"top.{b.bitstream}`")


def test_readme_check_sees_a_missing_board(monkeypatch):
    """The check above must be able to fail: a board the table lacks is caught."""
    monkeypatch.setitem(BOARDS, "orangecrab", BOARDS["ulx3s-85f"])
    with pytest.raises(AssertionError):
        test_readme_board_table_is_the_registry()


def test_every_board_has_a_device_and_a_family():
    for b in BOARDS.values():
        assert b.device in DEVICES and b.family in FAMILIES


@pytest.mark.parametrize("command", ["synth", "explore"])
def test_cli_board_choices_are_the_registry(command, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([command, "x", "--out", "x", "--board", "nope"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    choices = re.search(r"choose from (.*)\)", err).group(1)
    assert sorted(re.findall(r"'([^']+)'", choices)) == sorted(BOARDS)
