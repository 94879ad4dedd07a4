"""Unattended-operation pieces, one at a time: retention, disk reserve, inbound
validation, idempotent outbox keys, the status command, and the daemon's watchdog
and STATUS lines on a real sd_notify socket with a real broker."""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.publish as mqtt_publish
import pytest

from edge.config import load_config
from edge.errors import InputError
from edge.station.daemon import Daemon
from edge.station.disk_space import RECOVERY_BYTES, DiskSpace
from edge.station.inputs import RejectedInputs, number, reading_time
from edge.station.messages import envelope, message_id
from edge.station.outbox import Outbox
from edge.station.retention import STALE_PART_S, sweep
from edge.station.sd_notify import Notifier
from tests.helpers.data import COASTCAM, SAMPLES

DAY = 86400.0


def _file(path: Path, size: int, age_s: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = time.time() - age_s
    os.utime(path, (when, when))
    return path


# -- retention ------------------------------------------------------------------------------


def test_retention_deletes_by_age_then_oldest_beyond_the_size_and_keeps_references(tmp_path):
    old = _file(tmp_path / "1.st.c1.timex.jpg", 100, 40 * DAY)
    ref = _file(tmp_path / "reference.st.c1.png", 100, 400 * DAY)
    crash = _file(tmp_path / "2.st.c1.snap.jpg.part", 100, 2 * STALE_PART_S)
    writing = _file(tmp_path / "3.st.c1.snap.jpg.part", 100, 1.0)
    mid = _file(tmp_path / "day" / "4.st.c1.timex.jpg", 300, 3 * DAY)
    new = _file(tmp_path / "day" / "5.st.c1.timex.jpg", 300, 1 * DAY)
    result = sweep(tmp_path, 30 * DAY, 450, keep=lambda p: p.name.startswith("reference."))
    assert not old.exists() and not crash.exists(), "too old / a crash left-over"
    assert not mid.exists(), "the oldest file beyond the size bound"
    assert ref.exists() and writing.exists() and new.exists()
    assert (result.deleted, result.freed_bytes) == (3, 500)
    assert (result.kept, result.kept_bytes) == (2, 400)


def test_retention_without_limits_deletes_nothing(tmp_path):
    _file(tmp_path / "a.jpg", 10, 1000 * DAY)
    assert sweep(tmp_path, None, None).deleted == 0


# -- disk reserve ---------------------------------------------------------------------------


def test_disk_reserve_refuses_products_below_the_reserve_and_logs_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edge.station.disk_space")
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    disk = DiskSpace(min_free_bytes=free * 4)  # more than this disk will ever have
    assert not disk.allows(tmp_path) and not disk.allows(tmp_path)
    assert disk.stats() == {"disk_full": True, "full_dirs": [str(tmp_path)], "refused_writes": 2}
    assert sum("disk nearly full" in r.getMessage() for r in caplog.records) == 1
    assert DiskSpace(min_free_bytes=0).allows(tmp_path)


def test_after_a_failed_write_products_wait_until_space_was_freed(tmp_path):
    disk = DiskSpace(min_free_bytes=0)
    disk.mark_full(tmp_path)
    assert disk.full
    disk._checked.clear()  # the next allows() reads the disk again (no 5-s cache)
    # Nothing was freed since the failure: still full.
    disk._free_at_failure[tmp_path] = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    assert not disk.allows(tmp_path)
    # As if RECOVERY_BYTES + more were freed since the failure: writable again.
    disk._checked.clear()
    disk._free_at_failure[tmp_path] -= 2 * RECOVERY_BYTES
    assert disk.allows(tmp_path) and not disk.full


# -- inbound validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ([0.3], "JSON object"),
        ({}, "no 'level_m'"),
        ({"level_m": "0.3"}, "not a number"),
        ({"level_m": True}, "not a number"),
        ({"level_m": float("nan")}, "outside"),
        ({"level_m": 1e9}, "outside"),
    ],
)
def test_numbers_in_inputs_must_be_finite_and_in_range(payload, why):
    with pytest.raises(InputError, match=why):
        number(payload, "level_m", -20.0, 20.0)


def test_reading_times_in_the_future_or_unparseable_are_refused():
    now = time.time()
    assert reading_time({}, "time", now) == now
    assert reading_time({"time": "2026-01-01T00:00:00Z"}, "time", now) < now
    for bad in ("yesterday", "2026-01-01T00:00:00", now + 7200):
        with pytest.raises(InputError):
            reading_time({"time": bad}, "time", now)


