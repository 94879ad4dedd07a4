"""Transects: where the waterline crosses fixed cross-shore lines.

Transects are GeoJSON LineStrings in the station CRS, **first point landward**.
Chainage is the distance along the transect from its first point, in metres,
positive seaward (CoastSat convention).

The crossing is measured directly on the segmentation: points every ``step_m`` along
the transect, on the water-level plane, are projected into each camera and the
cleaned water mask and the water probability are read there. Walking seaward, the
crossing is where the probability first rises through 0.5 (linear interpolation
between samples) inside the main water region. A transect is valid only with one
crossing, or several within ``max_spread_m`` of each other (then their mean);
its confidence is the mean decisiveness ``|2p - 1|`` of the segmentation method's own
probability (the U-Net's before the guided refinement, see
:class:`edge.beach.waterline.segmentation.Segmentation`) within ``window_m`` of the
crossing. The camera that sees the crossing most confidently is used.

``reason`` of an invalid transect starts with one of ``"no crossing"``, ``"several
crossings far apart"``, ``"outside the camera view"``, ``"low confidence"`` (details
after a colon), so a control room can group them.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from shapely.geometry import LineString, shape

from edge.beach.geometry.camera import Camera
from edge.errors import InputError


@dataclass(frozen=True)
class Transect:
    """A named cross-shore line; ``line`` in station CRS metres, first point landward."""

    id: str
    line: LineString


@dataclass(frozen=True)
class Crossing:
    """The waterline on one transect (chainage m from the landward end, positive seaward)."""

    id: str
    distance_m: float | None
    point: tuple[float, float] | None
    valid: bool
    reason: str | None
    confidence: float
    camera: str | None = None

    def to_message(self) -> dict:
        return {
            "id": self.id,
            "distance_m": None if self.distance_m is None else round(self.distance_m, 3),
            "point": None if self.point is None else [round(v, 3) for v in self.point],
            "valid": self.valid,
            "reason": self.reason,
            "confidence": round(self.confidence, 3),
            "camera": self.camera,
        }


def load_transects(path: Path) -> list[Transect]:
    """Transects from a GeoJSON FeatureCollection (``properties.id``, else ``T01``...)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read transects GeoJSON ({exc})") from None
    features = data.get("features", [data] if data.get("type") == "Feature" else [])
    out = []
    for i, feature in enumerate(features, start=1):
        geom = shape(feature.get("geometry") or {})
        if not isinstance(geom, LineString) or geom.length <= 0:
            raise InputError(f"{path}: feature {i} is not a LineString with length")
        tid = str((feature.get("properties") or {}).get("id") or f"T{i:02d}")
        out.append(Transect(tid, LineString(np.asarray(geom.coords)[:, :2])))
    if not out:
        raise InputError(f"{path}: no transects (expected a FeatureCollection of LineStrings)")
    return out


@dataclass(frozen=True)
class CameraView:
    """What one camera contributes: its model, cleaned water mask, valid area, and the water
    probability whose decisiveness is the crossing's confidence (the segmentation method's
    own, before any refinement)."""

    camera: Camera
    water: np.ndarray
    probability: np.ndarray
    valid: np.ndarray


def measure(
    transect: Transect,
    views: list[CameraView],
    water_level: float,
    step_m: float = 0.25,
    max_spread_m: float = 5.0,
    min_confidence: float = 0.6,
    window_m: float = 5.0,
) -> Crossing:
    """The crossing of ``transect`` (see the module docstring for the rule)."""
    n = max(2, int(np.ceil(transect.line.length / step_m)) + 1)
    chain = np.linspace(0.0, transect.line.length, n)
    pts = np.array([transect.line.interpolate(c).coords[0][:2] for c in chain])
    xyz = np.column_stack([pts, np.full(n, water_level)])
    best: Crossing | None = None
    seen = False
    for view in views:
        uv, ok = view.camera.world_to_image(xyz)
        ok &= _sample(view.valid.astype(np.float32), uv, ok) > 0.5
        if ok.sum() < 2:
            continue
        seen = True
        water = _sample(view.water.astype(np.float32), uv, ok)
        prob = _sample(view.probability, uv, ok)
        found = _crossings(chain, water, ok)
        if not found:
            candidate = Crossing(
                transect.id, None, None, False, "no crossing", 0.0, view.camera.name
            )
        else:
            spread = max(found) - min(found)
            at = float(np.mean(found))
            near = ok & (np.abs(chain - at) <= window_m)
            conf = float(np.mean(np.abs(2 * prob[near] - 1))) if near.any() else 0.0
            point = transect.line.interpolate(at).coords[0][:2]
            if len(found) > 1 and spread > max_spread_m:
                reason = f"several crossings far apart: {len(found)} over {spread:.1f} m"
            elif conf < min_confidence:
                reason = f"low confidence: {conf:.2f} < {min_confidence:.2f}"
            else:
                reason = None
            candidate = Crossing(
                transect.id,
                at,
                (float(point[0]), float(point[1])),
                reason is None,
                reason,
                conf,
                view.camera.name,
            )
        if best is None or _rank(candidate) > _rank(best):
            best = candidate
    if best is None or not seen:
        return Crossing(transect.id, None, None, False, "outside the camera view", 0.0)
    return best


def _rank(c: Crossing) -> tuple[bool, bool, float]:
    return (c.valid, c.distance_m is not None, c.confidence)


def _crossings(chain: np.ndarray, water: np.ndarray, ok: np.ndarray) -> list[float]:
    """Chainages where ``water`` rises through 0.5 walking seaward between valid samples."""
    idx = np.flatnonzero(ok)
    out = []
    for a, b in itertools.pairwise(idx):
        if b != a + 1:
            continue
        wa, wb = water[a], water[b]
        if wa < 0.5 <= wb:
            f = (0.5 - wa) / (wb - wa)
            out.append(float(chain[a] + f * (chain[b] - chain[a])))
    return out


def _sample(image: np.ndarray, uv: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Bilinear samples of a float image at pixel positions ``uv`` (0 where not ``ok``)."""
    out = np.zeros(len(uv), np.float32)
    if ok.any():
        m = uv[ok].astype(np.float32)
        vals = cv2.remap(
            image.astype(np.float32),
            m[:, 0].reshape(-1, 1),
            m[:, 1].reshape(-1, 1),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        out[ok] = vals.ravel()
    return out
