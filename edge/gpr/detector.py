"""Cavity detector on processed B-scan windows: ONNX Runtime inference, decode and NMS.

Window convention: a window is a processed B-scan ``(samples, traces)`` float32 array; row
``i`` is two-way time (sample), column ``j`` is the trace. Boxes are returned in the
coordinates of the window as given to :meth:`CavityDetector.detect` (fractional sample and
trace indices, pixel ``(i, j)`` covering ``[i, i+1) x [j, j+1)``), even when the model input
size differs and the window is resampled.

The model (``export.nets.detector``) is a CenterNet-style anchor-free detector with one output
``maps`` of shape ``(N, C + 4, H/4, W/4)``, all sigmoid-activated: C class heat maps (object
centre probability), then the centre offset inside the cell (x, y, 0..1 of a cell) and the box
size (width, height as fractions of the window).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import InputError, ModelError

#: Model input (samples, traces) of the shipped detector; the manifest is the authority.
WINDOW = (256, 128)
#: Output stride of the heat maps, in input pixels.
STRIDE = 4


#: Per-window normalisations a detector manifest can name (``normalisation.window``).
WINDOW_NORMALISATIONS = ("standardise", "robust")


def normalise_window(window: np.ndarray, mode: str = "standardise") -> np.ndarray:
    """Per-window normalisation of a B-scan window (float32; idempotent).

    ``"standardise"`` (models trained on synthetic data only): ``(v - mean) / std``.
    ``"robust"`` (the one input domain of device windows and rendered real images):
    ``clip((v - median) / p99(|v - median|), -1, 1)``, so the median maps to 0 and the
    brightest 1 % of samples saturate at +-1. Device windows arrive with the processing
    chain's gain applied; rendered images enter as grey amplitude (see
    :mod:`export.data.real_bscan`). A window's offset and gain do not matter, only its shape.

    A flat window maps to zeros in both modes.
    """
    w = np.asarray(window, dtype=np.float32)
    if mode == "robust":
        if not np.isfinite(w).all():
            raise InputError("B-scan window contains NaN or infinite samples")
        d = w - np.float32(np.median(w))
        scale = float(np.percentile(np.abs(d), 99.0))
        if scale <= 0:
            scale = float(np.abs(d).max())
        if scale <= 0:
            return np.zeros_like(w)
        return np.clip(d / np.float32(scale), -1.0, 1.0).astype(np.float32)
    if mode != "standardise":
        raise ModelError(f"unknown window normalisation {mode!r} ({WINDOW_NORMALISATIONS})")
    std = float(w.std())
    if not np.isfinite(std):
        raise InputError("B-scan window contains NaN or infinite samples")
    return ((w - w.mean()) / std).astype(np.float32) if std > 0 else np.zeros_like(w)


@dataclass(frozen=True)
class Detection:
    """One detected hyperbola: class name, score 0..1 and its box in window coordinates.

    ``sample0..sample1`` (rows, two-way time) and ``trace0..trace1`` (columns) are fractional
    indices in the window as passed to :meth:`CavityDetector.detect`.
    """

    cls: str
    score: float
    trace0: float
    sample0: float
    trace1: float
    sample1: float

    @property
    def apex_guess(self) -> tuple[float, float]:
        """(trace, sample) of the box centre top: where the apex usually sits."""
        return (self.trace0 + self.trace1) / 2.0, self.sample0


def decode(
    maps: np.ndarray,
    classes: tuple[str, ...] | list[str],
    input_hw: tuple[int, int],
    score_threshold: float = 0.3,
    iou_threshold: float = 0.5,
    max_detections: int = 50,
) -> list[list[tuple[int, float, np.ndarray]]]:
    """Heat-map peaks of ``maps`` ``(N, C+4, h, w)`` as ``(class, score, box xyxy)`` per image.

    Boxes are in input pixels ``(x0, y0, x1, y1)`` = (trace, sample). A peak is a cell whose
    score is the maximum of its 3x3 neighbourhood; peaks go through class-agnostic NMS (one
    hyperbola gets one class, the more probable one).
    """
    _, depth, h, w = maps.shape
    nc = len(classes)
    if depth != nc + 4:
        raise ModelError(f"detector output has {depth} channels, expected {nc + 4} ({classes})")
    height, width = input_hw
    out = []
    for m in maps:
        heat = m[:nc]
        pad = np.pad(heat, ((0, 0), (1, 1), (1, 1)), constant_values=-1.0)
        neigh = np.max(
            [pad[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], axis=0
        )
        c, yy, xx = np.nonzero((heat >= neigh) & (heat >= score_threshold))
        scores = heat[c, yy, xx]
        order = np.argsort(-scores)[: max_detections * 4]
        c, yy, xx, scores = c[order], yy[order], xx[order], scores[order]
        cx = (xx + m[nc, yy, xx]) * (width / w)
        cy = (yy + m[nc + 1, yy, xx]) * (height / h)
        bw, bh = m[nc + 2, yy, xx] * width, m[nc + 3, yy, xx] * height
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        boxes = np.clip(boxes, 0.0, [width, height, width, height])
        keep = nms(boxes, scores, iou_threshold)[:max_detections]
        out.append([(int(c[k]), float(scores[k]), boxes[k]) for k in keep])
    return out


def _intersection(box: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection area of one ``(4,)`` xyxy box with ``(n, 4)`` boxes, and both areas."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter, area, areas


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``(4,)`` xyxy box with ``(n, 4)`` boxes."""
    inter, area, areas = _intersection(box, boxes)
    return inter / np.maximum(area + areas - inter, 1e-9)


