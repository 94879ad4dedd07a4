"""The subscriber end to end: a real Mosquitto, real station links (outbox + publisher, the
station's own code) publishing the demo's recorded payloads, and the store behind the hub.

Every test uses a topic prefix of its own on the shared broker, so retained statuses left by
other tests never reach it, and a client id of its own (the hub keeps a persistent session).
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.hub.config import HubConfig
from edge.hub.ingest import Ingest, TopicHandler
from edge.hub.store import Store
from edge.station.messages import envelope
from tests.helpers.hub import Station, demo_messages

WAIT_S = 20.0


def _until(condition: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout_s} s: {what}")
        time.sleep(0.05)
    return found


@pytest.fixture
def prefix() -> str:
    return "fleet-" + uuid.uuid4().hex[:8]


@pytest.fixture
def hub_factory(
    mosquitto_broker, tmp_path, prefix
) -> Iterator[Callable[..., tuple[Ingest, Store]]]:
    started: list[tuple[Ingest, Store]] = []

    def make(
        store_url: str | None = None, worker: int | None = None,
        handlers: dict[str, TopicHandler] | None = None, mqtt_keys: dict | None = None, **hub: Any,
    ) -> tuple[Ingest, Store]:  # fmt: skip
        keys = {"topic_prefix": prefix, "client_id": f"hub-{prefix}", **(mqtt_keys or {})}
        cfg = HubConfig.model_validate(
            {"hub": {"store": str(tmp_path / "hub.sqlite"), **hub},
             "mqtt": mosquitto_broker.mqtt_config(**keys)}
        )  # fmt: skip
        store = Store(store_url or cfg.store_url())
        ingest = Ingest(cfg, store, worker=worker, handlers=handlers)
        ingest.start()
        assert ingest.wait_connected(10), "the hub did not subscribe"
        started.append((ingest, store))
        return ingest, store

    yield make
    for ingest, store in started:
        ingest.stop(grace_s=2)
        store.close()


def _raw_client(broker, **kwargs: Any) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="raw-" + uuid.uuid4().hex[:8], **kwargs,
    )  # fmt: skip
    return client


def test_the_demo_results_arrive_once_with_the_station_online(
    mosquitto_broker, hub_factory, tmp_path, prefix
):
    """The beach demo's four results, published by a real station link, then published again
    (a station that restarted and lost its sent-ids memory): stored once each."""
    ingest, store = hub_factory()
    station = Station(mosquitto_broker, "demo-01", tmp_path, topic_prefix=prefix)
    try:
        beach = [(kind, text) for kind, name, text in demo_messages() if name == "demo-01"]
        for kind, text in beach * 2:
            station.publish(kind, text)
        station.flush()
        _until(lambda: ingest.counts().duplicates >= 4, "the repeated results reached the hub")
    finally:
        station.stop()
    stored = {m.id: m.payload for m in store.messages(station="demo-01") if m.kind != "status"}
    assert stored == {json.loads(t)["id"]: json.loads(t) for _, t in beach}
    counts = ingest.counts()
    assert counts.rejected == {} and counts.queued == 0
    # the station's clean stop publishes a retained offline status (reason shutdown)
    _until(lambda: store.stations() and store.stations()[0].state == "offline", "offline status")
    states = [m.payload["state"] for m in store.messages(station="demo-01", kind="status")]
    assert sorted(states) == ["offline", "online"]


def test_poisoned_payloads_are_counted_and_the_loop_goes_on(mosquitto_broker, hub_factory, prefix):
    images: list[tuple[str, str, int]] = []
    ingest, store = hub_factory(
        max_payload_kb=4,
        handlers={"image": lambda st, sub, data: images.append((st, sub, len(data)))},
    )
    good = envelope("cavity", "gpr-1", time.time(), id="c-1", **{"class": "cavity"})
    bad = {
        f"{prefix}/gpr-1/gpr/cavity": [
            b"\xff\xfe not json", b"[1, 2]", b"{" * 5000,
            json.dumps({**good, "schema": "geoedge.cavity/9"}).encode(),
            json.dumps({**good, "station": "someone-else"}).encode(),
            json.dumps({k: v for k, v in good.items() if k != "id"}).encode(),
            json.dumps({**good, "time": "yesterday"}).encode(),
            json.dumps({**good, "pad": "x" * 5000}).encode(),
        ],
        f"{prefix}/gpr-1/unknown/kind": [b"{}"],
    }  # fmt: skip
    client = _raw_client(mosquitto_broker)
    client.connect(mosquitto_broker.host, mosquitto_broker.port)
    client.loop_start()
    try:
        for topic, payloads in bad.items():
            for payload in payloads:
                client.publish(topic, payload, qos=1).wait_for_publish(5)
        client.publish(f"{prefix}/gpr-1/image/snippet", b"\x89PNG...", qos=1).wait_for_publish(5)
        client.publish(f"{prefix}/gpr-1/cmd", b'{"command": "stats"}', qos=1).wait_for_publish(5)
        client.publish(f"{prefix}/gpr-1/gpr/cavity", json.dumps(good), qos=1).wait_for_publish(5)
        _until(lambda: ingest.counts().stored == 1, "the good cavity after the bad ones stored")
    finally:
        client.loop_stop()
        client.disconnect()
    counts = ingest.counts()
    assert counts.rejected == {f"{prefix}/gpr-1/gpr/cavity": 8}
    assert counts.skipped == {"cmd": 1, "unknown": 1}
    assert images == [("gpr-1", "image/snippet", 7)]
    assert [m.id for m in store.messages()] == ["c-1"]


def test_online_then_offline_by_the_last_will(mosquitto_broker, hub_factory, prefix):
    """A station-like client: a retained online status on connect and a retained last will
    (written when it connected, so its time is older); its link dies without a DISCONNECT.
    The hub shows it online, then offline."""
    ingest, store = hub_factory()
    status_topic = f"{prefix}/st-9/status"
    connected = time.time()
    client = _raw_client(mosquitto_broker)
    will = envelope("status", "st-9", connected, state="offline", reason="connection lost")
    client.will_set(status_topic, json.dumps(will), qos=1, retain=True)
    client.connect(mosquitto_broker.host, mosquitto_broker.port, keepalive=5)
    client.loop_start()
    online = envelope("status", "st-9", connected + 0.5, state="online")
    client.publish(status_topic, json.dumps(online), qos=1, retain=True).wait_for_publish(5)
    _until(lambda: [r.state for r in store.stations()] == ["online"], "st-9 online")
    client.loop_stop()
    sock = client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)  # the link dies: no DISCONNECT, the broker sends the will
    sock.close()
    _until(lambda: [r.state for r in store.stations()] == ["offline"], "st-9 offline by the will")
    assert ingest.counts().rejected == {}


@pytest.mark.postgres
def test_two_workers_share_one_subscription_into_postgresql(
    mosquitto_broker, hub_factory, postgres_server, prefix
):
    """MQTT 5 shared subscription, two hub workers, one PostgreSQL: 300 results from three
    stations, each stored once, none lost, and both workers took a share."""
    url = "postgresql+psycopg://" + postgres_server.create_database().split("://", 1)[1]
    workers = [
        hub_factory(url, worker=w, share_group="hubs", mqtt_keys={"protocol": "5"})[0]
        for w in range(2)
    ]
    client = _raw_client(mosquitto_broker, protocol=mqtt.MQTTv5)
    client.connect(mosquitto_broker.host, mosquitto_broker.port)
    client.loop_start()
    sent = []
    try:
        for n in range(300):
            station = f"st-{n % 3}"
            message = envelope("cavity", station, 1.8e9 + n, id=f"{station}-{n}", confidence=0.5)
            sent.append(message["id"])
            client.publish(f"{prefix}/{station}/gpr/cavity", json.dumps(message), qos=1)
        _until(lambda: sum(w.counts().stored for w in workers) >= 300, "300 stored")
    finally:
        client.loop_stop()
        client.disconnect()
    store = Store(url)
    try:
        assert sorted(m.id for m in store.messages(limit=1000)) == sorted(sent)
    finally:
        store.close()
    counts = [w.counts() for w in workers]
    assert sum(c.stored for c in counts) == 300 and sum(c.duplicates for c in counts) == 0
    assert all(c.stored > 0 for c in counts), [c.stored for c in counts]


@pytest.mark.broker
@pytest.mark.parametrize("broker_fixture", ["tls_broker", "password_broker"])
def test_the_hub_logs_in_as_a_station_does(request, broker_fixture, tmp_path, prefix):
    """TLS (the broker's CA) and a password file: the same [mqtt] keys as a station's."""
    broker = request.getfixturevalue(broker_fixture)
    cfg = HubConfig.model_validate(
        {"hub": {"store": str(tmp_path / "hub.sqlite")},
         "mqtt": broker.mqtt_config(topic_prefix=prefix, client_id=f"hub-{prefix}")}
    )  # fmt: skip
    store = Store(cfg.store_url())
    ingest = Ingest(cfg, store)
    ingest.start()
    station = None
    try:
        assert ingest.wait_connected(10), "the hub did not log in"
        station = Station(broker, "gpr-7", tmp_path, topic_prefix=prefix)
        kind, _, text = next(m for m in demo_messages() if m[0] == "cavity")
        station.publish(kind, text.replace('"demo-gpr"', '"gpr-7"'))
        station.flush()
        _until(lambda: store.count("cavity") == 1, "the cavity stored")
    finally:
        if station is not None:
            station.stop()
        ingest.stop(grace_s=2)
        store.close()
