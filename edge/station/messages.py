"""Message envelope shared by every MQTT payload and JSON output.

Every payload is JSON with ``"schema": "geoedge.<kind>/<major>"``, ``"station"``
and ``"time"`` (UTC, ISO 8601 with ``Z``); coordinates carry their CRS.

Result messages (every kind but ``status`` and ``stats``) also carry an ``"id"``
that is a pure function of what the result is about (station, kind and the
collection time; a cavity's own id names its source, channel and trace), never of
when it was computed. A result recomputed after a restart therefore has the same
id: the outbox refuses it as already sent, and a control room can de-duplicate
on ``id`` whatever the transport did.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
#: Kinds that are health or presence, not results: no ``id``, never de-duplicated.
NOT_RESULTS = frozenset({"status", "stats"})


def utc_iso(t: float | dt.datetime) -> str:
    """UTC ISO 8601 with a ``Z`` suffix; ``t`` is epoch seconds or an aware datetime."""
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            raise ValueError("naive datetime: give an aware (UTC) datetime")
        when = t.astimezone(dt.timezone.utc)
    else:
        when = dt.datetime.fromtimestamp(float(t), tz=dt.timezone.utc)
    text = when.isoformat(timespec="milliseconds" if when.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def epoch_seconds(value: Any, naive_is_utc: bool = False) -> float:
    """Epoch seconds (UTC) from a number or an ISO 8601 time (``...Z`` or ``+hh:mm``).

    A time without a zone raises ValueError, unless ``naive_is_utc`` reads it as UTC.
    """
    if isinstance(value, int | float):
        return float(value)
    when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is None:
        if not naive_is_utc:
            raise ValueError(f"time {value!r} has no time zone")
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def envelope(kind: str, station: str, time: float | dt.datetime, **payload: Any) -> dict[str, Any]:
    """A message of ``kind`` (a key of :data:`TOPICS`) with the common header fields first."""
    if kind not in TOPICS:
        raise KeyError(f"unknown message kind {kind!r} (expected one of {sorted(TOPICS)})")
    header = {"schema": f"geoedge.{kind}/{SCHEMA_MAJOR}", "station": station, "time": utc_iso(time)}
    if kind not in NOT_RESULTS and "id" not in payload:
        header["id"] = message_id(kind, station, header["time"])
    return {**header, **payload}


def message_id(kind: str, station: str, time_iso: str) -> str:
    """Deterministic id of the ``kind`` result of ``station`` at ``time_iso`` (16 hex)."""
    return hashlib.sha1(f"{station}|{kind}|{time_iso}".encode()).hexdigest()[:16]


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
