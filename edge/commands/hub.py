"""``geoedge hub --config FILE``: the control room's hub; ``geoedge hub export ...``: a file.

``geoedge hub --config hub.toml`` subscribes to the stations' topics, stores every message
once, and serves the HTTP API and the dashboard until SIGTERM (what systemd starts).
``geoedge hub export --config hub.toml --kind cavities|waterlines|shorelines --format
gpkg|geojson|csv [--since ISO] --out FILE`` writes an export of the hub's store.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge.commands.arguments import utc_time

log = logging.getLogger(__name__)

KINDS = ("cavities", "waterlines", "shorelines")
FORMATS = ("gpkg", "geojson", "csv")
#: Exit status when the store cannot be reached at start-up: systemd retries (not a user error).
EXIT_STORE_DOWN = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    hub = subparsers.add_parser(
        "hub",
        help="the control room's hub: subscribe, store, serve the API and the dashboard",
        description="geoedge hub --config FILE runs the hub (until SIGTERM); "
        "geoedge hub export ... writes a file from its store.",
    )
    hub.add_argument("--config", type=Path, help="hub TOML file (to run the hub)")
    hub.set_defaults(handler=_run, prog=hub.prog)
    sub = hub.add_subparsers(dest="hub_action", metavar="[export]")
    export = sub.add_parser("export", help="write cavities, waterlines or shorelines to a file")
    export.add_argument("--config", type=Path, required=True, help="hub TOML file (its store)")
    export.add_argument("--kind", required=True, choices=KINDS, help="what to export")
    export.add_argument("--format", required=True, choices=FORMATS, help="file format")
    export.add_argument("--since", type=utc_time, help="UTC ISO time: only messages from then on")
    export.add_argument("--out", type=Path, required=True, help="file to write (replaced)")
    export.set_defaults(handler=_export)


def _run(args: argparse.Namespace) -> int:
    from edge.errors import ConfigError
    from edge.hub.config import load_hub_config
    from edge.hub.service import HubService
    from edge.hub.store import StoreError

    if args.config is None:
        raise ConfigError("--config FILE is required to run the hub (or: geoedge hub export)")
    config = load_hub_config(args.config)
    try:
        service = HubService(config)
    except StoreError as exc:
        print(f"{args.prog}: error: {exc}", file=sys.stderr)
        return EXIT_STORE_DOWN
    return service.run()


def _export(args: argparse.Namespace) -> int:
    from edge.errors import InputError
    from edge.hub.config import load_hub_config
    from edge.hub.export import export_file
    from edge.hub.store import Store

    config = load_hub_config(args.config)
    if not config.hub.is_postgresql and not Path(config.hub.store).is_file():
        raise InputError(f"hub.store: no store yet at {config.hub.store}")
    store = Store(config.store_url(), config.store_shown())
    try:
        rows = export_file(store, args.kind, args.format, args.out, args.since)
    finally:
        store.close()
    print(f"{rows} {args.kind} row(s) written to {args.out}")
    return 0
