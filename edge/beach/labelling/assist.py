"""Server-side help for the labelling page: the starting mask and the GrabCut assist.

The starting mask comes from the station's own segmentation code
(:class:`edge.beach.waterline.segmentation.WaterSegmenter`): the U-Net the station would run,
or the colour method when no model can be loaded here (one log line says why). Sky is not
known to either, so the starting mask holds water (1) and land (0) only.

The GrabCut assist (:func:`grabcut_assist`) re-fits the water/land boundary to the image's
colours near the current boundary: OpenCV's ``cv2.grabCut`` seeded with the current mask as
*probable* water/land and the operator's strokes as *certain*. It only moves pixels within
``band_px`` of the current water boundary, never a pixel the operator drew, sky or ignore.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from edge.beach.labelling.record import LAND, WATER
from edge.beach.waterline.colour import colour_water_probability
from edge.beach.waterline.segmentation import WaterSegmenter
from edge.config.beach import SegmentationSection
from edge.errors import GeoEdgeError, InputError
from edge.models.manifest import file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartingMask:
    """A class mask (H x W uint8: 0 land, 1 water) and what made it (the record's ``start``)."""

    mask: np.ndarray
    source: str


class StartingSegmenter:
    """The station's segmentation with ``model`` (``"default"`` or an ``.onnx`` path); the
    colour method when the model cannot be loaded here."""

    def __init__(self, model: Literal["default"] | Path) -> None:
        self.segmenter: WaterSegmenter | None = None
        self.source = "colour"
        try:
            section = SegmentationSection(
                method="unet", model=model, precision="fp32", providers=["CPUExecutionProvider"]
            )
            self.segmenter = WaterSegmenter(section)
        except (GeoEdgeError, ValueError, ImportError) as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            log.warning("starting masks from the colour method: model %s: %s", model, first)
            return
        path = self.segmenter.model.path if self.segmenter.model else None
        if path is not None:
            self.source = f"unet {path.name} sha256 {file_sha256(path)[:12]}"

    def __call__(self, bgr: np.ndarray) -> StartingMask:
        if self.segmenter is None:
            water = colour_water_probability(bgr) >= 0.5
        else:
            water = self.segmenter(bgr).mask
        return StartingMask(np.where(water, WATER, LAND).astype(np.uint8), self.source)


def grabcut_assist(
    bgr: np.ndarray,
    mask: np.ndarray,
    drawn: np.ndarray,
    band_px: int = 40,
    long_side: int = 1024,
    iterations: int = 3,
) -> np.ndarray:
    """The class mask after GrabCut near the water boundary.

    ``mask`` is the current class mask (0/1/2/255), ``drawn`` (bool) the pixels the operator
    set by hand (certain). GrabCut runs on a copy scaled so its long side is at most
    ``long_side`` px (seconds, not minutes, on a 5 MP TimeX); ``band_px`` is in full-resolution
    pixels. Returns a new mask; only land/water pixels in the band that were not drawn change.
    """
    h, w = mask.shape
    if bgr.shape[:2] != (h, w) or drawn.shape != (h, w):
        raise InputError(
            f"grabcut: image {bgr.shape[:2]}, mask {mask.shape}, strokes {drawn.shape}"
        )
    water, land = mask == WATER, mask == LAND
    ring = np.ones((3, 3), np.uint8)
    edge = (cv2.dilate(water.astype(np.uint8), ring) > 0) & land
    edge |= (cv2.dilate(land.astype(np.uint8), ring) > 0) & water
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band_px + 1, 2 * band_px + 1))
    band = (cv2.dilate(edge.astype(np.uint8), kernel) > 0) & (water | land) & ~drawn
    if not band.any():  # no water/land boundary to refine
        return mask.copy()
    seed = np.full((h, w), cv2.GC_BGD, np.uint8)
    seed[water] = cv2.GC_FGD
    seed[band & water] = cv2.GC_PR_FGD
    seed[band & ~water] = cv2.GC_PR_BGD
    s = min(1.0, long_side / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    gc = cv2.resize(seed, size, interpolation=cv2.INTER_NEAREST)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(small, gc, (0, 0, 0, 0), bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)  # rect unused
    fg = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    fg_full = cv2.resize(fg.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    out = mask.copy()
    out[band] = np.where(fg_full[band], WATER, LAND)
    return out
