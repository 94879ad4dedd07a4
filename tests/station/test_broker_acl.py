"""The broker ACL documented for operators (systemd/mosquitto/geoedge.acl), on a real
Mosquitto: a station publishes only under its own prefix and reads only its own
commands; the control room reads everything and sends commands."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import paho.mqtt.publish as mqtt_publish
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.station.outbox import Outbox
from edge.station.publisher import Publisher
from tests.helpers.broker import Broker
from tests.helpers.data import REPO

ACL = REPO / "systemd" / "mosquitto" / "geoedge.acl"
USERS = {"acl-01": "pw-acl-01", "acl-02": "pw-acl-02", "control-room": "pw-control"}

pytestmark = pytest.mark.broker


@pytest.fixture
def acl_broker(tmp_path):
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    passwd = tmp_path / "passwd"
    for n, (user, password) in enumerate(USERS.items()):
        subprocess.run([tool, "-b", *(["-c"] if n == 0 else []), str(passwd), user, password],
                       check=True)  # fmt: skip
    broker = Broker(
        workdir=tmp_path,
        listener_conf=f"allow_anonymous false\npassword_file {passwd}\nacl_file {ACL}\n",
        username="control-room",
        password=USERS["control-room"],
    )
    broker.start()
    yield broker
    broker.stop()


def _station(broker: Broker, tmp_path: Path, station: str) -> tuple[Publisher, Outbox]:
    secret = tmp_path / f"{station}.password"
    secret.write_text(USERS[station])
    secret.chmod(0o600)
    box = Outbox(tmp_path / f"{station}.sqlite")
    cfg = broker.mqtt_section(username=station, password_file=str(secret))
    return Publisher(cfg, station, box), box


def test_a_station_publishes_only_under_its_own_prefix(acl_broker, tmp_path, mqtt_subscriber):
    room = mqtt_subscriber(acl_broker, "geoedge/#")
    publisher, box = _station(acl_broker, tmp_path, "acl-01")
    publisher.start()
    try:
        assert publisher.wait_connected(10)
        box.put("geoedge/acl-02/beach/waterline", '{"forged": true}')  # another station's
        box.put("geoedge/acl-01/beach/waterline", '{"n": 1}')
        room.wait_for(
            lambda msgs: any(m.topic == "geoedge/acl-01/beach/waterline" for m in msgs),
            10,
            "the station's own message",
        )
        time.sleep(0.5)
    finally:
        publisher.stop(grace_s=2)
        box.close()
    topics = [m.topic for m in room.messages]
    assert "geoedge/acl-02/beach/waterline" not in topics, "the broker refused the forgery"
    assert "geoedge/acl-01/status" in topics


def test_a_station_reads_its_own_commands_only(acl_broker, tmp_path):
    got: dict[str, list] = {"acl-01": [], "acl-02": []}
    stations = []
    for name in got:
        publisher, box = _station(acl_broker, tmp_path, name)
        publisher.subscribe("geoedge/+/cmd", lambda t, p, name=name: got[name].append(t))
        publisher.start()
        stations.append((publisher, box))
    control = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    control.username_pw_set("control-room", USERS["control-room"])
    control.connect(acl_broker.host, acl_broker.port)
    control.loop_start()
    try:
        for publisher, _ in stations:
            assert publisher.wait_connected(10)
        time.sleep(0.5)  # SUBACKs
        control.publish("geoedge/acl-01/cmd", '{"command": "stats"}', qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while not got["acl-01"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        control.loop_stop()
        control.disconnect()
        for publisher, box in stations:
            publisher.stop(grace_s=1)
            box.close()
    assert got == {"acl-01": ["geoedge/acl-01/cmd"], "acl-02": []}


def test_the_shipped_broker_config_bounds_the_message_size(tmp_path, mqtt_subscriber):
    """mosquitto.conf's max_packet_size on a real Mosquitto: a 5 KB result passes, a 2 MiB
    publish (a 50 MiB one was accepted and forwarded before) is refused."""
    conf = (REPO / "systemd" / "mosquitto" / "mosquitto.conf").read_text()
    limit = next(ln for ln in conf.splitlines() if ln.startswith("max_packet_size "))
    broker = Broker(workdir=tmp_path, listener_conf=f"allow_anonymous true\n{limit}\n")
    broker.start()
    try:
        sub = mqtt_subscriber(broker, "geoedge/#")
        host, port = broker.host, broker.port
        big = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="big")
        big.connect(host, port)
        big.loop_start()
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            big.publish("geoedge/s/big", b"x" * (2 << 20), qos=0)
        time.sleep(1.0)  # the broker closes the connection on the oversized packet
        big.loop_stop()
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            big.disconnect()
        mqtt_publish.single("geoedge/s/small", b"y" * 5000, qos=1, hostname=host, port=port)
        arrived = sub.wait_count(1, 10)
        time.sleep(0.5)
        assert [m.topic for m in sub.messages] == ["geoedge/s/small"], arrived
    finally:
        broker.stop()
