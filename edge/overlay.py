"""Overlay images of a waterline result: what a person checks at a glance.

- On each camera's TimeX: the waterline (red) and the transects (yellow, labelled at
  their landward end), both projected from world coordinates at the water level.
- On the plan view (:mod:`edge.rectify`, the cameras merged on the ``[grid]`` at the
  water level): the same lines, plus a dot (green valid, orange invalid) at each
  transect crossing.

World lines are (N, 2) arrays or shapely LineStrings in the station CRS (m); images are
BGR uint8; files are JPEG written beside the products.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from shapely.geometry import LineString

from edge.camera_model import Camera
from edge.grid import Grid
from edge.rectify import rectify, to_uint8

WATERLINE_BGR = (0, 0, 255)
TRANSECT_BGR = (0, 255, 255)
VALID_BGR = (0, 200, 0)
INVALID_BGR = (0, 140, 255)

log = logging.getLogger(__name__)


def _dense(line: LineString, step_m: float) -> np.ndarray:
    """Points every ``step_m`` (m) along a line, so curved projections stay smooth."""
    n = max(2, int(np.ceil(line.length / step_m)) + 1)
    return np.array([line.interpolate(d).coords[0][:2] for d in np.linspace(0, line.length, n)])


def _label_size(image: np.ndarray) -> tuple[int, float]:
    thick = max(1, image.shape[1] // 600)
    return thick, 0.4 * thick


def timex_overlay(
    bgr: np.ndarray,
    camera: Camera,
    water_level: float,
    waterline: Sequence[np.ndarray],
    transects: Sequence[tuple[str, LineString]],
) -> np.ndarray:
    """The TimeX with waterline pieces and transects drawn, projected at ``water_level`` (m)."""
    img = bgr.copy()
    thick, scale = _label_size(img)

    def draw(xy: np.ndarray, colour: tuple[int, int, int], width: int) -> np.ndarray:
        uv, ok = camera.world_to_image(np.column_stack([xy, np.full(len(xy), water_level)]))
        # Split at points the camera does not see, so no segment jumps across the image.
        runs = np.split(np.arange(len(uv)), np.flatnonzero(np.diff(ok.astype(np.int8))) + 1)
        for run in runs:
            if ok[run[0]] and len(run) >= 2:
                cv2.polylines(img, [uv[run].round().astype(np.int32)], False, colour, width)
        return uv[ok]

    for piece in waterline:
        draw(np.asarray(piece)[:, :2], WATERLINE_BGR, thick + 1)
    for tid, line in transects:
        seen = draw(_dense(line, 1.0), TRANSECT_BGR, thick)
        if len(seen):
            at = tuple(int(v) for v in seen[0].round())
            cv2.putText(img, tid, at, cv2.FONT_HERSHEY_SIMPLEX, scale, TRANSECT_BGR, thick)
    return img


def planview_overlay(
    images: Sequence[tuple[Camera, np.ndarray]],
    grid: Grid,
    water_level: float,
    waterline: Sequence[np.ndarray],
    transects: Sequence[tuple[str, LineString]],
    crossings: Sequence[dict],
) -> np.ndarray:
    """The merged plan view at ``water_level`` (m) with the lines and crossings drawn.

    ``crossings`` are the transect entries of the waterline message (``point``, ``valid``).
    """
    img = np.ascontiguousarray(to_uint8(rectify(images, grid, water_level)))
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    thick, scale = _label_size(img)

    def pixels(xy: np.ndarray) -> np.ndarray:
        xl, yl = grid.world_to_local(xy[:, 0], xy[:, 1])
        col, row = grid.pixel_of_local(xl, yl)
        return np.column_stack([col, row]).round().astype(np.int32)

    for piece in waterline:
        cv2.polylines(img, [pixels(np.asarray(piece)[:, :2])], False, WATERLINE_BGR, thick)
    for tid, line in transects:
        pts = pixels(np.asarray(line.coords)[:, :2])
        cv2.polylines(img, [pts], False, TRANSECT_BGR, thick)
        cv2.putText(img, tid, tuple(pts[0]), cv2.FONT_HERSHEY_SIMPLEX, scale, TRANSECT_BGR, thick)
    for c in crossings:
        if c.get("point") is not None:
            colour = VALID_BGR if c.get("valid") else INVALID_BGR
            at = pixels(np.asarray([c["point"]], dtype=float))[0]
            cv2.circle(img, tuple(int(v) for v in at), 2 + thick, colour, -1)
    return img


def save(image: np.ndarray, path: Path) -> Path | None:
    """Write an overlay (JPEG quality 90), creating the folder; its path, or None.

    An overlay is an illustration: when it cannot be written (disk full) one
    warning is logged and the result it illustrates goes on without it.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    except (OSError, cv2.error) as exc:
        ok, why = False, str(exc)
    else:
        why = "OpenCV could not write it"
    if not ok:
        log.warning("overlay %s not written (%s)", path, why)
        return None
    return path
