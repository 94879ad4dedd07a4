"""The dashboard in a real headless Chromium, fed by simulated stations through a real broker.

Two stations publish through the station's own outbox and publisher (real Mosquitto): a beach
station (status, stats, a waterline, six tide-datum shorelines on transect T01) and a GPR unit
(three cavities with positions, each with its B-scan snippet sent as an image message). The hub
runs as its own process (``python -m edge hub --config``). The page must show both stations,
open a cavity's snippet on a click (the image decodes: ``naturalWidth > 0``), draw one chart
point per published shoreline, list both stations in the health table, and log no errors.
The map's tiles come from a local XYZ tile server (``[hub] tile_url``) that records what the page
asks for: the tile under a cavity, at the zoom that fits the data, must be among the requests.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.station.images import ImageSender
from edge.station.messages import envelope, topic
from edge.station.outbox import Outbox
from edge.station.publisher import Publisher
from tests.helpers.broker import free_port

BEACH, GPR = "beach-01", "gpr-01"
#: UTM 19N (Cape Cod, the CoastCam site), metres.
CRS = "EPSG:32619"
X0, Y0 = 410935.0, 4655890.0
DAY = 86400.0
T0 = 1_780_000_000.0
#: Shoreline chainages on T01 (m), one a day: the beach retreats 0.5 m/day with noise.
T01 = [41.2, 40.9, 40.1, 39.8, 39.1, 38.8]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _wait(what: str, check, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout_s} s still waiting for {what}")
        time.sleep(0.1)


def _beach_messages(tmp_path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Six daily shorelines, the last day's waterline and products (naming a TimeX), stats."""
    timex = np.zeros((240, 320, 3), np.uint8)
    timex[:, :160] = (60, 140, 200)  # sand, BGR
    timex[:, 160:] = (120, 60, 20)  # sea
    cv2.imwrite(str(tmp_path / "c1.timex.png"), timex)
    out: list[tuple[str, dict[str, Any]]] = []
    for day, distance in enumerate(T01):
        when = T0 + day * DAY
        point = [X0 + distance, Y0]
        out.append(("shoreline", envelope(
            "shoreline", BEACH, when, crs=CRS, datum_m=0.0, available=True,
            transects=[{"id": "T01", "available": True, "distance_m": distance, "point": point},
                       {"id": "T02", "available": True, "distance_m": distance + 5.0,
                        "point": [X0 + distance + 5.0, Y0 + 60.0]}],
        )))  # fmt: skip
    last = T0 + (len(T01) - 1) * DAY
    line = [[X0 + 30.0 + 2.0 * i, Y0 - 20.0 + 20.0 * i] for i in range(6)]
    out.append(("waterline", envelope(
        "waterline", BEACH, last, crs=CRS, water_level_m=0.3,
        waterline={"type": "LineString", "coordinates": line}, transects=[], overlays={},
    )))  # fmt: skip
    cameras = [{"camera": "c1", "products": {"timex": "c1.timex.png"}}]
    out.append(("products", envelope("products", BEACH, last, cameras=cameras)))
    out.append(("stats", envelope(
        "stats", BEACH, time.time(), queue_depth=3, disk_free_bytes={"outbox": 5 << 30,
        "products": 4 << 30}, temperature_c=47.5, stalled=None,
    )))  # fmt: skip
    return out


def _publish(broker, tmp_path: Path, station: str, messages, prefix: str):
    """Send ``messages`` (kind, payload) and the images they name the way a station does; the
    station's ``stop()``, which publishes its retained status offline."""
    results = Outbox(tmp_path / f"{station}.outbox.sqlite")
    queue = Outbox(tmp_path / f"{station}.images.sqlite")
    sender = ImageSender(queue, prefix, station, tmp_path, 200 * 1024)
    link = broker.mqtt_section(client_id=f"sim-{station}", topic_prefix=prefix)
    publisher = Publisher(link, station, results, queue)
    for kind, message in messages:
        results.put(topic(prefix, station, kind), json.dumps(message))
        sender.offer(kind, message)
    publisher.start()

    def stop() -> None:
        publisher.stop()
        results.close()
        queue.close()

    if not publisher.flush(15):
        stop()
        pytest.fail(f"{station}: the publisher did not send everything within 15 s")
    return stop


def _cavities(tmp_path: Path) -> list[dict[str, Any]]:
    out = []
    for n, cls in enumerate(["cavity", "pipe", "cavity"]):
        snippet = tmp_path / f"cav{n}.png"
        img = np.full((90, 160, 3), 40 + 60 * n, np.uint8)
        cv2.rectangle(img, (50, 30), (110, 60), (0, 0, 255), 2)
        cv2.imwrite(str(snippet), img)
        out.append(envelope(
            "cavity", GPR, T0 + 100.0 * n, id=f"cav{n:04d}", **{"class": cls},
            confidence=0.9, depth_top_m=0.6, width_m=0.8, lon=-70.0745 + 0.0004 * n,
            lat=42.0505 + 0.0002 * n, position=None, snippet=str(snippet),
        ))  # fmt: skip
    return out


class TileServer:
    """A local XYZ tile server: one grey 256 px PNG for every ``/tiles/z/x/y.png``."""

    def __init__(self) -> None:
        self.requested: list[tuple[int, int, int]] = []
        png = cv2.imencode(".png", np.full((256, 256, 3), 225, np.uint8))[1].tobytes()
        requested = self.requested

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                z, x, y = self.path.removeprefix("/tiles/").removesuffix(".png").split("/")
                requested.append((int(z), int(x), int(y)))
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tiles/{{z}}/{{x}}/{{y}}.png"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The XYZ tile holding (lon, lat) at zoom ``z`` (the slippy-map formula)."""
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180.0) / 360.0 * n), int(y)


