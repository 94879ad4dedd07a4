"""The ``stats`` message: a health snapshot published every ``mqtt.stats_interval_s``.

Fields (besides the envelope): ``uptime_s`` (s since the daemon started),
``queue_depth`` / ``queue_bytes`` (messages and bytes waiting in the outbox,
this stats message not included), ``dropped`` (messages the outbox dropped by its
size policy, ever), ``last_collection`` (UTC ISO time of the site's last finished
collection or scan, taken from the site's ``stats()["last_collection"]``; null
before the first), ``disk_free_bytes`` (free bytes on the file systems holding the
outbox and the products directory), ``temperature_c`` (hottest
``/sys/class/thermal/thermal_zone*/temp`` in degrees Celsius; null where the
machine has none) and ``site`` (the site's own ``stats()`` dict).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from edge.messages import envelope, json_safe
from edge.outbox import Outbox

THERMAL_ROOT = Path("/sys/class/thermal")


def soc_temperature_c(thermal_root: Path = THERMAL_ROOT) -> float | None:
    """Hottest thermal zone in degrees Celsius (sysfs gives millidegrees), or None."""
    readings = []
    for zone in sorted(thermal_root.glob("thermal_zone*/temp")):
        try:
            readings.append(int(zone.read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue  # a zone that cannot be read (sensor off) is skipped
    return max(readings) if readings else None


def disk_free_bytes(path: Path) -> int | None:
    """Free bytes on the file system of ``path`` (or its nearest existing parent)."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def stats_message(
    station: str,
    *,
    started_monotonic: float,
    outbox: Outbox,
    products_dir: Path,
    site_stats: dict[str, Any],
    thermal_root: Path = THERMAL_ROOT,
) -> dict[str, Any]:
    """The ``stats`` payload for ``station`` now (see the module docstring for fields)."""
    return envelope(
        "stats",
        station,
        time.time(),
        uptime_s=round(time.monotonic() - started_monotonic, 1),
        queue_depth=outbox.depth(),
        queue_bytes=outbox.size_bytes(),
        dropped=outbox.dropped(),
        last_collection=site_stats.get("last_collection"),
        disk_free_bytes={
            "outbox": disk_free_bytes(outbox.path.parent),
            "products": disk_free_bytes(products_dir),
        },
        temperature_c=soc_temperature_c(thermal_root),
        site=json_safe(site_stats),
    )
