"""``geoedge export train-detector``: train or fine-tune the cavity/pipe detector.

Data: a detection dataset directory (``images/`` .npy processed B-scan windows or grey PNG,
``labels/`` YOLO txt ``class cx cy w h`` normalised, optional ``classes.txt``), as written by
``python -m export.data.detection`` or labelled by a user. Windows are resampled to the model
input (:data:`edge.gpr.detector.WINDOW`, samples x traces) and standardised per window.

By default training starts from the shipped weights (``export/weights/detector.pt``), so a
few epochs on users' own data fine-tune it; ``--init none`` trains from scratch. A share of
the data (``--holdout``) is kept out of training and scored after every epoch with the
accuracy gate's metrics (:func:`export.convert.verify.detection_metrics`: mAP@0.5 and box recall).

The output is a checkpoint in the export toolchain's format (``arch``, ``arch_kwargs``,
``state_dict``, ``manifest``; see :mod:`export.convert.onnx_export`), ready for
``geoedge export onnx``; ``--onnx`` exports it at once.

Training targets (CenterNet): per class a Gaussian heat map peaking at 1 in the cell of each
box centre (sigma = box size / 6 per axis, at least 0.8 cell), and at that cell the centre
offset in the cell and the box size as a fraction of the window. Loss: penalty-reduced focal
loss on the heat maps plus L1 on offset and (x10) size, normalised by the number of boxes.

torch is imported inside functions only, so ``geoedge export --help`` does not load it.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import InputError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from edge.models.manifest import Manifest
    from export.nets.detector import CavityNet

log = logging.getLogger(__name__)

ARCH = "export.nets.detector:build"
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "detector.pt"
OUTPUT_MEANING = (
    "N x (C+4) x H/4 x W/4, sigmoid: C class centre heat maps, centre offset in the cell "
    "(x, y), box size (w, h) as fractions of the window"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train-detector`` to the ``geoedge export`` sub-commands."""
    p = subparsers.add_parser(
        "train-detector", help="train / fine-tune the GPR cavity detector on labelled windows"
    )
    p.add_argument("--data", type=Path, required=True, help="dataset dir: images/ + labels/")
    p.add_argument(
        "--init",
        default="default",
        help="start weights: 'default' (shipped), 'none' (scratch) or a checkpoint .pt",
    )
    p.add_argument("--out", type=Path, default=Path("detector.pt"), help="checkpoint to write")
    p.add_argument("--onnx", type=Path, help="also export the result to this .onnx")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training set")
    p.add_argument("--batch", type=int, default=32, help="windows per step")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
    p.add_argument("--holdout", type=float, default=0.1, help="share kept out for scoring")
    p.add_argument("--width", type=int, default=16, help="channel width (scratch only)")
    p.add_argument("--minutes", type=float, help="stop after this much training time")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--seed", type=int, default=0, help="random seed (split, augmentation)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    cfg = TrainConfig(
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        holdout=args.holdout,
        width=args.width,
        minutes=args.minutes,
        threads=args.threads,
        seed=args.seed,
        init=args.init,
        progress=not args.no_progress,
    )
    result = train(args.data, args.out, cfg, onnx_out=args.onnx)
    m = result["heldout"]
    print(
        f"{args.out}: {result['steps']} steps, held-out {result['heldout_windows']} windows: "
        f"mAP@0.5 {m['map50']:.3f}, box recall {m['recall']:.3f}, "
        f"class-agnostic mAP@0.5 {m['map50_any_class']:.3f}"
    )
    return 0


@dataclass
class TrainConfig:
    """Training settings (see the command's help)."""

    epochs: int = 10
    batch: int = 32
    lr: float = 2e-3
    holdout: float = 0.1
    width: int = 16
    minutes: float | None = None
    threads: int = 2
    seed: int = 0
    init: str = "default"
    progress: bool = True


# ------------------------------------------------------------------------- data


def load_windows(data_dir: Path) -> tuple[np.ndarray, list[np.ndarray], tuple[str, ...]]:
    """All windows ``(N, H, W)`` float16 at the model size, YOLO labels ``(n, 5)``, classes."""
    from export.data.detection import load_window, read_dataset

    data_dir = Path(data_dir)
    if not (data_dir / "images").is_dir():
        raise InputError(f"{data_dir}: no images/ directory (expected images/ + labels/)")
    paths, labels, classes = read_dataset(data_dir)
    if not paths:
        raise InputError(f"{data_dir / 'images'}: no .npy or .png windows")
    for p, lab in zip(paths, labels, strict=True):
        if len(lab) and (lab[:, 0].max() >= len(classes) or lab[:, 0].min() < 0):
            raise InputError(f"{p.stem}: class index outside 0..{len(classes) - 1} ({classes})")
    windows = np.stack([load_window(p).astype(np.float16) for p in paths])
    return windows, labels, classes


