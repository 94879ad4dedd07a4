"""Per-collection image quality gates on the TimeX image.

Measured on the grey TimeX (OpenCV BGR -> grey, levels 0..255):

- ``brightness``: mean grey level; below ``min_brightness`` -> ``too_dark`` (night).
- ``contrast``: standard deviation of the grey levels over the image; below
  ``min_contrast`` -> ``low_contrast`` (fog, rain or salt on the lens).
- ``shift_px``: translation of the image against the camera's reference image,
  pixels (full resolution), by phase correlation of Hann-windowed grey images;
  above ``max_shift_px`` -> ``camera_moved``. ``shift_xy_px`` is (dx, dy): how far
  the scene moved right and down in this image relative to the reference.
  Not measured (None) without a reference, when the sizes differ, or when the
  image is too dark or too flat for a reliable match.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from edge.config.quality import QualitySection

#: Longest side the movement check works at (pixels); larger images are shrunk first.
SHIFT_WORK_SIZE = 1024


@dataclass(frozen=True)
class QualityReport:
    """Gate results: ``flags`` (subset of too_dark, low_contrast, camera_moved) and
    the measured values (grey levels, pixels; ``shift_response`` is the phase
    correlation peak, 0..1, higher = more trustworthy)."""

    flags: list[str] = field(default_factory=list)
    brightness: float = 0.0
    contrast: float = 0.0
    shift_px: float | None = None
    shift_xy_px: tuple[float, float] | None = None
    shift_response: float | None = None

    def values(self) -> dict[str, object]:
        """The measured values as a JSON-ready dict (no flags)."""
        out = asdict(self)
        out.pop("flags")
        if self.shift_xy_px is not None:
            out["shift_xy_px"] = [round(v, 3) for v in self.shift_xy_px]
        for key in ("brightness", "contrast", "shift_px", "shift_response"):
            if out[key] is not None:
                out[key] = round(float(out[key]), 3)
        return out


def grey(image: np.ndarray) -> np.ndarray:
    """Grey levels of a BGR (H x W x 3) or grey (H x W) uint8 image."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def measure_shift(
    image: np.ndarray, reference: np.ndarray
) -> tuple[tuple[float, float], float] | None:
    """Translation (dx, dy) in pixels of ``image`` relative to ``reference`` and the
    phase-correlation response, or None when the sizes differ."""
    a, b = grey(image), grey(reference)
    if a.shape != b.shape:
        return None
    scale = min(1.0, SHIFT_WORK_SIZE / max(a.shape))
    if scale < 1.0:
        size = (round(a.shape[1] * scale), round(a.shape[0] * scale))
        a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
        b = cv2.resize(b, size, interpolation=cv2.INTER_AREA)
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_64F)
    (dx, dy), response = cv2.phaseCorrelate(b.astype(np.float64), a.astype(np.float64), window)
    return (dx / scale, dy / scale), float(response)


def assess(
    timex: np.ndarray, gates: QualitySection, reference: np.ndarray | None = None
) -> QualityReport:
    """Run the three gates on a TimeX image (uint8 BGR or grey) with ``gates`` thresholds."""
    g = grey(timex)
    brightness = float(g.mean())
    contrast = float(g.std())
    flags = []
    if brightness < gates.min_brightness:
        flags.append("too_dark")
    if contrast < gates.min_contrast:
        flags.append("low_contrast")
    shift = None
    if reference is not None and not flags:
        shift = measure_shift(g, reference)
    if shift is None:
        return QualityReport(flags, brightness, contrast)
    (dx, dy), response = shift
    distance = float(np.hypot(dx, dy))
    if distance > gates.max_shift_px:
        flags.append("camera_moved")
    return QualityReport(flags, brightness, contrast, distance, (float(dx), float(dy)), response)
