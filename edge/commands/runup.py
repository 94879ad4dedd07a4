"""`geoedge runup`: placeholder until its stage lands."""

from __future__ import annotations

import argparse

from edge.errors import GeoEdgeError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("runup", help="(not yet available)")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    raise GeoEdgeError("'runup' is not available yet")
