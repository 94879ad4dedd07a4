"""Disk-backed outbox: every MQTT message is stored here before it is sent.

The outbox is one SQLite file in WAL mode. A message is stored in a transaction
committed with ``synchronous=FULL``, so when :meth:`Outbox.put` returns the message
is on disk and survives a process crash (SIGKILL) *and* a power cut.
(``synchronous=NORMAL`` with WAL would survive a crash but may lose the last
transactions on power loss; field units lose power, so FULL.) The publisher reads
messages in insertion order (:meth:`Outbox.pending`) and deletes a message only
when the broker has acknowledged it (:meth:`Outbox.ack`, PUBACK for QoS 1).

Group commit: the disk's flush (one ``fdatasync`` of the write-ahead log, ~0.1-5 ms
here) is the cost of a put; the SQL is a small fraction. Puts from several threads that
arrive while a commit is flushing are stored together in the next transaction, with one
flush for all of them: the first waiting caller commits the whole group and wakes the
others once it is durable. Every caller still returns only after its own message is on
disk. A group that fails (a full disk) is retried one message at a time, so a message that
does not fit fails alone. Acknowledgements are committed with ``synchronous=NORMAL``
(no flush of their own: the next put's flush, or a checkpoint, makes them durable): an
acknowledgement lost in a power cut only means the message is sent once more, which the
message ids make harmless (see Idempotency).

Bounds and drop policy: the outbox holds at most ``max_messages`` messages and
``max_bytes`` bytes (topic + payload). A ``put`` that would exceed either bound
first drops the oldest ``stats`` messages (topic ending in ``/stats``: health
snapshots, superseded by the next one), then the oldest messages of any kind, until
the new message fits. Every dropped message is logged and counted in a persistent
counter (:meth:`Outbox.dropped`) that the ``stats`` message reports. A single
message larger than ``max_bytes`` is refused with :class:`~edge.errors.GeoEdgeError`.

Idempotency: a message may carry a ``key`` (the daemon uses ``<topic>|<message
id>``; result ids are deterministic, see :func:`edge.station.messages.message_id`). A put
whose key is already stored, or was delivered within the last ``remember_s``
seconds, stores nothing and returns None: a result recomputed after a restart
(the same collection, the same GPR line replayed) is not published twice. Keys of
acknowledged messages are remembered in the ``delivered`` table for
``remember_s`` (default 7 days), pruned on open and every 1,000 acks.

``oldest_age_s()`` tells how long the oldest stored message has waited (s), from
its ``created`` time (epoch seconds UTC when it was put).

A full disk or any other SQLite failure on ``put`` gives one error log line and a
:class:`~edge.errors.GeoEdgeError`; the message is then *not* stored and the caller
knows it (never a silent loss).

Thread-safety: one connection guarded by a lock; any thread may call any method.
:meth:`pending` reads through a second, read-only connection with a lock of its own: in
WAL mode a reader never waits for a writer, so the publisher reading the next messages never
holds up a put that is flushing, nor waits for its flush.
:attr:`Outbox.commits` counts the transactions that stored puts (each one flush), and
:attr:`Outbox.commit_s` the seconds their COMMIT statements took (the disk's flushes).
One process owns an outbox at a time (an advisory ``flock`` on ``<path>.lock``
refuses a second owner); the lock dies with the process, even on SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import GeoEdgeError, TooLargeError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    is_stats INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_stats ON messages (is_stats, id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('dropped', 0);
INSERT OR IGNORE INTO counters VALUES ('duplicates', 0);
CREATE TABLE IF NOT EXISTS delivered (key TEXT PRIMARY KEY, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS delivered_time ON delivered (time);
"""
#: Columns added after the first release; an older outbox file is migrated on open.
_ADDED_COLUMNS = {"key": "TEXT", "created": "REAL"}
#: Acks between two prunes of the delivered-key table.
_PRUNE_EVERY = 1000
#: One statement per put: stored unless its key was delivered within ``remember_s`` (the
#: ``delivered`` table) or is queued now (the unique index on ``key``; OR IGNORE).
_INSERT = (
    "INSERT OR IGNORE INTO messages (topic, payload, qos, retain, is_stats, size, key, created) "
    "SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM delivered WHERE key = ?)"
)
#: Message ids per DELETE statement of an ack (well under SQLite's 32,766 parameters).
_ACK_CHUNK = 500


