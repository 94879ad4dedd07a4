"""The ``stats`` message: a health snapshot published every ``mqtt.stats_interval_s``.

Fields (besides the envelope):

- ``uptime_s``: s since the daemon started.
- ``queue_depth`` / ``queue_bytes``: messages and bytes waiting in the outbox (this
  stats message not included); ``oldest_queued_s``: how long the oldest has waited
  (null when empty); ``dropped``: messages the outbox dropped by its size policy,
  ever; ``duplicates_refused``: recomputed results refused as already sent, ever;
  ``refused_too_large``: results larger than ``outbox.max_bytes``, refused (never sent);
  ``held_in_memory``: results the outbox could not store (disk full), kept in
  memory and retried.
- ``broker_connected``: whether the MQTT session is up.
- ``collections`` / ``collections_failed``: beach collections (or GPR lines) done,
  and of those the ones that gave no result; ``last_collection``: UTC ISO time of
  the last one (null before the first).
- ``frames_per_s`` / ``traces_per_s``: camera frames read and GPR traces processed
  per second since the previous snapshot (null for the first snapshot; the one
  that does not apply to the site is 0).
- ``disk_free_bytes``: free bytes on the file systems holding the outbox and the
  products; ``disk_full``: true while products are not written for lack of space.
- ``temperature_c``: hottest ``/sys/class/thermal/thermal_zone*/temp`` in degrees
  Celsius; null where the machine has none.
- ``inputs_rejected``: inbound messages (tide, waves, commands) ignored as
  malformed or out of range, per topic.
- ``site``: the site's own ``stats()`` dict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.station.disk_space import free_bytes
from edge.station.messages import envelope, json_safe
from edge.station.outbox import Outbox

THERMAL_ROOT = Path("/sys/class/thermal")
#: Site counters turned into per-second rates: stats key -> site stats key.
RATES = {"frames_per_s": "frames_read", "traces_per_s": "traces_processed"}


def soc_temperature_c(thermal_root: Path = THERMAL_ROOT) -> float | None:
    """Hottest thermal zone in degrees Celsius (sysfs gives millidegrees), or None."""
    readings = []
    for zone in sorted(thermal_root.glob("thermal_zone*/temp")):
        try:
            readings.append(int(zone.read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue  # a zone that cannot be read (sensor off) is skipped
    return max(readings) if readings else None


@dataclass
class HealthMonitor:
    """Builds ``stats`` messages; remembers the previous counters for the rates."""

    station: str
    outbox: Outbox
    products_dir: Path
    thermal_root: Path = THERMAL_ROOT
    started: float = field(default_factory=time.monotonic)
    _previous: tuple[float, dict[str, float]] | None = None

    def message(self, site_stats: dict[str, Any], **daemon: Any) -> dict[str, Any]:
        """The ``stats`` payload now; ``daemon`` adds the daemon's own fields
        (``held_in_memory``, ``broker_connected``, ``disk_full``, ``inputs_rejected``)."""
        now = time.monotonic()
        counters = {k: float(site_stats.get(v) or 0) for k, v in RATES.items()}
        rates: dict[str, float | None] = dict.fromkeys(RATES)
        if self._previous is not None and now > self._previous[0]:
            then, before = self._previous
            for key, value in counters.items():
                rates[key] = round(max(0.0, value - before[key]) / (now - then), 2)
        self._previous = (now, counters)
        return envelope(
            "stats",
            self.station,
            time.time(),
            uptime_s=round(now - self.started, 1),
            queue_depth=self.outbox.depth(),
            queue_bytes=self.outbox.size_bytes(),
            oldest_queued_s=_rounded(self.outbox.oldest_age_s()),
            dropped=self.outbox.dropped(),
            duplicates_refused=self.outbox.duplicates(),
            collections=site_stats.get("collections", 0),
            collections_failed=site_stats.get("collections_failed", 0),
            last_collection=site_stats.get("last_collection"),
            **rates,
            disk_free_bytes={
                "outbox": free_bytes(self.outbox.path.parent),
                "products": free_bytes(self.products_dir),
            },
            temperature_c=soc_temperature_c(self.thermal_root),
            **daemon,
            site=json_safe(site_stats),
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
