"""The hub's daemon (composition root only): store + subscriber + HTTP server, stopped by SIGTERM.

:class:`HubService` opens the store, starts the subscriber (:mod:`edge.hub.ingest`) and the
HTTP server (:mod:`edge.hub.api`), tells systemd it is ready (``Type=notify``), and then pings
the watchdog only while the subscriber's storing thread makes progress (an idle turn counts:
no traffic is no fault; a store that keeps failing, or a thread that died, stops the pings and
systemd restarts the hub). SIGTERM/SIGINT: stop serving, store and acknowledge what is queued
(at most ``GRACE_S``), disconnect, exit 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Mapping, Sequence

from edge.hub.api import ApiServer, HubApi, Route
from edge.hub.config import HubConfig
from edge.hub.dashboard import DashboardApi
from edge.hub.images import ImageArchive
from edge.hub.ingest import Ingest, TopicHandler
from edge.hub.store import Store
from edge.station.sd_notify import Notifier

log = logging.getLogger(__name__)

#: Seconds between the main loop's turns (watchdog, status line).
TICK_S = 1.0
#: Seconds at shutdown to store what is queued.
GRACE_S = 5.0
#: The storing thread without progress this long (s) stops the watchdog pings.
STALL_S = 60.0


class HubService:
    """The hub of ``config``. ``handlers`` and ``routes`` are the seams for more topic kinds
    (images) and their HTTP routes."""

    def __init__(
        self,
        config: HubConfig,
        handlers: Mapping[str, TopicHandler] | None = None,
        routes: Sequence[Route] = (),
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.notifier = notifier or Notifier.from_environment()
        self.stop = threading.Event()
        self.store = Store(config.store_url(), config.store_shown())
        try:
            hub = config.hub
            self.images = ImageArchive(
                hub.images_dir, self.store.engine, hub.image_keep_days, hub.image_keep_mb,
                hub.max_payload_kb * 1024,
            )  # fmt: skip
            dashboard = DashboardApi(config, self.store, self.images)
            handlers = {"image": self.images.handle, **(handlers or {})}
            self.ingest = Ingest(config, self.store, handlers=handlers)
            api = HubApi(config, self.store, self.ingest.counts, lambda: self.ingest.connected)
            self.server = ApiServer(api, [*dashboard.routes(), *routes])
        except BaseException:
            self.store.close()
            raise

    def _status_line(self) -> str:
        c = self.ingest.counts()
        broker = "broker connected" if self.ingest.connected else "broker NOT connected"
        store = "; store FAILING" if c.store_failing else ""
        return (f"hub {self.config.hub.address}; {c.stored} stored, {c.duplicates} duplicate, "
                f"{sum(c.rejected.values())} rejected; {broker}{store}")  # fmt: skip

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or :attr:`stop` is set); the process exit code."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.ingest.start()
            self.server.start()
            log.info("hub: serving http://%s/ (store %s)", self.config.hub.address,
                     self.config.store_shown())  # fmt: skip
            self.notifier.ready(self._status_line())
            while not self.stop.wait(TICK_S):
                stalled = time.monotonic() - self.ingest.last_progress > STALL_S
                if self.ingest.alive() and not stalled:
                    self.notifier.watchdog()
                self.notifier.status(self._status_line())
            self.notifier.stopping("hub stopping")
            self.server.stop()
            self.ingest.stop(GRACE_S)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.store.close()
        log.info("hub: stopped")
        return 0

    def _on_signal(self, signum: int, frame: object) -> None:
        log.info("hub: %s, stopping", signal.Signals(signum).name)
        self.stop.set()