def split(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train / held-out indices (at least one held-out window when n > 1)."""
    order = np.random.default_rng(seed).permutation(n)
    k = min(max(1, round(n * holdout)), n - 1) if n > 1 else 0
    return order[k:], order[:k]


def augment(
    window: np.ndarray, boxes: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random mirror along track, crop-and-zoom, gain ramp along time and extra noise.

    Polarity is never flipped: it is what tells a cavity (void, same polarity as the
    direct wave) from a metal/water pipe (reversed).
    """
    import cv2

    from edge.gpr.detector import normalise_window

    h, w = window.shape
    x: np.ndarray = window.astype(np.float32)
    b = boxes.copy()
    if rng.random() < 0.5:
        x = x[:, ::-1]
        b[:, 1] = 1.0 - b[:, 1]
    if rng.random() < 0.5:
        sy, sx = rng.uniform(0.6, 1.0, 2)
        oy, ox = rng.uniform(0, 1 - sy), rng.uniform(0, 1 - sx)
        r0, r1 = int(oy * h), int((oy + sy) * h)
        c0, c1 = int(ox * w), int((ox + sx) * w)
        x = cv2.resize(np.ascontiguousarray(x[r0:r1, c0:c1]), (w, h))
        y0s, y1s, x0s, x1s = r0 / h, r1 / h, c0 / w, c1 / w
        bx0 = (b[:, 1] - b[:, 3] / 2 - x0s) / (x1s - x0s)
        bx1 = (b[:, 1] + b[:, 3] / 2 - x0s) / (x1s - x0s)
        by0 = (b[:, 2] - b[:, 4] / 2 - y0s) / (y1s - y0s)
        by1 = (b[:, 2] + b[:, 4] / 2 - y0s) / (y1s - y0s)
        area = (bx1 - bx0) * (by1 - by0)
        cx0, cx1, cy0, cy1 = (np.clip(v, 0, 1) for v in (bx0, bx1, by0, by1))
        kept = (cx1 - cx0) * (cy1 - cy0) >= 0.5 * np.maximum(area, 1e-9)
        b = np.c_[b[:, 0], (cx0 + cx1) / 2, (cy0 + cy1) / 2, cx1 - cx0, cy1 - cy0][kept]
    if rng.random() < 0.5:
        ramp = np.exp(rng.uniform(-1.5, 1.5) * np.linspace(0, 1, h, dtype=np.float32))
        x = x * ramp[:, None]
    if rng.random() < 0.3:
        x = normalise_window(x) + rng.normal(0, rng.uniform(0.1, 0.6), x.shape)
    return normalise_window(x), b.astype(np.float32)


def targets(
    boxes: np.ndarray, classes: int, grid: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Heat maps ``(C, gh, gw)`` and regression ``(5, gh, gw)`` (offset, size, mask)."""
    gh, gw = grid
    heat = np.zeros((classes, gh, gw), np.float32)
    reg = np.zeros((5, gh, gw), np.float32)
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    for c, cx, cy, bw, bh in boxes:
        if bw <= 0 or bh <= 0:
            continue
        gx, gy = cx * gw, cy * gh
        ix, iy = min(int(gx), gw - 1), min(int(gy), gh - 1)
        sx, sy = max(bw * gw / 6, 0.8), max(bh * gh / 6, 0.8)
        g = np.exp(-((xx - ix) ** 2) / (2 * sx * sx) - (yy - iy) ** 2 / (2 * sy * sy))
        heat[int(c)] = np.maximum(heat[int(c)], g)
        reg[:, iy, ix] = [gx - ix, gy - iy, bw, bh, 1.0]
    return heat, reg


def loss_fn(out: torch.Tensor, heat: torch.Tensor, reg: torch.Tensor, classes: int) -> torch.Tensor:
    """Focal loss on the heat maps + L1 on offset and (x10) size at box centres."""
    import torch

    p = out[:, :classes].clamp(1e-4, 1 - 1e-4)
    centre = heat >= 1.0
    focal = torch.where(
        centre, (1 - p) ** 2 * torch.log(p), (1 - heat) ** 4 * p**2 * torch.log(1 - p)
    )
    n = centre.sum().clamp(min=1)
    mask = reg[:, 4:5]
    offset = (torch.abs(out[:, classes : classes + 2] - reg[:, :2]) * mask).sum()
    size = (torch.abs(out[:, classes + 2 :] - reg[:, 2:4]) * mask).sum()
    return -focal.sum() / n + (offset + 10.0 * size) / mask.sum().clamp(min=1)


# -------------------------------------------------------------------- model I/O


def detector_manifest(
    classes: tuple[str, ...], training_data: str, metrics: dict[str, Any]
) -> Manifest:
    """The manifest fields known at training time."""
    from edge.gpr.detector import WINDOW
    from edge.models.manifest import Manifest, Normalisation, OutputSpec, ResizePolicy

    return Manifest(
        name="cavity-detector",
        task="detection",
        input_name="bscan",
        input_shape=[None, 1, *WINDOW],
        outputs=[OutputSpec("maps", OUTPUT_MEANING)],
        classes=list(classes),
        channel_order="GRAY",
        normalisation=Normalisation(
            scale=1.0,
            mean=[0.0],
            std=[1.0],
            note=(
                "input: a processed B-scan window (rows = two-way time from time zero, "
                "columns = traces) resampled to H x W (cv2 INTER_AREA), then standardised "
                "per window (v - mean) / std (edge.gpr.detector.normalise_window)"
            ),
        ),
        resize=ResizePolicy(mode="resize"),
        training_data=training_data,
        metrics=metrics,
    )


def build_net(classes: int, width: int, init: str) -> tuple[CavityNet, int]:
    """The network, with weights from ``init`` ('default', 'none' or a checkpoint path).

    Layers whose shapes differ (another class count) keep their fresh initialisation.
    """
    import torch

    from export.nets.detector import build

    source = DEFAULT_WEIGHTS if init == "default" else None if init == "none" else Path(init)
    if source is None:
        return build(classes, width), width
    if not source.is_file():
        raise InputError(f"initial weights not found: {source}")
    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    width = int(ckpt.get("arch_kwargs", {}).get("width", width))
    net = build(classes, width)
    own = net.state_dict()
    loaded = {k: v for k, v in ckpt["state_dict"].items() if k in own and own[k].shape == v.shape}
    own.update(loaded)
    net.load_state_dict(own)
    skipped = len(own) - len(loaded)
    log.info("initial weights %s (%d tensors, %d kept fresh)", source, len(loaded), skipped)
    return net, width


def save_checkpoint(net: nn.Module, path: Path, width: int, manifest: Manifest) -> None:
    """``torch.save`` in the export toolchain's checkpoint format (float32 weights)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "arch": ARCH,
            "arch_kwargs": {"classes": len(manifest.classes), "width": width},
            "state_dict": {k: v.detach().clone() for k, v in net.state_dict().items()},
            "manifest": manifest.to_dict(),
        },
        path,
    )


