"""`geoedge run --config FILE`: the station daemon (what systemd starts)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the station daemon: site -> outbox -> MQTT (stops cleanly on SIGTERM)",
    )
    parser.add_argument("--config", required=True, type=Path, help="station TOML file")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.station.daemon import Daemon

    return Daemon(load_config(args.config)).run()
