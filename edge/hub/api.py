"""The hub's HTTP JSON API and the dashboard's files (stdlib ``ThreadingHTTPServer``).

Routes (GET; every list is an object keyed by its kind; times UTC ISO 8601 with ``Z``;
coordinates in the station's CRS as published, plus WGS84 under ``wgs84``; shapes in README
"Control room hub"):

- ``/api/health``: the hub's own state (broker, store, counts);
- ``/api/stations``: the registry (:mod:`edge.hub.registry`);
- ``/api/stations/<id>/messages?kind=&since=&limit=``: that station's messages, newest first;
- ``/api/waterlines?station=&since=&limit=``: waterline messages, newest first;
- ``/api/shoreline?station=&transect=``: per-transect shoreline time series with the trend
  (m/yr) and its standard error;
- ``/api/cavities?station=&bbox=&since=&class=``: cavity messages, newest first; ``bbox`` is
  ``min_lon,min_lat,max_lon,max_lat`` (WGS84 degrees);
- ``/api/export?kind=&format=&since=``: a file (:mod:`edge.hub.export`);
- ``/`` the dashboard (``static/index.html``), ``/static/<file>`` its files.

A bad parameter is a 400 with ``{"error": "<one line>"}``, a store that cannot answer a 503 with
the same, an unknown path a 404 (``/api/health`` answers while the store fails). More routes
(images) are added with ``extra_routes`` without touching this module.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from edge import __version__
from edge.beach.shoreline.trend import shoreline_trend
from edge.errors import GeoEdgeError
from edge.hub.config import HubConfig
from edge.hub.export import EXPORT_FORMATS, EXPORT_KINDS, export_bytes
from edge.hub.ingest import IngestCounts
from edge.hub.messages import cavity_position
from edge.hub.registry import view
from edge.hub.store import Store, StoredMessage, StoreError
from edge.hub.wgs84 import line_to_wgs84, to_wgs84
from edge.station.messages import TOPICS, epoch_seconds, utc_iso

log = logging.getLogger(__name__)

#: The dashboard's files, shipped in the package.
STATIC_DIR = Path(__file__).parent / "static"
#: Largest ``limit`` a list route accepts; the default when none is given.
MAX_LIMIT, DEFAULT_LIMIT = 10_000, 500


class BadRequest(GeoEdgeError):
    """A request parameter is missing or malformed (HTTP 400, one line)."""


@dataclass(frozen=True)
class Response:
    """What a route answers."""

    body: bytes
    content_type: str = "application/json"
    status: int = HTTPStatus.OK
    headers: dict[str, str] = field(default_factory=dict)


def json_response(value: object, status: int = HTTPStatus.OK) -> Response:
    return Response(json.dumps(value, allow_nan=False).encode("utf-8"), status=status)


class Query:
    """A request's query string, read with checks (each failure a :class:`BadRequest`)."""

    def __init__(self, text: str) -> None:
        self._values = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=False).items()}

    def text(self, key: str) -> str | None:
        return self._values.get(key)

    def required(self, key: str) -> str:
        value = self._values.get(key)
        if value is None:
            raise BadRequest(f"missing parameter {key!r}")
        return value

    def time(self, key: str) -> float | None:
        value = self._values.get(key)
        if value is None:
            return None
        try:
            return epoch_seconds(value)
        except ValueError:
            raise BadRequest(
                f"{key}: expected UTC ISO 8601 (2026-06-15T03:00:00Z), got {value!r}"
            ) from None

    def limit(self, default: int = DEFAULT_LIMIT) -> int:
        value = self._values.get("limit")
        if value is None:
            return default
        if not value.isdigit() or not 0 < int(value) <= MAX_LIMIT:
            raise BadRequest(f"limit: expected 1..{MAX_LIMIT}, got {value!r}")
        return int(value)

    def bbox(self) -> tuple[float, float, float, float] | None:
        value = self._values.get("bbox")
        if value is None:
            return None
        try:
            west, south, east, north = (float(v) for v in value.split(","))
        except ValueError:
            raise BadRequest(
                f"bbox: expected min_lon,min_lat,max_lon,max_lat in degrees, got {value!r}"
            ) from None
        if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            raise BadRequest(f"bbox: expected west <= east and south <= north, got {value!r}")
        return west, south, east, north


