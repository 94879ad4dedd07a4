"""The publisher against a real Mosquitto broker (fixtures in conftest.py).

Every message carries its sequence number ``n``; a control room must see each
exactly once and in the order it was produced, across a broker outage, and a
process killed with SIGKILL must lose nothing it had put into the outbox.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import paho.mqtt.publish as mqtt_publish
import pytest
from pydantic import ValidationError

from edge.config.mqtt import TlsSection
from edge.station.outbox import Outbox
from edge.station.publisher import Publisher
from tests.helpers.broker import Broker, free_port, make_ca, make_server_cert

STATION = "st-01"
DATA = f"geoedge/{STATION}/beach/products"
STATUS = f"geoedge/{STATION}/status"


def _seq(messages) -> list[int]:
    return [m.json()["n"] for m in messages]


@pytest.fixture
def outbox(tmp_path: Path):
    box = Outbox(tmp_path / "outbox.sqlite")
    yield box
    box.close()


def _put(box: Outbox, numbers) -> None:
    for n in numbers:
        box.put(DATA, json.dumps({"n": n}))


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_messages_arrive_once_in_order_and_leave_the_outbox(
    mosquitto_broker, mqtt_subscriber, outbox, protocol
):
    sub = mqtt_subscriber(mosquitto_broker, f"geoedge/{STATION}/#")
    cfg = mosquitto_broker.mqtt_section(max_inflight=8, protocol=protocol)
    publisher = Publisher(cfg, STATION, outbox)
    publisher.start()
    _put(outbox, range(100))
    got = sub.wait_count(100, 20, DATA)
    assert _seq(got) == list(range(100))
    assert publisher.flush(5) and outbox.depth() == 0
    publisher.stop()
    # Live status messages (not the retained one left by an earlier test).
    sub.wait_for(lambda msgs: sum(m.topic == STATUS and not m.retain for m in msgs) >= 2, 10)
    statuses = [m.json() for m in sub.messages if m.topic == STATUS and not m.retain]
    assert [s["state"] for s in statuses] == ["online", "offline"]
    assert statuses[0]["schema"] == "geoedge.status/1" and statuses[0]["station"] == STATION
    assert statuses[1]["reason"] == "shutdown"


def test_a_broker_outage_loses_and_duplicates_nothing(restartable_broker, mqtt_subscriber, outbox):
    """30 messages delivered; the broker stops; 40 are produced during the outage
    (they wait in the outbox); the broker comes back; 30 more. The subscriber keeps a
    persistent session, so it misses nothing the broker accepted while it was
    reconnecting itself. All 100 must arrive exactly once, in order."""
    sub = mqtt_subscriber(restartable_broker, DATA, persistent=True)
    publisher = Publisher(restartable_broker.mqtt_section(max_inflight=8), STATION, outbox)
    publisher.start()
    _put(outbox, range(30))
    sub.wait_count(30, 20)
    assert publisher.flush(5)

    restartable_broker.stop()
    deadline = time.monotonic() + 5
    while publisher.connected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not publisher.connected
    _put(outbox, range(30, 70))
    time.sleep(0.3)
    assert outbox.depth() == 40, "messages produced during the outage wait in the outbox"

    restartable_broker.start()
    _put(outbox, range(70, 100))
    sub.wait_count(100, 30)
    assert publisher.flush(10)
    time.sleep(0.3)  # a duplicate would arrive right behind
    # A message the broker had forwarded but whose acknowledgement by the subscriber was not
    # yet stored when it stopped is re-sent to the subscriber with the DUP flag: that is the
    # broker -> subscriber leg of QoS 1. The station itself published each message once.
    assert _seq(m for m in sub.messages if not m.dup) == list(range(100))
    publisher.stop()


def test_a_sigkilled_producer_loses_nothing_it_put(mosquitto_broker, mqtt_subscriber, tmp_path):
    """A child process runs an outbox and a publisher, puts messages and prints each
    number once put() returned. We SIGKILL it mid-stream, then start a new publisher
    on the same outbox file: every printed number must reach the subscriber. (A
    message in flight at the kill may arrive twice: QoS 1 across a crash.)"""
    sub = mqtt_subscriber(mosquitto_broker, DATA)
    path = tmp_path / "outbox.sqlite"
    mqtt_cfg = mosquitto_broker.mqtt_config()
    script = textwrap.dedent(
        f"""
        import json
        from edge.config.mqtt import MqttSection
        from edge.station.outbox import Outbox
        from edge.station.publisher import Publisher
        box = Outbox({str(path)!r})
        publisher = Publisher(MqttSection.model_validate({mqtt_cfg!r}), {STATION!r}, box)
        publisher.start()
        n = 0
        while True:
            box.put({DATA!r}, json.dumps({{"n": n}}))
            print(n, flush=True)
            n += 1
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    printed = []
    for line in child.stdout:
        printed.append(int(line))
        if len(printed) == 300:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    box = Outbox(path)
    publisher = Publisher(mosquitto_broker.mqtt_section(), STATION, box)
    publisher.start()
    sub.wait_for(lambda msgs: set(printed) <= set(_seq(msgs)), 20, "every number the child printed")
    assert publisher.flush(10)
    publisher.stop()
    box.close()
    firsts = list(dict.fromkeys(_seq(sub.messages)))
    assert firsts == sorted(firsts), "first arrivals are in production order"


