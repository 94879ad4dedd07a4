"""The MQTT link: one paho-mqtt v2 client that drains the outbox to the broker.

:class:`Publisher` owns the only MQTT client of the process. It

- connects (MQTT 3.1.1 or 5, optional TLS, username + password read from
  ``mqtt.password_file``; the password is never logged nor kept on the object),
- publishes the retained ``geoedge/<station>/status`` ``{"state": "online"}`` on
  every connect and registers the retained last will ``{"state": "offline"}``,
- sends outbox messages in insertion order, at most ``mqtt.max_inflight`` not yet
  acknowledged, and deletes each from the outbox only on its PUBACK,
- reconnects with exponential back-off (``reconnect_min_s`` .. ``reconnect_max_s``)
  while the outbox keeps queueing, and re-subscribes the input topics.

Delivery guarantee (QoS 1, at least once): a message leaves the outbox only after
the broker acknowledged it. In-flight messages that are unacknowledged when the
connection drops are re-sent by the client after the reconnect (same packet id,
DUP flag) *before* any newer message, so order holds. A duplicate reaches
subscribers only when the broker received a message whose PUBACK was then lost:
a connection that dropped with messages in flight, or a process crash (after a
restart the outbox re-sends everything it still holds, from the oldest). With no
message in flight at the outage, as in normal operation, nothing is duplicated.

Images (optional, :mod:`edge.station.images`): a second outbox whose messages go out only
while the results' outbox is empty, at most one in flight; a result put meanwhile waits for
that one image at most, never for the image queue.

Threads: paho's network thread runs the callbacks; a ``publisher-drain`` thread
reads the outbox, publishes, and deletes acknowledged messages, so no SQLite write
ever blocks the network loop and no lock is held across the two.

Throughput: the drain thread hands paho up to :data:`HANDED_WINDOWS` windows of messages
(read from the outbox in one query per refill). Paho puts ``mqtt.max_inflight`` of them on
the wire and sends the next one from its own network thread on each PUBACK, so the window
never waits for the drain thread. The drain thread refills paho's queue first, then deletes
the acknowledged messages, a window per transaction (all at once when nothing is in flight).
A crash between a PUBACK and that commit means the message is sent again after the restart:
a duplicate the control room drops on its message id, as for a message in flight at a crash.
``on_publish`` queues the packet ids it acknowledges for the drain thread, which never polls.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import socket
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge import __version__
from edge.config.mqtt import MqttSection
from edge.config.secrets import check_secret_file, read_secret
from edge.errors import ConfigError, InputError
from edge.station.inputs import MAX_PAYLOAD_BYTES, RejectedInputs
from edge.station.messages import envelope, topic
from edge.station.outbox import Outbox
from edge.station.site import InputCallback

log = logging.getLogger(__name__)

#: ``callback(topic, payload)`` for an input topic; ``payload`` is the decoded JSON.

#: Messages handed to paho at most, in windows of ``mqtt.max_inflight``: one window on the wire,
#: the rest queued in paho, sent from its network thread as PUBACKs come in.
HANDED_WINDOWS = 4
#: Seconds to wait for the retained offline status to be acknowledged at shutdown.
_OFFLINE_ACK_S = 2.0
#: MQTT 5 session expiry (s): commands and inputs sent while the station is offline this
#: long are still delivered when it comes back (3.1.1 sessions never expire).
SESSION_EXPIRY_S = 7 * 86400


def session_client(cfg: MqttSection, client_id: str, manual_ack: bool = False) -> mqtt.Client:
    """A paho v2 client for ``cfg`` that keeps a persistent session (MQTT 3.1.1
    ``clean_session`` False; MQTT 5 asks for it at connect, :func:`connect_session`), with the
    reconnect back-off and the credentials of ``cfg`` (every MQTT client of GeoEdge: a
    station's publisher, the hub's subscribers)."""
    protocol = mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if protocol == mqtt.MQTTv5 else False,
        manual_ack=manual_ack,
    )
    client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
    apply_credentials(client, cfg)
    return client


def connect_session(client: mqtt.Client, cfg: MqttSection) -> None:
    """Start connecting ``client`` in the background; under MQTT 5 without a clean start and
    with a session the broker keeps for :data:`SESSION_EXPIRY_S` while it is offline."""
    if cfg.protocol == "5":
        session = Properties(PacketTypes.CONNECT)
        session.SessionExpiryInterval = SESSION_EXPIRY_S
        client.connect_async(
            cfg.host, cfg.port, cfg.keepalive_s, clean_start=False, properties=session
        )
    else:
        client.connect_async(cfg.host, cfg.port, cfg.keepalive_s)


def apply_credentials(client: mqtt.Client, cfg: MqttSection) -> None:
    """Give ``client`` the user name, the password (read from ``mqtt.password_file``), the
    TLS CA and the client certificate of ``cfg`` (every MQTT client of GeoEdge: a station's
    publisher, the hub's subscribers). ConfigError names the key of a file that cannot serve."""
    where = f"{cfg.host}:{cfg.port}"
    if cfg.username is not None:
        password = None
        if cfg.password_file is not None:
            password = read_secret(cfg.password_file, "mqtt.password_file")
        client.username_pw_set(cfg.username, password)
        if cfg.tls is None:
            log.warning(
                "mqtt: the password for %s goes to %s in clear text (no [mqtt.tls]): "
                "anyone on the path can read it",
                cfg.username,
                where,
            )
    if cfg.tls is not None:
        tls = cfg.tls
        if tls.key_file is not None:
            check_secret_file(tls.key_file, "mqtt.tls.key_file")
        try:
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(f"mqtt.tls: cannot load the certificates ({exc})") from None
        if tls.insecure:
            log.warning("mqtt.tls.insecure = true: the broker's host name is NOT verified")
            client.tls_insecure_set(True)


class Publisher:
    """Sends the messages of ``outbox`` to the broker of ``cfg`` for ``station``."""

    def __init__(
        self, cfg: MqttSection, station: str, outbox: Outbox, images: Outbox | None = None
    ) -> None:
        self._cfg = cfg
        self.station = station
        self.outbox = outbox
        #: Lower-priority messages (images), sent only while ``outbox`` is empty.
        self.images = images
        self.status_topic = topic(cfg.topic_prefix, station, "status")
        self.client_id = cfg.client_id or f"geoedge-{station}"
        self._where = f"{cfg.host}:{cfg.port}"
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._stop_drain = threading.Event()
        self._stopping = False
        #: Set on every disconnect: no new message goes out until paho has re-sent
        #: (and the broker acknowledged) every message in flight at the drop.
        self._resending = False
        #: Outbox id of every message handed to paho and not yet acknowledged, by packet id.
        self._inflight: dict[int, int] = {}
        self._last_sent = 0
        #: The one image in flight (packet id, id in ``images``), and the last image id sent.
        self._image_inflight: tuple[int, int] | None = None
        self._last_image_sent = 0
        #: Packet ids acknowledged by the broker (appended by the network thread, taken by the
        #: drain thread; a deque's append and popleft are thread-safe).
        self._acked: collections.deque[int] = collections.deque()
        #: Outbox ids of acknowledged results not yet deleted (a window is deleted at once).
        self._done: list[int] = []
        self._subscriptions: dict[str, InputCallback] = {}
        self._sub_lock = threading.Lock()
        self._problem: str | None = None
        #: Inbound messages ignored as malformed or out of range, per topic.
        self.rejected = RejectedInputs()
        #: ``time.monotonic()`` of the last broker acknowledgement (or connect).
        self.last_progress = time.monotonic()
        self._drain_thread: threading.Thread | None = None
        self._client = self._make_client()
        outbox.listen(self._wake.set)
        if images is not None:
            images.listen(self._wake.set)

    def __repr__(self) -> str:
        user = f", user={self._cfg.username!r}" if self._cfg.username else ""
        tls = ", tls" if self._cfg.tls else ""
        return f"Publisher({self._where}{tls}{user}, station={self.station!r})"

    def _status(self, state: str, **extra: Any) -> bytes:
        message = envelope(
            "status", self.station, time.time(), state=state, version=__version__, **extra
        )
        return json.dumps(message).encode("utf-8")

    def _make_client(self) -> mqtt.Client:
        cfg = self._cfg
        # A persistent session: the broker keeps the station's subscriptions (cmd, inputs)
        # and queues their QoS 1 messages while it is offline (MQTT 5: for SESSION_EXPIRY_S).
        client = session_client(cfg, self.client_id)
        client.max_inflight_messages_set(cfg.max_inflight)
        client.max_queued_messages_set(0)
        client.will_set(
            self.status_topic,
            self._status("offline", reason="connection lost"),
            qos=1,
            retain=True,
        )
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # -- public API ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a broker session is up."""
        return self._connected.is_set()

    def link_alive(self, within_s: float) -> bool:
        """Connected, and the link really moves: no message has waited in the outbox longer
        than ``within_s`` s without an acknowledgement in that time. A network thread that
        died (the flag says connected, nothing is sent) shows here, not in :attr:`connected`."""
        if not self.connected:
            return False
        waited = self.outbox.oldest_age_s() or 0.0
        return waited <= within_s or time.monotonic() - self.last_progress <= within_s

    def wait_connected(self, timeout_s: float) -> bool:
        """Block until connected or ``timeout_s`` seconds passed; True if connected."""
        return self._connected.wait(timeout_s)

    def subscribe(self, topic_filter: str, callback: InputCallback) -> None:
        """Call ``callback(topic, json_payload)`` for messages on ``topic_filter`` (QoS 1).

        The subscription is renewed after every reconnect. A payload that is not
        JSON (or larger than 64 KiB), or that ``callback`` refuses by raising
        InputError, is ignored: the first of a run is logged, all are counted in
        :attr:`rejected`.
        """
        with self._sub_lock:
            self._subscriptions[topic_filter] = callback
        if self.connected:
            self._client.subscribe(topic_filter, qos=1)

    def start(self) -> None:
        """Connect in the background and start draining the outbox (nothing when disabled)."""
        if not self._cfg.enabled:
            log.info(
                "MQTT disabled ([mqtt] enabled = false): %d message(s) queued stay in the outbox",
                self.outbox.depth(),
            )
            return
        log.info(
            "MQTT broker %s, client id %s, %d message(s) queued",
            self._where,
            self.client_id,
            self.outbox.depth(),
        )
        connect_session(self._client, self._cfg)
        self._client.loop_start()
        self._drain_thread = threading.Thread(
            target=self._drain, name="publisher-drain", daemon=True
        )
        self._drain_thread.start()

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` s for the outbox (and the image queue) to empty; True if
        both did."""
        deadline = time.monotonic() + timeout_s
        while self._queued() > 0 and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        return self._queued() == 0

    def _queued(self) -> int:
        return self.outbox.depth() + (0 if self.images is None else self.images.depth())

    def stop(self, grace_s: float | None = None) -> None:
        """Send what can be sent within ``grace_s`` s, publish offline, disconnect.

        Messages still queued stay in the outbox for the next start.
        """
        grace_s = self._cfg.shutdown_grace_s if grace_s is None else grace_s
        if self.connected:
            self.flush(grace_s)
        self._stop_drain.set()
        self._wake.set()
        if self._drain_thread is not None:
            self._drain_thread.join()
        self._collect_acks()
        if self.connected:
            info = self._client.publish(
                self.status_topic, self._status("offline", reason="shutdown"), qos=1, retain=True
            )
            # If the connection drops meanwhile, the broker sends the last will instead.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(_OFFLINE_ACK_S)
        self._stopping = True
        if self._cfg.enabled:
            self._client.disconnect()
            self._client.loop_stop()
        self._collect_acks()
        left = self.outbox.depth()
        if left:
            log.info("%d message(s) stay in the outbox for the next start", left)

    # -- drain thread ---------------------------------------------------------------

    def _drain(self) -> None:
        while True:
            self._wake.wait(1.0)
            self._wake.clear()
            self._take_acks()
            if self._stop_drain.is_set():
                return  # stop() collects and deletes what is acknowledged once joined
            if self._connected.is_set() and not self._still_resending():
                self._refill()
            # After the refill, so that paho sends meanwhile; a window at a time, or all once
            # nothing is in flight.
            if len(self._done) >= self._cfg.max_inflight or not self._inflight:
                self._delete_acked()
            if self._connected.is_set() and not self._resending:
                self._send_image()

    def _still_resending(self) -> bool:
        """True until paho has re-sent, and the broker acknowledged, every message it held at
        the last disconnect (nothing newer may overtake them)."""
        if self._resending and not self._inflight and self._image_inflight is None:
            self._resending = False
        return self._resending

    def _refill(self) -> None:
        """Hand paho the next outbox messages, up to :data:`HANDED_WINDOWS` windows, once a
        window or more has room (one query per window, not one per acknowledgement)."""
        room = HANDED_WINDOWS * self._cfg.max_inflight - len(self._inflight)
        if room < self._cfg.max_inflight:
            return
        for message in self.outbox.pending(self._last_sent, room):
            info = self._client.publish(
                message.topic, message.payload, qos=message.qos, retain=message.retain
            )
            self._inflight[info.mid] = message.id
            self._last_sent = message.id

    def _send_image(self) -> None:
        """One image, when no result is queued or in flight and no image is in flight."""
        if self.images is None or self._image_inflight is not None or self.outbox.depth():
            return
        for message in self.images.pending(self._last_image_sent, 1):
            info = self._client.publish(
                message.topic, message.payload, qos=message.qos, retain=message.retain
            )
            self._image_inflight = (info.mid, message.id)
            self._last_image_sent = message.id

    def _take_acks(self) -> None:
        """Move the results acknowledged since the last call to ``_done`` (the image's is
        deleted here); packet ids of other messages (the status) are passed over."""
        while self._acked:
            mid = self._acked.popleft()
            msg_id = self._inflight.pop(mid, None)
            if msg_id is not None:
                self._done.append(msg_id)
                self.last_progress = time.monotonic()
                continue
            image = self._image_inflight
            if self.images is not None and image is not None and image[0] == mid:
                self.images.ack([image[1]])
                self._image_inflight = None
                self.last_progress = time.monotonic()

    def _delete_acked(self) -> None:
        """Delete the acknowledged results from the outbox, in one transaction."""
        if self._done:
            self.outbox.ack(self._done)
            self._done = []

    def _collect_acks(self) -> None:
        self._take_acks()
        self._delete_acked()

    # -- paho callbacks (network thread) ------------------------------------------

    def _report(self, problem: str) -> None:
        """Log a connection problem once, not on every retry."""
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
            hint = ""
            if self._cfg.username is not None:
                hint = " (check mqtt.username and mqtt.password_file)"
            self._report(f"MQTT broker {self._where} refused the connection: {reason_code}{hint}")
            return
        self._problem = None
        self.last_progress = time.monotonic()
        log.info("connected to MQTT broker %s as %s", self._where, self.client_id)
        client.publish(self.status_topic, self._status("online"), qos=1, retain=True)
        with self._sub_lock:
            for topic_filter in self._subscriptions:
                client.subscribe(topic_filter, qos=1)
        self._connected.set()
        self._wake.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        try:
            with socket.create_connection((self._cfg.host, self._cfg.port), timeout=3):
                reason = "TLS or protocol handshake failed" if self._cfg.tls else "handshake failed"
        except OSError as exc:
            reason = exc.strerror or str(exc)
        self._report(
            f"cannot connect to MQTT broker {self._where} ({reason}); "
            f"queueing to the outbox and retrying every {self._cfg.reconnect_min_s}.."
            f"{self._cfg.reconnect_max_s} s"
        )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._resending = True
        if was_connected and not self._stopping:
            self._report(
                f"lost MQTT broker {self._where} ({reason_code}); queueing to the outbox "
                "and reconnecting"
            )

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker %s rejected message %d: %s", self._where, mid, reason_code)
        self._acked.append(mid)
        self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._sub_lock:
            callbacks = [
                cb
                for f, cb in self._subscriptions.items()
                if mqtt.topic_matches_sub(f, message.topic)
            ]
        if len(message.payload) > MAX_PAYLOAD_BYTES:
            self.rejected.reject(message.topic, f"{len(message.payload)} bytes is too large")
            return
        # Nothing may escape into paho's network thread: an exception there ends the thread,
        # and with it every publish, while the client still looks connected. Nested brackets
        # (RecursionError) and a 5,000-digit number (ValueError) are ordinary bad input here.
        try:
            payload = json.loads(message.payload)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            self.rejected.reject(message.topic, f"not JSON ({_brief(exc)})")
            return
        for callback in callbacks:
            try:
                callback(message.topic, payload)
            except InputError as exc:
                self.rejected.reject(message.topic, str(exc))
                return
            except Exception as exc:  # contained: see above
                self.rejected.reject(message.topic, f"input handler failed ({_brief(exc)})")
                return
        self.rejected.accept(message.topic)


def _brief(exc: BaseException) -> str:
    """``Type: message`` of an exception, at most 120 characters, one line."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 120 else text[:117] + "..."
