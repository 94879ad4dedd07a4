"""Sea/land segmentation of TimeX images: the U-Net on ONNX Runtime, or the colour method.

:class:`WaterSegmenter` returns a water probability map and a binary mask at the
image's own resolution (the U-Net's map averaged with that of the mirrored image when
``[segmentation] flip_average``, and refined to the image's edges when ``refine`` says
so). The U-Net's input size, channel order, normalisation and resize policy come from its
manifest (``resize``: the whole image is resized to the
model input and the probabilities resized back; ``tile``: overlapping tiles of the
model size at full resolution, averaged where they overlap). The colour method
(:mod:`edge.beach.waterline.colour`) is the configured fallback and, with the U-Net, a
cross-check reported in the waterline message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from edge.beach.waterline.colour import colour_water_probability
from edge.beach.waterline.refine import guided_refine, model_radius
from edge.config.beach import SegmentationSection
from edge.models.runtime import OnnxModel, resolve_model


@dataclass(frozen=True)
class Segmentation:
    """``probability`` (H x W float32, 0..1) of water and ``mask`` (bool), image resolution.

    ``model_probability`` is the method's own probability before the guided refinement (the
    same array as ``probability`` when nothing was refined). The refinement places the
    boundary; it is a local linear regression of the probability on the image's luminance,
    so next to an edge it maps the sand's grain and the bright/dark bands of a swash zone
    into the probability (0.2-0.5 over metres of dry sand on the demo's TimeX), and its
    decisiveness measures image texture, not how sure the model is. Transect confidence is
    read from ``model_probability``.
    """

    probability: np.ndarray
    mask: np.ndarray
    method: str
    model: str | None = None
    model_probability: np.ndarray | None = None

    @property
    def confidence_probability(self) -> np.ndarray:
        """The probability whose decisiveness is the transects' confidence."""
        return self.probability if self.model_probability is None else self.model_probability


class Segmenter(Protocol):
    """What the waterline stage segments with: one BGR uint8 image (and the pixels of the
    ground in view) in, water probability and mask at the image's resolution out."""

    def __call__(self, bgr: np.ndarray, valid: np.ndarray | None = None) -> Segmentation: ...


class WaterSegmenter:
    """Segments TimeX images as ``[segmentation]`` says (``method`` unet or colour): the
    shipped :class:`Segmenter`."""

    def __init__(self, section: SegmentationSection) -> None:
        self.section = section
        self.model: OnnxModel | None = None
        if section.method == "unet":
            path = resolve_model(section.model, "unet", section.precision, section.providers)
            self.model = OnnxModel(path, section.providers, section.threads, section.precision)

    @property
    def model_name(self) -> str | None:
        return None if self.model is None else self.model.path.name

    def __call__(self, bgr: np.ndarray, valid: np.ndarray | None = None) -> Segmentation:
        """Segment one BGR uint8 image; ``valid`` (bool) marks the pixels the colour method
        may use for its threshold statistics (the ground in view)."""
        if self.model is None:
            prob = colour_water_probability(bgr, valid)
            return Segmentation(prob, prob >= self.section.water_threshold, "colour")
        model = self.model
        if self.section.flip_average:
            own = flip_average(lambda image: unet_probability(model, image), bgr)
        else:
            own = unet_probability(model, bgr)
        prob = own
        if self._refines(bgr):
            prob = guided_refine(bgr, own, model_radius(bgr.shape[1], model.input_size[1]))
        mask = prob >= self.section.water_threshold
        return Segmentation(prob, mask, "unet", self.model_name, own)

    def _refines(self, bgr: np.ndarray) -> bool:
        """Refinement is asked for and has something to do: the model saw the image resized
        down (a tiled model already works at the image's resolution)."""
        if self.model is None or self.section.refine != "guided":
            return False
        mh, mw = self.model.input_size
        upsampled = bgr.shape[0] > mh or bgr.shape[1] > mw
        return upsampled and self.model.manifest.resize.mode == "resize"


def flip_average(probability: Callable[[np.ndarray], np.ndarray], bgr: np.ndarray) -> np.ndarray:
    """Test-time augmentation: the mean of ``probability`` on the image and, mirrored back, on
    its left-right mirror image (a beach seen from a camera is as plausible mirrored, and the
    two passes disagree where the network is unsure)."""
    mirrored = probability(np.ascontiguousarray(bgr[:, ::-1]))[:, ::-1]
    return (0.5 * (probability(bgr) + mirrored)).astype(np.float32)


def _prepare(model: OnnxModel, bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 H x W x 3 -> normalised 3 x H x W in the manifest's channel order."""
    m = model.manifest
    img = bgr[:, :, ::-1] if m.channel_order.upper() == "RGB" else bgr
    return m.normalisation.apply(np.ascontiguousarray(img).transpose(2, 0, 1))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))).astype(np.float32)


def unet_probability(model: OnnxModel, bgr: np.ndarray) -> np.ndarray:
    """Water probability at the image's resolution, resized or tiled as the manifest says."""
    h, w = bgr.shape[:2]
    mh, mw = model.input_size
    policy = model.manifest.resize
    if policy.mode == "tile" and (h > mh or w > mw):
        return _tiled(model, bgr, policy.overlap)
    small = cv2.resize(bgr, (mw, mh), interpolation=cv2.INTER_AREA)
    logits = model.run(_prepare(model, small)[None])[0][0, 0]
    return cv2.resize(_sigmoid(logits), (w, h), interpolation=cv2.INTER_LINEAR)


def _starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    return [*starts, size - tile]


def _tiled(model: OnnxModel, bgr: np.ndarray, overlap: int) -> np.ndarray:
    h, w = bgr.shape[:2]
    mh, mw = model.input_size
    padded = cv2.copyMakeBorder(bgr, 0, max(0, mh - h), 0, max(0, mw - w), cv2.BORDER_REFLECT)
    acc = np.zeros(padded.shape[:2], np.float32)
    count = np.zeros(padded.shape[:2], np.float32)
    for y in _starts(padded.shape[0], mh, mh - overlap):
        for x in _starts(padded.shape[1], mw, mw - overlap):
            tile = padded[y : y + mh, x : x + mw]
            logits = model.run(_prepare(model, tile)[None])[0][0, 0]
            acc[y : y + mh, x : x + mw] += _sigmoid(logits)
            count[y : y + mh, x : x + mw] += 1
    return (acc / np.maximum(count, 1))[:h, :w]
