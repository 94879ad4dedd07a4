"""Fault injection on a running beach station: real daemon, camera, Mosquitto processes.

Each test runs ``geoedge run`` as a child process on the bundled sample station fed by
a live MJPEG camera (:mod:`tests.helpers.fault_station`), 6-s collections back to back, and
injects one fault: the broker down and back, a wrong password, a broker restarted
with a new certificate or on a new port, a SIGKILL of the daemon, a camera that
stalls and disappears, a full disk. What must hold every time: the daemon keeps
computing, the outbox holds what cannot be sent, and once the link is right again
every result arrives, each result id once.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from tests.helpers.broker import Broker, make_ca, make_server_cert
from tests.helpers.fault_station import (
    RESULT_KINDS,
    STATION,
    DaemonProcess,
    LiveCamera,
    beach_config,
    results,
)
from tests.helpers.tmpfs import on_tmpfs, private_tmpfs_unavailable

RESULTS = f"geoedge/{STATION}/beach/#"

pytestmark = pytest.mark.broker


@pytest.fixture
def camera():
    cam = LiveCamera()
    yield cam
    cam.close()


@pytest.fixture
def daemons():
    started: list[DaemonProcess] = []

    def start(config, **kwargs) -> DaemonProcess:
        daemon = DaemonProcess(config, **kwargs)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()


def _collections(stats: dict) -> int:
    return int(stats.get("collections", 0))


def _assert_each_result_once(by_id: dict, kinds=RESULT_KINDS) -> None:
    twice = {i: len(v) for i, v in by_id.items() if len(v) > 1}
    assert not twice, f"results delivered more than once: {twice}"
    got = {p[0]["schema"].split(".")[1].split("/")[0] for p in by_id.values()}
    assert set(kinds) <= got, f"result kinds received: {sorted(got)}"


def _drain_stop_and_check(daemon: DaemonProcess, sub) -> dict:
    """Wait for the outbox to drain, SIGTERM the daemon, wait for every collection's
    products message, check each result id arrived once; the results by id."""
    daemon.wait_stats(
        lambda s: s["broker_connected"] and s["queue_depth"] <= 1, 60, "the outbox drained"
    )
    assert daemon.terminate() == 0
    done = _collections(daemon.stats())
    sub.wait_for(
        lambda msgs: sum(1 for m in msgs if m.topic.endswith("/products")) >= done,
        30,
        f"{done} products messages",
    )
    by_id = results(sub.messages)
    _assert_each_result_once(by_id)
    return by_id


def test_broker_down_and_back_the_daemon_keeps_computing_and_everything_arrives_once(
    tmp_path, camera, daemons, restartable_broker, mqtt_subscriber
):
    sub = mqtt_subscriber(restartable_broker, RESULTS, persistent=True)
    restartable_broker.stop()
    config = beach_config(tmp_path, restartable_broker.mqtt_toml(stats_interval_s=1), camera.url)
    daemon = daemons(config)
    down = daemon.wait_stats(
        lambda s: _collections(s) >= 2 and s["queue_depth"] >= 8,
        90,
        "two collections computed and queued while the broker is down",
    )
    assert down["broker_connected"] is False and down["oldest_queued_s"] > 0
    assert len(daemon.log_lines("cannot connect to MQTT broker")) == 1, daemon.log_tail()

    restartable_broker.start()
    by_id = _drain_stop_and_check(daemon, sub)
    kinds = [p[0]["schema"].split(".")[1].split("/")[0] for p in by_id.values()]
    done = _collections(daemon.stats())
    assert kinds.count("products") == done, (kinds, done)
    assert kinds.count("waterline") >= done - 1, kinds  # the last one may be interrupted


def _passwd(path, users: dict[str, str]) -> None:
    import shutil
    import subprocess

    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path.unlink(missing_ok=True)
    for n, (user, password) in enumerate(users.items()):
        flags = ["-b", "-c"] if n == 0 else ["-b"]
        subprocess.run([tool, *flags, str(path), user, password], check=True)


def test_a_wrong_password_is_one_line_and_everything_arrives_once_the_broker_is_right(
    tmp_path, camera, daemons, mqtt_subscriber
):

    workdir = tmp_path / "broker"
    workdir.mkdir()
    passwd = workdir / "passwd"
    _passwd(passwd, {"control": "control-pw", "station": "old-password"})
    broker = Broker(
        workdir=workdir,
        listener_conf=f"allow_anonymous false\npassword_file {passwd}\n",
        persistence=True,
        username="control",
        password="control-pw",
    )
    broker.start()
    try:
        sub = mqtt_subscriber(broker, RESULTS, persistent=True)
        secret = tmp_path / "station.password"
        secret.write_text("new-password\n")
        secret.chmod(0o600)
        toml = broker.mqtt_toml(stats_interval_s=1, username="station", password_file=str(secret))
        daemon = daemons(beach_config(tmp_path / "station", toml, camera.url))
        daemon.wait_stats(
            lambda s: _collections(s) >= 2 and s["queue_depth"] >= 8, 90, "results queued"
        )
        refused = daemon.log_lines("refused the connection")
        assert len(refused) == 1 and "mqtt.password_file" in refused[0], daemon.log_tail()
        assert "new-password" not in daemon.log_file.read_text()

        _passwd(passwd, {"control": "control-pw", "station": "new-password"})
        broker.restart()
        _drain_stop_and_check(daemon, sub)
    finally:
        broker.stop()


def test_tls_broker_with_a_new_certificate_is_trusted_and_one_that_does_not_match_is_refused(
    tmp_path, camera, daemons, mqtt_subscriber
):

    workdir = tmp_path / "broker"
    workdir.mkdir()
    ca = make_ca(workdir)
    cert, key = make_server_cert(workdir, ca)
    conf = f"allow_anonymous true\ncafile {ca[2]}\ncertfile {cert}\nkeyfile {key}\n"
    broker = Broker(workdir=workdir, listener_conf=conf, ca_file=ca[2], persistence=True)
    broker.start()
    try:
        sub = mqtt_subscriber(broker, RESULTS, persistent=True)
        daemon = daemons(
            beach_config(tmp_path / "station", broker.mqtt_toml(stats_interval_s=1), camera.url)
        )
        daemon.wait_stats(lambda s: s["broker_connected"], 30, "a TLS session")
        # Certificate renewed (same CA, new key): the station reconnects by itself.
        cert2, key2 = make_server_cert(workdir, ca, stem="renewed")
        broker.listener_conf = (
            f"allow_anonymous true\ncafile {ca[2]}\ncertfile {cert2}\nkeyfile {key2}\n"
        )
        broker.restart()
        time.sleep(1.5)
        daemon.wait_stats(lambda s: s["broker_connected"], 30, "a TLS session after renewal")
        # A server whose certificate names another host: refused, results keep queueing.
        wrong, wrong_key = make_server_cert(
            workdir, ca, names=("broker.example.org",), stem="wrong"
        )
        broker.listener_conf = (
            f"allow_anonymous true\ncafile {ca[2]}\ncertfile {wrong}\nkeyfile {wrong_key}\n"
        )
        broker.restart()
        queued = daemon.wait_stats(
            lambda s: not s["broker_connected"] and s["queue_depth"] >= 6,
            90,
            "results queued while the server certificate does not match",
        )
        assert queued["queue_depth"] >= 6
        handshake = daemon.log_lines("TLS or protocol handshake failed")
        assert len(handshake) == 1, daemon.log_tail()
        # The right certificate again: everything queued arrives, once.
        broker.listener_conf = (
            f"allow_anonymous true\ncafile {ca[2]}\ncertfile {cert2}\nkeyfile {key2}\n"
        )
        broker.restart()
        _drain_stop_and_check(daemon, sub)
    finally:
        broker.stop()


def test_broker_moved_to_a_new_port_results_queued_meanwhile_arrive_after_the_restart(
    tmp_path, camera, daemons, restartable_broker, mqtt_subscriber
):

    old_sub = mqtt_subscriber(restartable_broker, RESULTS)
    folder = tmp_path / "station"
    config = beach_config(folder, restartable_broker.mqtt_toml(stats_interval_s=1), camera.url)
    daemon = daemons(config)
    daemon.wait_stats(lambda s: s["broker_connected"] and _collections(s) >= 1, 60, "a result")
    restartable_broker.stop()  # the old broker goes away for good
    daemon.wait_stats(lambda s: s["queue_depth"] >= 8, 90, "results queued for the old port")
    assert daemon.terminate() == 0

    workdir = tmp_path / "new-broker"
    workdir.mkdir()
    new = Broker(workdir=workdir)
    new.start()
    try:
        new_sub = mqtt_subscriber(new, RESULTS)
        text = config.read_text().replace(f"port = {restartable_broker.port}", f"port = {new.port}")
        config.write_text(text)
        daemon = daemons(config)
        daemon.wait_stats(
            lambda s: s["broker_connected"] and s["queue_depth"] <= 1, 60, "the outbox drained"
        )
        assert daemon.terminate() == 0
        time.sleep(0.5)
        by_id = results(old_sub.messages)
        for key, payloads in results(new_sub.messages).items():
            by_id.setdefault(key, []).extend(payloads)
        _assert_each_result_once(by_id)
        products = [p for p in by_id.values() if p[0]["schema"].startswith("geoedge.products")]
        assert len(products) >= 3
    finally:
        new.stop()


def test_sigkill_mid_collection_loses_no_stored_result_and_publishes_none_twice(
    tmp_path, camera, daemons, mosquitto_broker, mqtt_subscriber
):
    import sqlite3

    sub = mqtt_subscriber(mosquitto_broker, RESULTS)
    config = beach_config(tmp_path, mosquitto_broker.mqtt_toml(stats_interval_s=1), camera.url)
    first = daemons(config)
    sub.wait_for(
        lambda msgs: sum(1 for m in msgs if m.topic.endswith("/waterline")) >= 2,
        90,
        "two waterlines before the kill",
    )
    time.sleep(2.0)  # mid-way through the next 6-s collection
    first.kill()
    with sqlite3.connect(tmp_path / "state" / "outbox.sqlite") as db:
        stored = [json_id for (json_id,) in db.execute("SELECT key FROM messages") if json_id]
    second = daemons(config)
    second.wait_stats(lambda s: _collections(s) >= 2, 90, "two collections after the restart")
    assert second.terminate() == 0
    time.sleep(0.5)
    by_id = results(sub.messages)
    missing = [k for k in stored if k.rsplit("|", 1)[1] not in by_id]
    assert not missing, f"results stored before the SIGKILL never arrived: {missing}"
    for key, payloads in by_id.items():
        # A message in flight at the kill may be re-sent after the restart (QoS 1):
        # the same id with the same payload, which the control room drops on id.
        assert all(p == payloads[0] for p in payloads), f"{key} published with two contents"
    redelivered = sum(len(p) - 1 for p in by_id.values())
    assert redelivered <= 32, "at most what was in flight (mqtt.max_inflight) is re-sent"


def test_a_camera_that_stalls_disappears_and_returns_the_daemon_carries_on(
    tmp_path, camera, daemons, mosquitto_broker, mqtt_subscriber
):
    sub = mqtt_subscriber(mosquitto_broker, RESULTS)
    config = beach_config(tmp_path, mosquitto_broker.mqtt_toml(stats_interval_s=1), camera.url)
    daemon = daemons(config)
    daemon.wait_stats(lambda s: _collections(s) >= 1, 60, "a first collection")
    camera.stall()
    time.sleep(7.0)  # longer than read_timeout_s (2) and stall_timeout_s (4)
    camera.resume()
    camera.go_down()
    time.sleep(8.0)
    camera.come_back()
    stalled = daemon.stats()["site"]
    assert stalled["reconnects"] + stalled["stalls"] >= 1, stalled
    healthy = daemon.wait_stats(
        lambda s: _collections(s) >= 5 and s["frames_per_s"] and s["frames_per_s"] > 1.0,
        90,
        "frames flowing again after the camera came back",
    )
    assert daemon.process.poll() is None, "the daemon is still running"
    assert daemon.terminate() == 0
    time.sleep(0.5)
    products = [p for p in sub.payloads(f"geoedge/{STATION}/beach/products")]
    flags = [set(p["flags"]) for p in products]
    assert any({"too_few_frames"} <= f for f in flags), flags
    assert any(not f - {"interrupted"} for f in flags[3:]), "full collections after the return"
    assert healthy["site"]["frames_read"] > 30


def _fill_leaving(filler: Path, spare: int) -> None:
    """Fill ``filler``'s file system, then give back ``spare`` bytes. Written until ENOSPC, as
    the daemon keeps writing between any free-space reading and our write."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    written, block = 0, b"\0" * (1 << 20)
    try:
        while True:
            try:
                n = os.write(fd, block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(block) == 1:
                    break
                block = block[: len(block) // 2]
                continue
            written += n
        os.ftruncate(fd, max(0, written - spare))
    finally:
        os.close(fd)


def test_a_full_disk_stops_the_products_not_the_results(
    tmp_path, camera, daemons, mosquitto_broker, mqtt_subscriber
):
    if (why := private_tmpfs_unavailable()) is not None:
        pytest.skip(why)
    sub = mqtt_subscriber(mosquitto_broker, RESULTS)
    products = tmp_path / "products"
    products.mkdir()
    # The daemon's products folder is a 16 MiB file system of its own (a tmpfs in a
    # private mount namespace); the test reaches it through /proc/<pid>/root.
    prefix = on_tmpfs(products, "16m")
    config = beach_config(
        tmp_path,
        mosquitto_broker.mqtt_toml(stats_interval_s=1),
        camera.url,
        extra_toml="[storage]\nmin_free_bytes = 0\n",
    )
    daemon = daemons(config, prefix=prefix)
    daemon.wait_stats(lambda s: _collections(s) >= 1, 60, "a first collection")
    seen = Path(f"/proc/{daemon.process.pid}/root") / products.relative_to("/")
    filler = seen / "filler.bin"
    _fill_leaving(filler, 64 * 1024)  # less than one collection's images
    full = daemon.wait_stats(lambda s: s["disk_full"], 60, "disk_full reported")
    assert full["site"]["refused_writes"] >= 0
    start = _collections(full)
    daemon.wait_stats(lambda s: _collections(s) >= start + 2, 60, "collections on a full disk")
    assert len(daemon.log_lines("disk nearly full")) == 1, daemon.log_tail()

    filler.unlink()
    back = daemon.wait_stats(
        lambda s: not s["disk_full"] and _collections(s) >= start + 4, 90, "products again"
    )
    assert daemon.terminate() == 0
    time.sleep(0.5)
    products_msgs = sub.payloads(f"geoedge/{STATION}/beach/products")
    waterlines = {w["time"] for w in sub.payloads(f"geoedge/{STATION}/beach/waterline")}
    skipped = [p for p in products_msgs if "products_not_written" in p["flags"]]
    assert skipped, "some collections were flagged products_not_written"
    for p in skipped:  # the result of a collection whose images could not be written
        start_s = p["window"]["start"]
        assert any(w > start_s for w in waterlines), f"no waterline after {start_s}"
    written = [p for p in products_msgs if not p["flags"]]
    assert written[-1]["time"] > skipped[-1]["time"], "products written again at the end"
    assert len(daemon.log_lines("disk space is back")) >= 1
    assert back["queue_depth"] <= 2
