"""The hub's subscriber: every station message from the broker into the store, at least once.

One paho-mqtt v2 client per hub worker subscribes (QoS 1) to ``<prefix>/+/#`` (``[hub]
topics``), through the MQTT 5 shared subscription ``$share/<group>/...`` when ``[hub]
share_group`` is set, so that several workers split the stream. A shared subscription gets no
retained messages, so such a worker also subscribes to ``<prefix>/+/status`` on its own: the
retained statuses (and every later one) reach each worker, and the store keeps each once.

Delivery: acknowledgements are manual. The network thread only decodes and queues; the
``hub-ingest`` thread stores a batch in one transaction and then acknowledges (PUBACK) each of
its messages. A message is acknowledged only once it is stored (or refused as malformed), so a
hub killed at any moment loses nothing the broker holds for its persistent session: the
broker sends the unacknowledged ones again, and the store keeps each ``id`` once. A store that
fails (database down) is retried every second with the batch kept; nothing is acknowledged
meanwhile, and the broker stops sending once its in-flight window is full.

Bad input never stops the loop: a payload that is too large, not JSON, of an unknown schema or
kind is counted per topic and logged once per run of bad messages
(:class:`edge.station.inputs.RejectedInputs`). Topics that carry no station message are handed
to a :data:`TopicHandler` registered for their first sub-topic level (``image``: the images of
issue 16 part 5 plug in there) or, without one, skipped and counted.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.exc import SQLAlchemyError

from edge.errors import InputError
from edge.hub.config import HubConfig
from edge.hub.messages import KIND_OF_SUBTOPIC, Record, decode, split_topic
from edge.hub.store import Store
from edge.station.inputs import RejectedInputs
from edge.station.publisher import connect_session, session_client

log = logging.getLogger(__name__)

#: ``handler(station, subtopic, payload)`` for a topic that carries no station message (e.g.
#: ``image/...``); raises InputError to refuse the payload (counted, logged once). It runs in
#: paho's network thread and the message is acknowledged when it returns: keep it short (write
#: the file, or queue the work) and durable before returning. The payload size is its to bound.
TopicHandler = Callable[[str, str, bytes], None]
#: Sub-topics the hub receives but does not store: commands to the stations (``cmd``).
IGNORED_FIRST_LEVELS = frozenset({"cmd"})
#: Seconds between attempts while the store fails.
STORE_RETRY_S = 1.0
#: Seconds between two prunings of old ``stats``/``status`` messages (``keep_health_days``).
PRUNE_INTERVAL_S = 3600.0


@dataclass(frozen=True, slots=True)
class _Queued:
    record: Record
    mid: int
    qos: int
    #: The connection the message came on: a PUBACK is sent on that connection only (after a
    #: reconnect the broker re-sends what was not acknowledged, with new packet ids).
    session: int


@dataclass(frozen=True, slots=True)
class IngestCounts:
    """What the subscriber did since it started."""

    received: int
    stored: int
    duplicates: int
    rejected: dict[str, int]
    skipped: dict[str, int]
    queued: int
    store_failing: bool


class Ingest:
    """Subscribes for the hub of ``cfg`` and stores into ``store``. ``worker`` (0, 1, ...) is
    appended to the client id when several workers run; ``handlers`` maps a first sub-topic
    level to its :data:`TopicHandler`."""

    def __init__(
        self,
        cfg: HubConfig,
        store: Store,
        worker: int | None = None,
        handlers: Mapping[str, TopicHandler] | None = None,
    ) -> None:
        self._cfg = cfg
        self._store = store
        self._handlers = dict(handlers or {})
        self._prefix = cfg.mqtt.topic_prefix
        self._max_bytes = cfg.hub.max_payload_kb * 1024
        base = cfg.mqtt.client_id or f"geoedge-hub-{socket.gethostname()}"
        self.client_id = base if worker is None else f"{base}-{worker}"
        self._where = f"{cfg.mqtt.host}:{cfg.mqtt.port}"
        self._queue: queue.Queue[_Queued] = queue.Queue()
        self._session = 0
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._received = self._stored = self._duplicates = 0
        self._skipped: dict[str, int] = {}
        self._store_failing = False
        self._problem: str | None = None
        self.rejected = RejectedInputs()
        #: ``time.monotonic()`` of the last batch stored or the last idle turn of the loop.
        self.last_progress = time.monotonic()
        self._thread: threading.Thread | None = None
        self._client = self._make_client()

    # -- public --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        """Block until subscribed (or ``timeout_s`` passed); True if subscribed."""
        return self._connected.wait(timeout_s)

    def counts(self) -> IngestCounts:
        with self._lock:
            return IngestCounts(
                self._received, self._stored, self._duplicates, self.rejected.counts(),
                dict(self._skipped), self._queue.qsize(), self._store_failing,
            )  # fmt: skip

    def start(self) -> None:
        """Connect in the background and start storing."""
        self._thread = threading.Thread(target=self._store_loop, name="hub-ingest", daemon=True)
        self._thread.start()
        log.info("hub: MQTT broker %s, client id %s, topics %s", self._where, self.client_id,
                 ", ".join(self._filters()))  # fmt: skip
        connect_session(self._client, self._cfg.mqtt)
        self._client.loop_start()

    def stop(self, grace_s: float = 5.0) -> None:
        """Store what is queued (within ``grace_s``), acknowledge it, disconnect."""
        deadline = time.monotonic() + grace_s
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic()) + 1.0)
        self._client.disconnect()
        self._client.loop_stop()

    def alive(self) -> bool:
        """The storing thread runs (the watchdog's question)."""
        return self._thread is not None and self._thread.is_alive()

    # -- MQTT ----------------------------------------------------------------------------

    def _filters(self) -> list[str]:
        group = self._cfg.hub.share_group
        topics = self._cfg.topic_filters
        if group is None:
            return topics
        return [f"$share/{group}/{t}" for t in topics] + [f"{self._prefix}/+/status"]

    def _make_client(self) -> mqtt.Client:
        client = session_client(self._cfg.mqtt, self.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _report(self, problem: str) -> None:
        if problem != self._problem:
            log.error("%s", problem)
            self._problem = problem

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._report(f"hub: MQTT broker {self._where} refused the connection: {reason_code}")
            return
        self._problem = None
        with self._lock:
            self._session += 1
        log.info("hub: connected to MQTT broker %s as %s", self._where, self.client_id)
        client.subscribe([(f, 1) for f in self._filters()])

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            self._report(f"hub: the broker refused the subscription ({', '.join(refused)})")
            return
        self._connected.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        self._report(f"hub: cannot connect to MQTT broker {self._where}; retrying")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._stop.is_set():
            self._report(f"hub: lost MQTT broker {self._where} ({reason_code}); reconnecting")

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        # Nothing may escape into paho's network thread (it would end it).
        topic, data = message.topic, message.payload
        with self._lock:
            self._received += 1
            session = self._session
        try:
            record = self._take(topic, bytes(data))
        except InputError as exc:
            self.rejected.reject(topic, str(exc))
            record = None
        except Exception as exc:  # a handler's bug: contained, counted, logged once
            self.rejected.reject(topic, f"handler failed ({type(exc).__name__}: {exc})")
            record = None
        if record is None:
            client.ack(message.mid, message.qos)
            return
        self.rejected.accept(topic)
        self._queue.put(_Queued(record, message.mid, message.qos, session))

    def _take(self, topic: str, data: bytes) -> Record | None:
        """The record to store, or None for a topic handled (or skipped) otherwise."""
        where = split_topic(topic, self._prefix)
        if where.subtopic not in KIND_OF_SUBTOPIC:
            level = where.first_level
            handler = self._handlers.get(level)
            if handler is not None:
                handler(where.station, where.subtopic, data)
            else:
                with self._lock:
                    self._skipped[level] = self._skipped.get(level, 0) + 1
                if level not in IGNORED_FIRST_LEVELS and self._skipped[level] == 1:
                    log.info("hub: %s/... is not stored (no handler for %r); counted as skipped",
                             level, level)  # fmt: skip
            return None
        if len(data) > self._max_bytes:
            raise InputError(f"{len(data)} bytes is over hub.max_payload_kb")
        return decode(topic, data, time.time(), self._prefix)

    # -- storing -------------------------------------------------------------------------

    def _next_batch(self) -> list[_Queued]:
        try:
            batch = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < self._cfg.hub.batch_max:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _prune(self) -> None:
        """Old health messages out of the store (a failure waits for the next time)."""
        keep_s = self._cfg.hub.keep_health_days * 86400.0
        try:
            deleted = self._store.prune_health(time.time() - keep_s)
        except SQLAlchemyError as exc:
            log.warning("hub: pruning old stats/status failed (%s)", str(exc).splitlines()[0])
            return
        if deleted:
            log.info("hub: %d stats/status message(s) older than %g days deleted", deleted,
                     self._cfg.hub.keep_health_days)  # fmt: skip

    def _store_loop(self) -> None:
        batch: list[_Queued] = []
        next_prune = time.monotonic()
        while True:
            if time.monotonic() >= next_prune:
                self._prune()
                next_prune = time.monotonic() + PRUNE_INTERVAL_S
            if not batch:
                if self._stop.is_set() and self._queue.empty():
                    return
                batch = self._next_batch()
                if not batch:
                    self.last_progress = time.monotonic()
                    continue
            try:
                done = self._store.add([q.record for q in batch])
            except SQLAlchemyError as exc:
                if not self._store_failing:
                    log.error("hub: cannot store in %s (%s); retrying every %.0f s, nothing "
                              "is acknowledged meanwhile", self._store.shown,
                              str(exc).splitlines()[0][:200], STORE_RETRY_S)  # fmt: skip
                with self._lock:
                    self._store_failing = True
                # Retrying is progress for the watchdog: a restart cannot bring a database back.
                self.last_progress = time.monotonic()
                if self._stop.wait(STORE_RETRY_S):
                    return
                continue
            if self._store_failing:
                log.info("hub: storing in %s again", self._store.shown)
            with self._lock:
                self._store_failing = False
                self._stored += done.new
                self._duplicates += done.duplicates
                session = self._session
            for q in batch:
                if q.session == session and q.qos > 0:
                    self._client.ack(q.mid, q.qos)
            self.last_progress = time.monotonic()
            batch = []