#: ``handler(query, match)`` for a path matching a route's pattern.
Handler = Callable[[Query, "re.Match[str]"], Response]


@dataclass(frozen=True)
class Route:
    """A GET route: ``pattern`` (a regular expression) must match the whole path."""

    pattern: str
    handler: Handler


@dataclass
class HubApi:
    """The routes over ``store``; ``counts`` says what the subscriber did (None: no
    subscriber in this process, e.g. an API-only test)."""

    config: HubConfig
    store: Store
    counts: Callable[[], IngestCounts] | None = None
    connected: Callable[[], bool] | None = None
    started_s: float = field(default_factory=time.time)

    def routes(self) -> list[Route]:
        return [
            Route(r"/api/health", self.health),
            Route(r"/api/stations", self.stations),
            Route(r"/api/stations/(?P<station>[^/]+)/messages", self.station_messages),
            Route(r"/api/waterlines", self.waterlines),
            Route(r"/api/shoreline", self.shoreline),
            Route(r"/api/cavities", self.cavities),
            Route(r"/api/export", self.export),
            Route(r"/", self.index),
            Route(r"/static/(?P<name>[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)", self.static),
        ]

    def health(self, query: Query, match: re.Match[str]) -> Response:
        counts = self.counts() if self.counts else None
        try:
            stored: int | None = self.store.count()
            store_error = None
        except StoreError as exc:
            stored, store_error = None, str(exc)
        return json_response(
            {
                "status": "ok" if store_error is None else "store failing",
                "version": __version__,
                "time": utc_iso(time.time()),
                "uptime_s": round(time.time() - self.started_s, 1),
                "broker": f"{self.config.mqtt.host}:{self.config.mqtt.port}",
                "broker_connected": self.connected() if self.connected else None,
                "store": self.store.dialect,
                "postgis": self.store.postgis,
                "store_error": store_error,
                "messages": stored,
                "ingest": None if counts is None else asdict(counts),
            }
        )

    def stations(self, query: Query, match: re.Match[str]) -> Response:
        now, hub = time.time(), self.config.hub
        return json_response(
            {
                "stations": [
                    view(row, now, hub.stats_interval_s, hub.stale_after_missed).to_json()
                    for row in self.store.stations()
                ]
            }
        )

    def station_messages(self, query: Query, match: re.Match[str]) -> Response:
        kind = query.text("kind")
        if kind is not None and kind not in TOPICS:
            raise BadRequest(f"kind: expected one of {', '.join(TOPICS)}, got {kind!r}")
        found = self.store.messages(
            unquote(match["station"]), kind, query.time("since"), query.limit()
        )
        return json_response({"messages": [m.payload for m in found]})

    def waterlines(self, query: Query, match: re.Match[str]) -> Response:
        found = self.store.messages(
            query.text("station"), "waterline", query.time("since"), query.limit()
        )
        return json_response({"waterlines": [_waterline_json(m) for m in found]})

    def shoreline(self, query: Query, match: re.Match[str]) -> Response:
        station = query.required("station")
        series = self.store.shoreline_series(station, query.text("transect"))
        transects = []
        for name, points in sorted(series.items()):
            trend = shoreline_trend([t for t, _ in points], [d for _, d in points])
            transects.append(
                {
                    "id": name,
                    "n": len(points),
                    "rate_m_per_yr": trend.rate_m_per_yr,
                    "stderr_m_per_yr": trend.stderr_m_per_yr,
                    "points": [{"time": utc_iso(t), "distance_m": d} for t, d in points],
                }
            )
        return json_response({"station": station, "transects": transects})

    def cavities(self, query: Query, match: re.Match[str]) -> Response:
        found = self.store.cavities(
            query.text("station"),
            query.bbox(),
            query.time("since"),
            query.text("class"),
            query.limit(MAX_LIMIT),
        )
        return json_response({"cavities": [_cavity_json(m) for m in found]})

    def export(self, query: Query, match: re.Match[str]) -> Response:
        kind, fmt = query.required("kind"), query.required("format")
        if kind not in EXPORT_KINDS:
            raise BadRequest(f"kind: expected one of {', '.join(EXPORT_KINDS)}, got {kind!r}")
        if fmt not in EXPORT_FORMATS:
            raise BadRequest(f"format: expected one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
        data, content_type = export_bytes(self.store, kind, fmt, query.time("since"))
        name = f"geoedge-{kind}.{fmt}"
        return Response(
            data, content_type, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    def index(self, query: Query, match: re.Match[str]) -> Response:
        return _static_file(STATIC_DIR / "index.html")

    def static(self, query: Query, match: re.Match[str]) -> Response:
        path = (STATIC_DIR / match["name"]).resolve()
        if not path.is_relative_to(STATIC_DIR.resolve()):
            return _not_found()
        return _static_file(path)


def _static_file(path: Path) -> Response:
    if not path.is_file():
        return _not_found()
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Response(path.read_bytes(), content_type)


def _not_found() -> Response:
    return json_response({"error": "not found"}, HTTPStatus.NOT_FOUND)


def _waterline_json(message: StoredMessage) -> dict[str, Any]:
    """The waterline as published, plus ``wgs84``: the line and each transect's point."""
    p = message.payload
    crs = p.get("crs") if isinstance(p.get("crs"), str) else None
    points: dict[str, list[float] | None] = {}
    transects = p.get("transects")
    for t in transects if isinstance(transects, list) else []:
        if isinstance(t, dict) and isinstance(t.get("id"), str):
            point = t.get("point")
            lonlat = None
            if crs and isinstance(point, list) and len(point) >= 2:
                lon, lat = to_wgs84(crs, [point])[0]
                lonlat = None if lon is None or lat is None else [lon, lat]
            points[t["id"]] = lonlat
    line = line_to_wgs84(crs, p.get("waterline")) if crs else None
    return {**p, "wgs84": {"waterline": line, "points": points}}


def _cavity_json(message: StoredMessage) -> dict[str, Any]:
    """The cavity as published, plus ``wgs84``: its lon/lat (the station's, else computed
    from ``position``; null without a position)."""
    where = cavity_position(message.payload)
    return {**message.payload, "wgs84": {"lon": where.lon, "lat": where.lat}}


class ApiServer:
    """Serves ``api`` (plus ``extra_routes``) on the hub's configured address, in threads."""

    def __init__(self, api: HubApi, extra_routes: Sequence[Route] = ()) -> None:
        self.api = api
        routes = [(re.compile(r.pattern), r.handler) for r in [*extra_routes, *api.routes()]]
        address = api.config.hub.address

        class _Handler(BaseHTTPRequestHandler):
            server_version = f"geoedge-hub/{__version__}"

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                for pattern, handler in routes:
                    found = pattern.fullmatch(url.path)
                    if found is not None:
                        self._answer(handler, Query(url.query), found)
                        return
                self._send(_not_found())

            def _answer(self, handler: Handler, query: Query, found: re.Match[str]) -> None:
                try:
                    response = handler(query, found)
                except StoreError as exc:
                    response = json_response({"error": str(exc)}, HTTPStatus.SERVICE_UNAVAILABLE)
                except GeoEdgeError as exc:
                    response = json_response({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
                except Exception:
                    log.exception("hub: %s failed", self.path)
                    response = json_response(
                        {"error": "internal error (see the hub's log)"},
                        HTTPStatus.INTERNAL_SERVER_ERROR,
                    )
                self._send(response)

            def _send(self, response: Response) -> None:
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                self.send_header("Cache-Control", "no-store")
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(response.body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: " + format, *args)

        try:
            self._server = ThreadingHTTPServer((address.host, address.port), _Handler)
        except OSError as exc:
            raise GeoEdgeError(
                f"hub.http: cannot listen on {address} ({exc.strerror or exc})"
            ) from None
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (the configured one; the system's choice for port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="hub-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
