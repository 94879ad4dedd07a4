"""The station daemon as a real process against a real broker.

The site here is a counter standing in for the beach/GPR sites (their own tests
cover them): it emits ``products`` messages numbered ``n`` and prints ``n`` once
``emit`` returned, i.e. once the message is durably in the outbox. On stop it
checkpoints by emitting one last message flagged ``interrupted``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge.errors import GeoEdgeError
from edge.station.daemon import load_site_factory
from edge.station.outbox import Outbox
from tests.helpers.broker import free_port
from tests.helpers.data import COASTCAM

STATION = "daemon-01"
DATA = f"geoedge/{STATION}/beach/products"
STATUS = f"geoedge/{STATION}/status"
STATS = f"geoedge/{STATION}/stats"

SITE = textwrap.dedent(
    """
    import logging, sys, time
    from edge.config import load_config
    from edge.station.daemon import Daemon
    from edge.station.messages import envelope, utc_iso

    class CounterSite:
        def __init__(self, config, emit, subscribe):
            self.emit, self.station, self.n, self.last = emit, config.station.id, 0, None

        def run(self, stop):
            while not stop.is_set():
                self.emit("products", envelope("products", self.station, time.time(), n=self.n))
                print(self.n, flush=True)
                self.n += 1
                self.last = utc_iso(time.time())
                time.sleep(0.01)
            self.emit("products", envelope("products", self.station, time.time(), n=self.n,
                                           interrupted=True))
            print("checkpoint", self.n, flush=True)

        def progress(self):
            return time.monotonic()

        def stats(self):
            return {"last_collection": self.last, "emitted": self.n}

    logging.basicConfig(level=logging.INFO)
    sys.exit(Daemon(load_config(sys.argv[1]), site_factory=CounterSite).run())
    """
)


def _config(tmp_path: Path, mqtt_toml: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [station]
            id = "{STATION}"
            kind = "beach"

            [[cameras]]
            name = "c1"
            source = "rtsp://192.0.2.10/stream1"
            intrinsics = "{COASTCAM / "CACO01_C1_IOBest.json"}"
            extrinsics = "{COASTCAM / "CACO01_C1_EOBest.json"}"

            [outbox]
            path = "state/outbox.sqlite"
            """
        )
        + mqtt_toml
    )
    return path


