"""The CLI loads every subcommand or fails loudly, naming the one that cannot load."""

import pytest

from bp_hw import cli


def test_a_command_that_cannot_import_stops_the_cli(monkeypatch, capsys):
    """No silent skip: a missing or broken command module is an error that names the command."""
    monkeypatch.setitem(cli.COMMANDS, "deploy", "no_such_module")
    with pytest.raises(ImportError, match=r"the 'deploy' command \(bp_hw\.commands\.no_such_module\) cannot be "
                                          r"imported.*installation is broken"):
        cli.main(["train", "--help"])
