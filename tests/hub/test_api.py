"""The HTTP API of a running hub (``python -m edge hub``, a child process), asked with real
HTTP requests, after real station links published the demo's results; the exports read back
(GeoPackage with pyogrio, GeoJSON, CSV), from the API and from ``geoedge hub export``."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyogrio
import pytest

from edge.station.messages import envelope
from tests.helpers.data import REPO
from tests.helpers.hub import HubProcess, Station, demo_messages, write_hub_config

YEAR_S = 365.25 * 86400.0
#: GPR positions given to two of the four demo cavities (the demo has no GNSS): EPSG:5186
#: (Korea 2000 / Central Belt 2010) metres, about 127.0 E 37.55 N.
POSITIONS = {0: (200000.0, 550000.0), 2: (200040.0, 550030.0)}


@pytest.fixture(scope="module")
def hub(mosquitto_broker, tmp_path_factory) -> Iterator[HubProcess]:
    folder = tmp_path_factory.mktemp("hub-api")
    prefix = "api-" + uuid.uuid4().hex[:8]
    config = write_hub_config(
        folder, mosquitto_broker, mqtt={"topic_prefix": prefix, "client_id": f"hub-{prefix}"}
    )
    running = HubProcess(config)
    beach = Station(mosquitto_broker, "demo-01", folder, topic_prefix=prefix)
    gpr = Station(mosquitto_broker, "demo-gpr", folder, topic_prefix=prefix)
    try:
        cavities = 0
        for kind, _station, text in demo_messages():
            if kind == "cavity":
                payload = json.loads(text)
                if cavities in POSITIONS:
                    x, y = POSITIONS[cavities]
                    payload["position"] = {"crs": "EPSG:5186", "x": x, "y": y}
                cavities += 1
                gpr.publish(kind, payload)
            else:
                beach.publish(kind, text)
        # two more shorelines: T01 moves 1 m seaward every half year (2.0 m/yr)
        first = json.loads(next(t for k, _, t in demo_messages() if k == "shoreline"))
        for n in (1, 2):
            t01 = {**first["transects"][0], "distance_m": first["transects"][0]["distance_m"] + n}
            later = envelope("shoreline", "demo-01", 1781492400.0 + n * YEAR_S / 2,
                             crs="EPSG:5187", datum_m=0.0, transects=[t01])  # fmt: skip
            beach.publish("shoreline", later)
        beach.publish(
            "stats", envelope("stats", "demo-01", 1.8e9, queue_depth=2, temperature_c=51.0)
        )
        beach.flush()
        gpr.flush()
        running.wait_for("/api/health", lambda h: h["messages"] >= 13)
        yield running
    finally:
        beach.stop()
        gpr.stop()
        running.stop()


def _error(hub: HubProcess, path: str) -> tuple[int, str]:
    status, body, _ = hub.get(path)
    return status, json.loads(body)["error"]


def test_health_counts_what_was_stored(hub):
    health = hub.get_json("/api/health")
    assert health["status"] == "ok" and health["broker_connected"] is True
    assert health["store"] == "sqlite" and health["postgis"] is False
    # 4 beach + 4 cavities + 2 shorelines + 1 stats + 2 online statuses
    assert health["messages"] >= 13 and health["ingest"]["rejected"] == {}


def test_stations_are_listed_online_with_their_latest_stats(hub):
    stations = {s["station"]: s for s in hub.get_json("/api/stations")["stations"]}
    assert set(stations) == {"demo-01", "demo-gpr"}
    beach = stations["demo-01"]
    assert beach["online"] is True and beach["state"] == "online" and beach["stale"] is False
    assert beach["stats"]["queue_depth"] == 2 and beach["stats"]["temperature_c"] == 51.0
    assert beach["last_seen"].endswith("Z") and stations["demo-gpr"]["stats"] is None


def test_a_stations_messages_by_kind_newest_first(hub):
    shorelines = hub.get_json("/api/stations/demo-01/messages?kind=shoreline")["messages"]
    times = [m["time"] for m in shorelines]
    assert len(shorelines) == 3 and times == sorted(times, reverse=True)
    assert len(hub.get_json("/api/stations/demo-01/messages?limit=2")["messages"]) == 2
    assert hub.get_json("/api/stations/nobody/messages")["messages"] == []
    status, error = _error(hub, "/api/stations/demo-01/messages?kind=waves")
    assert status == 400 and error.startswith("kind: expected one of status, stats")


def test_waterlines_in_the_station_crs_and_in_wgs84(hub):
    (line,) = hub.get_json("/api/waterlines?station=demo-01")["waterlines"]
    published = json.loads(next(t for k, _, t in demo_messages() if k == "waterline"))
    assert {k: v for k, v in line.items() if k != "wgs84"} == published
    lonlat = line["wgs84"]["waterline"]["coordinates"]
    assert len(lonlat) == len(published["waterline"]["coordinates"])
    # EPSG:5187 (Korea East Belt 2010) around (214389, 541920) m is about 129.16 E, 37.48 N
    assert all(129.1 < lon < 129.2 and 37.4 < lat < 37.5 for lon, lat in lonlat)
    assert set(line["wgs84"]["points"]) == {t["id"] for t in published["transects"]}
    assert hub.get_json("/api/waterlines?since=2027-01-01T00:00:00Z")["waterlines"] == []
    status, error = _error(hub, "/api/waterlines?since=yesterday")
    assert status == 400 and error.startswith("since: expected UTC ISO 8601")


def test_the_shoreline_series_has_its_trend(hub):
    """T01: 50.314, 51.314, 52.314 m at half-year steps: 2.0 m/yr seaward, exactly a line
    (standard error 0); the other transects have one point each: no trend."""
    answer = hub.get_json("/api/shoreline?station=demo-01")
    transects = {t["id"]: t for t in answer["transects"]}
    assert set(transects) == {"T01", "T02", "T03", "T04", "T05"}
    t01 = transects["T01"]
    assert [p["distance_m"] for p in t01["points"]] == [50.314, 51.314, 52.314]
    assert t01["rate_m_per_yr"] == pytest.approx(2.0, abs=1e-3)
    assert t01["stderr_m_per_yr"] == pytest.approx(0.0, abs=1e-3)
    assert transects["T02"]["n"] == 1 and transects["T02"]["rate_m_per_yr"] is None
    only = hub.get_json("/api/shoreline?station=demo-01&transect=T03")["transects"]
    assert [t["id"] for t in only] == ["T03"]
    assert _error(hub, "/api/shoreline") == (400, "missing parameter 'station'")


def test_cavities_by_class_and_bounding_box_with_wgs84(hub):
    everything = hub.get_json("/api/cavities")["cavities"]
    assert len(everything) == 4 and len({c["id"] for c in everything}) == 4
    pipes = hub.get_json("/api/cavities?class=pipe")["cavities"]
    assert {c["class"] for c in pipes} == {"pipe"} and len(pipes) == 2
    inside = hub.get_json("/api/cavities?bbox=126.9,37.5,127.1,37.6")["cavities"]
    assert len(inside) == 2
    for cavity in inside:
        assert cavity["position"]["crs"] == "EPSG:5186"
        assert 126.9 < cavity["wgs84"]["lon"] < 127.1 and 37.5 < cavity["wgs84"]["lat"] < 37.6
    assert hub.get_json("/api/cavities?station=demo-01")["cavities"] == []
    status, error = _error(hub, "/api/cavities?bbox=1,2,3")
    assert status == 400 and error.startswith("bbox: expected min_lon,min_lat,max_lon,max_lat")


def test_unknown_paths_are_404(hub):
    assert hub.get("/api/nothing")[0] == 404
    assert hub.get("/static/../hub.toml")[0] == 404


def test_exports_from_the_api_read_back(hub, tmp_path):
    status, body, kind = hub.get("/api/export?kind=cavities&format=geojson")
    assert status == 200 and kind == "application/geo+json"
    features = json.loads(body)["features"]
    assert len(features) == 4
    located = [f for f in features if f["geometry"] is not None]
    assert len(located) == 2 and all(f["geometry"]["type"] == "Point" for f in located)

    status, body, _ = hub.get("/api/export?kind=waterlines&format=gpkg")
    path = tmp_path / "waterlines.gpkg"
    path.write_bytes(body)
    info = pyogrio.read_info(path)
    assert info["features"] == 1 and info["geometry_type"] == "LineString"
    assert "4326" in info["crs"]

    status, body, _ = hub.get("/api/export?kind=shorelines&format=csv")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == 5 + 2  # the demo's five transects, then T01 twice more
    assert {r["transect"] for r in rows} == {"T01", "T02", "T03", "T04", "T05"}
    assert _error(hub, "/api/export?kind=cavities&format=shp")[0] == 400


def test_the_export_command_writes_a_geopackage(hub, tmp_path):
    out = tmp_path / "cavities.gpkg"
    run = subprocess.run(
        [sys.executable, "-m", "edge", "hub", "export", "--config",
         str(Path(hub.config.source_path or "")), "--kind", "cavities", "--format", "gpkg",
         "--since", "2026-01-01T00:00:00Z", "--out", str(out)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "4 cavities row(s) written" in run.stdout
    meta, _fids, geometry, fields = pyogrio.raw.read(out)
    assert list(meta["fields"][:4]) == ["id", "station", "time", "class"]
    classes = fields[list(meta["fields"]).index("class")]
    assert sorted(classes) == ["cavity", "cavity", "pipe", "pipe"]
    assert sum(g is not None for g in geometry) == 2


def test_sigterm_stops_the_hub_cleanly(hub):
    assert hub.stop() == 0
    assert "hub: stopped" in hub.log()