def _start(tmp_path: Path, config: Path) -> subprocess.Popen:
    script = tmp_path / "counter_daemon.py"
    script.write_text(SITE)
    with open(tmp_path / "daemon.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, str(script), str(config)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )


def _read_numbers(child: subprocess.Popen, count: int) -> list[int]:
    numbers = []
    for line in child.stdout:
        numbers.append(int(line))
        if len(numbers) == count:
            break
    return numbers


def _seq(messages) -> list[int]:
    return [m.json()["n"] for m in messages]


def test_sigterm_checkpoints_the_site_flushes_and_exits_0(
    mosquitto_broker, mqtt_subscriber, tmp_path
):
    sub = mqtt_subscriber(mosquitto_broker, f"geoedge/{STATION}/#")
    config = _config(tmp_path, mosquitto_broker.mqtt_toml(stats_interval_s=0.3))
    child = _start(tmp_path, config)
    printed = _read_numbers(child, 40)
    child.send_signal(signal.SIGTERM)
    tail = child.stdout.read().split("\n")
    assert child.wait(timeout=20) == 0, (tmp_path / "daemon.log").read_text()
    last_line = [line for line in tail if line.startswith("checkpoint")][-1]
    final_n = int(last_line.split()[1])

    data = sub.wait_count(final_n + 1, 10, DATA)
    assert _seq(data) == list(range(final_n + 1)), "every message once, in order"
    assert set(printed) <= set(_seq(data))
    assert data[-1].json()["interrupted"] is True
    sub.wait_for(
        lambda msgs: any(
            m.topic == STATUS and not m.retain and m.json()["state"] == "offline" for m in msgs
        ),
        10,
        "status offline",
    )
    statuses = [m for m in sub.messages if m.topic == STATUS and not m.retain]
    assert statuses[0].json()["state"] == "online"
    assert statuses[-1].json()["state"] == "offline"
    assert statuses[-1].json()["reason"] == "shutdown"
    stats = sub.payloads(STATS)
    assert stats, "a stats message every 0.3 s"
    final = stats[-1]
    assert final["schema"] == "geoedge.stats/1" and final["site"]["emitted"] == final_n
    assert final["dropped"] == 0 and final["uptime_s"] > 0
    assert final["last_collection"].endswith("Z")
    assert final["disk_free_bytes"]["outbox"] > 0
    assert Outbox(tmp_path / "state" / "outbox.sqlite").depth() == 0


def test_sigkill_mid_stream_loses_nothing_that_reached_the_outbox(
    mosquitto_broker, mqtt_subscriber, tmp_path
):
    """The daemon is killed with SIGKILL while producing; the broker publishes its
    last will (offline). A new daemon on the same config sends what the first had
    stored: every number the first printed reaches the control room."""
    sub = mqtt_subscriber(mosquitto_broker, f"geoedge/{STATION}/#")
    config = _config(tmp_path, mosquitto_broker.mqtt_toml())
    first = _start(tmp_path, config)
    printed = _read_numbers(first, 150)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    sub.wait_for(
        lambda msgs: any(
            m.topic == STATUS and not m.retain and m.json()["state"] == "offline" for m in msgs
        ),
        10,
        "the last will",
    )

    second = _start(tmp_path, config)
    _read_numbers(second, 5)
    sub.wait_for(
        lambda msgs: set(printed) <= {m.json()["n"] for m in msgs if m.topic == DATA},
        20,
        "every number the killed daemon printed",
    )
    second.send_signal(signal.SIGTERM)
    second.stdout.read()
    assert second.wait(timeout=20) == 0


def test_an_unreachable_broker_keeps_the_daemon_running_and_queueing(tmp_path):

    mqtt = f"[mqtt]\nport = {free_port()}\nreconnect_min_s = 1\nreconnect_max_s = 1\n"
    child = _start(tmp_path, _config(tmp_path, mqtt))
    _read_numbers(child, 30)
    child.send_signal(signal.SIGTERM)
    tail = child.stdout.read().split("\n")
    assert child.wait(timeout=20) == 0
    final_n = int([line for line in tail if line.startswith("checkpoint")][-1].split()[1])
    box = Outbox(tmp_path / "state" / "outbox.sqlite")
    queued = [m for m in box.pending(limit=100_000) if m.topic == DATA]
    assert len(queued) == final_n + 1, "every message waits in the outbox for the broker"
    log = (tmp_path / "daemon.log").read_text()
    assert log.count("cannot connect to MQTT broker") == 1
    box.close()


@pytest.mark.parametrize(
    ("mqtt_toml", "expected"),
    [
        ('[mqtt]\nport = "x"\n', "mqtt.port: Input should be a valid integer"),
        ("[mqtt]\nhots = 'a'\n", "unknown key 'mqtt.hots'"),
        ("[mqtt]\nreconnect_min_s = 10\nreconnect_max_s = 5\n", "reconnect_max_s must be >="),
        ('[mqtt]\nusername = "u"\npassword_file = "nope.txt"\n', "file not found"),
        ("[outbox]\nmax_messages = 0\n", "outbox.max_messages"),
    ],
)
def test_geoedge_run_with_a_bad_config_exits_2_with_one_line(tmp_path, mqtt_toml, expected):
    config = _config(tmp_path, "")
    text = config.read_text().replace('[outbox]\npath = "state/outbox.sqlite"\n', "")
    config.write_text(text + mqtt_toml)
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("geoedge run: error: ") and expected in lines[0]


def test_geoedge_run_with_a_missing_config_file_names_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"geoedge run: error: {tmp_path / 'none.toml'}: cannot read config "
        "(No such file or directory)"
    ]


def test_a_site_missing_from_the_build_is_one_line_naming_it():
    with pytest.raises(GeoEdgeError) as err:
        load_site_factory("edge.no_such_site:Site")
    assert str(err.value) == (
        "cannot start the site: edge.no_such_site.Site is missing from this build "
        "(no module named 'edge.no_such_site')"
    )
    with pytest.raises(GeoEdgeError, match=r"edge\.station\.messages has no Site$"):
        load_site_factory("edge.station.messages:Site")
