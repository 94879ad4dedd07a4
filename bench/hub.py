"""A fleet's scale: N simulated stations -> Mosquitto -> K hub workers -> one PostgreSQL.

Everything over loopback, started here: a Mosquitto on a free port, a PostgreSQL cluster in a
temp dir (fsync on, the server's defaults; or ``--db URL`` for one of yours, or ``--sqlite``
for one SQLite file shared by the workers), and ``--workers`` hub processes
(``python -m edge hub``, each with its own config) sharing the MQTT 5 subscription
``$share/bench/<prefix>/+/#``.

Load: ``--stations`` simulated stations (default 200), each its own MQTT connection with a
retained online status and a last will, publishing one cavity message (QoS 1, ~900 bytes,
the demo's cavity with a position) per second for ``--seconds`` (default 60), the stations
spread evenly over each second. One thread drives all the station connections through a
selector (paho's external-loop API), so 200 stations do not need 200 threads.

Measured in the same run:

- hub: messages stored (unique ids found in the store), lost (sent, never stored),
  duplicated (stored more than once: the workers' ``duplicates`` counters for the run),
  messages/s stored (unique stored / first publish -> last became queryable), latency
  publish -> queryable (a poller reads new rows every ``POLL_S``: it adds up to that much);
- raw: a plain paho subscriber on ``<prefix>/+/#`` (QoS 1, no store) in this process:
  messages/s received and latency publish -> received, and the hub's msg/s as a ratio to it.

    python3 bench/hub.py [--stations 200] [--seconds 60] [--workers 2] [--db URL | --sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, select

from edge.hub.store import messages
from edge.station.messages import envelope, utc_iso

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "data" / "golden" / "demo_payloads.json"
#: Seconds between two looks of the latency poller into the store.
POLL_S = 0.05
#: Seconds to wait after the last publish for the hub to store everything.
DRAIN_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start on port {port}")


class Mosquitto:
    """A Mosquitto on a free loopback port. No per-client queue limit and a wide in-flight
    window: the broker must not be what drops or throttles messages here."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                 "max_queued_messages 0", "max_inflight_messages 1000",
                 "persistence false"]  # fmt: skip
        if os.geteuid() == 0:
            lines.insert(0, "user root")
        conf.write_text("\n".join(lines) + "\n")
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port, "mosquitto")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Postgres:
    """A PostgreSQL cluster in ``workdir`` on a free port, with the server's default
    durability (fsync on, synchronous commit): what a control room would run."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port = workdir, free_port()
        found = shutil.which("initdb")
        if found:
            bin_dir = Path(os.path.realpath(found)).parent
        else:
            candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
            if not candidates:
                raise SystemExit("bench/hub.py: PostgreSQL (initdb) not found; or pass --db URL")
            bin_dir = candidates[-1].parent
        self.pg_ctl = str(bin_dir / "pg_ctl")
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres")
        self._run(str(bin_dir / "initdb"), "-D", str(workdir / "data"), "-A", "trust",
                  "-U", "postgres", "-E", "UTF8", "--no-sync")  # fmt: skip
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        self._run(self.pg_ctl, "-D", str(workdir / "data"), "-l", str(workdir / "pg.log"),
                  "-o", options, "-w", "start")  # fmt: skip
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "-c", "CREATE DATABASE hub"], check=True, capture_output=True)  # fmt: skip
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/hub"

    def _run(self, *command: str) -> None:
        if os.geteuid() == 0:
            command = ("runuser", "-u", "postgres", "--", *command)
        subprocess.run(command, check=True, capture_output=True)

    def stop(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.workdir / "data"), "-m", "fast", "stop")


def cavity_template() -> dict[str, Any]:
    recorded = json.loads(GOLDEN.read_text())
    cavity = json.loads(recorded["gpr"][0][1])
    cavity["position"] = {"crs": "EPSG:5186", "x": 200000.0, "y": 550000.0}
    return cavity


class Fleet:
    """``n`` station connections driven by one thread (paho's external loop)."""

    def __init__(self, port: int, prefix: str, n: int) -> None:
        self.prefix, self.n = prefix, n
        self.selector = selectors.DefaultSelector()
        self.clients: list[mqtt.Client] = []
        self.template = cavity_template()
        for i in range(n):
            station = f"sim-{i:04d}"
            client = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-{station}"
            )
            status = f"{prefix}/{station}/status"
            will = envelope("status", station, time.time(), state="offline")
            client.will_set(status, json.dumps(will), qos=1, retain=True)
            client.connect("127.0.0.1", port, keepalive=60)
            online = envelope("status", station, time.time(), state="online")
            client.publish(status, json.dumps(online), qos=1, retain=True)
            sock = client.socket()
            assert isinstance(sock, socket.socket)
            self.selector.register(sock, selectors.EVENT_READ, client)
            self.clients.append(client)
        self.sent: dict[str, float] = {}

    def pump(self, timeout_s: float) -> None:
        """Read what arrived, write what is queued, keep the connections alive."""
        for key, _ in self.selector.select(timeout_s):
            client = key.data
            assert isinstance(client, mqtt.Client)
            client.loop_read()
        for client in self.clients:
            if client.want_write():
                client.loop_write()

    def settle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump(0.01)

    def run(self, seconds: int) -> None:
        """Each station publishes one cavity per second, station i at i/n into the second."""
        start = time.monotonic() + 0.5
        last_misc = time.monotonic()
        for second in range(seconds):
            for i, client in enumerate(self.clients):
                due = start + second + i / self.n
                while (wait := due - time.monotonic()) > 0:
                    self.pump(min(wait, 0.005))
                station = f"sim-{i:04d}"
                ident = f"{station}-{second}"
                now = time.time()
                message = {**self.template, "station": station, "id": ident,
                           "time": utc_iso(now), "sent": now}  # fmt: skip
                client.publish(f"{self.prefix}/{station}/gpr/cavity", json.dumps(message), qos=1)
                self.sent[ident] = now
            if time.monotonic() - last_misc > 1.0:
                for client in self.clients:
                    client.loop_misc()
                last_misc = time.monotonic()
        self.settle(2.0)

    def close(self) -> None:
        for client in self.clients:
            client.disconnect()
            with contextlib.suppress(Exception):
                client.loop_write()


