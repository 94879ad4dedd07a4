"""Per-site fine-tuning of the sea/land U-Net on a station's own labels.

::

    geoedge export train-unet --real LABEL_DIR [LABEL_DIR ...] --init default --out site.pt
                              [--steps 100] [--batch 4] [--lr 5e-4] [--crop HxW] [--seed 0]

``LABEL_DIR`` is a folder written by ``geoedge label`` (class masks + records,
:mod:`edge.beach.labelling.record`). Training starts from ``--init`` (``default``: the shipped
weights) and keeps its architecture and input size (a per-site model must run wherever the
shipped one runs): a checkpoint built for another size is refused.

Each step draws ``--batch`` labelled images at random, squashes them to the model's aspect at
1-1.25x the model input, crops them (by default to the whole model input: what the station
feeds), flips and recolours them (:func:`export.train.real_unet.sample`); the loss is BCE +
soft Dice over the non-ignore pixels (:func:`export.train.real_unet.masked_loss`), sky and land
are not-water. Batch-norm statistics stay those of ``--init`` (a few frames of one camera would
pull them towards that camera's colours and away from what the weights expect); their scale and
shift are trained with the rest. The learning rate warms up over 20 steps, then follows a
cosine to 0. A fixed number of steps (not a wall-clock budget) gives the same result on a fast
or a busy machine. No held-out split happens here: the accuracy gate (``geoedge export onnx
--site-labels``) compares the exported model with the shipped one on labels this training
never saw.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import GeoEdgeError
from export.data.real_labels import load_label_dir, read_pair
from export.train.real_unet import Pair, masked_loss, sample
from export.train.unet import SHIPPED, save_checkpoint, unet_manifest

#: Images are kept at this long side (px) in memory (nothing finer is ever sampled).
LONG_SIDE = 1024
#: Samples are drawn at 1 to this many times the model input: the station feeds the whole image
#: squashed to the input size, so a site's own model is trained near that scale.
MAX_SCALE = 1.25


@dataclass(frozen=True)
class FineTuneResult:
    """What a fine-tune did: optimiser steps, labelled images per station, the smoothed loss
    of the last steps and the wall-clock seconds."""

    steps: int
    images: dict[str, int]
    final_loss: float
    seconds: float


def _init_checkpoint(init: str, size: tuple[int, int]) -> dict | None:
    """The checkpoint to start from (None for ``none``), refused when built for another size."""
    import torch

    if init == "none":
        return None
    path = SHIPPED if init == "default" else Path(init)
    if not path.is_file():
        raise GeoEdgeError(f"--init {init}: no such checkpoint ({path})")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    built = list(ckpt.get("manifest", {}).get("input_shape", [None, None, 0, 0])[2:])
    if built != list(size):
        raise GeoEdgeError(
            f"--init {init}: built for input {built[0]}x{built[1]}, not --size {size[0]}x{size[1]} "
            "(a per-site model keeps the shipped input size)"
        )
    return ckpt


def finetune(args: argparse.Namespace) -> FineTuneResult:
    """Fine-tune on ``args.real`` label folders and write the checkpoint ``args.out``."""
    import torch

    from export.data.segmentation import NORMALISATION, to_input
    from export.nets.unet import build

    t0 = time.time()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    items = [item for folder in args.real for item in load_label_dir(folder)]
    data: list[Pair] = [read_pair(item, LONG_SIDE) for item in items]
    images: dict[str, int] = {}
    for item in items:
        images[item.station] = images.get(item.station, 0) + 1
    ckpt = _init_checkpoint(args.init, args.size)
    if ckpt is not None:
        arch = ckpt["arch_kwargs"]
        if arch != {"width": args.width, "depth": args.depth}:
            raise GeoEdgeError(
                f"--init {args.init}: built with {arch}, not width={args.width} depth={args.depth}"
            )
    net = build(width=args.width, depth=args.depth)
    if ckpt is not None:
        net.load_state_dict(ckpt["state_dict"])
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    ema: float | None = None
    net.train()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()  # keep the shipped statistics: ten frames of one camera are too few
    for step in range(args.steps):
        warm = min(1.0, (step + 1) / 20)
        lr = args.lr * warm * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for group in opt.param_groups:
            group["lr"] = lr
        xs, ys = [], []
        for _ in range(args.batch):
            img, mask = data[int(rng.integers(len(data)))]
            im, m = sample(rng, img, mask, args.size, args.crop, MAX_SCALE)
            xs.append(to_input(im))
            ys.append(m[None])
        loss = masked_loss(net(torch.from_numpy(np.stack(xs))), np.stack(ys))
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema = loss.item() if ema is None else 0.9 * ema + 0.1 * loss.item()
        if (step + 1) % 20 == 0:
            print(f"step {step + 1}/{args.steps} loss~{ema:.3f}", flush=True)
    net.eval()
    folders = ", ".join(str(f) for f in args.real)
    init = str(SHIPPED) if args.init == "default" else args.init
    description = args.description or (
        f"per-site fine-tune of {init} on {len(items)} labelled images ({images}) from "
        f"{folders}: {args.steps} steps x batch {args.batch}, crops {args.crop}, "
        f"lr {args.lr} ({time.strftime('%Y-%m-%d')})"
    )
    metrics = {
        "site_finetune": {
            "labels": [str(f) for f in args.real],
            "images": images,
            "steps": args.steps,
            "batch": args.batch,
            "lr": args.lr,
            "init": init,
        }
    }
    manifest = unet_manifest(args.size, description, metrics, NORMALISATION)
    save_checkpoint(net, args.out, args.width, args.depth, manifest)
    return FineTuneResult(args.steps, images, float(ema or 0.0), time.time() - t0)
