"""`blebridge --help`: every subcommand (and every `sim` subcommand) says what it does."""
from __future__ import annotations

import argparse

from blebridge import cli
from cli_helpers import blebridge


def _subcommands(parser: argparse.ArgumentParser, prefix: str = ""):
    """(name, help, its parser) of every subcommand, nested ones included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield prefix + name, helps.get(name), sub
                yield from _subcommands(sub, prefix + name + " ")


def test_every_subcommand_has_a_help_line():
    missing = [name for name, help_, _ in _subcommands(cli.build_parser()) if not help_]
    assert missing == []


def test_every_subcommand_has_a_description_for_its_own_help():
    missing = [name for name, _, sub in _subcommands(cli.build_parser()) if not sub.description]
    assert missing == []


def test_blebridge_help_lists_each_subcommand_with_its_line():
    r = blebridge("--help")
    assert r.returncode == 0, r.stderr
    for name, help_, _ in _subcommands(cli.build_parser()):
        if " " not in name:
            assert f"    {name} " in r.stdout and help_.split()[0] in r.stdout, name


def test_the_new_commands_are_offered():
    names = {name for name, _, _ in _subcommands(cli.build_parser())}
    assert {"scan", "repl", "run", "sim start"} <= names