class RawSubscriber:
    """A plain paho subscriber: when each message arrived, nothing stored."""

    def __init__(self, port: int, prefix: str) -> None:
        self.arrived: dict[str, float] = {}
        self.sent: dict[str, float] = {}
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id="bench-raw-" + uuid.uuid4().hex[:6])  # fmt: skip
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{prefix}/+/gpr/cavity", qos=1)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("raw subscriber: no SUBACK")

    def _on_message(self, client: mqtt.Client, userdata: object, message: Any) -> None:
        now = time.time()
        payload = json.loads(message.payload)
        self.arrived.setdefault(payload["id"], now)
        self.sent[payload["id"]] = payload["sent"]

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Poller(threading.Thread):
    """Looks into the store every POLL_S and notes when each id first became queryable."""

    def __init__(self, url: str) -> None:
        super().__init__(name="poller", daemon=True)
        self.engine = create_engine(url)
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        query = select(messages.c.id, messages.c.time_s).where(messages.c.kind == "cavity")
        while not self.stop.wait(POLL_S):
            since = time.time() - 30.0
            with self.engine.connect() as conn:
                rows = conn.execute(query.where(messages.c.time_s >= since)).all()
            now = time.time()
            for ident, _ in rows:
                self.seen.setdefault(ident, now)

    def all_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            return {
                r[0] for r in conn.execute(select(messages.c.id).where(messages.c.kind == "cavity"))
            }


def start_workers(
    workdir: Path, k: int, port: int, prefix: str, store: str
) -> list[tuple[subprocess.Popen[bytes], int]]:
    workers = []
    for w in range(k):
        http = free_port()
        config = workdir / f"worker-{w}.toml"
        config.write_text(
            f'[hub]\nhttp = "127.0.0.1:{http}"\nstore = "{store}"\nshare_group = "bench"\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nprotocol = "5"\n'
            f'topic_prefix = "{prefix}"\nclient_id = "bench-hub-{w}"\n'
        )
        log = open(workdir / f"worker-{w}.log", "ab")  # noqa: SIM115 (kept open for the child)
        process = subprocess.Popen(
            [sys.executable, "-m", "edge", "--log-level", "WARNING", "hub", "--config",
             str(config)], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        workers.append((process, http))
    for process, http in workers:
        deadline = time.monotonic() + 60
        while health(http, missing_ok=True).get("broker_connected") is not True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"a hub worker did not start: see {workdir}/worker-*.log")
            time.sleep(0.1)
    return workers


