"""``geoedge waterline``: one waterline message from TimeX images (or ready masks).

::

    geoedge waterline --config FILE --image CAM=PATH [...] --water-level Z --out JSON
                      [--mask CAM=PATH ...] [--time ISO] [--overlays DIR]

``CAM`` is a camera name of the config; ``--water-level`` is the plane the waterline is
taken to (m in the station's vertical datum: the tide, plus setup where known);
``--mask`` takes a ready water mask (255 = water) instead of segmenting that camera.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from edge.beach.waterline.analysis import BeachAnalyser
from edge.commands.arguments import camera_path, utc_time
from edge.config import load_config
from edge.errors import InputError
from edge.station.messages import json_safe


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "waterline",
        help="waterline message from TimeX images or masks",
        description="One waterline message (JSON) into --out. Side files: with --image, an "
        "overlay per camera (<out stem>.<camera>.waterline.jpg) and, with a [grid], a plan "
        "view (<out stem>.plan.waterline.jpg), in --overlays or beside --out.",
    )
    p.add_argument("--config", type=Path, required=True, help="station TOML")
    p.add_argument(
        "--image",
        type=camera_path,
        action="append",
        default=[],
        metavar="CAM=PATH",
        help="TimeX image of camera CAM (a name in the config), segmented here; repeatable",
    )
    p.add_argument(
        "--mask",
        type=camera_path,
        action="append",
        default=[],
        metavar="CAM=PATH",
        help="a ready water mask of camera CAM (255 = water) instead of an image; repeatable",
    )
    p.add_argument("--water-level", type=float, required=True, help="m, station vertical datum")
    p.add_argument("--out", type=Path, required=True, help="message JSON to write")
    p.add_argument("--time", type=utc_time, help="collection time, UTC (default: now)")
    p.add_argument(
        "--overlays", type=Path, help="folder for the overlay images (default: beside --out)"
    )
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    if not args.image and not args.mask:
        raise InputError("give at least one --image CAM=PATH or --mask CAM=PATH")
    config = load_config(args.config)
    images, masks = dict(args.image), dict(args.mask)
    for cam, path in [*args.image, *args.mask]:
        if not path.is_file():
            raise InputError(f"{cam}={path}: file not found")
    analyser = BeachAnalyser(config, load_model=bool(set(images) - set(masks)))
    result = analyser.analyse(
        args.time if args.time is not None else dt.datetime.now(dt.timezone.utc).timestamp(),
        args.water_level,
        images=images,
        masks=masks,
        out_dir=args.overlays or args.out.parent,
        stem=args.out.stem,
    )
    message = result.to_message(config.station.id, config.station.crs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(json_safe(message), indent=1) + "\n", encoding="utf-8")
    valid = sum(c.valid for c in result.crossings)
    print(f"waterline: {valid}/{len(result.crossings)} transects valid -> {args.out}")
    for view, path in sorted(result.overlays.items()):
        print(f"overlay ({view}): {path}")
    return 0
