"""Outbox throughput: put + ack per message, as a ratio to plain SQLite inserts, and the
station's publishing through a real Mosquitto as a ratio to a raw paho QoS 1 publisher.

Both sides store the same N messages (a ~300-byte JSON payload each) in a fresh
SQLite file in the same directory, in the same run:

- baseline: a plain table ``(id, topic, payload)``, WAL + ``synchronous=FULL``,
  one INSERT + COMMIT per message (the same durability the outbox promises:
  each message is on disk when the call returns);
- outbox: :meth:`Outbox.put` per message, then :meth:`Outbox.ack` of what a
  publisher would have in flight, in batches of ``--batch`` (``mqtt.max_inflight``);
- keyed outbox: the same with an idempotency key per message (what the daemon does
  for results: the put checks the queued and delivered keys, the ack records the
  delivered key).

Through a broker (a Mosquitto started here on a free loopback port, the same N messages,
a subscriber counting them, in the same run):

- baseline: a raw paho v2 client publishing QoS 1 with the same in-flight window, waiting
  for every acknowledgement; run before and after the station's runs, the faster one counts
  (both are printed: on a shared machine they differ);
- put + ack: the station's path, Outbox.put per message from one thread while the
  Publisher drains it; then the same from ``--putters`` threads at once (several sites or
  channels storing results: their puts share group commits);
- draining: the Publisher started on an outbox already holding the N messages (a day's
  backlog after an outage).

The disk's flush rate is measured in the same directory just before and just after the
one-thread run (``fdatasync`` after a 4 KiB overwrite, which is what a WAL commit with
synchronous=FULL waits for): a put returns only once its message is flushed, so one
thread cannot put faster than the disk flushes (the commits line shows one per put). On a
shared virtual disk the flush time changes from minute to minute (~0.1 to ~5 ms here).
The flush-bound ceiling of one putting thread is measured in that run itself: the seconds
its puts spent in their COMMIT (:attr:`Outbox.commit_s`, the flush; a plain insert loop is
no ceiling here, its flushes took 3-5 times longer than the same flushes under the station's
load on this virtual disk). N messages / those seconds is the rate one thread could reach
with nothing but the flushes; the ratio to it is the share of the run that is the flush, and
the ceiling's ratio to raw paho is the best a durable put + ack could reach against the 0.5
goal.

``--nodelay`` sets Mosquitto's ``set_tcp_nodelay true``: by default Mosquitto leaves Nagle's
algorithm on, and a PUBACK written while the previous one is still unacknowledged at the TCP
level waits for the client's delayed ACK (40 ms on Linux), which stalls a burst's tail.

Prints messages/s of each and the ratios to the baselines (1.0 = no overhead).

    python3 bench/outbox.py [--messages N] [--batch B] [--putters K] [--dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config.mqtt import MqttSection
from edge.station.outbox import Outbox
from edge.station.publisher import Publisher

TOPIC = "geoedge/bench-01/beach/products"


def payload(n: int) -> bytes:
    message = {
        "schema": "geoedge.products/1",
        "station": "bench-01",
        "time": "2026-01-01T10:00:00Z",
        "n": n,
        "frames": 600,
        "flags": [],
        "files": [f"1767261600.bench-01.c1.{p}.jpg" for p in ("timex", "var", "bright", "dark")],
    }
    return json.dumps(message).encode()


def plain_inserts(path: Path, payloads: list[bytes]) -> float:
    """Seconds for one durable INSERT per message into a plain WAL table."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, topic TEXT, payload BLOB)")
    start = time.perf_counter()
    for body in payloads:
        db.execute("BEGIN")
        db.execute("INSERT INTO m (topic, payload) VALUES (?, ?)", (TOPIC, body))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed


def flushes_per_s(folder: Path, n: int = 100) -> float:
    """Flushes per second of this disk: a 4 KiB overwrite then ``fdatasync``, ``n`` times."""
    path = folder / "flush.probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"\0" * (64 * 4096))
        os.fsync(fd)
        start = time.perf_counter()
        for i in range(n):
            os.pwrite(fd, b"x" * 4096, (i % 64) * 4096)
            os.fdatasync(fd)
        return n / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


