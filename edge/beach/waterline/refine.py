"""Full-resolution refinement of a water probability map: an edge-aware guided filter.

The U-Net sees the image at its input size (256 x 320 for the shipped model), so its
probability map, resized back to a 2448 x 2048 camera frame, has a boundary that is smooth at
the scale of one model pixel (~8 camera pixels) and does not follow the image's own edges.
The guided filter (He, Sun & Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013) fits,
in every window of radius ``r``, the probability as a linear function of the image's
luminance: where the window holds a sharp sea/sand edge, the refined boundary snaps to it;
where the image is flat, the probability is only smoothed. It is the "fast" form: the
coefficients are computed at ``work_width`` px wide and the linear model applied at full
resolution, so the cost is a few box filters on a ~1 Mpx image.

Units: ``radius_px`` is in pixels of the full-resolution image; ``eps`` in squared
luminance (the guide is scaled to 0..1).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Default window radius as a multiple of one model pixel in image pixels (image width /
#: model width): the filter reaches across the blur the resize leaves, and not much further.
RADIUS_MODEL_PIXELS = 4.0
#: Regularisation: edges with a luminance step below ~sqrt(eps) are not followed.
EPS = 1e-3
#: Width at which the filter's coefficients are computed (px); the image is never upsampled.
WORK_WIDTH = 1280


def guided_refine(
    bgr: np.ndarray,
    probability: np.ndarray,
    radius_px: float,
    eps: float = EPS,
    work_width: int = WORK_WIDTH,
) -> np.ndarray:
    """Refine ``probability`` (H x W float32, 0..1, same size as ``bgr``) to the image's edges.

    Returns a float32 map of the same size, clipped to 0..1.
    """
    h, w = probability.shape
    guide_full = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    scale = min(1.0, work_width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if scale < 1.0:
        guide = cv2.resize(guide_full, size, interpolation=cv2.INTER_AREA)
        p = cv2.resize(probability.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    else:
        guide, p = guide_full, probability.astype(np.float32)
    r = max(1, round(radius_px * scale))
    window = (2 * r + 1, 2 * r + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, cv2.CV_32F, window, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(p)
    cov_ip = box(guide * p) - mean_i * mean_p
    var_i = box(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a, mean_b = box(a), box(b)
    if scale < 1.0:
        mean_a = cv2.resize(mean_a, (w, h), interpolation=cv2.INTER_LINEAR)
        mean_b = cv2.resize(mean_b, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(mean_a * guide_full + mean_b, 0.0, 1.0).astype(np.float32)


def model_radius(image_width: int, model_width: int) -> float:
    """The default radius (px of the image) for a model ``model_width`` px wide."""
    return RADIUS_MODEL_PIXELS * max(1.0, image_width / model_width)
