"""The station daemon (``geoedge run``): wires a site to the outbox and the broker.

The daemon owns no algorithm. It opens the outbox, starts the :class:`Publisher`,
builds the site named by ``station.kind`` and runs it in a thread:

- ``beach``: :func:`edge.beach_pipeline.beach_site` (capture -> products, then
  waterline -> slope -> shoreline after each collection)
- ``gpr``: :func:`edge.gpr.unit.gpr_site` (trace stream -> cavities)

A site factory is called as ``factory(config, emit, subscribe)``. A site has
``run(stop: threading.Event) -> None``, which returns once ``stop`` is
set and its current collection/scan is finished or checkpointed, and ``stats() ->
dict`` (its own counters; the key ``last_collection``, a UTC ISO time or None, is
copied into the ``stats`` message). It sends results with ``emit(kind, message)``
(:meth:`Daemon.emit`, a complete payload built with :func:`edge.messages.envelope`),
which returns once the message is durably in the outbox. A site that needs MQTT
inputs (tide, waves) registers them with ``subscribe(topic_filter, callback)``
(:meth:`Daemon.subscribe`).

SIGTERM/SIGINT set ``stop``; the daemon waits for the site, sends what is queued
for up to ``mqtt.shutdown_grace_s`` s, publishes the retained status offline and
exits 0 (1 if the site failed). An unreachable broker is one log line; messages
keep queueing in the outbox.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from edge.config import StationConfig
from edge.errors import GeoEdgeError
from edge.health import stats_message
from edge.messages import json_safe, topic
from edge.outbox import Outbox
from edge.publisher import InputCallback, Publisher

log = logging.getLogger(__name__)

#: ``emit(kind, message)``: store a message of ``kind`` (a key of edge.messages.TOPICS).
Emit = Callable[[str, dict[str, Any]], None]


class Site(Protocol):
    """What the daemon runs: a beach station or a GPR unit."""

    def run(self, stop: threading.Event) -> None: ...

    def stats(self) -> dict[str, Any]: ...


#: ``subscribe(topic_filter, callback)``: deliver MQTT input messages to ``callback``.
Subscribe = Callable[[str, InputCallback], None]
SiteFactory = Callable[[StationConfig, Emit, Subscribe], Site]

#: ``station.kind`` -> "module:factory" of the site, imported only when needed.
SITES = {"beach": "edge.beach_pipeline:beach_site", "gpr": "edge.gpr.unit:gpr_site"}


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
    """One station process: site thread + outbox + publisher + stats timer."""

    def __init__(self, config: StationConfig, site_factory: SiteFactory | None = None) -> None:
        self.config = config
        self.station = config.station.id
        self.stop = threading.Event()
        self._factory = site_factory or load_site_factory(SITES[config.station.kind])
        self.outbox = Outbox(
            config.outbox.path, config.outbox.max_messages, config.outbox.max_bytes
        )
        try:
            self.publisher = Publisher(config.mqtt, self.station, self.outbox)
        except GeoEdgeError:
            self.outbox.close()
            raise
        self._started = time.monotonic()
        self._site: Site | None = None
        self._exit_code = 0

    def emit(self, kind: str, message: dict[str, Any]) -> None:
        """Store ``message`` (JSON) for topic ``<prefix>/<station>/<TOPICS[kind]>``.

        Returns once it is durably in the outbox; raises GeoEdgeError when it cannot
        be stored (disk full).
        """
        payload = json.dumps(json_safe(message), separators=(",", ":"))
        self.outbox.put(topic(self.config.mqtt.topic_prefix, self.station, kind), payload)

    def subscribe(self, topic_filter: str, callback: InputCallback) -> None:
        """Call ``callback(topic, json_payload)`` for each message on ``topic_filter``."""
        self.publisher.subscribe(topic_filter, callback)

    def request_stop(self, reason: str) -> None:
        if not self.stop.is_set():
            log.info("%s: finishing the current work, then stopping", reason)
        self.stop.set()

    def run(self) -> int:
        """Run until SIGTERM/SIGINT or until the site returns; the process exit code."""
        try:
            self._site = self._factory(self.config, self.emit, self.subscribe)
        except BaseException:
            self.outbox.close()
            raise
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.publisher.start()
            site_thread = threading.Thread(target=self._run_site, name="site")
            site_thread.start()
            self._emit_stats()
            while not self.stop.wait(self.config.mqtt.stats_interval_s):
                self._emit_stats()
            site_thread.join()
            self._emit_stats()
            self.publisher.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.outbox.close()
        log.info("stopped (exit %d)", self._exit_code)
        return self._exit_code

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

    def _emit_stats(self) -> None:
        assert self._site is not None
        try:
            site_stats = dict(self._site.stats())
        except Exception as exc:
            site_stats = {"error": f"stats() failed: {exc}"}
        message = stats_message(
            self.station,
            started_monotonic=self._started,
            outbox=self.outbox,
            products_dir=self.config.collection.output_dir,
            site_stats=site_stats,
        )
        # On failure the outbox logged why; a stats snapshot is not worth stopping for.
        with contextlib.suppress(GeoEdgeError):
            self.emit("stats", message)