@pytest.fixture
def tiles() -> Iterator[TileServer]:
    server = TileServer()
    yield server
    server.server.shutdown()


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own: the session's broker keeps other tests' retained
    statuses (and this module's earlier ones) under theirs."""
    return f"dash-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def hub(mosquitto_broker, tiles, prefix: str, tmp_path: Path):
    port = free_port()
    config = tmp_path / "hub.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [hub]
            http = "127.0.0.1:{port}"
            store = "hub.sqlite"
            images_dir = "images"
            tile_url = "{tiles.url}"
            """
        )
        + mosquitto_broker.mqtt_toml(client_id=f"hub-{prefix}", topic_prefix=prefix)
    )
    with open(tmp_path / "hub.log", "wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "edge", "hub", "--config", str(config)], stderr=log
        )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if child.poll() is not None:
            pytest.fail(f"the hub exited {child.returncode}: {(tmp_path / 'hub.log').read_text()}")
        return _get(f"{base}/api/health")["broker_connected"]

    try:
        _wait("the hub's /api/health", up)
        yield base
    finally:
        child.terminate()
        child.wait(10)


def test_the_dashboard_shows_stations_chart_points_and_a_cavity_snippet(
    mosquitto_broker, hub, tiles, prefix, browser_page, tmp_path
):
    cavities = _cavities(tmp_path)
    # The GPR unit has finished its line and shut down; the beach station stays online.
    beach = _publish(mosquitto_broker, tmp_path, BEACH, _beach_messages(tmp_path), prefix)
    try:
        _publish(mosquitto_broker, tmp_path, GPR, [("cavity", c) for c in cavities], prefix)()
        _check_page(browser_page, hub, tmp_path)
    finally:
        beach()
    # The page drew tiles at one zoom, and the one under cavity cav0001 was among them.
    zooms = {z for z, _, _ in tiles.requested}
    assert len(zooms) == 1 and 14 <= min(zooms) <= 19, zooms
    assert _tile_of(-70.0741, 42.0507, zooms.pop()) in tiles.requested


def _check_page(page, hub: str, tmp_path: Path) -> None:
    _wait(
        "three cavities with their snippets in /api/map",
        lambda: sum(1 for c in _get(f"{hub}/api/map")["cavities"] if c["image"]) == 3,
    )
    # The hub serves each snippet byte for byte as the station wrote it.
    for cavity in _get(f"{hub}/api/map")["cavities"]:
        with urllib.request.urlopen(f"{hub}/api/images/{cavity['image']}", timeout=5) as got:
            assert got.headers["Content-Type"] == "image/png"
            assert got.read() == (tmp_path / f"cav{int(cavity['id'][3:])}.png").read_bytes()
    page.goto(hub + "/")
    page.wait_for_selector("#map .station")
    shown = page.locator("#map .station text").all_text_contents()
    assert sorted(shown) == [BEACH, GPR]
    assert page.locator("#map path.waterline").count() == 1
    assert page.locator("#map path.shoreline").count() == 1
    assert page.locator("#map circle.cavity").count() == 3
    assert page.locator("#map .basemap image").count() > 0

    # The chart: one point per published T01 shoreline.
    page.wait_for_function("document.querySelectorAll('#chart circle.pt').length > 0")
    assert page.locator("#chart-station").input_value() == BEACH
    assert page.locator("#chart-transect").input_value() == "T01"
    assert page.locator("#chart circle.pt").count() == len(T01)
    assert "m/yr" in page.locator("#chart-trend").inner_text()

    # A cavity marker opens its snippet, and the image really decodes.
    page.click('#map circle.cavity[data-id="cav0001"]')
    image = page.wait_for_selector("#detail-images img")
    page.wait_for_function("document.querySelector('#detail-images img').naturalWidth > 0")
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [160, 90]
    assert "cav0001" in page.locator("#detail-title").inner_text()

    # A station opens its latest TimeX (under its own waterline on the map, still clickable).
    page.click(f'#map .station[data-station="{BEACH}"] circle')
    page.wait_for_function(
        "(document.querySelector('#detail-images img[data-kind=timex]') || {}).naturalWidth > 0"
    )
    assert page.locator("#detail-images img").count() == 1  # no overlay or snippet sent

    rows = page.locator("#health tbody tr")
    assert rows.count() == 2
    beach_row = page.locator(f'#health tr[data-station="{BEACH}"] td').all_inner_texts()
    assert beach_row[1:3] == ["online", "fresh"]
    assert beach_row[4:7] == ["3 queued", "5.0 GB (products 4.0 GB)", "47.5 °C"]
    gpr_row = page.locator(f'#health tr[data-station="{GPR}"] td').all_inner_texts()
    assert gpr_row[1] == "offline"

    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    assert page.console_errors == []


def test_a_hub_with_nothing_yet_shows_an_empty_page_without_errors(hub, browser_page):
    page = browser_page
    page.goto(hub + "/")
    page.wait_for_function("document.getElementById('updated').textContent.startsWith('updated')")
    assert page.locator("#map .basemap image").count() > 0  # the world's tiles, nothing on them
    assert page.locator("#map circle, #map path, #chart circle").count() == 0
    assert page.locator("#health tbody tr").count() == 0
    assert page.console_errors == []