# --------------------------------------------------------------------- scoring


def predict(net: nn.Module, windows: np.ndarray, batch: int = 64) -> np.ndarray:
    """Output maps of ``net`` (eval mode) for normalised windows ``(N, H, W)``."""
    import torch

    net.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            x = torch.from_numpy(windows[i : i + batch].astype(np.float32)[:, None])
            outs.append(net(x).numpy())
    return np.concatenate(outs)


def evaluate(
    maps: np.ndarray, labels: list[np.ndarray], classes: tuple[str, ...]
) -> dict[str, float]:
    """mAP@0.5 and box recall (the accuracy gate's), also with classes merged."""
    from edge.gpr.detector import WINDOW, decode
    from export.convert.verify import detection_metrics

    h, w = WINDOW
    found = decode(maps, classes, (h, w), score_threshold=0.01)
    dets = [np.array([[*b, s, c] for c, s, b in per], np.float64).reshape(-1, 6) for per in found]
    truths = []
    for lab in labels:
        c, cx, cy, bw, bh = lab.T.astype(np.float64)
        truths.append(
            np.c_[(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h, c]
        )
    metrics = detection_metrics(dets, truths)
    merged = detection_metrics(
        [np.c_[d[:, :5], np.zeros(len(d))] for d in dets],
        [np.c_[t[:, :4], np.zeros(len(t))] for t in truths],
    )
    return {
        "map50": round(metrics["map50"], 4),
        "recall": round(metrics["recall"], 4),
        "map50_any_class": round(merged["map50"], 4),
        "recall_any_class": round(merged["recall"], 4),
    }


# -------------------------------------------------------------------- training


def learning_rate(peak: float, progress: float) -> float:
    """Linear warm-up over the first 5 % of training, then cosine decay to 1 % of ``peak``.

    ``progress`` is the share of training done: of the steps, or of ``--minutes`` if that
    comes first, so a time-limited run still ends on a low learning rate.
    """
    if progress < 0.05:
        return peak * (0.1 + 0.9 * progress / 0.05)
    q = min((progress - 0.05) / 0.95, 1.0)
    return peak * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * q)))


