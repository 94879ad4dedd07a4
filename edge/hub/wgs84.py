"""Station coordinates to WGS84 (longitude, latitude in degrees) with pyproj.

Stations publish in their own projected CRS (``EPSG:5187``, metres); the dashboard and the
exports also need WGS84. One transformer per CRS, built once (``always_xy``: x = easting or
longitude first). A CRS pyproj does not know gives None coordinates, never an exception: the
message is stored as published either way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from pyproj import Transformer
from pyproj.exceptions import CRSError, ProjError

WGS84 = "EPSG:4326"


@lru_cache(maxsize=64)
def _transformer(crs: str) -> Transformer | None:
    try:
        return Transformer.from_crs(crs, WGS84, always_xy=True)
    except (CRSError, ProjError):
        return None


def to_wgs84(
    crs: str, points: Sequence[Sequence[float]]
) -> list[tuple[float, float] | tuple[None, None]]:
    """``points`` ((x, y) in ``crs``) as (lon, lat) degrees; (None, None) where impossible."""
    transformer = _transformer(crs)
    if transformer is None or not points:
        return [(None, None)] * len(points)
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    lons, lats = transformer.transform(xs, ys)
    return [
        (round(lo, 8), round(la, 8)) if math.isfinite(lo) and math.isfinite(la) else (None, None)
        for lo, la in zip(lons, lats, strict=True)
    ]


def line_to_wgs84(crs: str, geometry: object) -> dict[str, object] | None:
    """A GeoJSON LineString in ``crs`` as a GeoJSON LineString in WGS84; None if it is not
    one or cannot be transformed."""
    if not isinstance(geometry, dict) or geometry.get("type") != "LineString":
        return None
    coords = geometry.get("coordinates")
    if not isinstance(coords, list) or not all(
        isinstance(c, list) and len(c) >= 2 and all(isinstance(v, int | float) for v in c[:2])
        for c in coords
    ):
        return None
    out = to_wgs84(crs, coords)
    if any(lon is None for lon, _ in out):
        return None
    return {"type": "LineString", "coordinates": [[lon, lat] for lon, lat in out]}
