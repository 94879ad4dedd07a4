"""The disk-backed outbox: durable, ordered, bounded with a counted drop policy.

Real SQLite files in the test's tmp dir; a real child process killed with SIGKILL.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from edge.errors import GeoEdgeError
from edge.station.outbox import Outbox

STATS = "geoedge/st/stats"
PRODUCTS = "geoedge/st/beach/products"


def test_messages_come_back_in_insertion_order_and_leave_only_when_acked(tmp_path: Path):
    box = Outbox(tmp_path / "outbox.sqlite")
    ids = [box.put(PRODUCTS, f'{{"n": {n}}}') for n in range(10)]
    assert ids == sorted(ids) and len(set(ids)) == 10
    first = box.pending(limit=4)
    assert [m.payload for m in first] == [f'{{"n": {n}}}'.encode() for n in range(4)]
    assert [m.id for m in box.pending(after_id=first[-1].id, limit=100)] == ids[4:]
    box.ack([ids[0], ids[1]])
    assert box.depth() == 8
    assert [m.id for m in box.pending()] == ids[2:]
    box.ack([ids[0]])  # acknowledging twice (a re-sent message) deletes nothing more
    assert box.depth() == 8
    box.close()


def test_a_reopened_outbox_still_holds_the_unacked_messages_and_never_reuses_ids(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite")
    ids = [box.put(PRODUCTS, b"x" * n, retain=(n == 2)) for n in range(1, 4)]
    box.ack(ids)  # empty now: the next id must still be larger (AUTOINCREMENT)
    kept = box.put(PRODUCTS, b"kept")
    box.close()
    again = Outbox(tmp_path / "outbox.sqlite")
    (message,) = again.pending()
    assert (message.id, message.payload, message.qos, message.retain) == (kept, b"kept", 1, False)
    assert kept > max(ids)
    assert again.depth() == 1 and again.size_bytes() == len(PRODUCTS) + 4
    again.close()


def test_every_message_put_before_a_sigkill_is_on_disk(tmp_path: Path):
    """A child puts messages and prints each id after put() returns; we SIGKILL it
    mid-stream. Every printed id must be in the reopened outbox with its payload."""
    path = tmp_path / "outbox.sqlite"
    script = textwrap.dedent(
        f"""
        from edge.station.outbox import Outbox
        box = Outbox({str(path)!r})
        n = 0
        while True:
            msg_id = box.put("geoedge/st/beach/products", f"payload-{{n}}")
            print(msg_id, n, flush=True)
            n += 1
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    printed = []
    for line in child.stdout:
        printed.append(tuple(int(v) for v in line.split()))
        if len(printed) == 150:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    box = Outbox(path)
    stored = {m.id: m.payload for m in box.pending(limit=100_000)}
    for msg_id, n in printed:
        assert stored.get(msg_id) == f"payload-{n}".encode()
    box.close()


def test_a_full_outbox_drops_oldest_stats_first_then_oldest_of_any_kind(tmp_path: Path):
    """Bound 5 messages: s1 p1 s2 p2 p3 fill it. p4 drops s1, p5 drops s2 (stats go
    first even though p1 is older), p6 drops p1 (no stats left). Counter: 3, and it
    survives reopening."""
    box = Outbox(tmp_path / "outbox.sqlite", max_messages=5)
    for topic, body in [(STATS, "s1"), (PRODUCTS, "p1"), (STATS, "s2"), (PRODUCTS, "p2")]:
        box.put(topic, body)
    box.put(PRODUCTS, "p3")
    assert box.dropped() == 0
    box.put(PRODUCTS, "p4")
    assert [m.payload for m in box.pending()] == [b"p1", b"s2", b"p2", b"p3", b"p4"]
    box.put(PRODUCTS, "p5")
    box.put(PRODUCTS, "p6")
    assert [m.payload for m in box.pending()] == [b"p2", b"p3", b"p4", b"p5", b"p6"]
    assert box.dropped() == 3 and box.depth() == 5
    box.close()
    assert Outbox(tmp_path / "outbox.sqlite").dropped() == 3


def test_the_byte_bound_drops_as_many_old_messages_as_the_new_one_needs(tmp_path: Path):
    """Each message is len(topic) + 100 bytes; the bound fits exactly 4. A message of
    2.5 times that size needs three old ones gone (stats first)."""
    unit = len(PRODUCTS) + 100
    assert len(STATS) + 100 <= unit
    box = Outbox(tmp_path / "outbox.sqlite", max_bytes=4 * unit)
    box.put(PRODUCTS, b"a" * 100)
    box.put(STATS, b"s" * 100)
    box.put(PRODUCTS, b"b" * 100)
    box.put(PRODUCTS, b"c" * 100)
    box.put(PRODUCTS, b"d" * (int(2.5 * unit) - len(PRODUCTS)))
    assert [m.payload[:1] for m in box.pending()] == [b"c", b"d"]
    assert box.dropped() == 3
    assert box.size_bytes() <= 4 * unit
    box.close()


