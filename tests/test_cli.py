"""The command line as a newcomer meets it: every sub-command says what it does, every argument
has help, and a failing sub-command is named in its one-line error."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import cv2
import onnxruntime

from edge.cli import build_parser, leaf_parsers
from tests.helpers.data import REPO


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


def test_doctor_tells_the_truth_about_this_machine(tmp_path):
    """No GPU, no TensorRT, an OpenCV without GStreamer here: reported as such, exit 0."""
    run = subprocess.run(
        [sys.executable, "-m", "edge", "doctor", "--json", "--config",
         str(REPO / "firmware_config" / "gpr_unit.toml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    found = {f["piece"]: f for f in json.loads(run.stdout)["findings"]}
    assert found["python"]["state"] == "ok"
    gstreamer = re.search(r"^\s*GStreamer:\s*YES", cv2.getBuildInformation(), re.M) is not None
    assert ("GStreamer yes" in found["opencv"]["found"]) == gstreamer
    providers = onnxruntime.get_available_providers()
    assert all(p in found["onnxruntime"]["found"] for p in providers)
    assert found["tensorrt"]["state"] in ("ok", "note", "missing")
    assert found["config"]["state"] == "ok" and "broker" in found


def test_a_command_loads_only_its_own_module():
    """`geoedge gpr info` parses with its own sub-command only: OpenCV, SciPy's statistics,
    the beach site and PyTorch stay unloaded (start-up time on a field computer)."""
    code = (
        "import sys; from edge.cli import main; "
        f"main(['gpr', 'info', {str(REPO / 'tests/data/gprpy/FILE____032.DZT')!r}]); "
        "print(sorted(m for m in ('cv2', 'scipy.stats', 'torch', 'edge.beach.site') "
        "if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"