def train(
    data_dir: Path, out: Path, cfg: TrainConfig, onnx_out: Path | None = None
) -> dict[str, Any]:
    """Train on ``data_dir``, score the held-out split, write the checkpoint ``out``."""
    from export.convert.onnx_export import require_torch

    torch = require_torch()
    from tqdm import tqdm

    from edge.gpr.detector import STRIDE, WINDOW

    if cfg.epochs < 1 or cfg.batch < 1:
        raise InputError(f"--epochs {cfg.epochs} and --batch {cfg.batch} must be >= 1")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    windows, labels, classes = load_windows(data_dir)
    train_idx, held_idx = split(len(windows), cfg.holdout, cfg.seed)
    nc = len(classes)
    net, width = build_net(nc, cfg.width, cfg.init)
    grid = (WINDOW[0] // STRIDE, WINDOW[1] // STRIDE)
    steps_per_epoch = max(1, len(train_idx) // cfg.batch)
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    start = time.monotonic()
    steps = 0
    history = []
    out_of_time = False
    for epoch in range(cfg.epochs):
        net.train()
        order = rng.permutation(train_idx)
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            disable=not cfg.progress,
        )
        running = None
        for s in bar:
            pick = order[s * cfg.batch : (s + 1) * cfg.batch]
            xs, heats, regs = [], [], []
            for i in pick:
                x, b = augment(windows[i], labels[i], rng)
                h, r = targets(b, nc, grid)
                xs.append(x)
                heats.append(h)
                regs.append(r)
            progress = steps / total
            if cfg.minutes is not None:
                progress = max(progress, (time.monotonic() - start) / (60 * cfg.minutes))
            for group in opt.param_groups:
                group["lr"] = learning_rate(cfg.lr, progress)
            out_maps = net(torch.from_numpy(np.stack(xs)[:, None]))
            loss = loss_fn(
                out_maps, torch.from_numpy(np.stack(heats)), torch.from_numpy(np.stack(regs)), nc
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            value = float(loss.detach())
            running = value if running is None else 0.95 * running + 0.05 * value
            bar.set_postfix(loss=f"{running:.3f}")
            if cfg.minutes is not None and time.monotonic() - start > 60 * cfg.minutes:
                out_of_time = True
                break
        bar.close()
        held = evaluate(predict(net, windows[held_idx]), [labels[i] for i in held_idx], classes)
        history.append({"epoch": epoch + 1, "loss": round(running or 0.0, 4), **held})
        log.info("epoch %d: loss %.3f held-out %s", epoch + 1, running or 0.0, held)
        if cfg.progress:
            print(f"epoch {epoch + 1}: loss {running:.3f}, held-out {held}", flush=True)
        # A checkpoint after every epoch: a long run on a shared machine keeps its progress.
        manifest = detector_manifest(
            classes,
            f"{len(windows)} windows from {Path(data_dir).name} ({len(train_idx)} train, "
            f"{len(held_idx)} held out), init {cfg.init}",
            {
                "heldout_synthetic": held,
                "heldout_windows": len(held_idx),
                "train_windows": len(train_idx),
                "steps": steps,
                "epochs": epoch + 1,
                "train_minutes": round((time.monotonic() - start) / 60, 1),
            },
        )
        save_checkpoint(net.eval(), out, width, manifest)
        if out_of_time:
            log.warning("stopped after %.1f min (--minutes)", cfg.minutes)
            break
    if onnx_out is not None:
        from export.convert.onnx_export import export_onnx

        parity_x = windows[held_idx[:4]].astype(np.float32)[:, None]
        export_onnx(net.eval(), onnx_out, manifest, dynamo=True, parity_x=parity_x)
    return {
        "steps": steps,
        "heldout": held,
        "heldout_windows": len(held_idx),
        "history": history,
    }
