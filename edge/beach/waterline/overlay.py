"""Overlay images of a waterline result: what a person checks at a glance.

- On each camera's TimeX: the waterline (red) and the transects (yellow, labelled at
  their landward end, the label kept inside the image), both projected from world
  coordinates at the water level, and a legend.
- On the plan view (:mod:`edge.beach.geometry.rectify`, the cameras merged on the ``[grid]``
  at the water level): the same lines, a dot (green valid, orange invalid) at each transect
  crossing, a legend and a scale bar; :func:`mark_reference` adds a reference line (the
  demo's rendered truth).

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

from edge.beach.geometry.camera import Camera
from edge.beach.geometry.grid import Grid
from edge.beach.geometry.rectify import rectify, to_uint8
from edge.beach.waterline.transects import Crossing

WATERLINE_BGR = (0, 0, 255)
TRANSECT_BGR = (0, 255, 255)
VALID_BGR = (0, 200, 0)
INVALID_BGR = (0, 140, 255)
REFERENCE_BGR = (255, 0, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX
#: The plan view's key after its first entry (the waterline, named with its water level).
PLAN_KEY = (
    ("transect", TRANSECT_BGR),
    ("crossing valid", VALID_BGR),
    ("crossing invalid", INVALID_BGR),
)
#: Scale-bar lengths to choose from (m): the longest under a quarter of the image width.
SCALE_BARS_M = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

log = logging.getLogger(__name__)


def _dense(line: LineString, step_m: float) -> np.ndarray:
    """Points every ``step_m`` (m) along a line, so curved projections stay smooth."""
    n = max(2, int(np.ceil(line.length / step_m)) + 1)
    return np.array([line.interpolate(d).coords[0][:2] for d in np.linspace(0, line.length, n)])


def _label_size(image: np.ndarray) -> tuple[int, float]:
    thick = max(1, image.shape[1] // 600)
    return thick, 0.4 * thick


def _text(
    img: np.ndarray, text: str, at: tuple[int, int], colour: tuple[int, int, int], scale: float,
    thick: int,
) -> None:  # fmt: skip
    """``text`` with its baseline near ``at``, moved inside the image, outlined for contrast."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, thick)
    x = int(np.clip(at[0], 2, max(2, img.shape[1] - w - 2)))
    y = int(np.clip(at[1], h + 2, max(h + 2, img.shape[0] - base - 2)))
    cv2.putText(img, text, (x, y), FONT, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), FONT, scale, colour, thick, cv2.LINE_AA)


def _legend(
    img: np.ndarray, entries: Sequence[tuple[str, tuple[int, int, int]]], first: int = 0
) -> None:
    """A key in the top-left corner: a colour swatch and a name per entry, starting at row
    ``first`` (to add entries below a key drawn earlier)."""
    thick, scale = _label_size(img)
    (_, h), _ = cv2.getTextSize("Ag", FONT, scale, thick)
    row = h + 6 * thick
    width = max(cv2.getTextSize(n, FONT, scale, thick)[0][0] for n, _ in entries) + 4 * row
    top = row * first + (3 if first else 0)
    box = img[top : row * (first + len(entries)) + 6, 0 : min(img.shape[1], width)]
    box[...] = (box * 0.4).astype(img.dtype)
    for i, (name, colour) in enumerate(entries, start=first):
        y = 3 + row * i + row // 2
        cv2.line(img, (4, y), (4 + 2 * row, y), colour, 2 * thick + 1)
        _text(img, name, (8 + 2 * row, y + h // 2), (255, 255, 255), scale, thick)


def _scale_bar(img: np.ndarray, metres_per_pixel: float) -> None:
    """A bar of a round length (m) in the bottom-left corner of a plan view."""
    thick, scale = _label_size(img)
    longest = img.shape[1] / 4 * metres_per_pixel
    length_m = max((m for m in SCALE_BARS_M if m <= longest), default=SCALE_BARS_M[0])
    n = round(length_m / metres_per_pixel)
    y = img.shape[0] - 8 - 3 * thick
    cv2.line(img, (8, y), (8 + n, y), (0, 0, 0), 3 * thick + 2)
    cv2.line(img, (8, y), (8 + n, y), (255, 255, 255), thick + 1)
    _text(img, f"{length_m} m", (8, y - 4 * thick), (255, 255, 255), scale, thick)


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
            u, v = (int(c) for c in seen[0].round())
            _text(img, tid, (u, v), TRANSECT_BGR, scale, thick)
    _legend(
        img, [(f"waterline at {water_level:+.2f} m", WATERLINE_BGR), ("transect", TRANSECT_BGR)]
    )
    return img


def planview_overlay(
    images: Sequence[tuple[Camera, np.ndarray]],
    grid: Grid,
    water_level: float,
    waterline: Sequence[np.ndarray],
    transects: Sequence[tuple[str, LineString]],
    crossings: Sequence[Crossing],
) -> np.ndarray:
    """The merged plan view at ``water_level`` (m) with the lines and crossings drawn, a
    legend and a scale bar."""
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
        _text(img, tid, (int(pts[0][0]), int(pts[0][1])), TRANSECT_BGR, scale, thick)
    for c in crossings:
        if c.point is not None:
            colour = VALID_BGR if c.valid else INVALID_BGR
            at = pixels(np.asarray([c.point], dtype=float))[0]
            cv2.circle(img, (int(at[0]), int(at[1])), 2 + thick, colour, -1)
    _legend(img, [(f"waterline at {water_level:+.2f} m", WATERLINE_BGR), *PLAN_KEY])
    _scale_bar(img, grid.resolution_m)
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


def mark_reference(
    path: Path, grid: Grid, line: np.ndarray, label: str = "reference"
) -> Path | None:
    """Draw a reference line (N x 2 world points, station CRS, m) on a plan-view overlay file
    written by :func:`planview_overlay`, with its legend entry below the others; the path,
    or None when the file cannot be read or written (one warning)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        log.warning("overlay %s cannot be read: reference not drawn", path)
        return None
    thick = _label_size(img)[0]
    xl, yl = grid.world_to_local(line[:, 0], line[:, 1])
    col, row = grid.pixel_of_local(xl, yl)
    pts = np.column_stack([col, row]).round().astype(np.int32)
    cv2.polylines(img, [pts], False, REFERENCE_BGR, thick, cv2.LINE_AA)
    for u, v in pts:
        cv2.drawMarker(img, (int(u), int(v)), REFERENCE_BGR, cv2.MARKER_CROSS, 6 + 2 * thick, thick)
    _legend(img, [(label, REFERENCE_BGR)], first=1 + len(PLAN_KEY))
    return save(img, path)
