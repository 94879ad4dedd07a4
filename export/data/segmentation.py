"""Image/mask pairs for U-Net training, with augmentation (numpy + OpenCV, no torch).

A dataset directory pair: ``images/`` (PNG or JPEG) and ``masks/`` (PNG, 255 = water,
0 = land or sky) with the same file stem. Images are read as BGR and returned as RGB
``C x H x W`` float32 normalised with :data:`NORMALISATION` (what the manifest records),
masks as ``1 x H x W`` float32 in {0, 1}.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import InputError
from edge.models.manifest import Normalisation

#: Input normalisation of the shipped U-Net: RGB, (v / 255 - 0.5) / 0.25.
NORMALISATION = Normalisation(
    scale=1.0 / 255.0, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], note="RGB"
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def pairs(images: Path, masks: Path) -> list[tuple[Path, Path]]:
    """(image, mask) paths with matching stems; InputError when none match."""
    by_stem = {p.stem: p for p in Path(masks).glob("*.png")}
    found = [
        (p, by_stem[p.stem])
        for p in sorted(Path(images).iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in by_stem
    ]
    if not found:
        raise InputError(f"no image/mask pairs: {images} and {masks} share no file stem")
    return found


def load_pair(image: Path, mask: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """BGR uint8 image and bool mask, both resized to ``size`` (H, W)."""
    img = cv2.imread(str(image), cv2.IMREAD_COLOR)
    m = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
    if img is None or m is None:
        raise InputError(f"cannot read {image} or {mask}")
    h, w = size
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    water = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) > 127
    return img, water


def to_input(bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 H x W x 3 -> normalised RGB float32 3 x H x W."""
    return NORMALISATION.apply(bgr[:, :, ::-1].transpose(2, 0, 1))


@dataclass
class Augment:
    """Random photometric and geometric changes; ``crop`` (H, W) or None for the whole image."""

    crop: tuple[int, int] | None = None

    def __call__(
        self, rng: np.random.Generator, img: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        img = img.astype(np.float32)
        if rng.random() < 0.5:
            img, mask = img[:, ::-1], mask[:, ::-1]
        scale = rng.uniform(1.0, 1.4)
        if scale > 1.01:
            h, w = mask.shape
            big = cv2.resize(img, None, fx=scale, fy=scale)
            bigm = cv2.resize(mask.astype(np.uint8), None, fx=scale, fy=scale) > 0
            y, x = (
                int(rng.integers(0, big.shape[0] - h + 1)),
                int(rng.integers(0, big.shape[1] - w + 1)),
            )
            img, mask = big[y : y + h, x : x + w], bigm[y : y + h, x : x + w]
        img = img * rng.uniform(0.6, 1.4) + rng.normal(0, 15, 3)
        img = 255 * (np.clip(img, 0, 255) / 255) ** rng.uniform(0.7, 1.4)
        if rng.random() < 0.3:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
        img = img + rng.normal(0, rng.uniform(0, 6), img.shape)
        if self.crop is not None:
            ch, cw = self.crop
            y = int(rng.integers(0, mask.shape[0] - ch + 1))
            x = int(rng.integers(0, mask.shape[1] - cw + 1))
            img, mask = img[y : y + ch, x : x + cw], mask[y : y + ch, x : x + cw]
        return np.clip(img, 0, 255).astype(np.uint8), np.ascontiguousarray(mask)


def batch(
    samples: list[tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    augment: Augment | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stack (image, mask) samples into network inputs (N,3,H,W) and targets (N,1,H,W)."""
    xs, ys = [], []
    for img, m in samples:
        if augment is not None:
            img, m = augment(rng, img, m)
        xs.append(to_input(np.ascontiguousarray(img)))
        ys.append(m[None].astype(np.float32))
    return np.stack(xs), np.stack(ys)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)
