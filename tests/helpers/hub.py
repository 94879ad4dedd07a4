"""The control-room hub in tests: its config, a running hub process, stations that publish.

:func:`write_hub_config` writes a hub TOML for a test broker (its ``[mqtt]`` section, TLS and
password included) and a store (an SQLite file in the folder by default, or a ``postgresql://``
URL from the ``postgres_server`` fixture) on a free HTTP port.

:class:`HubProcess` runs ``python -m edge hub --config FILE`` as a child process (its log in
``hub.log``), waits until ``/api/health`` answers and the broker is subscribed, and answers
``get_json(path)`` with real HTTP requests (urllib). ``stop()`` sends SIGTERM, as systemd does.

:class:`Station` is a station's own MQTT side, the real one: an :class:`~edge.station.outbox.Outbox`
drained by a :class:`~edge.station.publisher.Publisher` (retained online status, last will), so
``station.publish(kind, payload)`` goes out exactly as a station's results do.

:func:`demo_messages` are the payloads ``geoedge demo`` published (recorded in
``tests/data/golden/demo_payloads.json``): (kind, station, payload text).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from edge.station.messages import topic
from edge.station.outbox import Outbox
from edge.station.publisher import Publisher
from tests.helpers.broker import Broker, free_port
from tests.helpers.data import REPO

GOLDEN = REPO / "tests" / "data" / "golden" / "demo_payloads.json"
START_TIMEOUT_S = 30.0


def demo_messages() -> list[tuple[str, str, str]]:
    """What ``geoedge demo`` published: (kind, station, payload text), beach then GPR."""
    recorded = json.loads(GOLDEN.read_text())
    return [
        (kind, json.loads(text)["station"], text)
        for site in ("beach", "gpr")
        for kind, text in recorded[site]
    ]


def write_hub_config(
    folder: Path, broker: Broker, store: str | None = None, mqtt: dict[str, Any] | None = None,
    **hub: Any,
) -> Path:  # fmt: skip
    """A hub TOML in ``folder`` for ``broker`` (``mqtt`` overrides its ``[mqtt]`` keys) and
    ``store`` (default: ``hub.sqlite`` in ``folder``), listening on a free loopback port;
    ``hub`` adds ``[hub]`` keys."""
    keys = {"http": f"127.0.0.1:{free_port()}", "store": store or "hub.sqlite", **hub}
    lines = ["[hub]"] + [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    path = folder / "hub.toml"
    path.write_text("\n".join(lines) + "\n" + broker.mqtt_toml(**(mqtt or {})))
    return path


class HubProcess:
    """``geoedge hub --config config`` as a child process."""

    def __init__(self, config: Path) -> None:
        from edge.hub.config import load_hub_config

        self.config = load_hub_config(config)
        self.base = f"http://{self.config.hub.address}"
        self.log_file = config.parent / "hub.log"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edge", "hub", "--config", str(config)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=config.parent,
            )  # fmt: skip
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if self.get_json("/api/health")["broker_connected"]:
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the hub did not become ready:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def get(self, path: str) -> tuple[int, bytes, str]:
        """(status, body, content type) of GET ``path``; HTTP errors are answers too."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as answer:
                return answer.status, answer.read(), answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "")

    def get_json(self, path: str) -> Any:
        status, body, _ = self.get(path)
        if status != 200:
            raise AssertionError(f"GET {path}: HTTP {status}: {body[:300]!r}")
        return json.loads(body)

    def wait_for(self, path: str, predicate: Any, timeout_s: float = 20.0) -> Any:
        """GET ``path`` until ``predicate(json)`` holds; the JSON (AssertionError after
        ``timeout_s`` with the last answer)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.get_json(path)
            if predicate(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"GET {path} after {timeout_s} s: {str(found)[:600]}")
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class Station:
    """A station's MQTT link (real outbox + publisher) for ``station`` on ``broker``."""

    def __init__(self, broker: Broker, station: str, folder: Path, **mqtt: Any) -> None:
        self.station = station
        self.outbox = Outbox(folder / f"{station}.outbox.sqlite")
        cfg = broker.mqtt_section(**mqtt)
        self.prefix = cfg.topic_prefix
        self.publisher = Publisher(cfg, station, self.outbox)
        self.publisher.start()
        if not self.publisher.wait_connected(10):
            raise RuntimeError(f"station {station}: no connection to the test broker")

    def publish(self, kind: str, payload: str | dict[str, Any]) -> None:
        """Queue ``payload`` on the ``kind`` topic (the outbox sends it, QoS 1)."""
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.outbox.put(topic(self.prefix, self.station, kind), text)

    def flush(self, timeout_s: float = 10.0) -> None:
        if not self.publisher.flush(timeout_s):
            raise RuntimeError(f"station {self.station}: outbox not drained in {timeout_s} s")

    def stop(self) -> None:
        """A clean stop: the retained status becomes offline (reason shutdown)."""
        self.publisher.stop(grace_s=5)
        self.outbox.close()