@dataclass(frozen=True)
class OutboxMessage:
    """One stored message; ``id`` increases with insertion order and is never reused."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


#: Keep the write-ahead log small on a device's flash: checkpoint every 256 pages (~1 MiB)
#: and truncate the -wal file back to 1 MiB after each checkpoint (it never shrank before and
#: sat at ~4 MB). Shared with the shoreline store.
WAL_BOUNDS = ("PRAGMA wal_autocheckpoint=256", "PRAGMA journal_size_limit=1048576")


def _is_stats(topic: str) -> bool:
    return topic.rsplit("/", 1)[-1] == "stats"


@dataclass
class _Put:
    """One caller's message waiting for (or done with) its group commit."""

    topic: str
    body: bytes
    qos: int
    retain: bool
    key: str | None
    size: int
    #: Set once the group holding this put has committed or failed.
    done: bool = False
    #: The stored id; None for a known key (or before ``done``).
    msg_id: int | None = None
    #: Why it was not stored (the SQLite error), or None.
    error: str | None = None
    #: Messages dropped by the size policy to make room for this one.
    dropped: int = 0


class Outbox:
    """A bounded, durable FIFO of MQTT messages in ``path`` (SQLite, WAL)."""

    def __init__(
        self,
        path: str | Path,
        max_messages: int = 100_000,
        max_bytes: int = 512 * 1024 * 1024,
        remember_s: float = 7 * 86400.0,
        reserve_bytes: int = 0,
    ) -> None:
        if max_messages <= 0 or max_bytes <= 0 or reserve_bytes < 0:
            raise ValueError("max_messages and max_bytes must be positive, reserve_bytes >= 0")
        self.path = Path(path)
        #: A file of this many bytes kept beside the outbox and deleted when its disk is
        #: full, so that results still find room (then recreated once space is back).
        self.reserve = self.path.with_name(self.path.name + ".reserve")
        self.reserve_bytes = reserve_bytes
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.remember_s = remember_s
        self._acks_since_prune = 0
        #: Guards the connection and ``_count``/``_bytes``.
        self._lock = threading.RLock()
        #: Guards the group-commit state: puts waiting for a commit, and whether one runs.
        self._group = threading.Condition(threading.Lock())
        self._waiting: list[_Put] = []
        self._committing = False
        #: Transactions that stored puts since open (each one flush of the disk).
        self.commits = 0
        #: Seconds spent in the COMMIT of those transactions since open (waiting for the disk).
        self.commit_s = 0.0
        self._listeners: list[Callable[[], None]] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise GeoEdgeError(f"outbox {self.path}: cannot create ({exc.strerror})") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise GeoEdgeError(f"outbox {self.path} is in use by another process") from None
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL (journal_mode={mode})")
            self._db.execute("PRAGMA synchronous=FULL")
            for pragma in WAL_BOUNDS:
                self._db.execute(pragma)
            self._db.executescript(_SCHEMA)
            self._migrate()
            self._prune_delivered()
            count, size = self._db.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM messages"
            ).fetchone()
            self._reader = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._reader.execute("PRAGMA query_only=1")
        except sqlite3.DatabaseError as exc:
            os.close(self._lock_fd)
            raise GeoEdgeError(f"outbox {self.path}: cannot open ({exc})") from None
        #: Guards the read-only connection of :meth:`pending`.
        self._read_lock = threading.Lock()
        self._count = int(count)
        self._bytes = int(size)

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r}, depth={self._count}, bytes={self._bytes})"

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (from the putting thread) after every successful put."""
        self._listeners.append(callback)

    def _migrate(self) -> None:
        have = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE messages ADD COLUMN {name} {kind}")
        self._db.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS messages_key ON messages (key) WHERE key IS NOT NULL"
        )

    def keep_reserve(self) -> bool:
        """Create the reserve file when it is missing and the disk has room for it twice over;
        True when the reserve is in place (always True without one)."""
        if not self.reserve_bytes or self.reserve.exists():
            return True
        try:
            stat = os.statvfs(self.path.parent)
            if stat.f_bavail * stat.f_frsize < 2 * self.reserve_bytes:
                return False
            with open(self.reserve, "wb") as f:
                f.truncate(0)
                os.posix_fallocate(f.fileno(), 0, self.reserve_bytes)
                os.fsync(f.fileno())
        except OSError as exc:
            self.reserve.unlink(missing_ok=True)
            log.warning("outbox %s: cannot keep its disk reserve (%s)", self.path, exc.strerror)
            return False
        return True

    def _release_reserve(self) -> bool:
        """Delete the reserve file (the disk is full); True if there was one to free."""
        if not self.reserve.exists():
            return False
        self.reserve.unlink()
        log.error(
            "outbox %s: disk full: released the %d-byte reserve so results can still be stored",
            self.path,
            self.reserve_bytes,
        )
        return True

    def _prune_delivered(self) -> None:
        self._db.execute("DELETE FROM delivered WHERE time < ?", (time.time() - self.remember_s,))

    def put(
        self,
        topic: str,
        payload: bytes | str,
        qos: int = 1,
        retain: bool = False,
        key: str | None = None,
    ) -> int | None:
        """Store a message durably and return its id (increasing, never reused).

        Returns once the message is on disk (its group's commit, see the module doc).
        With ``key``: None, and nothing stored, when a message with that key is
        already stored or was delivered within ``remember_s`` (counted in
        :meth:`duplicates`). Raises GeoEdgeError when the message cannot be stored
        (disk full, message larger than ``max_bytes``); nothing is stored then.
        """
        body = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos}")
        if not topic or "+" in topic or "#" in topic:
            raise ValueError(f"not a topic to publish to: {topic!r}")
        size = len(topic.encode("utf-8")) + len(body)
        if size > self.max_bytes:
            raise TooLargeError(
                f"outbox {self.path}: a {size}-byte message on {topic} exceeds "
                f"outbox.max_bytes = {self.max_bytes}"
            )
        entry = _Put(topic, body, qos, retain, key, size)
        self._commit_with_group(entry)
        if entry.error is not None:
            log.error("outbox %s: message on %s NOT stored: %s", self.path, topic, entry.error)
            raise GeoEdgeError(
                f"outbox {self.path}: cannot store message on {topic} ({entry.error})"
            )
        if entry.msg_id is None:
            log.info("outbox %s: %s already queued or sent, not stored", self.path, key)
            return None
        if entry.dropped:
            log.warning(
                "outbox %s full (max_messages=%d, max_bytes=%d): dropped %d oldest message(s), "
                "%d dropped in total",
                self.path,
                self.max_messages,
                self.max_bytes,
                entry.dropped,
                self.dropped(),
            )
        for callback in self._listeners:
            callback()
        return entry.msg_id

    def _commit_with_group(self, entry: _Put) -> None:
        """Wait until ``entry`` is committed: by this thread, leading the group of every put
        waiting when no commit runs, or by the thread leading the group it joined."""
        with self._group:
            self._waiting.append(entry)
            while not entry.done:
                if self._committing:
                    self._group.wait()
                    continue
                group, self._waiting = self._waiting, []
                self._committing = True
                self._group.release()
                try:
                    self._commit(group)
                finally:
                    for put in group:  # an unexpected error must not leave a caller waiting
                        if not put.done:
                            put.error, put.done = "the commit was interrupted", True
                    self._group.acquire()
                    self._committing = False
                    self._group.notify_all()

    def _commit(self, group: list[_Put]) -> None:
        """Store ``group`` in one transaction (one flush); on failure, one message at a time.

        A full disk releases the reserve file once and tries again. Marks each put done.
        """
        with self._lock:
            try:
                stored = self._insert(group)
            except sqlite3.Error as exc:
                self._rollback()
                self._count, self._bytes = self._recount()
                if len(group) > 1:
                    for put in group:
                        self._commit([put])
                    return
                # A full disk: the reserve file makes room once, and the message is stored.
                if "full" in str(exc) and self._release_reserve():
                    self._commit(group)
                    return
                group[0].error, group[0].done = str(exc), True
                return
            self.commits += 1
            self._count, self._bytes = stored
        for put in group:
            put.done = True

    def _insert(self, group: list[_Put]) -> tuple[int, int]:
        """The transaction of :meth:`_commit`: sets each put's id and drops; returns the new
        (count, bytes). Raises sqlite3.Error; the caller rolls back."""
        self._db.execute("BEGIN IMMEDIATE")
        count, size = self._count, self._bytes
        duplicates = 0
        now = time.time()
        for put in group:
            put.msg_id, put.dropped = None, 0  # a group that failed may be tried again
            cursor = self._db.execute(
                _INSERT,
                (put.topic, put.body, put.qos, int(put.retain), int(_is_stats(put.topic)),
                 put.size, put.key, now, put.key),
            )  # fmt: skip
            if cursor.rowcount == 0:
                duplicates += 1
                continue
            put.msg_id = cursor.lastrowid
            count += 1
            size += put.size
            if count > self.max_messages or size > self.max_bytes:
                put.dropped, freed = self._make_room(
                    count - self.max_messages, size - self.max_bytes, put.msg_id
                )
                count -= put.dropped
                size -= freed
        if duplicates:
            self._db.execute(
                "UPDATE counters SET value = value + ? WHERE name = 'duplicates'", (duplicates,)
            )
        start = time.perf_counter()
        self._db.execute("COMMIT")
        self.commit_s += time.perf_counter() - start
        return count, size

    def _make_room(
        self, excess_count: int, excess_bytes: int, newest: int | None
    ) -> tuple[int, int]:
        """Delete oldest stats, then oldest of any kind (older than ``newest``, the message
        just inserted), until ``excess_count`` messages and ``excess_bytes`` bytes are gone.

        Runs inside the put transaction; returns (messages dropped, bytes freed).
        """
        victims: list[int] = []
        freed = 0
        for query in (
            "SELECT id, size FROM messages WHERE is_stats = 1 AND id < ? ORDER BY id",
            "SELECT id, size FROM messages WHERE is_stats = 0 AND id < ? ORDER BY id",
        ):
            for msg_id, msg_size in self._db.execute(query, (newest,)):
                if len(victims) >= excess_count and freed >= excess_bytes:
                    break
                victims.append(msg_id)
                freed += msg_size
        self._db.executemany("DELETE FROM messages WHERE id = ?", ((i,) for i in victims))
        self._db.execute(
            "UPDATE counters SET value = value + ? WHERE name = 'dropped'", (len(victims),)
        )
        return len(victims), freed

    def pending(self, after_id: int = 0, limit: int = 100) -> list[OutboxMessage]:
        """Up to ``limit`` stored messages with id > ``after_id``, oldest first."""
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT id, topic, payload, qos, retain FROM messages WHERE id > ? "
                "ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [OutboxMessage(i, t, bytes(p), q, bool(r)) for i, t, p, q, r in rows]

    def ack(self, ids: Iterable[int]) -> None:
        """Delete acknowledged messages (one transaction without a flush of its own; unknown ids
        are ignored)."""
        ids = list(ids)
        if not ids:
            return
        with self._lock:
            try:
                # An acknowledgement lost in a power cut only means the message is sent once
                # more (at-least-once): acks need not wait for the disk as puts do.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("BEGIN IMMEDIATE")
                rows: list[tuple[int, str | None]] = []
                for at in range(0, len(ids), _ACK_CHUNK):
                    chunk = ids[at : at + _ACK_CHUNK]
                    rows += self._db.execute(
                        f"DELETE FROM messages WHERE id IN ({','.join('?' * len(chunk))}) "
                        "RETURNING size, key",
                        chunk,
                    ).fetchall()
                now = time.time()
                self._db.executemany(
                    "INSERT OR REPLACE INTO delivered VALUES (?, ?)",
                    ((key, now) for _, key in rows if key is not None),
                )
                self._acks_since_prune += len(rows)
                if self._acks_since_prune >= _PRUNE_EVERY:
                    self._prune_delivered()
                    self._acks_since_prune = 0
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                # The messages stay stored and are sent again: a duplicate, never a loss.
                self._rollback()
                log.error("outbox %s: cannot delete acknowledged messages: %s", self.path, exc)
                return
            finally:
                self._db.execute("PRAGMA synchronous=FULL")
            self._count -= len(rows)
            self._bytes -= sum(size for size, _ in rows)

    def depth(self) -> int:
        """Number of stored (unacknowledged) messages."""
        with self._lock:
            return self._count

    def size_bytes(self) -> int:
        """Bytes held (topics + payloads)."""
        with self._lock:
            return self._bytes

    def dropped(self) -> int:
        """Messages dropped by the size policy since the outbox file was created."""
        return self._counter("dropped")

    def duplicates(self) -> int:
        """Puts refused as already queued or delivered (same key), since creation."""
        return self._counter("duplicates")

    def oldest_age_s(self) -> float | None:
        """Seconds the oldest stored message has waited; None when the outbox is empty."""
        with self._lock:
            (created,) = self._db.execute("SELECT min(created) FROM messages").fetchone()
            if created is None:
                return None if self._count == 0 else 0.0
        return max(0.0, time.time() - created)

    @staticmethod
    def in_use(path: str | Path) -> bool:
        """True while a process owns the outbox at ``path`` (a running daemon)."""
        try:
            fd = os.open(f"{path}.lock", os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    @staticmethod
    def peek(path: str | Path) -> dict[str, float | int | None]:
        """Depth, bytes and oldest age (s) of an outbox file, read-only, without owning it."""
        uri = f"file:{Path(path).absolute()}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5.0)) as db:
                count, size, created = db.execute(
                    "SELECT count(*), coalesce(sum(size), 0), min(created) FROM messages"
                ).fetchone()
        except sqlite3.Error as exc:
            raise GeoEdgeError(f"outbox {path}: cannot read ({exc})") from None
        age = None if created is None else round(max(0.0, time.time() - created), 1)
        return {"queue_depth": count, "queue_bytes": size, "oldest_queued_s": age}

    def _counter(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database and release the owner lock."""
        with self._lock, self._read_lock:
            self._reader.close()
            self._db.close()
            os.close(self._lock_fd)

    def _rollback(self) -> None:
        # No transaction open means the failing statement already rolled back.
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def _recount(self) -> tuple[int, int]:
        try:
            count, size = self._db.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM messages"
            ).fetchone()
        except sqlite3.Error:
            return self._count, self._bytes
        return int(count), int(size)
