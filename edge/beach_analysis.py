"""One collection's TimeX images -> the waterline message (``beach/waterline``).

Per camera: segmentation (U-Net, or the colour method) -> the waterline pieces on the
water-level plane (:mod:`edge.waterline`) -> transect crossings (:mod:`edge.transects`);
the cameras are merged (pieces joined, each transect measured by the camera that
sees its crossing best). With the U-Net, the colour method runs too and its
agreement (IoU of the two water masks over the valid ground) is reported as a
cross-check. An overlay per camera (waterline and transects drawn on the TimeX) is
written beside the products when an output folder is given.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from shapely.geometry import Polygon, mapping, shape

from edge.camera_model import Camera, load_camera
from edge.colour_segmentation import colour_water_probability
from edge.config import StationConfig
from edge.errors import InputError
from edge.messages import envelope
from edge.segmentation import WaterSegmenter
from edge.transects import CameraView, Transect, load_transects, measure
from edge.waterline import camera_waterline, ground_validity, join_pieces

log = logging.getLogger(__name__)

Image = np.ndarray | str | Path


def load_roi(path: Path | None) -> Polygon | None:
    """The region of interest: a GeoJSON Polygon (or a Feature/Collection holding one)."""
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ROI GeoJSON ({exc})") from None
    if data.get("type") == "FeatureCollection":
        data = data["features"][0]
    geom = shape(data.get("geometry", data))
    if not isinstance(geom, Polygon) or not geom.is_valid:
        raise InputError(f"{path}: ROI must be one valid Polygon in the station CRS")
    return geom


def read_image(image: Image, camera: Camera) -> np.ndarray:
    """A BGR uint8 image of the camera's calibrated size (NU x NV), read if a path."""
    if isinstance(image, np.ndarray):
        bgr = image
    else:
        bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"{image}: cannot read image")
    ic = camera.intrinsics
    if bgr.shape[:2] != (ic.NV, ic.NU):
        raise InputError(
            f"camera {camera.name}: image is {bgr.shape[1]}x{bgr.shape[0]}, calibration "
            f"expects {ic.NU}x{ic.NV}"
        )
    return bgr


def read_mask(image: Image, camera: Camera) -> np.ndarray:
    """A water mask (255 = water) of the camera's size as bool."""
    m = image if isinstance(image, np.ndarray) else cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise InputError(f"{image}: cannot read mask")
    if m.ndim == 3:
        m = m[:, :, 0]
    ic = camera.intrinsics
    if m.shape != (ic.NV, ic.NU):
        raise InputError(
            f"camera {camera.name}: mask is {m.shape[1]}x{m.shape[0]}, expected {ic.NU}x{ic.NV}"
        )
    return m > 127


