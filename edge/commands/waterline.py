"""`geoedge waterline`: placeholder until its stage lands."""

from __future__ import annotations

import argparse

from edge.errors import GeoEdgeError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("waterline", help="(not yet available)")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    raise GeoEdgeError("'waterline' is not available yet")
