"""The dashboard's routes: the map's data in one request, and the stations' images.

- ``/api/map``: what the map draws, WGS84 degrees (lon, lat): ``stations`` (each placed at the
  middle of its latest waterline, else of its cavities; null when it published no position),
  ``waterlines`` (the latest per station, ``line`` = [[lon, lat], ...]), ``shorelines`` (the
  latest tide-datum shoreline per station as a line through its transects' datum points, when
  the message carries them), ``cavities`` (the newest :data:`MAP_CAVITIES`, each with ``class``,
  ``lon``, ``lat`` and ``image``, its snippet's id or null) and ``tile_url`` (``[hub] tile_url``,
  an XYZ raster tile template, or null for the plain grid);
- ``/api/images?message=<id>``: ``{"images": [...]}``, the images of one result message;
- ``/api/images/latest?station=&kind=[&view=]``: ``{"images": [...]}``, the newest image of
  ``kind`` (``timex``, ``overlay``, ``snippet``) from ``station``: one, or none;
- ``/api/images/<id>``: the image file itself (JPEG or PNG), 404 when unknown or expired.

Every image's JSON is :meth:`edge.hub.images.ImageRecord.to_json` (``url`` is its file's path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from edge.hub.api import BadRequest, Query, Response, Route, json_response
from edge.hub.config import HubConfig
from edge.hub.images import ImageArchive, ImageRecord
from edge.hub.store import Store, StoredMessage
from edge.hub.wgs84 import line_to_wgs84, to_wgs84
from edge.station.images import IMAGE_KINDS
from edge.station.messages import utc_iso

#: Cavities on the map at most (the newest).
MAP_CAVITIES = 2000


@dataclass
class DashboardApi:
    """The routes of this module over the hub's ``store`` and image ``archive``."""

    config: HubConfig
    store: Store
    archive: ImageArchive

    def routes(self) -> list[Route]:
        return [
            Route(r"/api/map", self.map),
            Route(r"/api/images", self.images_of_message),
            Route(r"/api/images/latest", self.latest_image),
            Route(r"/api/images/(?P<id>[A-Za-z0-9_.-]+)", self.image_file),
        ]

    def map(self, query: Query, match: re.Match[str]) -> Response:
        stations, waterlines, shorelines = [], [], []
        found = self.store.messages(kind="cavity", limit=MAP_CAVITIES)
        cavities = [_cavity(m) for m in found]
        images = self.archive.of_messages([c["id"] for c in cavities])
        snippets = {r.source_id: r.id for r in images if r.kind == "snippet"}
        for c in cavities:
            c["image"] = snippets.get(c["id"])
        for row in self.store.stations():
            waterline = _latest_line(self.store, row.station, "waterline")
            shoreline = _latest_line(self.store, row.station, "shoreline")
            if waterline is not None:
                waterlines.append(waterline)
            if shoreline is not None:
                shorelines.append(shoreline)
            own = [[c["lon"], c["lat"]] for c in cavities if c["station"] == row.station]
            points = (waterline or {}).get("line") or [p for p in own if None not in p]
            lon, lat = _middle(points)
            stations.append({"station": row.station, "lon": lon, "lat": lat})
        return json_response(
            {
                "tile_url": self.config.hub.tile_url,
                "stations": stations,
                "waterlines": waterlines,
                "shorelines": shorelines,
                "cavities": cavities,
            }
        )

    def images_of_message(self, query: Query, match: re.Match[str]) -> Response:
        return _images(self.archive.of_message(query.required("message")))

    def latest_image(self, query: Query, match: re.Match[str]) -> Response:
        station, kind = query.required("station"), query.required("kind")
        if kind not in IMAGE_KINDS:
            raise BadRequest(f"kind: expected one of {', '.join(IMAGE_KINDS)}, got {kind!r}")
        found = self.archive.latest(station, kind, query.text("view"))
        return _images([] if found is None else [found])

    def image_file(self, query: Query, match: re.Match[str]) -> Response:
        record = self.archive.get(match["id"])
        path = None if record is None else self.archive.file(record)
        if record is None or path is None or not path.is_file():
            return json_response({"error": "no such image"}, HTTPStatus.NOT_FOUND)
        return Response(path.read_bytes(), record.content_type)


def _images(records: list[ImageRecord]) -> Response:
    return json_response({"images": [r.to_json() for r in records]})


def _cavity(message: StoredMessage) -> dict[str, Any]:
    p = message.payload
    lon, lat = p.get("lon"), p.get("lat")
    position = p.get("position") if isinstance(p.get("position"), dict) else None
    if (lon is None or lat is None) and position and isinstance(position.get("crs"), str):
        x, y = position.get("x"), position.get("y")
        if isinstance(x, int | float) and isinstance(y, int | float):
            lon, lat = to_wgs84(position["crs"], [(x, y)])[0]
    return {
        "id": message.id,
        "station": message.station,
        "time": utc_iso(message.time_s),
        "class": p.get("class") if isinstance(p.get("class"), str) else "unknown",
        "confidence": p.get("confidence"),
        "depth_top_m": p.get("depth_top_m"),
        "width_m": p.get("width_m"),
        "lon": lon,
        "lat": lat,
    }


def _latest_line(store: Store, station: str, kind: str) -> dict[str, Any] | None:
    """The latest waterline of ``station`` as a WGS84 line, or its latest datum shoreline as a
    line through the transects' ``point`` (station CRS) where the message carries them."""
    found = store.messages(station, kind, None, 1)
    if not found:
        return None
    message = found[0]
    p = message.payload
    crs = p.get("crs") if isinstance(p.get("crs"), str) else None
    if crs is None:
        return None
    if kind == "waterline":
        geometry = line_to_wgs84(crs, p.get("waterline"))
    else:
        points = [
            t["point"]
            for t in p.get("transects") or []
            if isinstance(t, dict) and isinstance(t.get("point"), list) and len(t["point"]) >= 2
        ]
        geometry = line_to_wgs84(crs, {"type": "LineString", "coordinates": points})
    coords = (geometry or {}).get("coordinates")
    if not isinstance(coords, list) or len(coords) < 2:
        return None
    line: dict[str, Any] = {
        "id": message.id,
        "station": station,
        "time": utc_iso(message.time_s),
        "line": coords,
    }
    if kind == "shoreline":
        # The waterline the datum shoreline was moved from: the same collection, the same time.
        same = [m for m in store.messages(station, "waterline", message.time_s, 10)
                if m.time_s == message.time_s]  # fmt: skip
        line["waterline_id"] = same[0].id if same else None
    return line


def _middle(points: list[Any]) -> tuple[float | None, float | None]:
    """The middle of the bounding box of [lon, lat] points; (None, None) without points."""
    if not points:
        return None, None
    lons = [float(p[0]) for p in points]
    lats = [float(p[1]) for p in points]
    return (min(lons) + max(lons)) / 2.0, (min(lats) + max(lats)) / 2.0
