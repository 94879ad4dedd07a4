"""Exports of the store for GIS: cavities, waterlines, shorelines as GeoPackage, GeoJSON or CSV.

Every export is in WGS84 (EPSG:4326, lon/lat degrees: RFC 7946 GeoJSON, and one CRS for a fleet
whose stations publish in different ones); cavities also keep the station's ``crs``, ``x`` and
``y`` as published. Geometries:

- ``cavities``: a Point per cavity (null without a position); class, confidence, depth of the
  top (m), width (m), along-track distance (m), apex trace, snippet path;
- ``waterlines``: a LineString per waterline message; water level (m), points;
- ``shorelines``: one row per shoreline message and transect, no geometry (the messages carry
  the chainage, not the transect line): transect, ``distance_m`` (chainage from the landward
  end, positive seaward), for the time series.

GeoPackage is written with pyogrio (GDAL bundled in its wheel) and opens in QGIS; CSV has the
geometry as WKT in a ``wkt`` column. ``since`` keeps messages at or after that time (epoch s).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
from shapely import to_wkb, to_wkt
from shapely.geometry import LineString, Point, mapping
from shapely.geometry.base import BaseGeometry

from edge.errors import InputError
from edge.hub.messages import cavity_position, finite_number
from edge.hub.store import Store, StoredMessage
from edge.hub.wgs84 import WGS84, line_to_wgs84
from edge.station.messages import utc_iso

EXPORT_KINDS = ("cavities", "waterlines", "shorelines")
EXPORT_FORMATS = ("gpkg", "geojson", "csv")
CONTENT_TYPES = {
    "gpkg": "application/geopackage+sqlite3",
    "geojson": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
}


@dataclass(frozen=True)
class Table:
    """Rows to export: ``fields`` (name, ``"str"``/``"float"``/``"int"``), one dict per row,
    one WGS84 geometry (or None) per row, and the layer's geometry type (None: no geometry)."""

    name: str
    fields: list[tuple[str, str]]
    rows: list[dict[str, Any]]
    geometries: Sequence[BaseGeometry | None]
    geometry_type: str | None


#: Numbers of a cavity message exported as they are (m; confidence 0..1).
_CAVITY_NUMBERS = ("confidence", "depth_top_m", "width_m", "distance_m")


def _cavities(store: Store, since_s: float | None) -> Table:
    fields = [("id", "str"), ("station", "str"), ("time", "str"), ("class", "str"),
              ("confidence", "float"), ("depth_top_m", "float"), ("width_m", "float"),
              ("distance_m", "float"), ("trace", "int"), ("crs", "str"), ("x", "float"),
              ("y", "float"), ("lon", "float"), ("lat", "float"), ("snippet", "str")]  # fmt: skip
    rows, geometries = [], []
    for m in reversed(store.cavities(since_s=since_s)):
        p = m.payload
        where = cavity_position(p)
        numbers = {k: finite_number(p.get(k)) for k in _CAVITY_NUMBERS}
        trace = p.get("trace")
        rows.append({"id": m.id, "station": m.station, "time": utc_iso(m.time_s),
                     "class": p.get("class"), **numbers,
                     "trace": trace if isinstance(trace, int) else None, "crs": where.crs,
                     "x": where.x, "y": where.y, "lon": where.lon, "lat": where.lat,
                     "snippet": p.get("snippet")})  # fmt: skip
        lon, lat = where.lon, where.lat
        geometries.append(None if lon is None or lat is None else Point(lon, lat))
    return Table("cavities", fields, rows, geometries, "Point")


def _waterlines(store: Store, since_s: float | None) -> Table:
    fields = [("id", "str"), ("station", "str"), ("time", "str"), ("crs", "str"),
              ("water_level_m", "float"), ("points", "int")]  # fmt: skip
    rows, geometries = [], []
    for m in reversed(store.messages(kind="waterline", since_s=since_s)):
        p = m.payload
        crs = p.get("crs") if isinstance(p.get("crs"), str) else None
        line = line_to_wgs84(crs, p.get("waterline")) if crs else None
        coords = line["coordinates"] if line else []
        assert isinstance(coords, list)
        level = finite_number(p.get("water_level_m"))
        rows.append({"id": m.id, "station": m.station, "time": utc_iso(m.time_s), "crs": crs,
                     "water_level_m": level, "points": len(coords)})  # fmt: skip
        geometries.append(LineString(coords) if len(coords) >= 2 else None)
    return Table("waterlines", fields, rows, geometries, "LineString")


