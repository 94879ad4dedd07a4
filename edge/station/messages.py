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
import re
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


#: ISO 8601 date and time as stations and gauges write it: extended or basic format, a space
#: or ``T``, any number of fractional digits, ``Z`` / ``+hh:mm`` / ``+hhmm`` / ``+hh`` or none.
_ISO = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})[T ](\d{2}):?(\d{2})(?::?(\d{2})(?:[.,](\d+))?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)


def _iso_datetime(text: str) -> dt.datetime:
    """The datetime of an ISO 8601 time (the same on Python 3.10, whose ``fromisoformat``
    takes only its own output); naive when the text has no zone. ValueError otherwise."""
    m = _ISO.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an ISO 8601 time: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    micro = round(float(f"0.{fraction}") * 1e6) if fraction else 0
    tz = None
    if zone == "Z":
        tz = dt.timezone.utc
    elif zone:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        tz = dt.timezone(sign * offset)
    base = dt.datetime(int(year), int(month), int(day), int(hour), int(minute),
                       int(second or 0), tzinfo=tz)  # fmt: skip
    return base + dt.timedelta(microseconds=micro)


def epoch_seconds(value: Any, naive_is_utc: bool = False) -> float:
    """Epoch seconds (UTC) from a number or an ISO 8601 time (``...Z`` or ``+hh:mm``).

    A time without a zone raises ValueError, unless ``naive_is_utc`` reads it as UTC.
    """
    if isinstance(value, int | float):
        return float(value)
    when = _iso_datetime(str(value))
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