def overlap_of_smaller(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Share of the smaller box covered by the intersection, one ``(4,)`` xyxy box with each of
    ``(n, 4)`` boxes (1 when one box holds the other)."""
    inter, area, areas = _intersection(box, boxes)
    return inter / np.maximum(np.minimum(area, areas), 1e-12)


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    overlap: Callable[[np.ndarray, np.ndarray], np.ndarray] = box_iou,
) -> list[int]:
    """Greedy non-maximum suppression: by score (ties in input order), a box whose ``overlap``
    with a kept one exceeds ``threshold`` is dropped; indices kept, highest score first."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        if order:
            rest = np.array(order)
            order = list(rest[overlap(boxes[i], boxes[rest]) <= threshold])
    return keep


class CavityDetector:
    """The cavity/pipe detector in an ONNX Runtime session.

    ``model`` is ``"default"`` (the shipped ``edge/models/detector.onnx``) or a path to an
    ``.onnx`` file with its manifest; ``precision`` as :func:`edge.models.runtime.resolve_model`;
    ``providers`` in order of preference; ``threads`` intra-op threads.
    """

    def __init__(
        self,
        model: str | Path = "default",
        providers: list[str] | None = None,
        threads: int = 2,
        precision: str = "auto",
        score_threshold: float = 0.3,
        iou_threshold: float = 0.5,
    ) -> None:
        from edge.models.runtime import OnnxModel, resolve_model

        path = resolve_model(str(model), "detector", precision, providers)
        self.model = OnnxModel(path, providers, threads, precision)
        manifest = self.model.manifest
        if manifest.task != "detection":
            raise ModelError(f"model {path} is a {manifest.task} model, not a detector")
        self.classes = tuple(manifest.classes)
        self.input_hw = self.model.input_size
        self.normalisation = manifest.normalisation
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold

    def prepare(self, windows: np.ndarray) -> np.ndarray:
        """``(N, samples, traces)`` windows -> normalised ``(N, 1, H, W)`` model input."""
        h, w = self.input_hw
        batch = np.empty((len(windows), 1, h, w), np.float32)
        for k, win in enumerate(windows):
            if win.shape != (h, w):
                win = cv2.resize(np.asarray(win, np.float32), (w, h), interpolation=cv2.INTER_AREA)
            batch[k, 0] = normalise_window(win, self.normalisation.window)
        return self.normalisation.apply(batch)

    def detect(self, windows: np.ndarray) -> list[list[Detection]]:
        """Detections for each window of ``windows`` ``(N, samples, traces)`` float32."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim == 2:
            windows = windows[np.newaxis]
        if windows.ndim != 3 or min(windows.shape[1:]) < 8:
            raise InputError(
                f"detector windows must be (N, samples, traces) with >= 8 of each, "
                f"got shape {windows.shape}"
            )
        (maps,) = self.model.run(self.prepare(windows))[:1]
        h, w = self.input_hw
        sy, sx = windows.shape[1] / h, windows.shape[2] / w
        found = decode(maps, self.classes, (h, w), self.score_threshold, self.iou_threshold)
        return [
            [
                Detection(self.classes[c], s, b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy)
                for c, s, b in per
            ]
            for per in found
        ]
