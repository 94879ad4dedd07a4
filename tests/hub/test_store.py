"""The store, the same tests against SQLite and the real PostgreSQL server of the test run:
every message once by its id, the registry merged across batches (and workers), the queries
the API serves."""

from __future__ import annotations

import json
import subprocess

import pytest

from edge.hub.messages import Record, decode
from edge.hub.store import Store, StoreError
from edge.station.messages import TOPICS, envelope
from tests.helpers.hub import demo_messages

DAY_S = 86400.0


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite'}"
    server = request.getfixturevalue("postgres_server")
    return "postgresql+psycopg://" + server.create_database().split("://", 1)[1]


@pytest.fixture
def store(store_url):
    s = Store(store_url)
    yield s
    s.close()


def _record(kind: str, station: str, payload: dict | str, received_s: float = 1e9) -> Record:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return decode(f"geoedge/{station}/{TOPICS[kind]}", text.encode(), received_s, "geoedge")


def _demo_records() -> list[Record]:
    return [_record(kind, station, text) for kind, station, text in demo_messages()]


def test_every_message_is_stored_once_by_its_id(store):
    records = _demo_records()
    assert store.add(records).new == len(records) == 8
    again = store.add(records + records[:2])  # a re-delivery, and a repeat inside one batch
    assert (again.new, again.duplicates) == (0, 10)
    assert store.count() == 8 and store.count("cavity") == 4
    stored = {m.id: m.payload for m in store.messages()}
    assert stored == {json.loads(t)["id"]: json.loads(t) for _, _, t in demo_messages()}


def test_two_stores_on_one_database_share_the_schema_and_the_rows(store_url):
    """Two hub workers starting on one database: both create (or find) the schema."""
    first, second = Store(store_url), Store(store_url)
    try:
        records = _demo_records()
        assert first.add(records[:5]).new == 5
        assert second.add(records).new == 3
        assert first.count() == second.count() == 8
    finally:
        first.close()
        second.close()


def test_messages_are_filtered_and_newest_first(store):
    store.add(_demo_records())
    cavities = store.messages(station="demo-gpr", kind="cavity")
    times = [m.time_s for m in cavities]
    assert len(cavities) == 4 and times == sorted(times, reverse=True)
    assert [m.kind for m in store.messages(station="demo-01", limit=2)] != []
    assert len(store.messages(station="demo-01", limit=2)) == 2
    # the beach results are from 2026-06-15, the cavities from 2026-12-01
    since = cavities[-1].time_s
    assert {m.kind for m in store.messages(since_s=since)} == {"cavity"}


def test_cavities_by_class_station_and_bounding_box(store):
    """Two cavities with a position (EPSG:5186, the GPR unit's CRS; lon/lat computed by the
    hub when the station sent none), two without: the bbox keeps those inside only."""
    records = []
    for i, (kind, station, text) in enumerate(demo_messages()):
        payload = json.loads(text)
        if kind == "cavity" and i % 2 == 0:
            payload["position"] = {"crs": "EPSG:5186", "x": 200000.0 + 100 * i, "y": 550000.0}
        records.append(_record(kind, station, payload))
    store.add(records)
    assert len(store.cavities()) == 4
    assert {m.payload["class"] for m in store.cavities(cls="pipe")} == {"pipe"}
    assert store.cavities(station="demo-01") == []
    # EPSG:5186 (200000, 550000) is about 127.0 E, 37.55 N
    inside = store.cavities(bbox=(126.9, 37.5, 127.1, 37.6))
    assert len(inside) == 2 and all(m.payload["position"] for m in inside)
    assert store.cavities(bbox=(0.0, 0.0, 1.0, 1.0)) == []