def outbox_put_ack(path: Path, payloads: list[bytes], batch: int, keyed: bool = False) -> float:
    """Seconds to put every message and ack them in batches of ``batch``, in order."""
    box = Outbox(path)
    start = time.perf_counter()
    last = 0
    for n, body in enumerate(payloads):
        box.put(TOPIC, body, key=f"{TOPIC}|{n:016x}" if keyed else None)
        if box.depth() >= batch:
            sent = box.pending(after_id=last, limit=batch)
            last = sent[-1].id
            box.ack(m.id for m in sent)
    box.ack(m.id for m in box.pending(after_id=last, limit=len(payloads)))
    elapsed = time.perf_counter() - start
    assert box.depth() == 0
    box.close()
    return elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """A Mosquitto on a free loopback port for the length of the benchmark."""

    def __init__(self, workdir: Path, nodelay: bool = False) -> None:
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        # No cap on the subscriber's queue (1,000 by default): a counter that falls behind
        # on the loaded machine must not lose messages.
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
            + ("set_tcp_nodelay true\n" if nodelay else "")
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Counter:
    """A subscriber that counts what arrives on the benchmark topic."""

    def __init__(self, port: int) -> None:
        self.n = 0
        self.done = threading.Event()
        self.want = 0
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(TOPIC, qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.n += 1
        if self.n >= self.want:
            self.done.set()

    def expect(self, n: int) -> None:
        self.n, self.want = 0, n
        self.done.clear()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def raw_paho(port: int, payloads: list[bytes], window: int, counter: Counter, run: int) -> float:
    """Seconds for a raw paho QoS 1 publisher to get every message acknowledged."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-raw-{run}"
    )
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    counter.expect(len(payloads))
    start = time.perf_counter()
    infos = [client.publish(TOPIC, body, qos=1) for body in payloads]
    for info in infos:
        info.wait_for_publish(30)
    elapsed = time.perf_counter() - start
    assert counter.done.wait(30)
    client.loop_stop()
    client.disconnect()
    return elapsed


def station(port: int, path: Path, payloads: list[bytes], window: int, counter: Counter,
            putters: int) -> tuple[float, int, float]:  # fmt: skip
    """Seconds until every message is acknowledged and gone from the outbox, the
    transactions (flushes) that stored them and the seconds of their COMMITs: put from
    ``putters`` threads while the Publisher runs, or (``putters`` = 0) all put before it
    starts."""
    box = Outbox(path)
    cfg = MqttSection(port=port, max_inflight=window, client_id=f"bench-{putters}")
    publisher = Publisher(cfg, "bench-01", box)
    if putters == 0:
        for body in payloads:
            box.put(TOPIC, body)
    commits, commit_s = box.commits, box.commit_s
    counter.expect(len(payloads))

    def put_all(share: list[bytes]) -> None:
        for body in share:
            box.put(TOPIC, body)

    threads = [
        threading.Thread(target=put_all, args=(payloads[k::putters],)) for k in range(putters)
    ]
    start = time.perf_counter()
    publisher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    while box.depth() and time.perf_counter() - start < 120:
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    assert counter.done.wait(30) and box.depth() == 0
    publisher.stop(grace_s=0)
    commits, commit_s = box.commits - commits, box.commit_s - commit_s
    box.close()
    return elapsed, commits, commit_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--putters", type=int, default=8, help="threads putting at once")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a disk)")
    parser.add_argument(
        "--nodelay", action="store_true", help="Mosquitto with set_tcp_nodelay true (no Nagle)"
    )
    args = parser.parse_args()
    payloads = [payload(n) for n in range(args.messages)]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = plain_inserts(Path(tmp) / "plain.sqlite", payloads)
        box = outbox_put_ack(Path(tmp) / "outbox.sqlite", payloads, args.batch)
        keyed = outbox_put_ack(Path(tmp) / "keyed.sqlite", payloads, args.batch, keyed=True)
        where = args.dir or Path(tmp).parent
        broker = Mosquitto(Path(tmp), args.nodelay)
        counter = Counter(broker.port)
        try:
            raw_before = raw_paho(broker.port, payloads, args.batch, counter, 0)
            flushes_before = flushes_per_s(Path(tmp))
            live, live_commits, live_flush = station(
                broker.port, Path(tmp) / "live.sqlite", payloads, args.batch, counter, 1
            )
            flushes_after = flushes_per_s(Path(tmp))
            group, group_commits, _ = station(
                broker.port, Path(tmp) / "group.sqlite", payloads, args.batch, counter,
                args.putters,
            )  # fmt: skip
            drain, _, _ = station(
                broker.port, Path(tmp) / "drain.sqlite", payloads, args.batch, counter, 0
            )
            raw_after = raw_paho(broker.port, payloads, args.batch, counter, 1)
        finally:
            counter.close()
            broker.stop()
    n = args.messages
    k = args.putters
    raw = min(raw_before, raw_after)
    # Messages per second one putting thread reaches if nothing but its flushes took time.
    ceiling = n / live_flush
    print(f"{n} messages of {len(payloads[0])} bytes in {where}")
    print(f"plain SQLite insert (WAL, synchronous=FULL): {n / base:9.0f} msg/s")
    print(f"outbox put + ack (batches of {args.batch}):        {n / box:9.0f} msg/s")
    print(f"outbox put + ack with idempotency keys:      {n / keyed:9.0f} msg/s")
    print(f"ratio outbox / plain insert: {base / box:.2f}")
    print(f"ratio keyed outbox / plain insert: {base / keyed:.2f}")
    print(f"broker: Mosquitto, set_tcp_nodelay {'true' if args.nodelay else 'false (default)'}")
    print(f"raw paho QoS 1 publisher (window {args.batch}):   {n / raw:9.0f} msg/s "
          f"(before / after the station: {n / raw_before:.0f} / {n / raw_after:.0f})")  # fmt: skip
    print(f"station put + ack, 1 thread:               {n / live:9.0f} msg/s "
          f"({live_commits} commits)")  # fmt: skip
    print(f"station put + ack, {k} threads:              {n / group:9.0f} msg/s "
          f"({group_commits} commits, {n / max(group_commits, 1):.1f} puts each)")  # fmt: skip
    print(f"station draining a pre-filled outbox:      {n / drain:9.0f} msg/s")
    print(f"disk flushes (4 KiB write + fdatasync) before / after the 1-thread run: "
          f"{flushes_before:.0f} / {flushes_after:.0f} per s")  # fmt: skip
    print(f"flush-bound ceiling of 1 thread, N / seconds in its COMMITs: {ceiling:9.0f} msg/s")
    print(f"ratio put + ack, 1 thread / raw paho QoS 1: {raw / live:.2f} (goal >= 0.5)")
    print(f"ratio put + ack, 1 thread / flush-bound ceiling: {n / live / ceiling:.2f} "
          f"(the ceiling is {ceiling * raw / n:.2f}x raw paho)")  # fmt: skip
    print(f"ratio put + ack, {k} threads / raw paho QoS 1: {raw / group:.2f} (goal >= 0.5)")
    print(f"ratio draining / raw paho QoS 1: {raw / drain:.2f} (goal >= 0.8)")


if __name__ == "__main__":
    main()
