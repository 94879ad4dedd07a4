"""``geoedge export train-unet``: the command line of U-Net training.

Two sources of labels:

- ``--images DIR --masks DIR``: image/mask pairs by file stem (masks PNG, 255 = water), trained
  for ``--epochs`` with a held-out ``--val-fraction`` (:func:`export.train.unet.train`);
- ``--real LABEL_DIR ...``: folders written by ``geoedge label`` (class masks with sky and
  ignore), fine-tuned for ``--steps`` (:func:`export.train.site_unet.finetune`): the per-site
  path, whose result ``geoedge export onnx --site-labels`` gates against the shipped model.

This module's top level imports no torch: the command line imports it on devices that have none.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.errors import InputError
from export.train.site_unet import finetune
from export.train.unet import _size, init_architecture, train


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train-unet", help="train / fine-tune the sea-land U-Net")
    p.add_argument("--images", type=Path, help="TimeX images (PNG/JPEG), with --masks")
    p.add_argument("--masks", type=Path, help="masks, PNG, 255 = water, with --images")
    p.add_argument(
        "--real",
        type=Path,
        nargs="+",
        metavar="LABEL_DIR",
        help="geoedge label folders (instead of --images/--masks): per-site fine-tuning",
    )
    p.add_argument("--out", type=Path, default=Path("unet.pt"), help="checkpoint to write")
    p.add_argument("--init", default="default", help="default (shipped weights), none, or a .pt")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training set")
    p.add_argument("--steps", type=int, default=100, help="with --real: optimiser steps")
    p.add_argument("--size", type=_size, default=(256, 320), help="model input HxW")
    p.add_argument(
        "--crop",
        type=_size,
        default=None,
        help="training crop HxW (default 128x160; with --real the whole model input)",
    )
    p.add_argument("--batch", type=int, default=None, help="images per step (16; --real: 4)")
    p.add_argument(
        "--lr", type=float, default=None, help="peak learning rate, AdamW (2e-3; --real: 5e-4)"
    )
    p.add_argument(
        "--width", type=int, default=None,
        help="channels of the first level (default: the --init checkpoint's; 8 from scratch)",
    )  # fmt: skip
    p.add_argument(
        "--depth", type=int, default=None, help="levels (default: the --init checkpoint's; 4)"
    )
    p.add_argument(
        "--val-fraction", type=float, default=0.1, help="share of images held out for validation"
    )
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--seed", type=int, default=0, help="random seed (split, augmentation)")
    p.add_argument("--description", default="", help="training data description (manifest)")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from export.convert.onnx_export import require_torch

    if args.real and (args.images or args.masks):
        raise InputError("--real: give label folders or --images/--masks, not both")
    if not args.real and not (args.images and args.masks):
        raise InputError("give --images DIR --masks DIR, or --real LABEL_DIR")
    if args.steps < 1:
        raise InputError(f"--steps {args.steps}: expected at least 1")
    require_torch()
    # the per-site defaults: whole model inputs, few per step, a gentle learning rate
    if args.crop is None:
        args.crop = args.size if args.real else (128, 160)
    if args.batch is None:
        args.batch = 4 if args.real else 16
    if args.lr is None:
        args.lr = 5e-4 if args.real else 2e-3
    built = init_architecture(args.init)
    if args.width is None:
        args.width = built.get("width", 8)
    if args.depth is None:
        args.depth = built.get("depth", 4)
    if args.real:
        done = finetune(args)
        print(
            f"train-unet: fine-tuned {args.init} on {sum(done.images.values())} labelled images "
            f"{done.images} for {done.steps} steps in {done.seconds:.0f} s "
            f"(loss {done.final_loss:.3f}) -> {args.out}"
        )
        return 0
    result = train(args)
    print(
        f"train-unet: best held-out IoU {result['val_iou']:.4f} at epoch {result['epoch']} "
        f"({result['val_count']} held-out images) -> {args.out}"
    )
    return 0
