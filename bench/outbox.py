"""Outbox throughput: put + ack per message, as a ratio to plain SQLite inserts.

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

Prints messages/s of each and the ratios to the baseline (1.0 = no overhead).

    python3 bench/outbox.py [--messages N] [--batch B] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from edge.station.outbox import Outbox

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a disk)")
    args = parser.parse_args()
    payloads = [payload(n) for n in range(args.messages)]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = plain_inserts(Path(tmp) / "plain.sqlite", payloads)
        box = outbox_put_ack(Path(tmp) / "outbox.sqlite", payloads, args.batch)
        keyed = outbox_put_ack(Path(tmp) / "keyed.sqlite", payloads, args.batch, keyed=True)
        where = args.dir or Path(tmp).parent
    n = args.messages
    print(f"{n} messages of {len(payloads[0])} bytes in {where}")
    print(f"plain SQLite insert (WAL, synchronous=FULL): {n / base:9.0f} msg/s")
    print(f"outbox put + ack (batches of {args.batch}):        {n / box:9.0f} msg/s")
    print(f"outbox put + ack with idempotency keys:      {n / keyed:9.0f} msg/s")
    print(f"ratio outbox / plain insert: {base / box:.2f}")
    print(f"ratio keyed outbox / plain insert: {base / keyed:.2f}")


if __name__ == "__main__":
    main()
