"""One collection's TimeX images -> its waterline (:class:`WaterlineResult`, published as
``beach/waterline``).

Per camera: segmentation (U-Net, or the colour method) -> the waterline pieces on the
water-level plane (:mod:`edge.beach.waterline.extraction`) -> transect crossings
(:mod:`edge.beach.waterline.transects`); the cameras are merged (pieces joined, each transect
measured by the camera that sees its crossing best). With the U-Net, the colour method runs
too and its agreement (IoU of the two water masks over the valid ground) is reported as a
cross-check. Overlays (:mod:`edge.beach.waterline.overlay`: waterline and transects on each TimeX,
and on the merged plan view when the config has a ``[grid]``) are written beside the
products when an output folder is given; their paths are in the result's ``overlays``.

:func:`analyse_collection` is the one-call entry point (it returns the message); the daemon
keeps one :class:`BeachAnalyser` so the cameras, transects and model are loaded once, and
builds the message from the result just before the outbox.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from shapely.geometry import LineString, Polygon, mapping, shape

from edge.beach.geometry.calibration import load_camera
from edge.beach.geometry.camera import Camera
from edge.beach.geometry.grid import Grid
from edge.beach.waterline import overlay
from edge.beach.waterline.colour import colour_water_probability
from edge.beach.waterline.extraction import camera_waterline, ground_validity, join_pieces
from edge.beach.waterline.overlay import planview_overlay, timex_overlay
from edge.beach.waterline.segmentation import Segmenter, WaterSegmenter
from edge.beach.waterline.transects import (
    CameraView,
    Crossing,
    Transect,
    load_transects,
    measure,
)
from edge.config import StationConfig
from edge.errors import InputError
from edge.station.messages import envelope, utc_iso

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
        read = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if read is None:
            raise InputError(f"{image}: cannot read image")
        bgr = read
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


@dataclass(frozen=True)
class WaterlineResult:
    """One collection's waterline on the plane ``water_level_m`` (m, station vertical datum).

    ``line`` joins the cameras' waterline pieces (station CRS, m; None when none was found),
    ``crossings`` are the transects' (chainage m from the landward end, positive seaward).
    ``method`` is ``"unet"``, ``"colour"`` or ``"mask"`` (ready masks given), ``model`` the
    model file used; ``cross_check`` the colour method's IoU with the U-Net per camera (U-Net
    only); ``overlays`` the overlay files written, by camera name and ``"plan"``.
    """

    time: float | dt.datetime
    water_level_m: float
    line: LineString | None
    crossings: list[Crossing]
    method: str
    model: str | None
    cameras: list[str]
    cross_check: dict[str, float]
    overlays: dict[str, str]

    def to_message(self, station: str, crs: str, **extra: Any) -> dict[str, Any]:
        """The ``geoedge.waterline/1`` message; ``extra`` fields (tide, setup) go last."""
        return envelope(
            "waterline",
            station,
            self.time,
            crs=crs,
            water_level_m=round(float(self.water_level_m), 4),
            waterline=None if self.line is None else _rounded(mapping(self.line)),
            transects=[c.to_message() for c in self.crossings],
            method=self.method,
            model=self.model,
            cameras=self.cameras,
            cross_check=None
            if not self.cross_check
            else {"method": "colour", "iou": self.cross_check},
            overlays=self.overlays,
            **extra,
        )


class BeachAnalyser:
    """Holds what is loaded once (cameras, ROI, transects, model) for every collection."""

    def __init__(self, config: StationConfig, load_model: bool = True) -> None:
        self.config = config
        self.cameras = {c.name: load_camera(c) for c in config.cameras}
        self.roi = load_roi(config.waterline.roi)
        self.transects: list[Transect] = (
            load_transects(config.transects.file) if config.transects else []
        )
        self.segmenter: Segmenter | None = (
            WaterSegmenter(config.segmentation) if load_model else None
        )

    def _lines(self) -> list[tuple[str, LineString]]:
        return [(t.id, t.line) for t in self.transects]

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
    ) -> WaterlineResult:
        """The waterline of one collection at ``water_level`` (m, station datum).

        ``images`` are TimeX images per camera name (segmented here); ``masks`` are ready
        water masks per camera (255 = water) used instead. ``stem`` names the overlays
        (``<stem>.<camera>.waterline.jpg`` and ``<stem>.plan.waterline.jpg`` in ``out_dir``).
        """
        if water_level is None or not np.isfinite(water_level):
            raise InputError("a waterline needs the water level (tide + setup), got none")
        wl = self.config.waterline
        stem = stem or "waterline"
        views: list[CameraView] = []
        pieces: list[np.ndarray] = []
        checks: dict[str, float] = {}
        overlays: dict[str, str] = {}
        timex: dict[str, tuple[Camera, np.ndarray]] = {}
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
                if self.segmenter is None or images is None:
                    raise InputError(f"camera {name}: no mask given and no segmentation loaded")
                bgr = read_image(images[name], cam)
                seg = self.segmenter(bgr, valid)
                mask, prob, method, model = (
                    seg.mask,
                    seg.confidence_probability,
                    seg.method,
                    seg.model,
                )
                if seg.method == "unet" and valid.any():
                    colour = colour_water_probability(bgr, valid) >= 0.5
                    checks[name] = _agreement(mask, colour, valid)
            cw = camera_waterline(cam, mask, water_level, valid, wl.min_length_m)
            pieces += cw.pieces
            views.append(CameraView(cam, cw.water, prob, cw.valid))
            if out_dir is not None and images and name in images:
                bgr = read_image(images[name], cam) if bgr is None else bgr
                drawn = timex_overlay(bgr, cam, water_level, cw.pieces, self._lines())
                path = overlay.save(drawn, Path(out_dir) / f"{stem}.{name}.waterline.jpg")
                if path is not None:
                    overlays[name] = str(path)
                timex[name] = (cam, bgr)
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
        if timex and self.config.grid is not None and out_dir is not None:
            plan = planview_overlay(
                list(timex.values()),
                Grid.from_section(self.config.grid),
                water_level,
                pieces,
                self._lines(),
                crossings,
            )
            path = overlay.save(plan, Path(out_dir) / f"{stem}.plan.waterline.jpg")
            if path is not None:
                overlays["plan"] = str(path)
        return WaterlineResult(
            time=time,
            water_level_m=float(water_level),
            line=join_pieces(pieces),
            crossings=crossings,
            method=method,
            model=model,
            cameras=sorted(set(images or {}) | set(masks or {})),
            cross_check=checks,
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


def analyse_collection(
    config: StationConfig,
    timex_images: dict[str, Image],
    time: float | dt.datetime,
    water_level: float,
    out_dir: Path | str | None = None,
    masks: dict[str, Image] | None = None,
) -> dict[str, Any]:
    """The waterline message of one collection (``geoedge.waterline/1``).

    ``timex_images`` maps camera names of the config to TimeX images (paths or BGR
    uint8 arrays of the calibrated size); ``masks`` optionally gives ready water masks
    (255 = water) for some cameras instead. ``time`` is epoch seconds UTC or an aware
    datetime; ``water_level`` (m, station vertical datum: tide plus setup) is the plane
    the waterline is taken to and is required. With ``out_dir`` the overlays are written
    there as ``<time>.<camera>.waterline.jpg`` and ``<time>.plan.waterline.jpg``
    (``<time>`` like ``20151008T143001Z``) and listed in ``message["overlays"]``.
    """
    need_model = bool(set(timex_images) - set(masks or {}))
    analyser = BeachAnalyser(config, load_model=need_model)
    stem = utc_iso(time).replace("-", "").replace(":", "").split(".")[0].rstrip("Z") + "Z"
    result = analyser.analyse(
        time,
        water_level,
        images=timex_images,
        masks=masks,
        out_dir=None if out_dir is None else Path(out_dir),
        stem=stem,
    )
    return result.to_message(config.station.id, config.station.crs)
