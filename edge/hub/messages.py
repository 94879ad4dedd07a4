"""Station messages as the hub reads them: topic + payload bytes -> a typed :class:`Record`.

The wire format is the station's (:mod:`edge.station.messages`, DESIGN.md "MQTT"): JSON with
``schema = "geoedge.<kind>/1"``, ``station``, ``time`` (UTC ISO 8601) and, for results, an
``id``. :func:`decode` checks exactly that much and keeps the payload as published; anything
else raises :class:`~edge.errors.InputError` with one line saying why (the subscriber counts
it and logs the first of a run). ``status`` and ``stats`` carry no ``id``: theirs is the
station's own rule (:func:`edge.station.messages.message_id` of station, kind and time), so a
retained status delivered again is stored once.

The rows derived from a record for the queries (a cavity's position, a shoreline's points per
transect) are built here too, as typed dataclasses; coordinates keep the CRS the station
published and add WGS84 (:mod:`edge.hub.wgs84`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from edge.errors import InputError
from edge.hub.wgs84 import to_wgs84
from edge.station.messages import NOT_RESULTS, SCHEMA_MAJOR, TOPICS, epoch_seconds, message_id

#: Message kind per sub-topic under ``<prefix>/<station>/`` (``beach/waterline`` -> waterline).
KIND_OF_SUBTOPIC: dict[str, str] = {sub: kind for kind, sub in TOPICS.items()}
#: Longest message id the hub stores (stations write 16 hex digits).
MAX_ID_CHARS = 128


@dataclass(frozen=True, slots=True)
class Record:
    """One station message, checked. ``time_s`` is the message's own time and ``received_s``
    when the hub took it, both epoch seconds UTC; ``text`` is the payload exactly as
    published (UTF-8 JSON) and ``payload`` its decoded object."""

    id: str
    kind: str
    station: str
    time_s: float
    received_s: float
    topic: str
    text: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Topic:
    """``<prefix>/<station>/<subtopic>`` taken apart."""

    station: str
    subtopic: str

    @property
    def first_level(self) -> str:
        return self.subtopic.split("/", 1)[0]


def split_topic(topic: str, prefix: str) -> Topic:
    """The station and the sub-topic of ``<prefix>/<station>/<subtopic>``; InputError else."""
    head, sep, rest = topic.partition(prefix + "/")
    station, _, subtopic = rest.partition("/")
    if head or not sep or not station or not subtopic:
        raise InputError(f"topic {topic!r} is not {prefix}/<station>/<kind>")
    return Topic(station, subtopic)


def decode(topic: str, data: bytes, received_s: float, prefix: str) -> Record:
    """The :class:`Record` of a station message on ``topic`` (under ``prefix``, the stations'
    ``mqtt.topic_prefix``); InputError naming what is wrong."""
    where = split_topic(topic, prefix)
    kind = KIND_OF_SUBTOPIC.get(where.subtopic)
    if kind is None:
        raise InputError(f"no station message kind is published on {where.subtopic!r}")
    try:
        text = data.decode("utf-8")
        payload = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise InputError(f"expected a JSON object, got {type(payload).__name__}")
    schema = f"geoedge.{kind}/{SCHEMA_MAJOR}"
    if payload.get("schema") != schema:
        raise InputError(f"schema {payload.get('schema')!r} is not {schema!r}")
    if payload.get("station") != where.station:
        raise InputError(
            f"station {payload.get('station')!r} does not match the topic's {where.station!r}"
        )
    try:
        time_s = epoch_seconds(payload.get("time"))
    except (TypeError, ValueError):
        raise InputError(f"'time' is not a UTC ISO 8601 time ({payload.get('time')!r})") from None
    if not math.isfinite(time_s):
        raise InputError("'time' is not finite")
    if kind in NOT_RESULTS:
        ident = message_id(kind, where.station, str(payload["time"]))
    else:
        given = payload.get("id")
        if not isinstance(given, str) or not 0 < len(given) <= MAX_ID_CHARS:
            raise InputError(f"a {kind} message needs an 'id' of 1..{MAX_ID_CHARS} characters")
        ident = given
    return Record(ident, kind, where.station, time_s, received_s, topic, text, payload)


def finite_number(value: object) -> float | None:
    """``value`` as a float when it is a finite JSON number; None otherwise (null, text, bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class CavityPosition:
    """Where a cavity is: ``x``/``y`` in ``crs`` as published (None without GNSS), and
    ``lon``/``lat`` in WGS84 degrees (the station's, else transformed from x/y here)."""

    crs: str | None
    x: float | None
    y: float | None
    lon: float | None
    lat: float | None


def cavity_position(payload: dict[str, Any]) -> CavityPosition:
    """The position of a ``cavity`` payload (its ``position`` object and ``lon``/``lat``)."""
    raw = payload.get("position")
    position: dict[str, Any] = raw if isinstance(raw, dict) else {}
    crs = position.get("crs") if isinstance(position.get("crs"), str) else None
    x, y = finite_number(position.get("x")), finite_number(position.get("y"))
    lon, lat = finite_number(payload.get("lon")), finite_number(payload.get("lat"))
    if (lon is None or lat is None) and crs and x is not None and y is not None:
        lon, lat = to_wgs84(crs, [(x, y)])[0]
    return CavityPosition(crs, x, y, lon, lat)


@dataclass(frozen=True, slots=True)
class CavityRow:
    """A cavity for the ``cavities`` table: its class, confidence (0..1) and position."""

    id: str
    station: str
    time_s: float
    cls: str
    confidence: float | None
    position: CavityPosition


def cavity_row(record: Record) -> CavityRow:
    """The row of a ``cavity`` record."""
    p = record.payload
    cls = str(p["class"]) if isinstance(p.get("class"), str) else "unknown"
    return CavityRow(record.id, record.station, record.time_s, cls,
                     finite_number(p.get("confidence")), cavity_position(p))  # fmt: skip


@dataclass(frozen=True, slots=True)
class ShorelinePoint:
    """The tide-datum shoreline on one transect at one time: ``distance_m`` is the chainage
    from the transect's landward end, positive seaward (m)."""

    message_id: str
    station: str
    transect: str
    time_s: float
    distance_m: float


def shoreline_points(record: Record) -> list[ShorelinePoint]:
    """The available per-transect shoreline positions of a ``shoreline`` record."""
    out = []
    transects = record.payload.get("transects")
    for t in transects if isinstance(transects, list) else []:
        if not isinstance(t, dict) or t.get("available") is False:
            continue
        distance, name = finite_number(t.get("distance_m")), t.get("id")
        if distance is not None and isinstance(name, str):
            out.append(ShorelinePoint(record.id, record.station, name, record.time_s, distance))
    return out
