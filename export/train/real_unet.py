"""Train / fine-tune the sea/land U-Net on REAL labelled images mixed with synthetic ones.

::

    python -m export.train.real_unet --real DIR [--synth DIR] --out unet.pt
        [--holdout-groups g1,g2] [--minutes M] [--init default|none|PT]
        [--width W --depth D] [--size 256x320] [--crop 128x160] [--batch 8] [--synth-frac 0.375]

``--real`` is a directory written by :mod:`export.data.real_labels` (npz pairs + ``table.json``);
``--synth`` one written by :mod:`export.data.synth_timex` (``images/`` + ``masks/``).
``--holdout-groups`` leaves whole station groups out of training (a validation fold);
``--holdout-stations`` single stations (e.g. one kept back for the per-site fine-tuning test).
``--width``/``--depth`` default to the ``--init`` checkpoint's (the shipped one: 12 and 4),
and to 12 and 4 from scratch.

Real samples are drawn with weight 1/sqrt(images of their station) (a 16-frame time series
does not drown single-image stations), squashed to the model's aspect like the ``resize``
inference path and scaled 1-2x of the model input, then cropped; strong photometric
augmentation (brightness, contrast, gamma, colour cast, grey/desaturate, blur, noise,
JPEG-like smoothing) and flips. Targets: water vs not-water; ignore pixels carry no loss.
Loss: BCE + soft Dice over the valid pixels. Runs for a wall-clock budget (``--minutes``)
with a cosine learning rate; writes the final weights in the checkpoint format
``geoedge export onnx`` reads (same as :mod:`export.train.unet`).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from export.train.unet import SHIPPED, _size, save_checkpoint, unet_manifest

if TYPE_CHECKING:
    import torch

#: (BGR uint8 image, class mask uint8: 0 land, 1 water, 2 sky, 255 ignore).
Pair = tuple[np.ndarray, np.ndarray]


def load_real(
    root: Path, holdout: set[str], holdout_stations: frozenset[str] = frozenset()
) -> tuple[list[Pair], list[dict]]:
    """The labelled pairs and their table rows, without the held-out groups and stations."""
    rows = json.loads((root / "table.json").read_text())
    rows = [r for r in rows if r["group"] not in holdout and r["station"] not in holdout_stations]
    data: list[Pair] = []
    for r in rows:
        z = np.load(root / r["file"])
        data.append((z["image"], z["mask"]))
    return data, rows


def load_synth(root: Path | None) -> list[Pair]:
    if root is None:
        return []
    out: list[Pair] = []
    for p in sorted((root / "images").glob("*.png")):
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        m = cv2.imread(str(root / "masks" / p.name), cv2.IMREAD_GRAYSCALE)
        if img is not None and m is not None:
            out.append((img, np.where(m > 127, 1, 0).astype(np.uint8)))
    return out


def photometric(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    # float32 at first; the per-channel colour cast (a float64 draw) promotes it to float64
    x: npt.NDArray[np.floating] = img.astype(np.float32)
    if rng.random() < 0.2:  # grey (thermal-like, night, B/W cameras)
        grey = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
        x = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    elif rng.random() < 0.3:  # desaturate / oversaturate
        g = x.mean(axis=2, keepdims=True)
        x = g + (x - g) * rng.uniform(0.2, 1.5)
    x = x * rng.uniform(0.9, 1.1, 3)  # colour cast / white balance
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.55, 1.5) + mean * rng.uniform(0.6, 1.4)
    x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.3:
        # same dtype as its input (the stub says integer | floating); copy=False: no copy
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.4, 1.6)).astype(x.dtype, copy=False)
    if rng.random() < 0.5:
        x = x + rng.normal(0, rng.uniform(1, 10), x.shape).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def sample(
    rng: np.random.Generator,
    img: np.ndarray,
    mask: np.ndarray,
    size: tuple[int, int],
    crop: tuple[int, int],
    max_scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Squash to the model's aspect at a random scale, crop, flip, recolour."""
    h, w = size
    for _ in range(5):
        s = rng.uniform(1.0, max_scale)
        sh = round(h * s * rng.uniform(0.9, 1.1))
        sw = round(w * s * rng.uniform(0.9, 1.1))
        sh, sw = max(sh, crop[0]), max(sw, crop[1])
        inter = cv2.INTER_AREA if sw < img.shape[1] else cv2.INTER_LINEAR
        im = cv2.resize(img, (sw, sh), interpolation=inter)
        m = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_NEAREST)
        y = int(rng.integers(0, sh - crop[0] + 1))
        x = int(rng.integers(0, sw - crop[1] + 1))
        im, m = im[y : y + crop[0], x : x + crop[1]], m[y : y + crop[0], x : x + crop[1]]
        if (m != 255).mean() > 0.3:
            break
    if rng.random() < 0.5:
        im, m = im[:, ::-1], m[:, ::-1]
    return photometric(rng, np.ascontiguousarray(im)), np.ascontiguousarray(m)


