"""The command line as a newcomer meets it: every sub-command says what it does, every argument
has help, and a failing sub-command is named in its one-line error."""

from __future__ import annotations

import argparse
import subprocess
import sys

from edge.cli import build_parser, leaf_parsers


def _subcommand_actions(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def test_every_subcommand_has_a_one_line_help():
    missing = []
    todo = [build_parser()]
    while todo:
        parser = todo.pop()
        for action in _subcommand_actions(parser):
            for choice in action._choices_actions:
                if not choice.help or "\n" in choice.help:
                    missing.append(f"{parser.prog} {choice.dest}")
            todo += action.choices.values()
    assert missing == []


def test_every_argument_has_help():
    leaves = list(leaf_parsers(build_parser()))
    assert len(leaves) >= 14, [p.prog for p in leaves]
    missing = [
        f"{p.prog} {a.dest}"
        for p in leaves
        for a in p._actions
        if not isinstance(a, argparse._HelpAction) and not a.help
    ]
    assert missing == []


def test_a_nested_subcommand_is_named_in_its_error(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "edge", "gpr", "info", str(tmp_path / "none.DZT")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geoedge gpr info: error: "), lines
