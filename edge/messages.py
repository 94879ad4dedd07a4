"""Message envelope shared by every MQTT payload and JSON output.

Every payload is JSON with ``"schema": "geoedge.<kind>/<major>"``, ``"station"``
and ``"time"`` (UTC, ISO 8601 with ``Z``); coordinates carry their CRS.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

#: MQTT sub-topic (under ``geoedge/<station>/``) and schema major version per message kind.
TOPICS: dict[str, str] = {
    "status": "status",
    "stats": "stats",
    "products": "beach/products",
    "waterline": "beach/waterline",
    "slope": "beach/slope",
    "shoreline": "beach/shoreline",
    "cavity": "gpr/cavity",
}
SCHEMA_MAJOR = 1


def utc_iso(t: float | dt.datetime) -> str:
    """UTC ISO 8601 with a ``Z`` suffix; ``t`` is epoch seconds or an aware datetime."""
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            raise ValueError("naive datetime: give an aware (UTC) datetime")
        when = t.astimezone(dt.UTC)
    else:
        when = dt.datetime.fromtimestamp(float(t), tz=dt.UTC)
    text = when.isoformat(timespec="milliseconds" if when.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def envelope(kind: str, station: str, time: float | dt.datetime, **payload: Any) -> dict[str, Any]:
    """A message of ``kind`` (a key of :data:`TOPICS`) with the common header fields first."""
    if kind not in TOPICS:
        raise KeyError(f"unknown message kind {kind!r} (expected one of {sorted(TOPICS)})")
    return {
        "schema": f"geoedge.{kind}/{SCHEMA_MAJOR}",
        "station": station,
        "time": utc_iso(time),
        **payload,
    }


def topic(prefix: str, station: str, kind: str) -> str:
    """Full MQTT topic, e.g. ``geoedge/chuam-01/beach/waterline``."""
    return f"{prefix}/{station}/{TOPICS[kind]}"


def json_safe(value: Any) -> Any:
    """Replace NaN/inf floats (not valid JSON) by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