class BeachAnalyser:
    """Holds what is loaded once (cameras, ROI, transects, model) for every collection."""

    def __init__(self, config: StationConfig, load_model: bool = True) -> None:
        self.config = config
        self.cameras = {c.name: load_camera(c) for c in config.cameras}
        self.roi = load_roi(config.waterline.roi)
        self.transects: list[Transect] = (
            load_transects(config.transects.file) if config.transects else []
        )
        self.segmenter = WaterSegmenter(config.segmentation) if load_model else None

    def camera(self, name: str) -> Camera:
        if name not in self.cameras:
            known = ", ".join(self.cameras)
            raise InputError(f"no camera {name!r} in the config (cameras: {known})")
        return self.cameras[name]

    def analyse(
        self,
        time: float | dt.datetime,
        water_level: float,
        images: dict[str, Image] | None = None,
        masks: dict[str, Image] | None = None,
        out_dir: Path | None = None,
        stem: str | None = None,
    ) -> dict[str, Any]:
        """The waterline message for one collection at ``water_level`` (m, station datum).

        ``images`` are TimeX images per camera name (segmented here); ``masks`` are ready
        water masks per camera (255 = water) used instead. ``stem`` names the overlays
        (``<stem>.<camera>.waterline.jpg`` in ``out_dir``).
        """
        if water_level is None or not np.isfinite(water_level):
            raise InputError("a waterline needs the water level (tide + setup), got none")
        wl = self.config.waterline
        views, pieces, checks, overlays = [], [], {}, {}
        method, model = "mask", None
        for name in sorted(set(images or {}) | set(masks or {})):
            cam = self.camera(name)
            shape_hw = (cam.intrinsics.NV, cam.intrinsics.NU)
            valid = ground_validity(cam, shape_hw, water_level, self.roi, wl.max_range_m)
            bgr = None
            if masks and name in masks:
                mask = read_mask(masks[name], cam)
                prob = mask.astype(np.float32)
            else:
                if self.segmenter is None:
                    raise InputError(f"camera {name}: no mask given and no segmentation loaded")
                bgr = read_image(images[name], cam)
                seg = self.segmenter(bgr, valid)
                mask, prob, method, model = seg.mask, seg.probability, seg.method, seg.model
                if seg.method == "unet" and valid.any():
                    colour = colour_water_probability(bgr, valid) >= 0.5
                    checks[name] = _agreement(mask, colour, valid)
            cw = camera_waterline(cam, mask, water_level, self.roi, wl.min_length_m, wl.max_range_m)
            pieces += cw.pieces
            views.append(CameraView(cam, cw.water, prob, cw.valid))
            if out_dir is not None and images and name in images:
                bgr = read_image(images[name], cam) if bgr is None else bgr
                overlays[name] = str(
                    _overlay(bgr, cam, cw.pieces, self.transects, water_level, out_dir, stem, name)
                )
        crossings = [
            measure(
                t,
                views,
                water_level,
                max_spread_m=wl.max_crossing_spread_m,
                min_confidence=wl.min_confidence,
            )
            for t in self.transects
        ]
        line = join_pieces(pieces)
        return envelope(
            "waterline",
            self.config.station.id,
            time,
            crs=self.config.station.crs,
            water_level_m=round(float(water_level), 4),
            waterline=None if line is None else _rounded(mapping(line)),
            transects=[c.to_message() for c in crossings],
            method=method,
            model=model,
            cameras=sorted(set(images or {}) | set(masks or {})),
            cross_check=None if not checks else {"method": "colour", "iou": checks},
            overlays=overlays,
        )


def _agreement(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> float:
    """IoU of two water masks over the valid ground (1.0 when both are empty there)."""
    a, b = a & valid, b & valid
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else round(float(np.logical_and(a, b).sum() / union), 4)


def _rounded(geojson: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": geojson["type"],
        "coordinates": [[round(x, 3), round(y, 3)] for x, y in geojson["coordinates"]],
    }


def _overlay(
    bgr: np.ndarray,
    cam: Camera,
    pieces: list[np.ndarray],
    transects: list[Transect],
    water_level: float,
    out_dir: Path,
    stem: str | None,
    name: str,
) -> Path:
    """Waterline (red) and transects (yellow, labelled) drawn on the TimeX."""
    img = bgr.copy()
    thick = max(1, img.shape[1] // 600)
    for piece in pieces:
        uv, ok = cam.world_to_image(np.column_stack([piece, np.full(len(piece), water_level)]))
        pts = uv[ok].round().astype(np.int32)
        if len(pts) >= 2:
            cv2.polylines(img, [pts], False, (0, 0, 255), thick + 1)
    for t in transects:
        dense = np.array(
            [t.line.interpolate(d).coords[0] for d in np.linspace(0, t.line.length, 50)]
        )
        uv, ok = cam.world_to_image(np.column_stack([dense, np.full(len(dense), water_level)]))
        pts = uv[ok].round().astype(np.int32)
        if len(pts) >= 2:
            cv2.polylines(img, [pts], False, (0, 255, 255), thick)
            cv2.putText(
                img,
                t.id,
                tuple(pts[0]),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4 * thick,
                (0, 255, 255),
                thick,
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem or 'waterline'}.{name}.waterline.jpg"
    cv2.imwrite(str(path), img)
    return path
