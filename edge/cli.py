"""The ``geoedge`` command line.

Each sub-command lives in its own module under :mod:`edge.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` to a
function ``(args) -> int``. This module only dispatches and turns
:class:`~edge.errors.GeoEdgeError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence

from edge import __version__
from edge.errors import GeoEdgeError

# OpenCV's own "[ WARN ]" lines (e.g. FFmpeg refusing a file that is no video) would stand
# before our one-line errors; GeoEdge reports what it cannot open itself. Set before any
# sub-command imports cv2.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

#: Sub-command modules, in the order ``geoedge --help`` lists them.
COMMANDS = (
    "run",
    "status",
    "demo",
    "timex",
    "rectify",
    "segment",
    "waterline",
    "runup",
    "shoreline",
    "gpr",
    "export",
    "doctor",
    "hub",
)

EXIT_USER_ERROR = 2


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every sub-command, or of ``only`` that one (the others' modules, and
    what they import, are not loaded: ``geoedge gpr info`` starts without OpenCV's and
    SciPy's import time)."""
    parser = argparse.ArgumentParser(
        prog="geoedge",
        description="GeoEdge: beach camera stations and vehicle-mounted GPR units.",
    )
    parser.add_argument("--version", action="version", version=f"geoedge {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="logging level (default INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(f"edge.commands.{name}").register(subparsers)
    for leaf in leaf_parsers(parser):
        leaf.set_defaults(prog=leaf.prog)
    return parser


def leaf_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parsers that run something (``geoedge gpr info``, not ``geoedge gpr``)."""
    nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not nested:
        yield parser
    for action in nested:
        for sub in action.choices.values():
            yield from leaf_parsers(sub)


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command ``argv`` names (its first word that is no option or option value)."""
    words = iter(argv)
    for word in words:
        if word == "--log-level":
            next(words, None)
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%SZ",
    )
    logging.Formatter.converter = time.gmtime
    try:
        return int(args.handler(args) or 0)
    except GeoEdgeError as exc:
        print(f"{args.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
