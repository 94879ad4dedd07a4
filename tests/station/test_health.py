"""The ``stats`` health message: what a control room learns about a station."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from edge.station.disk_space import free_bytes
from edge.station.health import HealthMonitor, soc_temperature_c
from edge.station.outbox import Outbox


def _zone(root: Path, index: int, millidegrees: str) -> None:
    zone = root / f"thermal_zone{index}"
    zone.mkdir(parents=True)
    (zone / "temp").write_text(millidegrees + "\n")


def test_temperature_is_the_hottest_thermal_zone_in_celsius(tmp_path: Path):
    """sysfs reports millidegrees C: a Jetson with CPU 48.5 C and GPU 51.25 C reports
    51.25; a zone whose sensor is off (unreadable value) is skipped."""
    _zone(tmp_path, 0, "48500")
    _zone(tmp_path, 1, "51250")
    _zone(tmp_path, 2, "N/A")
    assert soc_temperature_c(tmp_path) == 51.25


def test_temperature_is_null_on_a_machine_without_thermal_zones(tmp_path: Path):
    assert soc_temperature_c(tmp_path / "no-thermal") is None


def test_disk_free_of_a_directory_not_yet_created_is_that_of_its_parent(tmp_path: Path):
    expected = shutil.disk_usage(tmp_path).free
    got = free_bytes(tmp_path / "products" / "not-yet")
    # Other processes write to the same disk meanwhile: allow 64 MiB of drift.
    assert abs(got - expected) < 64 * 2**20


def test_stats_message_reports_the_outbox_and_the_site(tmp_path: Path):
    box = Outbox(tmp_path / "outbox.sqlite", max_messages=2)
    for n in range(3):  # the third put drops the oldest: 1 dropped, 2 queued
        box.put("geoedge/st/beach/products", f"m{n}")
    _zone(tmp_path / "thermal", 0, "40000")
    started = time.monotonic() - 12.0
    site = {
        "last_collection": "2026-01-01T10:10:00Z",
        "collections": 7,
        "frames_read": 100,
        "bad": float("nan"),
    }
    monitor = HealthMonitor(
        "st", box, tmp_path / "products", thermal_root=tmp_path / "thermal", started=started
    )
    message = monitor.message(site, broker_connected=False)
    assert message["frames_per_s"] is None, "no rate before a second snapshot"
    time.sleep(0.2)
    later = monitor.message({**site, "frames_read": 130})
    assert later["frames_per_s"] > 0 and later["traces_per_s"] == 0.0
    assert 30 / later["frames_per_s"] >= 0.2, "30 frames over at least 0.2 s"
    assert message["schema"] == "geoedge.stats/1" and message["station"] == "st"
    assert message["time"].endswith("Z")
    assert 12.0 <= message["uptime_s"] < 20.0
    assert (message["queue_depth"], message["dropped"]) == (2, 1)
    assert message["queue_bytes"] == 2 * (len("geoedge/st/beach/products") + 2)
    assert message["last_collection"] == "2026-01-01T10:10:00Z"
    assert message["temperature_c"] == 40.0
    assert message["disk_free_bytes"]["outbox"] > 0 and message["disk_free_bytes"]["products"] > 0
    assert message["site"] == {**site, "bad": None}, "NaN is not JSON: reported as null"
    assert message["collections"] == 7 and message["broker_connected"] is False
    assert 0.0 <= message["oldest_queued_s"] < 60
    box.close()
