"""Tide and wave gauges over a real Mosquitto broker (conftest fixtures), as the daemon wires
them: ``TideSource.attach(publisher.subscribe)``, readings arrive as JSON on the topic."""

from __future__ import annotations

import json
import time

import paho.mqtt.publish as mqtt_publish
import pytest

from edge.beach.shoreline.tide import TideSource
from edge.beach.shoreline.waves import WaveSource, shoaling_coefficient
from edge.config.shoreline import TideSection, WavesSection
from edge.station.messages import epoch_seconds
from edge.station.outbox import Outbox
from edge.station.publisher import Publisher

STATION = "tide-01"


def _wait(predicate, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_gauge_readings_over_mqtt_feed_the_tide_and_waves(mosquitto_broker, tmp_path):
    """A tide gauge publishes 0.40 m at 12:00 and 0.70 m at 12:10 UTC, a wave buoy in 12 m
    of water Hs 1.5 m, Tp 10 s. At 12:05 the tide is the time interpolation 0.55 m (plus
    the configured 0.02 m datum offset); at 15:00, beyond the 15-minute max age, it is
    unknown (None, never the last value guessed on). The wave height is reverse-shoaled
    to deep water with the linear-theory Ks of 12 m depth. A malformed reading is skipped."""
    tide = TideSource(TideSection(source="mqtt", topic="gauge/tide", max_age_s=900, offset_m=0.02))
    waves = WaveSource(
        WavesSection(source="mqtt", topic="gauge/waves", gauge_depth_m=12.0, reverse_shoal=True)
    )
    outbox = Outbox(tmp_path / "outbox.sqlite")
    publisher = Publisher(mosquitto_broker.mqtt_section(), STATION, outbox)
    tide.attach(publisher.subscribe)
    waves.attach(publisher.subscribe)
    publisher.start()
    try:
        assert publisher.wait_connected(10), "publisher did not connect to the broker"
        host, port = "127.0.0.1", mosquitto_broker.port
        msgs = [
            {"topic": "gauge/tide", "payload": json.dumps(p), "qos": 1}
            for p in (
                {"level_m": 0.40, "time": "2026-06-15T12:00:00Z"},
                {"level": "broken"},
                {"level_m": 0.70, "time": "2026-06-15T12:10:00Z"},
            )
        ]
        buoy = {"hs_m": 1.5, "tp_s": 10.0, "dir_deg": 95, "time": "2026-06-15T12:00:00Z"}
        msgs.append({"topic": "gauge/waves", "payload": json.dumps(buoy), "qos": 1})
        noon = epoch_seconds("2026-06-15T12:00:00Z")

        def arrived() -> bool:
            # both gauge readings: the 12:10 one alone also gives a level at 12:00-12:10
            # (held within max_age_s), so a level being known does not say both are in
            return tide.level_at(noon - 600) is not None and waves.at(noon) is not None

        # The subscription is renewed on connect and may not be acknowledged yet: resend
        # (a repeated reading is harmless) until the readings are in.
        for _ in range(20):
            mqtt_publish.multiple(msgs, hostname=host, port=port)
            if _wait(arrived, 0.5):
                break
        assert arrived(), "gauge readings did not arrive over MQTT"
        assert tide.level_at(noon + 300) == pytest.approx(0.57)
        assert tide.level_at(noon + 3 * 3600) is None
        state = waves.at(noon + 600)
        assert state.hs_m == 1.5 and state.direction_deg == 95.0
        assert state.h0_m == pytest.approx(1.5 / shoaling_coefficient(10.0, 12.0))
    finally:
        publisher.stop()
        outbox.close()


def test_no_tide_source_means_no_level():
    assert TideSource(TideSection()).level_at(epoch_seconds("2026-06-15T12:00:00Z")) is None
