"""``geoedge segment IMAGE... --out DIR [--method unet|colour|auto] [--model default|PATH]
[--precision fp32|int8|auto]``: water masks of images.

Writes ``DIR/<stem>.water.png`` (255 = water, 0 = not water, the input's size) per image and
prints one line per image: the method, the water fraction and, with ``auto``, the colour
method's agreement with the U-Net (IoU over the image). ``auto`` uses the U-Net and runs the
colour method as a cross-check: below :data:`DISAGREE_IOU` the line says ``DISAGREE`` so a
person looks at that image. A file that cannot be read is one line and the others go on; the
exit status is 2 when any image failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from edge.beach.waterline.colour import colour_water_probability
from edge.beach.waterline.segmentation import WaterSegmenter
from edge.commands.images import read_colour_image
from edge.config.beach import SegmentationSection
from edge.errors import GeoEdgeError, InputError

#: Below this IoU between the U-Net's and the colour method's water, ``auto`` flags the image.
DISAGREE_IOU = 0.7


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="water masks of images: DIR/<stem>.water.png, 255 = water, the input's size",
        description="Segment sea from land in each image and write DIR/<stem>.water.png "
        "(255 = water, same size as the input), one summary line per image.",
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="images to segment")
    parser.add_argument("--out", type=Path, required=True, help="folder for the masks")
    parser.add_argument(
        "--method",
        choices=("unet", "colour", "auto"),
        default="auto",
        help="unet, colour (red minus blue, Otsu), or auto: the U-Net cross-checked by the "
        "colour method (default)",
    )
    parser.add_argument(
        "--model",
        default="default",
        help="'default' (the shipped U-Net) or the path of an .onnx with its manifest",
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "int8", "auto"),
        default="auto",
        help="model variant: fp32, int8, or auto (the fastest that passed its accuracy gate)",
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    model: Literal["default"] | Path = (
        "default" if args.model == "default" else Path(args.model).resolve()
    )
    try:
        section = SegmentationSection(
            method="colour" if args.method == "colour" else "unet",
            model=model,
            precision=args.precision,
            providers=["CPUExecutionProvider"],
        )
    except ValueError as exc:
        raise InputError(f"--model {args.model}: {str(exc).splitlines()[-1].strip()}") from None
    segmenter = WaterSegmenter(section)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in args.images:
        try:
            bgr = read_colour_image(str(path), path)
            seg = segmenter(bgr)
            mask = seg.mask
            line = f"{path.name}: {seg.method}, water {mask.mean():.1%}"
            if args.method == "auto":
                colour = colour_water_probability(bgr) >= 0.5
                union = np.logical_or(mask, colour).sum()
                iou = 1.0 if union == 0 else float(np.logical_and(mask, colour).sum() / union)
                line += f", colour IoU {iou:.2f}" + (" DISAGREE" if iou < DISAGREE_IOU else "")
            out = args.out / f"{path.stem}.water.png"
            if not cv2.imwrite(str(out), mask.astype(np.uint8) * 255):
                raise InputError(f"{out}: cannot write the mask")
            print(f"{line} -> {out}")
        except GeoEdgeError as exc:
            failed += 1
            print(f"geoedge segment: error: {exc}", file=sys.stderr)
    return 2 if failed else 0
