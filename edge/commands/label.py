"""``geoedge label IMAGE_DIR --out LABEL_DIR [--labeller NAME] [--model default|PATH]
[--station ID] [--host 127.0.0.1] [--port 0]``: the labelling tool.

Serves a local web page (:mod:`edge.beach.labelling.server`) that shows the images of
``IMAGE_DIR`` one at a time, starting from the station's segmentation of each (the U-Net of
``--model``; the colour method when it cannot be loaded), and saves the corrected class masks
with their records in ``LABEL_DIR`` (:mod:`edge.beach.labelling.record`), the layout
``geoedge export train-unet --real LABEL_DIR`` fine-tunes on. Prints the page's URL and serves
until interrupted (Ctrl+C).
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import Literal

from edge.beach.labelling.assist import StartingSegmenter
from edge.beach.labelling.server import LabelSession, make_server, url_of


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "label",
        help="label water/land/sky/ignore on images in a local web page (training layout)",
        description="Serve a local labelling page for the images of IMAGE_DIR; masks and "
        "records are saved in LABEL_DIR as <stem>.png (0 land, 1 water, 2 sky, 255 ignore) "
        "and <stem>.json. Keys are listed on the page and in the README.",
    )
    parser.add_argument("image_dir", type=Path, metavar="IMAGE_DIR", help="images to label")
    parser.add_argument("--out", type=Path, required=True, help="label folder (LABEL_DIR)")
    parser.add_argument(
        "--labeller",
        default=None,
        help="who labels, recorded with every mask (default: the login name)",
    )
    parser.add_argument(
        "--model",
        default="default",
        help="'default' (the shipped U-Net) or an .onnx with its manifest: the starting masks",
    )
    parser.add_argument("--station", default=None, help="station id recorded with every mask")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only: the page has no login)",
    )
    parser.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    parser.set_defaults(handler=_handle)


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment or the user database
        return "unknown"


def _handle(args: argparse.Namespace) -> int:
    model: Literal["default"] | Path = (
        "default" if args.model == "default" else Path(args.model).resolve()
    )
    starting = StartingSegmenter(model)
    session = LabelSession(
        args.image_dir, args.out, args.labeller or _login(), starting, starting.source, args.station
    )
    server = make_server(session, args.host, args.port)
    print(
        f"geoedge label: {len(session.images)} images in {args.image_dir}, labels to {args.out}, "
        f"starting masks from {starting.source}",
        flush=True,
    )
    print(f"open {url_of(server)}  (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