def test_the_last_will_marks_a_killed_station_offline(mosquitto_broker, mqtt_subscriber, tmp_path):
    mqtt_cfg = mosquitto_broker.mqtt_config(client_id="will-test")
    script = textwrap.dedent(
        f"""
        import time
        from edge.config.mqtt import MqttSection
        from edge.station.outbox import Outbox
        from edge.station.publisher import Publisher
        box = Outbox({str(tmp_path / "o.sqlite")!r})
        publisher = Publisher(MqttSection.model_validate({mqtt_cfg!r}), "will-st", box)
        publisher.start()
        assert publisher.wait_connected(10)
        print("connected", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "connected"
    sub = mqtt_subscriber(mosquitto_broker, "geoedge/will-st/status")
    online = sub.wait_count(1, 10)[0]
    assert online.json()["state"] == "online"
    # it is retained (the first subscriber may have got it live, with the retain flag clear,
    # when its subscription beat the publication: ask a second one)
    first_seen = mqtt_subscriber(mosquitto_broker, "geoedge/will-st/status").wait_count(1, 10)[0]
    assert first_seen.retain and first_seen.json()["state"] == "online"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    offline = sub.wait_count(2, 10)[1].json()
    assert offline["state"] == "offline" and offline["reason"] == "connection lost"
    # A control room connecting later sees the retained offline state.
    late = mqtt_subscriber(mosquitto_broker, "geoedge/will-st/status")
    retained = late.wait_count(1, 10)[0]
    assert retained.retain and retained.json()["state"] == "offline"


def test_tls_connection_with_the_station_ca(tls_broker, mqtt_subscriber, outbox):
    sub = mqtt_subscriber(tls_broker, DATA)
    publisher = Publisher(tls_broker.mqtt_section(), STATION, outbox)
    publisher.start()
    _put(outbox, range(5))
    assert _seq(sub.wait_count(5, 20)) == list(range(5))
    publisher.stop()


def test_password_login_works_and_the_password_is_never_logged(
    password_broker, mqtt_subscriber, outbox, caplog
):
    caplog.set_level(logging.DEBUG)
    sub = mqtt_subscriber(password_broker, DATA)
    publisher = Publisher(password_broker.mqtt_section(), STATION, outbox)
    assert password_broker.password not in repr(publisher)
    publisher.start()
    _put(outbox, range(3))
    assert _seq(sub.wait_count(3, 20)) == [0, 1, 2]
    publisher.stop()
    assert password_broker.password not in caplog.text
    # No TLS on this listener: the operator is told once that the password travels in clear.
    warned = [r for r in caplog.records if "in clear text" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING


def test_a_wrong_password_gives_one_clear_error_line(password_broker, tmp_path, outbox, caplog):
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    cfg = password_broker.mqtt_section(password_file=str(wrong))
    caplog.set_level(logging.INFO, logger="edge.station.publisher")
    publisher = Publisher(cfg, STATION, outbox)
    publisher.start()
    time.sleep(2.5)  # the first attempt and at least one retry (1 s back-off)
    _put(outbox, range(2))
    publisher.stop(grace_s=0)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "refused the connection" in errors[0] and "mqtt.password_file" in errors[0]
    assert "not-the-password" not in caplog.text
    assert outbox.depth() == 2, "nothing is lost while the broker refuses us"


def test_an_unreachable_broker_is_one_log_line_and_messages_keep_queueing(tmp_path, outbox, caplog):
    from edge.config.mqtt import MqttSection

    cfg = MqttSection(port=free_port(), reconnect_min_s=1, reconnect_max_s=1)
    caplog.set_level(logging.INFO, logger="edge.station.publisher")
    publisher = Publisher(cfg, STATION, outbox)
    publisher.start()
    _put(outbox, range(5))
    time.sleep(2.5)
    publisher.stop(grace_s=0)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "cannot connect to MQTT broker" in errors[0] and "refused" in errors[0].lower()
    assert outbox.depth() == 5


def test_input_topics_are_delivered_as_json_and_resubscribed_after_an_outage(
    restartable_broker, outbox, caplog
):
    received = []
    publisher = Publisher(restartable_broker.mqtt_section(), STATION, outbox)
    publisher.subscribe("tide/chuam", lambda topic, payload: received.append((topic, payload)))
    publisher.start()
    assert publisher.wait_connected(10)
    time.sleep(0.2)  # SUBACK
    host, port = restartable_broker.host, restartable_broker.port
    mqtt_publish.single("tide/chuam", "not json", qos=1, hostname=host, port=port)
    mqtt_publish.single("tide/chuam", '{"level_m": 0.42}', qos=1, hostname=host, port=port)
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.02)
    assert received == [("tide/chuam", {"level_m": 0.42})]
    assert "input on tide/chuam ignored: not JSON" in caplog.text
    assert publisher.rejected.counts() == {"tide/chuam": 1}

    restartable_broker.stop()
    restartable_broker.start()
    deadline = time.monotonic() + 10
    while not publisher.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # SUBACK
    mqtt_publish.single("tide/chuam", '{"level_m": -0.1}', qos=1, hostname=host, port=port)
    # QoS 1 is at least once: the broker may deliver 0.42 again after its restart.
    deadline = time.monotonic() + 5
    while ("tide/chuam", {"level_m": -0.1}) not in received and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ("tide/chuam", {"level_m": -0.1}) in received
    assert {p["level_m"] for _, p in received} == {0.42, -0.1}
    publisher.stop()


def test_a_secret_file_open_to_other_users_is_refused_with_one_line(password_broker, tmp_path):
    from edge.errors import ConfigError

    loose = tmp_path / "loose.password"
    loose.write_text(password_broker.password + "\n")
    loose.chmod(0o644)
    cfg = password_broker.mqtt_section(password_file=str(loose))
    with pytest.raises(ConfigError, match=r"open to other users \(mode 0644\).*chmod 600"):
        Publisher(cfg, STATION, Outbox(tmp_path / "o.sqlite"))
    loose.chmod(0o640)  # group-readable (the geoedge group) is allowed
    Publisher(cfg, STATION, Outbox(tmp_path / "o2.sqlite"))


def test_client_certificates_are_required_by_such_a_broker_and_sent(tmp_path, mqtt_subscriber):

    ca = make_ca(tmp_path)
    cert, key = make_server_cert(tmp_path, ca)
    client_cert, client_key = make_server_cert(tmp_path, ca, names=("st-01",), stem="client")
    client_key.chmod(0o600)
    conf = (
        f"allow_anonymous true\ncafile {ca[2]}\ncertfile {cert}\nkeyfile {key}\n"
        "require_certificate true\n"
    )
    broker = Broker(workdir=tmp_path, listener_conf=conf, ca_file=ca[2])
    broker.start()
    try:
        tls = {"ca_file": str(ca[2]), "cert_file": str(client_cert), "key_file": str(client_key)}
        with_cert = Publisher(broker.mqtt_section(tls=tls), STATION, Outbox(tmp_path / "a.sqlite"))
        without = Publisher(
            broker.mqtt_section(tls={"ca_file": str(ca[2])}), "other", Outbox(tmp_path / "b.sqlite")
        )
        with_cert.start()
        without.start()
        assert with_cert.wait_connected(10), "the station with its certificate is let in"
        assert not without.wait_connected(2), "a client without a certificate is refused"
        with_cert.stop(grace_s=1)
        without.stop(grace_s=0)
    finally:
        broker.stop()


@pytest.mark.parametrize(
    "poison",
    [b"[" * 3000 + b"]" * 3000, b'{"level_m": ' + b"9" * 5000 + b"}"],
    ids=["nested-brackets", "5000-digit-number"],
)
def test_a_poisoned_input_payload_is_counted_and_the_link_stays_alive(
    mosquitto_broker, mqtt_subscriber, outbox, poison
):
    """6 KB of nested brackets (RecursionError in json.loads) or a 5,000-digit integer
    (ValueError) on an input topic used to kill paho's network thread: afterwards nothing was
    published although the client looked connected. Now it is one rejected input, and results
    put after it still arrive."""
    sub = mqtt_subscriber(mosquitto_broker, DATA)
    publisher = Publisher(mosquitto_broker.mqtt_section(), STATION, outbox)
    received = []
    publisher.subscribe("tide/chuam", lambda topic, payload: received.append(payload))
    publisher.start()
    try:
        assert publisher.wait_connected(10)
        time.sleep(0.2)  # SUBACK
        host, port = mosquitto_broker.host, mosquitto_broker.port
        mqtt_publish.single("tide/chuam", poison, qos=1, hostname=host, port=port)
        mqtt_publish.single("tide/chuam", '{"level_m": 0.5}', qos=1, hostname=host, port=port)
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert received == [{"level_m": 0.5}]  # the network thread still delivers input
        assert publisher.rejected.counts() == {"tide/chuam": 1}
        _put(outbox, range(5))
        assert _seq(sub.wait_count(5, 10, DATA)) == [0, 1, 2, 3, 4]  # and still publishes
    finally:
        publisher.stop()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_commands_sent_while_the_station_is_offline_reach_it_when_it_returns(
    mosquitto_broker, tmp_path, protocol
):
    """A persistent session: the broker keeps the station's cmd subscription and queues a
    QoS 1 command sent while the station is down (Mosquitto persistence, as the shipped
    mosquitto.conf sets it, keeps it across a broker restart too)."""
    section = mosquitto_broker.mqtt_section(protocol=protocol, client_id=f"persist-{protocol}")
    topic = f"geoedge/{STATION}/cmd"
    first = Outbox(tmp_path / "a.sqlite")
    publisher = Publisher(section, STATION, first)
    publisher.subscribe(topic, lambda t, p: None)
    publisher.start()
    assert publisher.wait_connected(10)
    time.sleep(0.3)  # SUBACK
    publisher.stop()
    first.close()
    host, port = mosquitto_broker.host, mosquitto_broker.port
    mqtt_publish.single(topic, '{"command": "stats"}', qos=1, hostname=host, port=port)
    received: list = []
    second = Outbox(tmp_path / "b.sqlite")
    again = Publisher(section, STATION, second)
    again.subscribe(topic, lambda t, p: received.append(p))
    again.start()
    try:
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received == [{"command": "stats"}]
    finally:
        again.stop()
        second.close()


def test_an_insecure_tls_setting_must_name_the_ca_it_trusts(tmp_path):
    with pytest.raises(ValidationError, match="give the CA you trust"):
        TlsSection(insecure=True)


def test_a_dead_network_thread_is_not_reported_as_connected(mosquitto_broker, outbox):
    """The connected flag survives the death of paho's network thread (what the poisoned
    payload did); the health report asks whether queued messages are acknowledged."""
    publisher = Publisher(mosquitto_broker.mqtt_section(), STATION, outbox)
    publisher.start()
    try:
        assert publisher.wait_connected(10)
        _put(outbox, range(2))
        deadline = time.monotonic() + 10
        while outbox.depth() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert publisher.link_alive(0.5)
        publisher._client.loop_stop()  # the network thread ends; the flag stays set
        _put(outbox, range(2, 4))
        time.sleep(1.0)
        assert publisher.connected and not publisher.link_alive(0.5)
    finally:
        publisher.stop(grace_s=0)
