"""Train or fine-tune the sea/land U-Net on image/mask pairs (``geoedge export train-unet``,
whose command line is :mod:`export.train.unet_command`).

::

    geoedge export train-unet --images DIR --masks DIR [--out unet.pt] [--init default|none|PT]
                              [--epochs N] [--size 256x320] [--crop 128x160] [--val-fraction 0.1]

Images and masks pair by file stem (masks: PNG, 255 = water). By default training starts
from the shipped weights (``export/weights/unet.pt``), i.e. fine-tunes them on the
user's labelled TimeX images. A deterministic ``--val-fraction`` of the pairs is held
out; the checkpoint with the best held-out IoU is kept, in the format
``geoedge export onnx`` reads. This module's top level imports no torch: the command
line imports it on devices that have none.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import GeoEdgeError

if TYPE_CHECKING:
    from torch import nn

    from edge.models.manifest import Normalisation

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "unet.pt"


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 256x320, got {text!r}") from None
    if h % 8 or w % 8:
        raise argparse.ArgumentTypeError(f"{text}: height and width must be multiples of 8")
    return h, w


def init_architecture(init: str) -> dict[str, int]:
    """The ``arch_kwargs`` (width, depth) of the ``--init`` checkpoint; {} for ``none`` or
    when no shipped weights exist (training from scratch)."""
    import torch

    path = SHIPPED if init == "default" else Path(init)
    if init == "none" or not path.is_file():
        return {}
    return dict(torch.load(path, map_location="cpu", weights_only=True).get("arch_kwargs", {}))


def _initial_state(init: str, width: int, depth: int) -> dict[str, Any] | None:
    import torch

    if init == "none":
        return None
    path = SHIPPED if init == "default" else Path(init)
    if not path.is_file():
        if init == "default":
            log.warning("no shipped U-Net weights at %s: training from scratch", path)
            return None
        raise GeoEdgeError(f"--init {init}: no such checkpoint")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("arch_kwargs") != {"width": width, "depth": depth}:
        raise GeoEdgeError(
            f"--init {path}: built with {ckpt.get('arch_kwargs')}, "
            f"not width={width} depth={depth} (pass the same --width/--depth)"
        )
    return ckpt["state_dict"]


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train and write the best checkpoint to ``args.out``; returns its metrics."""
    import torch
    from torch.nn import functional as F
    from tqdm import tqdm

    from export.data.segmentation import NORMALISATION, Augment, batch, load_pair, pairs
    from export.nets.unet import build

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    found = pairs(args.images, args.masks)
    order = rng.permutation(len(found))
    n_val = max(1, round(len(found) * args.val_fraction)) if len(found) > 1 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    if not len(train_idx):
        raise GeoEdgeError(f"{args.images}: too few pairs ({len(found)}) to hold some out")
    data = [load_pair(*found[i], args.size) for i in range(len(found))]
    net = build(width=args.width, depth=args.depth)
    state = _initial_state(args.init, args.width, args.depth)
    if state is not None:
        net.load_state_dict(state)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = max(1, len(train_idx) // args.batch) * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    augment = Augment(crop=args.crop)
    best: dict[str, Any] = {"val_iou": -1.0, "epoch": 0, "val_count": int(n_val)}
    for epoch in range(1, args.epochs + 1):
        net.train()
        perm = rng.permutation(train_idx)
        chunks = [
            perm[k : k + args.batch] for k in range(0, len(perm) - args.batch + 1, args.batch)
        ]
        bar = tqdm(chunks, desc=f"epoch {epoch}/{args.epochs}", unit="batch")
        for chunk in bar:
            x, y = batch([data[i] for i in chunk], rng, augment)
            logits = net(torch.from_numpy(x))
            target = torch.from_numpy(y)
            prob = torch.sigmoid(logits)
            dice = 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)
            loss = F.binary_cross_entropy_with_logits(logits, target) + dice
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        val = evaluate(net, [data[i] for i in val_idx]) if n_val else float("nan")
        log.info("epoch %d: held-out IoU %.4f", epoch, val)
        print(f"epoch {epoch}: held-out IoU {val:.4f}", flush=True)
        if n_val == 0 or val > best["val_iou"]:
            best = {"val_iou": val, "epoch": epoch, "val_count": int(n_val)}
            _save(net, args, best, NORMALISATION)
    return best


def evaluate(net: nn.Module, samples: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean IoU of the water masks (logit > 0) over whole images."""
    import torch

    from export.data.segmentation import iou, to_input

    net.eval()
    scores = []
    with torch.no_grad():
        for img, m in samples:
            logits = net(torch.from_numpy(to_input(img)[None]))[0, 0].numpy()
            scores.append(iou(logits > 0, m))
    net.train()
    return float(np.mean(scores))


def _save(
    net: nn.Module, args: argparse.Namespace, best: dict[str, Any], norm: Normalisation
) -> None:
    description = args.description or f"{args.images} ({time.strftime('%Y-%m-%d')})"
    metrics = {"heldout_iou": round(best["val_iou"], 4), "heldout_count": best["val_count"]}
    manifest = unet_manifest(args.size, description, metrics, norm)
    save_checkpoint(net, args.out, args.width, args.depth, manifest)


def unet_manifest(
    size: tuple[int, int], description: str, metrics: dict[str, Any], norm: Normalisation
) -> dict[str, Any]:
    """The manifest of a U-Net checkpoint (what ``geoedge export onnx`` writes beside it)."""
    h, w = size
    return {
        "name": "unet",
        "task": "segmentation",
        "input_name": "image",
        "input_shape": [None, 3, h, w],
        "outputs": [
            {"name": "water_logits", "meaning": "N x 1 x H x W water logits; water where > 0"}
        ],
        "classes": ["water"],
        "channel_order": "RGB",
        "normalisation": {
            "scale": norm.scale,
            "mean": norm.mean,
            "std": norm.std,
            "note": norm.note,
        },
        "resize": {"mode": "resize", "tile": None, "overlap": 0},
        "training_data": description,
        "metrics": metrics,
    }


def save_checkpoint(
    net: nn.Module, path: Path, width: int, depth: int, manifest: dict[str, Any]
) -> None:
    """A checkpoint in the format ``geoedge export onnx`` reads (arch, kwargs, weights,
    manifest)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "arch": "export.nets.unet:build",
            "arch_kwargs": {"width": width, "depth": depth},
            "state_dict": net.state_dict(),
            "manifest": manifest,
        },
        path,
    )
