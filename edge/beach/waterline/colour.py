"""Colour Channel Divergence (CCD): water from red minus blue, Otsu threshold.

Sea water in a TimeX is bluish-grey and sand is yellowish, so ``red - blue`` (grey
levels, -255..255) is low over water and high over sand. The threshold between the two
modes is found with Otsu's method over the pixels of interest (the ground the camera
sees: sky is excluded by the caller's ``valid`` mask, since it is blue too). Used as
the configured fallback segmentation and as a cross-check of the U-Net.

The probability is a logistic of the distance to the threshold, with a width of one
tenth of the spread between the two class means: not calibrated, but monotonic and
0.5 exactly at the threshold, so the 0.5 mask is the Otsu split.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.errors import InputError


def red_minus_blue(bgr: np.ndarray) -> np.ndarray:
    """``R - B`` per pixel (float32, grey levels) of a BGR uint8 image."""
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise InputError(f"colour segmentation needs a 3-channel image, got shape {bgr.shape}")
    return bgr[:, :, 2].astype(np.float32) - bgr[:, :, 0].astype(np.float32)


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of ``values`` (grey levels -255..255) via OpenCV on a shifted 8-bit copy.

    Values below the returned threshold form the low (water) class.
    """
    if values.size < 2:
        raise InputError("colour segmentation: no pixels to threshold")
    shifted = np.clip((values + 255.0) / 2.0, 0, 255).astype(np.uint8).reshape(-1, 1)
    t, _ = cv2.threshold(shifted, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # OpenCV puts shifted levels <= t in the low class, i.e. (v + 255) / 2 < t + 1: the
    # same split in grey levels is v < 2 t - 253. Otsu's criterion is flat across an empty
    # gap between the classes, so the threshold is put midway between the nearest values
    # of the two classes (the logistic of colour_water_probability is centred on it).
    split = float(t) * 2.0 - 253.0
    low, high = values[values < split], values[values >= split]
    if not low.size or not high.size:
        return split
    return (float(low.max()) + float(high.min())) / 2.0


def colour_water_probability(bgr: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Water probability (H x W float32) from CCD; ``valid`` limits the Otsu statistics."""
    rb = red_minus_blue(bgr)
    sample = rb[valid] if valid is not None else rb.ravel()
    t = otsu_threshold(sample)
    low, high = sample[sample < t], sample[sample >= t]
    spread = (high.mean() - low.mean()) if low.size and high.size else 20.0
    width = max(spread / 10.0, 1.0)
    return (1.0 / (1.0 + np.exp(np.clip((rb - t) / width, -50.0, 50.0)))).astype(np.float32)