def health(port: int, missing_ok: bool = False) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as r:
            return dict(json.loads(r.read()))
    except OSError:
        if missing_ok:
            return {}
        raise


def percentile(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=200, help="simulated stations")
    parser.add_argument("--seconds", type=int, default=60, help="seconds of publishing")
    parser.add_argument("--workers", type=int, default=2, help="hub worker processes")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", help="postgresql:// URL of an empty database (default: start one)")
    where.add_argument("--sqlite", action="store_true", help="one SQLite file for the workers")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="geoedge-bench-hub-"))
    os.chmod(workdir, 0o755)
    broker = Mosquitto(workdir)
    postgres = None
    if args.sqlite:
        store = str(workdir / "hub.sqlite")
        url = f"sqlite:///{store}"
    else:
        if args.db is None:
            (workdir / "pg").mkdir()
            postgres = Postgres(workdir / "pg")
        store = args.db or (postgres.url if postgres else "")
        url = "postgresql+psycopg://" + store.split("://", 1)[1]
    prefix = "bench-" + uuid.uuid4().hex[:6]
    workers: list[tuple[subprocess.Popen[bytes], int]] = []
    fleet = None
    try:
        workers = start_workers(workdir, args.workers, broker.port, prefix, store)
        raw = RawSubscriber(broker.port, prefix)
        fleet = Fleet(broker.port, prefix, args.stations)
        fleet.settle(3.0)  # connections, retained statuses stored
        before = [health(http)["ingest"] for _, http in workers]
        poller = Poller(url)
        poller.start()
        print(f"{args.stations} stations x {args.seconds} s, 1 message/s each, "
              f"{args.workers} hub worker(s), store {'SQLite' if args.sqlite else 'PostgreSQL'}",
              flush=True)  # fmt: skip
        fleet.run(args.seconds)
        sent = fleet.sent
        deadline = time.monotonic() + DRAIN_S
        while len(poller.all_ids() & sent.keys()) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(4 * POLL_S)
        poller.stop.set()
        poller.join()
        after = [health(http)["ingest"] for _, http in workers]
        stored_ids = poller.all_ids() & sent.keys()
        poller.engine.dispose()
        raw.stop()
    finally:
        if fleet is not None:
            fleet.close()
        for process, _ in workers:
            process.send_signal(signal.SIGTERM)
        for process, _ in workers:
            process.wait(30)
        broker.stop()
        if postgres is not None:
            postgres.stop()

    lost = len(sent) - len(stored_ids)
    duplicated = sum(a["duplicates"] - b["duplicates"] for a, b in zip(after, before, strict=True))
    per_worker = [a["stored"] - b["stored"] for a, b in zip(after, before, strict=True)]
    first = min(sent.values())
    hub_lat = [poller.seen[i] - sent[i] for i in stored_ids if i in poller.seen]
    hub_rate = len(stored_ids) / (max(poller.seen[i] for i in stored_ids) - first)
    raw_ids = raw.arrived.keys() & sent.keys()
    raw_lat = [raw.arrived[i] - sent[i] for i in raw_ids]
    raw_rate = len(raw_ids) / (max(raw.arrived[i] for i in raw_ids) - first)
    print(f"sent {len(sent)}; hub stored {len(stored_ids)} (per worker {per_worker}), "
          f"lost {lost}, duplicated {duplicated}")  # fmt: skip
    print(f"hub: {hub_rate:.1f} messages/s stored; publish -> queryable p50 "
          f"{percentile(hub_lat, 50) * 1e3:.0f} ms, p95 {percentile(hub_lat, 95) * 1e3:.0f} ms, "
          f"max {max(hub_lat) * 1e3:.0f} ms (poll every {POLL_S * 1e3:.0f} ms)")  # fmt: skip
    print(f"raw paho subscriber: {len(raw_ids)} received, {raw_rate:.1f} messages/s; "
          f"publish -> received p50 {percentile(raw_lat, 50) * 1e3:.0f} ms, "
          f"p95 {percentile(raw_lat, 95) * 1e3:.0f} ms")  # fmt: skip
    print(f"ratio hub / raw subscriber (messages/s): {hub_rate / raw_rate:.3f}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