def test_rejections_are_logged_once_per_run_and_counted(caplog):
    caplog.set_level(logging.INFO, logger="edge.station.inputs")
    rejected = RejectedInputs()
    for _ in range(5):
        rejected.reject("tide/gauge", "no 'level_m' field")
    rejected.accept("tide/gauge")
    rejected.reject("tide/gauge", "not JSON")
    lines = [r.getMessage() for r in caplog.records]
    assert sum("ignored:" in line for line in lines) == 2, lines
    assert sum("valid again" in line for line in lines) == 1
    assert rejected.counts() == {"tide/gauge": 6}


# -- idempotent outbox ----------------------------------------------------------------------


def test_result_ids_depend_on_what_the_result_is_about_not_on_when_it_was_made():
    a = envelope("waterline", "st", 1_750_000_000.0, water_level_m=0.3)
    b = envelope("waterline", "st", 1_750_000_000.0, water_level_m=0.31)
    assert a["id"] == b["id"] == message_id("waterline", "st", a["time"])
    assert envelope("shoreline", "st", 1_750_000_000.0)["id"] != a["id"]
    assert "id" not in envelope("stats", "st", 1_750_000_000.0)
    assert envelope("cavity", "st", 0.0, id="abc")["id"] == "abc"


def test_a_key_already_queued_or_delivered_is_not_stored_again(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite")
    first = box.put("g/st/beach/waterline", "v1", key="g/st/beach/waterline|k1")
    assert box.put("g/st/beach/waterline", "v2", key="g/st/beach/waterline|k1") is None
    box.ack([first])
    assert box.put("g/st/beach/waterline", "v3", key="g/st/beach/waterline|k1") is None
    assert box.put("g/st/stats", "s") is not None and box.put("g/st/stats", "s") is not None
    assert (box.depth(), box.duplicates()) == (2, 2)
    box.close()
    again = Outbox(tmp_path / "outbox.sqlite")  # the delivered key survives a restart
    assert again.put("g/st/beach/waterline", "v4", key="g/st/beach/waterline|k1") is None
    again.close()
    forgetful = Outbox(tmp_path / "outbox.sqlite", remember_s=0.0)  # pruned on open
    assert forgetful.put("g/st/beach/waterline", "v5", key="g/st/beach/waterline|k1")
    forgetful.close()


def test_an_outbox_from_before_keys_is_migrated_and_keeps_its_messages(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
            " payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,"
            " is_stats INTEGER NOT NULL, size INTEGER NOT NULL);"
            "INSERT INTO messages (topic, payload, qos, retain, is_stats, size)"
            " VALUES ('g/st/beach/products', X'6f6c64', 1, 0, 0, 22);"
        )
    box = Outbox(path)
    assert [m.payload for m in box.pending()] == [b"old"]
    assert box.oldest_age_s() == 0.0, "unknown age of a migrated message: 0, not an error"
    box.put("g/st/beach/products", "new", key="g/st/beach/products|x")
    assert box.depth() == 2
    box.close()
    assert Outbox.peek(path)["queue_depth"] == 2 and not Outbox.in_use(path)


# -- the daemon on a real notify socket -----------------------------------------------------


class StallingSite:
    """Emits one result, then its loop keeps turning until ``hang`` is set: then it
    stops making progress (a pipeline stuck in a call)."""

    hang = threading.Event()

    def __init__(self, config, emit, subscribe) -> None:
        self.emit, self.station = emit, config.station.id
        self._progress = time.monotonic()

    def run(self, stop: threading.Event) -> None:
        self.emit("products", envelope("products", self.station, 1_750_000_000.0, n=1))
        while not stop.wait(0.05):
            if not self.hang.is_set():
                self._progress = time.monotonic()

    def progress(self) -> float:
        return self._progress

    def stats(self) -> dict:
        return {"collections": 1, "last_collection": None}


def _station(tmp_path: Path, mqtt_toml: str) -> Path:
    coastcam = COASTCAM
    path = tmp_path / "station.toml"
    path.write_text(
        f"""
[station]
id = "wd-01"

[[cameras]]
name = "c1"
source = "rtsp://192.0.2.10/stream1"
intrinsics = "{coastcam / "CACO01_C1_IOBest.json"}"
extrinsics = "{coastcam / "CACO01_C1_EOBest.json"}"

[outbox]
path = "state/outbox.sqlite"
"""
        + mqtt_toml
    )
    return path


def _datagrams(sock: socket.socket, seconds: float) -> list[str]:
    out, until = [], time.monotonic() + seconds
    while time.monotonic() < until:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return out


def test_watchdog_pings_only_while_the_site_progresses_and_status_says_why(
    tmp_path, mosquitto_broker, caplog
):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(0.1)
    # WATCHDOG_USEC = 2 s: pings every 1 s; a site silent for 1 s is stalled.
    notifier = Notifier(str(tmp_path / "notify.sock"), watchdog_usec=2_000_000)
    config = load_config(_station(tmp_path, mosquitto_broker.mqtt_toml(stats_interval_s=1)))
    StallingSite.hang.clear()
    daemon = Daemon(config, site_factory=StallingSite, notifier=notifier)
    seen: dict[str, list[str]] = {}

    def observe() -> None:
        try:
            seen["healthy"] = _datagrams(notify, 3.5)
            StallingSite.hang.set()
            time.sleep(1.5)  # the stall becomes older than the watchdog interval
            _datagrams(notify, 0.3)  # what was sent before that
            seen["stalled"] = _datagrams(notify, 3.0)
        finally:
            daemon.request_stop("test")

    threading.Thread(target=observe).start()
    daemon.run()  # in the main thread: it installs the signal handlers
    notify.close()
    healthy, stalled = seen["healthy"], seen["stalled"]
    assert healthy[0].startswith("READY=1\nSTATUS=beach wd-01"), healthy[:1]
    assert healthy.count("WATCHDOG=1") >= 2, healthy
    assert "WATCHDOG=1" not in stalled, stalled
    assert sum("made no progress" in r.getMessage() for r in caplog.records) == 1
    assert any("STALLED: the beach pipeline made no progress" in d for d in stalled), stalled
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert status["stats"]["stalled"].startswith("the beach pipeline made no progress")


def test_status_command_reports_a_running_and_a_stopped_daemon(tmp_path, mosquitto_broker):
    config = _station(tmp_path, mosquitto_broker.mqtt_toml(stats_interval_s=1))
    StallingSite.hang.clear()
    daemon = Daemon(load_config(config), site_factory=StallingSite)
    cmd = [sys.executable, "-m", "edge", "status", "--config", str(config)]
    seen = {}

    def observe() -> None:
        try:
            deadline = time.monotonic() + 10
            while not (tmp_path / "state" / "status.json").exists():
                if time.monotonic() > deadline:
                    return
                time.sleep(0.1)
            seen["text"] = subprocess.run(cmd, capture_output=True, text=True)
            seen["json"] = subprocess.run([*cmd, "--json"], capture_output=True, text=True)
        finally:
            daemon.request_stop("test")

    threading.Thread(target=observe).start()
    daemon.run()
    running, as_json = seen["text"], seen["json"]
    assert running.returncode == 0, running.stdout + running.stderr
    assert "geoedge beach station wd-01: running, pid" in running.stdout
    assert "broker     connected" in running.stdout and "outbox" in running.stdout
    report = json.loads(as_json.stdout)
    assert report["running"] and report["stats"]["schema"] == "geoedge.stats/1"
    stopped = subprocess.run(cmd, capture_output=True, text=True)
    assert stopped.returncode == 3 and "NOT running" in stopped.stdout
    assert "outbox now 0 queued" in stopped.stdout


def test_a_stats_command_is_answered_and_bad_commands_are_counted(tmp_path, mosquitto_broker,
                                                                  mqtt_subscriber):  # fmt: skip
    sub = mqtt_subscriber(mosquitto_broker, "geoedge/wd-01/stats")
    config = load_config(_station(tmp_path, mosquitto_broker.mqtt_toml(stats_interval_s=3600)))
    StallingSite.hang.clear()
    daemon = Daemon(config, site_factory=StallingSite)
    host, port = mosquitto_broker.host, mosquitto_broker.port

    def control_room() -> None:
        try:
            daemon.publisher.wait_connected(10)
            sub.wait_count(1, 10)  # the first snapshot (subscribed to cmd by then)
            for bad in ('{"command": "reboot"}', "[]", "not json"):
                mqtt_publish.single("geoedge/wd-01/cmd", bad, qos=1, hostname=host, port=port)
            mqtt_publish.single("geoedge/wd-01/cmd", '{"command": "stats"}', qos=1,
                                hostname=host, port=port)  # fmt: skip
            sub.wait_count(2, 10)  # ... and the answer
        finally:
            daemon.request_stop("test")

    threading.Thread(target=control_room).start()
    daemon.run()
    # Snapshots: the first one at start, the answer to the command, the last at stop
    # (the hourly ones never come in this test).
    snapshots = sub.wait_count(3, 10)
    assert len(snapshots) == 3
    assert snapshots[-1].json()["inputs_rejected"] == {"geoedge/wd-01/cmd": 3}


def test_a_command_flood_costs_a_few_snapshots_and_log_lines_not_one_each(
    tmp_path, mosquitto_broker, mqtt_subscriber, caplog
):
    """2,000 stats commands in a burst used to give 2,002 log lines. Now one command per
    COMMAND_INTERVAL_S is acted on, the rest are coalesced and counted."""
    sub = mqtt_subscriber(mosquitto_broker, "geoedge/wd-01/stats")
    config = load_config(_station(tmp_path, mosquitto_broker.mqtt_toml(stats_interval_s=3600)))
    StallingSite.hang.clear()
    daemon = Daemon(config, site_factory=StallingSite)
    flood = [("geoedge/wd-01/cmd", '{"command": "stats"}', 1, False)] * 2000
    host, port = mosquitto_broker.host, mosquitto_broker.port

    def control_room() -> None:
        try:
            daemon.publisher.wait_connected(10)
            sub.wait_count(1, 10)
            mqtt_publish.multiple(flood, hostname=host, port=port)
            deadline = time.monotonic() + 20
            while daemon.commands_coalesced + 1 < 2000 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            daemon.request_stop("test")

    threading.Thread(target=control_room).start()
    with caplog.at_level(logging.INFO):
        daemon.run()
    said = [r for r in caplog.records if "command stats received" in r.getMessage()]
    assert daemon.commands_coalesced + len(said) == 2000
    assert 1 <= len(said) <= 5, len(said)
    assert len(sub.wait_count(2, 10)) <= 8  # start, a few answers, stop


def _gpr_unit(tmp_path: Path, min_free_bytes: int):
    from edge.gpr.site import GprUnit

    sample = SAMPLES / "gpr"
    text = (
        (sample / "station.toml")
        .read_text()
        .replace(
            'source = "line01.DZT"', f'source = "{sample / "line01.DZT"}"\nsnippets = "snippets"'
        )
    )
    path = tmp_path / "gpr.toml"
    path.write_text(text + f"\n[storage]\nmin_free_bytes = {min_free_bytes}\n")
    sent: list[dict] = []
    return GprUnit(load_config(path), lambda kind, message: sent.append(message)), sent


@pytest.mark.parametrize("full", [False, True])
def test_gpr_snippets_are_skipped_on_a_full_disk_and_the_cavities_still_reported(tmp_path, full):
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    unit, sent = _gpr_unit(tmp_path, 4 * free if full else 0)
    unit.run(threading.Event())  # the sample file, read once
    assert len(sent) >= 3, "the cavities and pipes of the sample line"
    snippets = [m["snippet"] for m in sent]
    if full:
        assert snippets == [None] * len(sent) and unit.stats()["disk_full"]
        assert not (tmp_path / "snippets").exists()
    else:
        assert all(Path(s).is_file() for s in snippets) and not unit.stats()["disk_full"]
    assert time.monotonic() - unit.progress() < 60


class BurstSite:
    """Emits a 6 KB result, then three small ones, then returns (the daemon then stops)."""

    def __init__(self, config, emit, subscribe) -> None:
        self.emit, self.station = emit, config.station.id

    def run(self, stop: threading.Event) -> None:
        big = envelope("waterline", self.station, 1_750_000_000.0, pad="x" * 6000)
        self.emit("waterline", big)
        for n in range(3):
            self.emit("products", envelope("products", self.station, 1_750_000_060.0 + n, n=n))

    def progress(self) -> float:
        return time.monotonic()

    def stats(self) -> dict:
        return {"collections": 4, "last_collection": None}


def test_a_result_that_can_never_fit_is_refused_once_and_nothing_waits_behind_it(tmp_path, caplog):
    """outbox.max_bytes = 4096 is valid, a waterline message ~5 KB: that result used to sit
    at the head of the held queue, unlogged, blocking every later result and stats message,
    and was thrown away at shutdown with exit 0. Now: one error line, counted, the later
    results stored, and a clean stop."""
    path = _station(tmp_path, "[mqtt]\nenabled = false\n")
    path.write_text(path.read_text().replace("[outbox]\n", "[outbox]\nmax_bytes = 4096\n"))
    daemon = Daemon(load_config(path), site_factory=BurstSite)
    with caplog.at_level(logging.ERROR):
        assert daemon.run() == 0
    refused = [r for r in caplog.records if "can never be sent" in r.getMessage()]
    assert len(refused) == 1 and "exceeds outbox.max_bytes = 4096" in refused[0].getMessage()
    assert daemon.refused_too_large == 1
    box = Outbox(tmp_path / "state" / "outbox.sqlite")
    try:
        topics = [m.topic.rsplit("/", 1)[-1] for m in box.pending(limit=100)]
    finally:
        box.close()
    assert topics.count("products") == 3 and "waterline" not in topics
    assert "stats" in topics  # stats still get through