def test_a_message_larger_than_the_whole_outbox_is_refused_not_dropped_silently(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite", max_bytes=1000)
    box.put(PRODUCTS, "small")
    with pytest.raises(GeoEdgeError, match=r"exceeds outbox\.max_bytes = 1000"):
        box.put(PRODUCTS, b"x" * 2000)
    assert [m.payload for m in box.pending()] == [b"small"] and box.dropped() == 0
    box.close()


def test_a_full_disk_gives_one_log_line_and_an_error_and_keeps_what_was_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """SQLite's own limit (max_page_count) makes the file 'full' exactly as a full
    disk does (SQLITE_FULL, 'database or disk is full')."""
    box = Outbox(tmp_path / "outbox.sqlite")
    box.put(PRODUCTS, "before")
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count = {pages}")
    caplog.set_level(logging.ERROR, logger="edge.station.outbox")
    with pytest.raises(GeoEdgeError, match="database or disk is full"):
        box.put(PRODUCTS, b"x" * 200_000)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "NOT stored" in errors[0].getMessage()
    assert [m.payload for m in box.pending()] == [b"before"] and box.depth() == 1
    box._db.execute(f"PRAGMA max_page_count = {pages * 1000}")  # space freed: works again
    box.put(PRODUCTS, "after")
    assert [m.payload for m in box.pending()] == [b"before", b"after"]
    box.close()


def test_a_second_process_cannot_open_an_outbox_in_use(tmp_path: Path):
    box = Outbox(tmp_path / "outbox.sqlite")
    with pytest.raises(GeoEdgeError, match="in use by another process"):
        Outbox(tmp_path / "outbox.sqlite")
    box.close()
    Outbox(tmp_path / "outbox.sqlite").close()  # released on close


def test_threads_putting_while_another_acks_lose_nothing(tmp_path: Path):
    """4 site threads put 40 messages each while a publisher-like thread acks what it
    reads; at the end every message was read exactly once, in increasing id order."""
    box = Outbox(tmp_path / "outbox.sqlite")
    done = threading.Event()
    seen: list[int] = []

    def consume() -> None:
        last = 0
        while not (done.is_set() and box.depth() == 0):
            batch = box.pending(after_id=last, limit=16)
            if batch:
                last = batch[-1].id
                seen.extend(m.id for m in batch)
                box.ack(m.id for m in batch)

    def produce(worker: int) -> None:
        for n in range(40):
            box.put(PRODUCTS, f"{worker}-{n}")

    consumer = threading.Thread(target=consume)
    consumer.start()
    producers = [threading.Thread(target=produce, args=(w,)) for w in range(4)]
    for t in producers:
        t.start()
    for t in producers:
        t.join()
    done.set()
    consumer.join(timeout=30)
    assert len(seen) == 160 and seen == sorted(seen) and len(set(seen)) == 160
    assert box.depth() == 0 and box.size_bytes() == 0
    box.close()


def test_the_write_ahead_log_stays_small(tmp_path):
    """5,000 waterline-sized messages put and acknowledged: the -wal file is truncated back
    to about 1 MiB after checkpoints instead of staying at the ~4 MB it grew to."""
    box = Outbox(tmp_path / "outbox.sqlite")
    try:
        body = "x" * 5000
        for _batch in range(50):
            ids = [box.put("geoedge/s/beach/waterline", body) for _ in range(100)]
            box.ack([i for i in ids if i is not None])
        wal = tmp_path / "outbox.sqlite-wal"
        assert wal.stat().st_size <= 1_300_000, wal.stat().st_size
    finally:
        box.close()


def test_puts_from_threads_that_put_at_once_are_all_on_disk_after_a_sigkill(tmp_path: Path):
    """Group commit: 6 threads of a child put at once (sharing flushes) and print each id
    after put() returns; we SIGKILL the child mid-stream. Every printed id is in the
    reopened outbox with its payload, and the puts did share commits."""
    path = tmp_path / "outbox.sqlite"
    script = textwrap.dedent(
        f"""
        import sys, threading
        from edge.station.outbox import Outbox
        box = Outbox({str(path)!r})
        lock = threading.Lock()

        def produce(worker):
            n = 0
            while True:
                msg_id = box.put("geoedge/st/beach/products", f"payload-{{worker}}-{{n}}")
                with lock:
                    print(msg_id, worker, n, box.commits, flush=True)
                n += 1

        for worker in range(6):
            threading.Thread(target=produce, args=(worker,), daemon=True).start()
        threading.Event().wait()
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    printed = []
    for line in child.stdout:
        printed.append(tuple(int(v) for v in line.split()))
        if len(printed) == 300:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    box = Outbox(path)
    stored = {m.id: m.payload for m in box.pending(limit=100_000)}
    for msg_id, worker, n, _ in printed:
        assert stored.get(msg_id) == f"payload-{worker}-{n}".encode()
    assert max(commits for *_, commits in printed) < len(printed)
    box.close()


def _put_in_thread(box: Outbox, topic: str, body: bytes, key: str | None = None) -> dict:
    """Start a thread that puts one message; the dict gets "id" or "error" when it returns."""
    result: dict = {}

    def put() -> None:
        try:
            result["id"] = box.put(topic, body, key=key)
        except GeoEdgeError as exc:
            result["error"] = str(exc)

    result["thread"] = threading.Thread(target=put)
    result["thread"].start()
    return result


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.005)


def _queue_behind_a_busy_connection(box: Outbox, puts: list[tuple[bytes, str | None]]) -> list:
    """Hold the connection busy (as a slow flush does) while the ``puts`` (body, key) arrive
    one after the other: the first leads a commit of its own and waits for the connection,
    the others wait for that commit. Release it; return each put's result once done."""
    results = []
    with box._lock:
        for n, (body, key) in enumerate(puts):
            results.append(_put_in_thread(box, PRODUCTS, body, key))
            if n == 0:
                _wait_until(lambda: box._committing, "the first put leads a commit")
            else:
                _wait_until(lambda n=n: len(box._waiting) == n, f"put {n} waits")
    for result in results:
        result["thread"].join(30)
    return results


def test_puts_that_wait_for_a_commit_share_the_next_one(tmp_path):
    """Four puts: the first commits alone, the three that waited for it in one transaction
    (one flush), in their order."""
    box = Outbox(tmp_path / "outbox.sqlite")
    commits = box.commits
    results = _queue_behind_a_busy_connection(
        box, [(b"a", None), (b"b", None), (b"c", None), (b"d", None)]
    )
    assert box.commits - commits == 2
    ids = [r["id"] for r in results]
    assert ids == sorted(ids) and [m.payload for m in box.pending()] == [b"a", b"b", b"c", b"d"]
    box.close()


def test_in_a_group_a_message_that_does_not_fit_fails_alone(tmp_path):
    """Of three puts that share a commit, the middle one is too large for the file (SQLite's
    max_page_count: the same error as a full disk). The group is retried one message at a
    time: only that one fails, with its error; a repeated key in the group is refused."""
    box = Outbox(tmp_path / "outbox.sqlite")
    box.put(PRODUCTS, "before")
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count = {pages + 8}")
    first, big, keyed, again = _queue_behind_a_busy_connection(
        box, [(b"first", None), (b"x" * 200_000, None), (b"keyed", "k"), (b"again", "k")]
    )
    assert "database or disk is full" in big["error"] and "id" not in big
    assert first["id"] < keyed["id"] and again["id"] is None
    assert [m.payload for m in box.pending()] == [b"before", b"first", b"keyed"]
    assert box.duplicates() == 1 and box.depth() == 3
    box.close()


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_every_put_waits_for_a_flush_to_the_disk(tmp_path: Path):
    """Power-loss durability needs more than a SIGKILL test shows (the kernel keeps written
    pages when a process dies): each put must wait for fdatasync of the write-ahead log.
    A child puts 100 messages from one thread under strace, acknowledging every 10 (acks
    switch to synchronous=NORMAL and must switch back): at least one flush per put.
    Without a flush per commit there would be a handful (the checkpoints')."""
    script = textwrap.dedent(
        f"""
        from edge.station.outbox import Outbox
        box = Outbox({str(tmp_path / "outbox.sqlite")!r})
        for n in range(100):
            msg_id = box.put("geoedge/st/beach/products", f"payload-{{n}}")
            if n % 10 == 9:
                box.ack([msg_id])
        box.close()
        """
    )
    trace = tmp_path / "strace.txt"
    run = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(trace),
         sys.executable, "-c", script],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if run.returncode != 0 and "ptrace" in run.stderr:
        pytest.skip(f"strace cannot trace here: {run.stderr.strip()[:200]}")
    assert run.returncode == 0, run.stderr[-2000:]
    flushes = [line for line in trace.read_text().splitlines() if "sync(" in line]
    assert len(flushes) >= 100, len(flushes)