@pytest.mark.postgres
def test_with_postgis_cavities_get_a_wgs84_geometry(postgres_server):
    """A PostgreSQL database with the PostGIS extension: the store finds it, adds
    ``cavities.geom`` and fills it from lon/lat, so QGIS and spatial SQL read the points."""
    url = postgres_server.create_database()
    done = subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-c", "CREATE EXTENSION postgis"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # tests/run.sh installs postgresql-N-postgis-3
    store = Store("postgresql+psycopg://" + url.split("://", 1)[1])
    try:
        assert store.postgis
        records = []
        for i, (kind, station, text) in enumerate(demo_messages()):
            payload = json.loads(text)
            if kind == "cavity" and i % 2 == 0:
                payload["position"] = {"crs": "EPSG:5186", "x": 200000.0, "y": 550000.0}
            records.append(_record(kind, station, payload))
        store.add(records)
    finally:
        store.close()
    query = (
        "SELECT count(*), min(ST_X(geom)), min(ST_Y(geom)), min(ST_SRID(geom)) "
        "FROM cavities WHERE geom IS NOT NULL"
    )
    done = subprocess.run(["psql", url, "-tA", "-F", ",", "-c", query], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    count, lon, lat, srid = done.stdout.strip().split(",")
    assert int(count) == 2 and int(srid) == 4326
    assert abs(float(lon) - 127.0) < 0.1 and abs(float(lat) - 37.55) < 0.1


def test_shoreline_points_per_transect_oldest_first(store):
    """Three shorelines 100 days apart, T01 moving 1 m seaward each time."""
    for n in range(3):
        payload = envelope(
            "shoreline", "demo-01", 1.78e9 + n * 100 * DAY_S, crs="EPSG:5187", datum_m=0.0,
            transects=[{"id": "T01", "available": True, "distance_m": 50.0 + n},
                       {"id": "T02", "available": False, "distance_m": None}],
        )  # fmt: skip
        store.add([_record("shoreline", "demo-01", payload)])
    series = store.shoreline_series("demo-01")
    assert list(series) == ["T01"]
    assert [d for _, d in series["T01"]] == [50.0, 51.0, 52.0]
    assert store.shoreline_series("demo-01", "T02") == {}


def _status(station: str, state: str, time_s: float, received_s: float) -> Record:
    return _record("status", station, envelope("status", station, time_s, state=state),
                   received_s)  # fmt: skip


def _stats(station: str, time_s: float, received_s: float, depth: int) -> Record:
    payload = envelope("stats", station, time_s, queue_depth=depth)
    return _record("stats", station, payload, received_s)


def test_the_registry_follows_status_by_arrival_and_stats_by_time(store):
    """The last will carries the time the station connected (older than its online status)
    but arrives later: the station is offline. The same will again after a reconnect (same
    payload, so the same id) still counts. Stats: the newest by the station's clock wins,
    whatever order two workers store them in."""
    t0 = 1.8e9
    will = _status("st-1", "offline", t0, t0 + 50)
    store.add([_status("st-1", "online", t0 + 1, t0 + 1), _stats("st-1", t0 + 60, t0 + 61, 3)])
    store.add([will])
    (row,) = store.stations()
    assert (row.state, row.last_seen_s, row.first_seen_s) == ("offline", t0 + 61, t0 + 1)
    store.add([_status("st-1", "online", t0 + 100, t0 + 100)])
    store.add([_status("st-1", "offline", t0, t0 + 200)])  # the same will, a second time
    assert store.stations()[0].state == "offline"
    # a worker that stores an older stats late does not roll the registry back
    store.add([_stats("st-1", t0 + 180, t0 + 181, 7)])
    store.add([_stats("st-1", t0 + 120, t0 + 190, 5)])
    (row,) = store.stations()
    assert json.loads(row.stats_text)["queue_depth"] == 7
    assert row.stats_time_s == t0 + 180 and row.last_seen_s == t0 + 200


def test_an_unreachable_server_is_one_line():
    with pytest.raises(StoreError) as err:
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2", "pg://test")
    assert "\n" not in str(err.value) and str(err.value).startswith("store pg://test: ")


def test_old_health_messages_are_pruned_and_results_kept(store):
    t0 = 1.8e9
    store.add([_stats("st-1", t0 + n, t0 + n, n) for n in range(5)])
    store.add([_status("st-1", "online", t0, t0 + 2), *_demo_records()])
    assert store.prune_health(before_s=t0 + 3) == 4  # stats 0, 1, 2 and the status
    assert [m.payload["queue_depth"] for m in store.messages(kind="stats")] == [4, 3]
    assert store.count() == 2 + 8 and store.count("status") == 0
    registry = {row.station: row for row in store.stations()}
    assert json.loads(registry["st-1"].stats_text)["queue_depth"] == 4
