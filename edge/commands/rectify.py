"""``geoedge rectify --config FILE --image CAM=PATH... --z Z --out PNG``: a plan view.

Every grid node of ``[grid]`` is placed at elevation ``Z`` (m, the station's vertical
datum: the water level of the collection) and sampled in each camera; several cameras
are blended (:mod:`edge.beach.geometry.rectify`). Row 0 of the output is the largest local y.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from edge.beach.geometry.calibration import load_camera
from edge.beach.geometry.grid import Grid
from edge.beach.geometry.rectify import rectify, to_uint8
from edge.commands.arguments import camera_path
from edge.commands.images import read_colour_image
from edge.config import load_config
from edge.errors import ConfigError, InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("rectify", help="plan-view image at elevation Z")
    p.add_argument("--config", type=Path, required=True, help="station TOML with [grid]")
    p.add_argument(
        "--image",
        type=camera_path,
        action="append",
        required=True,
        metavar="CAM=PATH",
        help="an image of camera CAM (a name in the config); repeat for each camera",
    )
    p.add_argument("--z", type=float, required=True, help="plane elevation, m (water level)")
    p.add_argument("--out", type=Path, required=True, help="output PNG")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if config.grid is None:
        raise ConfigError(f"{args.config}: rectify needs a [grid] section")
    pairs = []
    for name, path in args.image:
        camera = load_camera(config.camera(name))
        pairs.append((camera, read_colour_image(f"{name}={path}", path)))
    view = rectify(pairs, Grid.from_section(config.grid), args.z)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), to_uint8(view)):
        raise InputError(f"{args.out}: cannot write image")
    print(f"rectify: {view.coverage.mean():.1%} of the grid seen -> {args.out}")
    return 0