def masked_loss(logits: torch.Tensor, masks: np.ndarray) -> torch.Tensor:
    """BCE + soft Dice of water logits (N x 1 x H x W) against class masks (N x 1 x H x W
    uint8: water = 1), over the valid (not ignore) pixels only."""
    import torch
    from torch.nn import functional as F

    target = torch.from_numpy((masks == 1).astype(np.float32))
    valid = torch.from_numpy((masks != 255).astype(np.float32))
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=valid, reduction="sum")
    bce = bce / valid.sum().clamp(min=1)
    prob = torch.sigmoid(logits) * valid
    dice = 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + (target * valid).sum() + 1)
    return bce + dice


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--real", type=Path, required=True)
    p.add_argument("--synth", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--holdout-groups", default="")
    p.add_argument("--holdout-stations", default="", help="stations left out (comma-separated)")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--init", default="default")
    p.add_argument("--width", type=int, default=None, help="default: the --init model's; 12")
    p.add_argument("--depth", type=int, default=None, help="default: the --init model's; 4")
    p.add_argument("--size", type=_size, default=(256, 320))
    p.add_argument("--crop", type=_size, default=(128, 160))
    p.add_argument("--max-scale", type=float, default=2.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--synth-frac", type=float, default=0.375)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--description", default="")
    args = p.parse_args(argv)

    import torch

    from export.data.segmentation import NORMALISATION, to_input
    from export.nets.unet import build
    from export.train.unet import _initial_state, init_architecture

    built = init_architecture(args.init)
    width = args.width or built.get("width", 12)
    depth = args.depth or built.get("depth", 4)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    holdout = {g for g in args.holdout_groups.split(",") if g}
    held_stations = frozenset(s for s in args.holdout_stations.split(",") if s)
    real, rows = load_real(args.real, holdout, held_stations)
    synth = load_synth(args.synth)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["station"]] = counts.get(r["station"], 0) + 1
    weights = np.array([1 / math.sqrt(counts[r["station"]]) for r in rows])
    weights /= weights.sum()
    print(
        f"real {len(real)} images / {len(counts)} stations (held out: "
        f"{sorted(holdout | held_stations)}), "
        f"synthetic {len(synth)}",
        flush=True,
    )

    net = build(width=width, depth=depth)
    state = _initial_state(args.init, width, depth)
    if state is not None:
        net.load_state_dict(state)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60.0
    n_synth = round(args.batch * args.synth_frac) if synth else 0
    t0 = time.time()
    step = 0
    ema: float | None = None
    net.train()
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1.0:
            break
        warm = min(1.0, (step + 1) / 20)
        lr = args.lr * warm * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        xs, ys = [], []
        for k in range(args.batch):
            if k < n_synth:
                img, m = synth[int(rng.integers(len(synth)))]
                im, mm = sample(rng, img, m, args.size, args.crop, 1.4)
            else:
                img, m = real[int(rng.choice(len(real), p=weights))]
                im, mm = sample(rng, img, m, args.size, args.crop, args.max_scale)
            xs.append(to_input(im))
            ys.append(mm[None])
        x = torch.from_numpy(np.stack(xs))
        loss = masked_loss(net(x), np.stack(ys))
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 20 == 0:
            print(f"step {step} t={time.time() - t0:.0f}s lr={lr:.2e} loss~{ema:.3f}", flush=True)
    net.eval()
    desc = args.description or (
        f"real: {len(real)} images from {len(counts)} stations ({args.real}, held out "
        f"{sorted(holdout | held_stations) or 'none'}); synthetic: {len(synth)} ({args.synth}); "
        f"{step} steps x batch {args.batch} ({n_synth} synthetic), crops {args.crop}"
    )
    metrics = {
        "train_steps": step,
        "stations": counts,
        "init": str(SHIPPED) if args.init == "default" else args.init,
    }
    manifest = unet_manifest(args.size, desc, metrics, NORMALISATION)
    save_checkpoint(net, args.out, width, depth, manifest)
    print(f"wrote {args.out} after {step} steps", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