def _shorelines(store: Store, since_s: float | None) -> Table:
    fields = [("id", "str"), ("station", "str"), ("time", "str"), ("transect", "str"),
              ("distance_m", "float"), ("datum_m", "float")]  # fmt: skip
    rows: list[dict[str, Any]] = []
    for m in reversed(store.messages(kind="shoreline", since_s=since_s)):
        rows.extend(_shoreline_rows(m))
    return Table("shorelines", fields, rows, [None] * len(rows), None)


def _shoreline_rows(m: StoredMessage) -> list[dict[str, Any]]:
    transects = m.payload.get("transects")
    out = []
    for t in transects if isinstance(transects, list) else []:
        distance = finite_number(t.get("distance_m")) if isinstance(t, dict) else None
        if distance is not None and isinstance(t, dict) and t.get("available") is not False:
            out.append({"id": m.id, "station": m.station, "time": utc_iso(m.time_s),
                        "transect": t.get("id"), "distance_m": distance,
                        "datum_m": finite_number(m.payload.get("datum_m"))})  # fmt: skip
    return out


TABLES: dict[str, Callable[[Store, float | None], Table]] = {
    "cavities": _cavities,
    "waterlines": _waterlines,
    "shorelines": _shorelines,
}


def _geojson(table: Table) -> bytes:
    features = [
        {"type": "Feature", "geometry": None if g is None else mapping(g), "properties": row}
        for row, g in zip(table.rows, table.geometries, strict=True)
    ]
    return json.dumps({"type": "FeatureCollection", "name": table.name, "features": features},
                      allow_nan=False).encode("utf-8")  # fmt: skip


def _csv(table: Table) -> bytes:
    out = io.StringIO()
    names = [name for name, _ in table.fields]
    writer = csv.DictWriter(out, [*names, "wkt"] if table.geometry_type else names,
                            lineterminator="\n")  # fmt: skip
    writer.writeheader()
    for row, g in zip(table.rows, table.geometries, strict=True):
        extra = {"wkt": "" if g is None else to_wkt(g, rounding_precision=8)}
        writer.writerow({**row, **extra} if table.geometry_type else row)
    return out.getvalue().encode("utf-8")


def _gpkg(table: Table, path: Path) -> None:
    data, masks = [], []
    for name, kind in table.fields:
        values = [row[name] for row in table.rows]
        mask = np.array([v is None for v in values], dtype=bool)
        if kind == "float":
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        elif kind == "int":
            array = np.array([0 if v is None else v for v in values], dtype=np.int64)
        else:
            array = np.array(["" if v is None else str(v) for v in values], dtype=object)
        data.append(array)
        masks.append(mask)
    geometry = None
    if table.geometry_type is not None:
        geometry = np.array(
            [None if g is None else to_wkb(g) for g in table.geometries], dtype=object
        )
    pyogrio.raw.write(
        str(path), geometry, data, [name for name, _ in table.fields], field_mask=masks,
        layer=table.name, driver="GPKG", geometry_type=table.geometry_type,
        crs=WGS84 if table.geometry_type else None,
    )  # fmt: skip


def export_table(store: Store, kind: str, since_s: float | None = None) -> Table:
    """The rows of ``kind`` (one of :data:`EXPORT_KINDS`)."""
    if kind not in TABLES:
        raise InputError(f"unknown export kind {kind!r} (expected {', '.join(EXPORT_KINDS)})")
    return TABLES[kind](store, since_s)


def export_file(store: Store, kind: str, fmt: str, out: Path, since_s: float | None = None) -> int:
    """Write the ``kind`` export as ``fmt`` to ``out`` (replaced); returns the rows written."""
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {fmt!r} (expected {', '.join(EXPORT_FORMATS)})")
    table = export_table(store, kind, since_s)
    try:
        if fmt == "gpkg":
            out.unlink(missing_ok=True)
            _gpkg(table, out)
        else:
            out.write_bytes(_geojson(table) if fmt == "geojson" else _csv(table))
    except OSError as exc:
        raise InputError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return len(table.rows)


def export_bytes(
    store: Store, kind: str, fmt: str, since_s: float | None = None
) -> tuple[bytes, str]:
    """The ``kind`` export as ``fmt``: (file content, its content type)."""
    with tempfile.TemporaryDirectory(prefix="geoedge-export-") as tmp:
        path = Path(tmp) / f"{kind}.{fmt}"
        export_file(store, kind, fmt, path, since_s)
        return path.read_bytes(), CONTENT_TYPES[fmt]
