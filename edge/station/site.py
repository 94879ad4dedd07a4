"""The seam between the daemon and a site (a beach station or a GPR unit).

The daemon builds a site with a :data:`SiteFactory`, hands it :data:`Emit` (store a result in the
durable outbox) and :data:`Subscribe` (deliver MQTT input messages), runs :meth:`Site.run` on a
thread of its own and watches :meth:`Site.progress` for its systemd watchdog.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from edge.config import StationConfig

#: ``emit(kind, message)``: store a message of ``kind`` (a key of
#: :data:`edge.station.messages.TOPICS`) in the outbox; the message is the JSON envelope.
Emit = Callable[[str, dict[str, Any]], None]
#: ``callback(topic, payload)``: one MQTT input message, its payload decoded from JSON.
InputCallback = Callable[[str, Any], None]
#: ``subscribe(topic_filter, callback)``: deliver MQTT input messages to ``callback``.
Subscribe = Callable[[str, InputCallback], None]


class Site(Protocol):
    """What the daemon runs: a beach station or a GPR unit."""

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set (or, for a finite source, until it ends)."""

    def progress(self) -> float:
        """``time.monotonic()`` of the last real progress (a frame, a trace, a result)."""

    def stats(self) -> dict[str, Any]:
        """The site's health figures for the ``stats`` message (JSON-safe)."""


SiteFactory = Callable[[StationConfig, Emit, Subscribe], Site]
