"""At least once into the store: a hub killed mid-stream, or whose database goes away, loses
nothing the broker accepted (messages are acknowledged only after their commit; the hub keeps a
persistent MQTT session) and stores nothing twice (the store keeps each id once)."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.station.messages import envelope
from tests.helpers.hub import HubProcess, write_hub_config
from tests.helpers.postgres import PostgresServer

MESSAGES = 100


def _publisher(broker) -> mqtt.Client:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         client_id="gpr-" + uuid.uuid4().hex[:8])  # fmt: skip
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _publish(client: mqtt.Client, prefix: str, numbers: range) -> list[str]:
    ids = []
    for n in numbers:
        message = envelope("cavity", "gpr-1", 1.8e9 + n, id=f"c-{n}", confidence=0.5)
        client.publish(f"{prefix}/gpr-1/gpr/cavity", json.dumps(message), qos=1).wait_for_publish(5)
        ids.append(message["id"])
    return ids


def test_a_hub_killed_mid_stream_loses_and_duplicates_nothing(mosquitto_broker, tmp_path):
    prefix = "kill-" + uuid.uuid4().hex[:8]
    config = write_hub_config(
        tmp_path, mosquitto_broker, mqtt={"topic_prefix": prefix, "client_id": f"hub-{prefix}"}
    )
    hub = HubProcess(config)
    client = _publisher(mosquitto_broker)
    try:
        sent = _publish(client, prefix, range(MESSAGES // 2))
        hub.process.kill()  # SIGKILL: no chance to store or acknowledge what it holds
        hub.process.wait()
        sent += _publish(client, prefix, range(MESSAGES // 2, MESSAGES))  # kept by the broker
        hub = HubProcess(config)
        found = hub.wait_for(
            "/api/cavities", lambda a: len(a["cavities"]) >= MESSAGES, timeout_s=30
        )["cavities"]
    finally:
        client.loop_stop()
        client.disconnect()
        hub.stop()
    ids = [c["id"] for c in found]
    assert sorted(ids) == sorted(sent) and len(set(ids)) == len(ids)


@pytest.mark.postgres
def test_a_database_outage_is_waited_out(mosquitto_broker):
    """PostgreSQL stops while stations publish: the hub keeps the batch, acknowledges nothing,
    says the store fails, and stores everything when the server is back."""
    workdir = Path(tempfile.mkdtemp(prefix="geoedge-postgres-outage-"))
    server = PostgresServer(workdir=workdir)
    server.start()
    prefix = "dbdown-" + uuid.uuid4().hex[:8]
    config = write_hub_config(
        workdir, mosquitto_broker, store=server.create_database(),
        mqtt={"topic_prefix": prefix, "client_id": f"hub-{prefix}"},
    )  # fmt: skip
    hub = HubProcess(config)
    client = _publisher(mosquitto_broker)
    try:
        sent = _publish(client, prefix, range(20))
        hub.wait_for("/api/health", lambda h: h["ingest"]["stored"] >= 20)
        server.stop()
        sent += _publish(client, prefix, range(20, 60))
        failing = hub.wait_for("/api/health", lambda h: h["ingest"]["store_failing"] is True)
        assert failing["status"] == "store failing" and failing["messages"] is None
        assert hub.get("/api/cavities")[0] == 503
        server.start()
        found = hub.wait_for("/api/cavities", lambda a: len(a["cavities"]) >= 60, 30)
        health = hub.get_json("/api/health")
    finally:
        client.loop_stop()
        client.disconnect()
        hub.stop()
        server.stop()
        log = hub.log()
        shutil.rmtree(workdir, ignore_errors=True)
    assert sorted(c["id"] for c in found["cavities"]) == sorted(sent)
    assert health["ingest"]["store_failing"] is False
    assert "cannot store in" in log and "storing in" in log
