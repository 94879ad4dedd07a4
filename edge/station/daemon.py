"""The station daemon (``geoedge run``): wires a site to the outbox and the broker.

The daemon owns no algorithm. It opens the outbox, starts the :class:`Publisher`,
builds the site named by ``station.kind`` and runs it in a thread:

- ``beach``: :func:`edge.beach.site.beach_site` (capture -> products, then
  waterline -> slope -> shoreline after each collection)
- ``gpr``: :func:`edge.gpr.site.gpr_site` (trace stream -> cavities)

A site factory is called as ``factory(config, emit, subscribe)``. A site has
``run(stop: threading.Event) -> None``, which returns once ``stop`` is
set and its current collection/scan is finished or checkpointed, and ``stats() ->
dict`` (its own counters; the key ``last_collection``, a UTC ISO time or None, is
copied into the ``stats`` message). It sends results with ``emit(kind, message)``
(:meth:`Daemon.emit`, a complete payload built with :func:`edge.station.messages.envelope`),
which returns once the message is durably in the outbox. A site that needs MQTT
inputs (tide, waves) registers them with ``subscribe(topic_filter, callback)``
(:meth:`Daemon.subscribe`).

A site may also have ``progress() -> float``: the ``time.monotonic()`` of its last
sign of life (a frame or trace processed, a turn of a read loop, a wait between
windows). Result messages carry a deterministic ``id``; :meth:`Daemon.emit` stores
them under that key, so a result recomputed after a restart is not sent twice.

Unattended operation (systemd ``Type=notify``, see systemd/geoedge.service):

- READY=1 once the site is built and the publisher started; STATUS= a line a
  person can read in ``systemctl status`` (updated every tick); STOPPING=1 on
  SIGTERM.
- WATCHDOG=1 every half ``WatchdogSec`` only while the pipeline makes progress:
  the site's ``progress()`` is younger than that interval, and, when the broker is
  up with messages queued, the outbox drained within it. A stalled pipeline stops
  the pings and systemd restarts the service.
- When the outbox cannot store a result (disk full), the result is held in memory
  (``held_in_memory`` in stats) and stored as soon as the outbox accepts it again. A
  result larger than ``outbox.max_bytes`` can never be stored: it is refused once, with
  one error line, counted (``refused_too_large``), and nothing queues behind it.
- Every ``stats`` snapshot is also written to ``status.json`` beside the outbox for
  ``geoedge status``; product retention (:mod:`edge.station.retention`) runs every
  ``storage.sweep_interval_s``.
- ``mqtt.publish_images``: after a result is stored, the images it names are queued in a
  second, bounded outbox (``images.sqlite``) that the publisher drains only while no result
  waits (:mod:`edge.station.images`); ``stats`` reports them under ``images``.
- Inbound ``<prefix>/<station>/cmd`` messages: ``{"command": "stats"}`` publishes a
  stats snapshot now. Anything else is ignored and counted (``inputs_rejected``).

SIGTERM/SIGINT set ``stop``; the daemon waits for the site, sends what is queued
for up to ``mqtt.shutdown_grace_s`` s, publishes the retained status offline and
exits 0 (1 if the site failed, or if results held in memory were lost at shutdown: the
error line says how many). An unreachable broker is one log line; messages keep queueing
in the outbox.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from edge.config import StationConfig
from edge.errors import GeoEdgeError, InputError, TooLargeError
from edge.station.health import HealthMonitor
from edge.station.images import ImageSender
from edge.station.messages import json_safe, topic
from edge.station.outbox import Outbox
from edge.station.publisher import Publisher
from edge.station.retention import sweep
from edge.station.sd_notify import Notifier
from edge.station.site import InputCallback, Site, SiteFactory

log = logging.getLogger(__name__)

#: Seconds between two turns of the daemon's loop (held results, watchdog, STATUS).
TICK_S = 1.0
#: Without a systemd watchdog, a site or outbox idle this long (s) counts as stalled
#: in STATUS (and the status file), though nothing is restarted.
STALL_S = 300.0
#: Results kept in memory at most while the outbox cannot store them (disk full).
MAX_HELD = 10_000
#: Commands accepted on ``<prefix>/<station>/cmd``.
COMMANDS = ("stats",)
#: At most one command acted on per this many seconds; the rest are coalesced.
COMMAND_INTERVAL_S = 5.0

#: ``station.kind`` -> "module:factory" of the site, imported only when needed.
SITES = {"beach": "edge.beach.site:beach_site", "gpr": "edge.gpr.site:gpr_site"}


def load_site_factory(spec: str) -> SiteFactory:
    """Import ``"module:Class"``; a missing piece is a one-line GeoEdgeError naming it."""
    module_name, _, class_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise GeoEdgeError(
            f"cannot start the site: {module_name}.{class_name} is missing from this build "
            f"(no module named {exc.name!r})"
        ) from None
    except ImportError as exc:
        raise GeoEdgeError(
            f"cannot start the site: {module_name}.{class_name} cannot be imported ({exc})"
        ) from None
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise GeoEdgeError(f"cannot start the site: {module_name} has no {class_name}") from None


class Daemon:
    """One station process: site thread + outbox + publisher + health loop."""

    def __init__(
        self,
        config: StationConfig,
        site_factory: SiteFactory | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.station = config.station.id
        self.stop = threading.Event()
        self._factory = site_factory or load_site_factory(SITES[config.station.kind])
        self.notifier = notifier or Notifier.from_environment()
        self.outbox = Outbox(
            config.outbox.path,
            config.outbox.max_messages,
            config.outbox.max_bytes,
            remember_s=config.outbox.remember_days * 86400.0,
            reserve_bytes=round(config.outbox.reserve_mb * (1 << 20)),
        )
        self.outbox.keep_reserve()
        self.images: ImageSender | None = None
        try:
            if config.mqtt.publish_images:
                self.images = ImageSender(
                    Outbox(
                        config.outbox.path.with_name("images.sqlite"),
                        max_bytes=round(config.mqtt.image_queue_mb * (1 << 20)),
                    ),
                    config.mqtt.topic_prefix,
                    self.station,
                    config.collection.output_dir,
                    config.mqtt.image_max_kb * 1024,
                )
            self.publisher = Publisher(
                config.mqtt,
                self.station,
                self.outbox,
                None if self.images is None else self.images.outbox,
            )
        except GeoEdgeError:
            self._close_outboxes()
            raise
        self.health = HealthMonitor(self.station, self.outbox, config.collection.output_dir)
        self.status_file = config.outbox.path.parent / "status.json"
        self._held: deque[tuple[str, str, str | None]] = deque()
        self._held_lock = threading.Lock()
        self._stats_now = threading.Event()
        self._site: Site | None = None
        self._site_thread: threading.Thread | None = None
        self._exit_code = 0
        #: Results refused because they exceed outbox.max_bytes (``stats``: refused_too_large).
        self.refused_too_large = 0
        #: Commands coalesced into one acted on within COMMAND_INTERVAL_S (``stats``).
        self.commands_coalesced = 0
        #: A message unacknowledged this long on a connected link means the link is stuck.
        self._link_window_s = max(60.0, 3.0 * config.mqtt.keepalive_s)
        self._last_command = -COMMAND_INTERVAL_S
        self._stalled: str | None = None
        self._stalled_kind: str | None = None

    # -- what sites and inputs call -----------------------------------------------------

    def emit(self, kind: str, message: dict[str, Any]) -> None:
        """Store ``message`` (JSON) for topic ``<prefix>/<station>/<TOPICS[kind]>``.

        Returns once it is durably in the outbox, or, when the outbox cannot store
        it (disk full), once it is held in memory to be stored later (never lost
        while the process lives). A result whose ``id`` was already queued or sent
        is not stored again.
        """
        payload = json.dumps(json_safe(message), separators=(",", ":"))
        full_topic = topic(self.config.mqtt.topic_prefix, self.station, kind)
        key = f"{full_topic}|{message['id']}" if "id" in message else None
        with self._held_lock:
            self._held.append((full_topic, payload, key))
            self._store_held()
        if self.images is not None:
            self.images.offer(kind, message)

    def subscribe(self, topic_filter: str, callback: InputCallback) -> None:
        """Call ``callback(topic, json_payload)`` for each message on ``topic_filter``."""
        self.publisher.subscribe(topic_filter, callback)

    def request_stop(self, reason: str) -> None:
        if not self.stop.is_set():
            log.info("%s: finishing the current work, then stopping", reason)
            self.notifier.stopping(f"{reason}: finishing the current work")
        self.stop.set()

    # -- main loop ------------------------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM/SIGINT or until the site returns; the process exit code."""
        try:
            self._site = self._factory(self.config, self.emit, self.subscribe)
        except BaseException:
            self._close_outboxes()
            raise
        self.subscribe(f"{self.config.mqtt.topic_prefix}/{self.station}/cmd", self._on_command)
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.publisher.start()
            self._site_thread = threading.Thread(target=self._run_site, name="site")
            self._site_thread.start()
            self.notifier.ready(self._status_line())
            self._loop()
            self._site_thread.join()
            self._emit_stats()
            self.publisher.stop()
            with self._held_lock:
                lost = sum(1 for t, _, _ in self._held if not t.endswith("/stats"))
                if lost:
                    log.error("%d result(s) held in memory could not be stored: lost", lost)
                    self._exit_code = max(self._exit_code, 1)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._close_outboxes()
        log.info("stopped (exit %d)", self._exit_code)
        return self._exit_code

    def _loop(self) -> None:
        cfg = self.config
        next_stats = time.monotonic()
        next_sweep = time.monotonic()
        next_ping = time.monotonic()
        while not self.stop.wait(TICK_S):
            now = time.monotonic()
            with self._held_lock:
                self._store_held()
            self.outbox.keep_reserve()
            if self._stats_now.is_set() or now >= next_stats:
                self._stats_now.clear()
                self._emit_stats()
                next_stats = now + cfg.mqtt.stats_interval_s
            if now >= next_sweep:
                self._sweep()
                next_sweep = now + cfg.storage.sweep_interval_s
            interval = self.notifier.watchdog_interval_s
            if now >= next_ping:
                self._check_progress(interval or STALL_S)
                if self._stalled is None:
                    self.notifier.watchdog()
                self.notifier.status(self._status_line())
                next_ping = now + min(interval or 10.0, 10.0)

    def _close_outboxes(self) -> None:
        self.outbox.close()
        if self.images is not None:
            self.images.outbox.close()

    def _on_signal(self, signum: int, frame: object) -> None:
        self.request_stop(signal.Signals(signum).name)

    def _run_site(self) -> None:
        assert self._site is not None
        try:
            self._site.run(self.stop)
        except Exception:
            log.exception("the site stopped on an error")
            self._exit_code = 1
        finally:
            self.stop.set()

    # -- held results ---------------------------------------------------------------------

    def _store_held(self) -> None:
        """Move held messages into the outbox, oldest first; stop at the first refusal.

        Called with ``_held_lock`` held. Stats snapshots are not worth holding: one
        that cannot be stored is dropped (the next one supersedes it).
        """
        while self._held:
            full_topic, payload, key = self._held[0]
            try:
                self.outbox.put(full_topic, payload, key=key)
            except TooLargeError as exc:
                # It can never fit: refused once, loudly, counted; nothing waits behind it.
                self._held.popleft()
                if not full_topic.endswith("/stats"):
                    self.refused_too_large += 1
                    log.error("result refused, it can never be sent: %s", exc)
                continue
            except GeoEdgeError:
                if full_topic.endswith("/stats"):
                    self._held.popleft()
                    continue
                if len(self._held) > MAX_HELD:
                    lost = self._held.popleft()
                    log.error("more than %d results held in memory: dropped %s", MAX_HELD, lost[2])
                return
            self._held.popleft()

    # -- health ---------------------------------------------------------------------------

    def _site_stats(self) -> dict[str, Any]:
        assert self._site is not None
        try:
            return dict(self._site.stats())
        except Exception as exc:
            return {"error": f"stats() failed: {exc}"}

    def _emit_stats(self) -> None:
        site_stats = self._site_stats()
        with self._held_lock:
            held = sum(1 for t, _, _ in self._held if not t.endswith("/stats"))
        message = self.health.message(
            site_stats,
            held_in_memory=held,
            refused_too_large=self.refused_too_large,
            commands_coalesced=self.commands_coalesced,
            broker_connected=self.publisher.link_alive(self._link_window_s),
            disk_full=bool(site_stats.get("disk_full", False)),
            inputs_rejected=self.publisher.rejected.counts(),
            stalled=self._stalled,
            images=None if self.images is None else self.images.stats(),
        )
        self.emit("stats", message)
        self._write_status_file(message, self._status_line(site_stats))

    def _write_status_file(self, message: dict[str, Any], status: str) -> None:
        """``status.json`` for ``geoedge status`` (atomic; skipped when the disk is full)."""
        doc = {
            "pid": os.getpid(),
            "station": self.station,
            "kind": self.config.station.kind,
            "stats_interval_s": self.config.mqtt.stats_interval_s,
            "status": status,
            "stats": json_safe(message),
        }
        tmp = self.status_file.with_name(self.status_file.name + ".part")
        try:
            tmp.write_text(json.dumps(doc, indent=1) + "\n")
            os.replace(tmp, self.status_file)
        except OSError as exc:
            log.debug("cannot write %s (%s)", self.status_file, exc.strerror)

    def _check_progress(self, limit_s: float) -> None:
        """Set ``_stalled`` to why the pipeline is stuck (None when it progresses).

        Stuck: the site's ``progress()`` is older than ``limit_s``, or, with the
        broker up, the oldest queued message has waited longer than ``limit_s`` and
        nothing was acknowledged within it. Logged once when it starts and ends.
        """
        now = time.monotonic()
        stalled, kind = None, None
        alive = self._site_thread is not None and self._site_thread.is_alive()
        waited = self.outbox.oldest_age_s() or 0.0
        idle_s = now - self._site.progress() if alive and self._site is not None else 0.0
        if idle_s > limit_s:
            kind = "site"
            stalled = f"the {self.config.station.kind} pipeline made no progress for {idle_s:.0f} s"
        elif (
            self.publisher.connected
            and waited > limit_s
            and now - self.publisher.last_progress > limit_s
        ):
            kind = "outbox"
            stalled = f"the outbox has not drained for {waited:.0f} s"
        if kind != self._stalled_kind:
            if stalled is not None:
                log.error("%s: watchdog pings stop (systemd restarts a stalled service)", stalled)
            else:
                log.info("the pipeline makes progress again")
        self._stalled, self._stalled_kind = stalled, kind

    def _status_line(self, site: dict[str, Any] | None = None) -> str:
        """One line for ``systemctl status`` and ``geoedge status``; ``site`` is the
        site's ``stats()`` when the caller already has it."""
        if site is None:
            site = self._site_stats() if self._site is not None else {}
        parts = [f"{self.config.station.kind} {self.station}"]
        if self._stalled:
            parts.append(f"STALLED: {self._stalled}")
        last = site.get("last_collection")
        parts.append(
            f"{site.get('collections', 0)} done, {site.get('collections_failed', 0)} failed"
            + (f", last {last}" if last else "")
        )
        age = self.outbox.oldest_age_s()
        parts.append(
            f"outbox {self.outbox.depth()} queued" + (f" (oldest {age:.0f} s)" if age else "")
        )
        mqtt_cfg = self.config.mqtt
        if not mqtt_cfg.enabled:
            parts.append("MQTT disabled: messages stay in the outbox")
        else:
            if self.publisher.link_alive(self._link_window_s):
                parts.append("broker connected")
            elif self.publisher.connected:
                parts.append("broker connected but nothing acknowledged: link stuck")
            else:
                parts.append("broker unreachable")
            if mqtt_cfg.tls is not None and mqtt_cfg.tls.insecure:
                parts.append("TLS host name NOT verified (mqtt.tls.insecure)")
        if site.get("disk_full"):
            parts.append("DISK FULL: products not written")
        with self._held_lock:
            if self._held:
                parts.append(f"{len(self._held)} result(s) held in memory")
        return "; ".join(parts)

    def _on_command(self, topic_name: str, payload: Any) -> None:
        """``{"command": "stats"}``: publish a stats snapshot now (from the main loop).

        At most one command is acted on (and logged) per ``COMMAND_INTERVAL_S``; the others
        are coalesced into it and counted (``commands_coalesced``): a flood of commands costs
        a few snapshots and log lines, not one each.
        """
        if not isinstance(payload, dict) or payload.get("command") not in COMMANDS:
            raise InputError(f'expected {{"command": one of {list(COMMANDS)}}}')
        now = time.monotonic()
        if now - self._last_command < COMMAND_INTERVAL_S:
            self.commands_coalesced += 1
            return
        self._last_command = now
        log.info(
            "command %s received on %s (%d coalesced so far)",
            payload["command"], topic_name, self.commands_coalesced,
        )  # fmt: skip
        self._stats_now.set()

    def _sweep(self) -> None:
        """Apply ``[storage]`` retention to the product and snippet folders."""
        cfg = self.config.storage
        dirs = [self.config.collection.output_dir]
        if self.config.gpr is not None and self.config.gpr.snippets is not None:
            dirs.append(self.config.gpr.snippets)
        max_age = None if cfg.max_age_days is None else cfg.max_age_days * 86400.0
        for directory in dirs:
            if not Path(directory).is_dir():
                continue
            result = sweep(
                Path(directory),
                max_age,
                cfg.max_bytes,
                keep=lambda p: p.name.startswith("reference."),
            )
            if result.deleted:
                log.info(
                    "retention: deleted %d file(s), %d bytes, from %s (%d bytes kept)",
                    result.deleted, result.freed_bytes, directory, result.kept_bytes,
                )  # fmt: skip
