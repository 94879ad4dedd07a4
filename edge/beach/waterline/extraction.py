"""Waterline: the water/land boundary of a segmentation, in world coordinates.

The boundary is taken to world coordinates **on the horizontal plane of the current
water level** (tide plus setup, m in the station datum): a required argument, never a
silent 0, because the same image line maps to different ground positions at different
planes.

Cleaning rule (what counts as *the* waterline), in image space, per camera:

1. Only pixels whose ray meets the water-level plane in front of the camera, within
   ``max_range_m`` and inside the region of interest (a world polygon) take part;
   the sky and the far sea beyond the ROI do not.
2. Small speckle is removed with a morphological opening and closing (3 px).
3. The water region is the **largest connected water component** in the valid area;
   other water components (puddles, wet-sand patches, swash foam islands left on
   land) are dropped, and land components enclosed by it smaller than
   ``hole_fraction`` of it (foam gaps, boats, people in the swash) are filled.
4. The boundary of that region is traced; points on the image border, on the edge
   of the valid area (horizon, ROI edge) are not waterline and split it into pieces.
5. Pieces shorter than ``min_length_m`` in world coordinates are dropped (people,
   posts, small foam arcs), and pieces from all cameras are joined into one
   LineString ordered along its principal direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

from edge.beach.geometry.camera import Camera

#: Downsampling step (pixels) of the ground-validity grid.
_GRID_STEP = 8


@dataclass(frozen=True)
class CameraWaterline:
    """The waterline pieces of one camera: world ``(x, y)`` arrays and the cleaned mask."""

    camera: str
    pieces: list[np.ndarray]
    water: np.ndarray
    valid: np.ndarray


def ground_validity(
    camera: Camera,
    shape: tuple[int, int],
    water_level: float,
    roi: Polygon | None,
    max_range_m: float,
) -> np.ndarray:
    """Bool (H, W): pixels whose ray meets the water-level plane within range and the ROI.

    Evaluated on a coarse grid (every 8 px) and resized: the edge of validity is only
    used to cut the boundary, so a few pixels of error there do not move the waterline.
    """
    h, w = shape
    gy, gx = np.mgrid[0 : h + _GRID_STEP : _GRID_STEP, 0 : w + _GRID_STEP : _GRID_STEP]
    uv = np.column_stack([np.clip(gx.ravel(), 0, w - 1), np.clip(gy.ravel(), 0, h - 1)])
    xyz, ok = camera.image_to_world(uv.astype(float), water_level)
    dist = np.hypot(*(xyz[:, :2] - camera.position[:2]).T)
    ok &= dist <= max_range_m
    if roi is not None:
        ok[ok] = shapely.contains_xy(roi, xyz[ok, 0], xyz[ok, 1])
    coarse = ok.reshape(gy.shape).astype(np.uint8)
    big = cv2.resize(
        coarse,
        (gx.shape[1] * _GRID_STEP, gy.shape[0] * _GRID_STEP),
        interpolation=cv2.INTER_NEAREST,
    )
    return big[:h, :w].astype(bool)


def clean_water(mask: np.ndarray, valid: np.ndarray, hole_fraction: float = 0.05) -> np.ndarray:
    """Steps 2-3 of the module rule: the main water region inside ``valid``."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    m = (mask & valid).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=4)
    if n <= 1:
        return np.zeros_like(mask, dtype=bool)
    main = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    water = labels == main
    area = stats[main, cv2.CC_STAT_AREA]
    land = (~water).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(land, connectivity=4)
    for k in range(1, n):
        if stats[k, cv2.CC_STAT_AREA] >= hole_fraction * area:
            continue
        hole = labels == k
        ring = cv2.dilate(hole.astype(np.uint8), kernel).astype(bool) & ~hole
        if water[ring].all():
            water |= hole
    return water


def boundary_pieces(water: np.ndarray, valid: np.ndarray) -> list[np.ndarray]:
    """Step 4: runs of boundary pixels (u, v) of ``water`` that are true water/land edges."""
    contours, _ = cv2.findContours(water.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    h, w = water.shape
    inner = cv2.erode(valid.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    pieces = []
    for contour in contours:
        pts = contour[:, 0, :]
        keep = (pts[:, 0] > 1) & (pts[:, 0] < w - 2) & (pts[:, 1] > 1) & (pts[:, 1] < h - 2)
        keep &= inner[pts[:, 1], pts[:, 0]]
        if keep.all():
            runs = [pts]
        else:
            # Rotate so the contour starts at a dropped point, then split at dropped points.
            start = int(np.argmin(keep))
            pts, keep = np.roll(pts, -start, axis=0), np.roll(keep, -start)
            edges = np.flatnonzero(np.diff(keep.astype(np.int8)))
            runs = [pts[a + 1 : b + 1] for a, b in zip(edges[::2], edges[1::2], strict=False)]
        pieces += [r.astype(float) for r in runs if len(r) >= 3]
    return pieces


def camera_waterline(
    camera: Camera,
    mask: np.ndarray,
    water_level: float,
    valid: np.ndarray,
    min_length_m: float = 20.0,
) -> CameraWaterline:
    """The module's rule for one camera: world waterline pieces at ``water_level`` (m);
    ``valid`` is the camera's :func:`ground_validity` at that level (computed once by the
    caller, which also segments within it)."""
    water = clean_water(mask, valid)
    pieces = []
    for uv in boundary_pieces(water, valid):
        xyz, ok = camera.image_to_world(uv, water_level)
        xy = xyz[ok, :2]
        if len(xy) >= 2 and LineString(xy).length >= min_length_m:
            pieces.append(_simplify(xy))
    return CameraWaterline(camera.name, pieces, water, valid)


def _simplify(xy: np.ndarray, tolerance_m: float = 0.05) -> np.ndarray:
    """Drop collinear pixel-step vertices (tolerance in m) without moving the line."""
    return np.asarray(LineString(xy).simplify(tolerance_m).coords)


def join_pieces(pieces: list[np.ndarray]) -> LineString | None:
    """One LineString through all pieces, ordered along their principal direction."""
    if not pieces:
        return None
    pts = np.vstack(pieces)
    centre = pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts - centre, full_matrices=False)
    axis = vt[0]
    ordered = []
    for piece in sorted(pieces, key=lambda p: float((p.mean(axis=0) - centre) @ axis)):
        if (piece[-1] - piece[0]) @ axis < 0:
            piece = piece[::-1]
        ordered.append(piece)
    line = np.vstack(ordered)
    return LineString(line) if len(line) >= 2 else None
