"""Inbound MQTT messages (tide, waves, commands): validation failures, logged once.

Input callbacks validate their payload and raise :class:`~edge.errors.InputError`
naming what is wrong; :class:`RejectedInputs` turns that into one warning for the
first bad message on a topic (and one info line when the topic sends a good message
again), counts every rejection per topic for ``stats``, and never lets a payload
reach the daemon's threads as an exception.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from edge.errors import InputError
from edge.station.messages import epoch_seconds

log = logging.getLogger(__name__)

#: Bytes above which an inbound payload is refused before it is parsed.
MAX_PAYLOAD_BYTES = 64 * 1024


class RejectedInputs:
    """Per-topic rejection counts; the first rejection of a run of bad messages is logged."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._failing: set[str] = set()

    def reject(self, topic: str, reason: str) -> None:
        with self._lock:
            self._counts[topic] = self._counts.get(topic, 0) + 1
            first = topic not in self._failing
            self._failing.add(topic)
        if first:
            log.warning("input on %s ignored: %s (further bad messages counted in stats)",
                        topic, reason)  # fmt: skip

    def accept(self, topic: str) -> None:
        with self._lock:
            if topic not in self._failing:
                return
            self._failing.discard(topic)
            count = self._counts[topic]
        log.info("input on %s is valid again (%d message(s) ignored so far)", topic, count)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def number(payload: Any, key: str, low: float, high: float, unit: str = "") -> float:
    """``payload[key]`` as a finite number within [low, high]; InputError otherwise."""
    if not isinstance(payload, dict):
        raise InputError(f"expected a JSON object, got {type(payload).__name__}")
    if key not in payload:
        raise InputError(f"no {key!r} field")
    value = payload[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{key!r} is not a number ({value!r})")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise InputError(f"{key!r} = {value}{unit} is outside [{low}, {high}]{unit}")
    return value


#: A reading stamped further ahead of the station clock than this (s) is refused.
MAX_CLOCK_LEAD_S = 3600.0


def reading_time(payload: dict[str, Any], key: str | None, now: float) -> float:
    """The reading's UTC time from ``payload[key]`` (ISO 8601 or epoch s), else ``now``."""
    if key is None or key not in payload:
        return now
    try:
        when = epoch_seconds(payload[key])
    except (TypeError, ValueError) as exc:
        raise InputError(f"{key!r} is not a UTC time ({exc})") from None
    if not math.isfinite(when) or when > now + MAX_CLOCK_LEAD_S:
        raise InputError(f"{key!r} = {payload[key]!r} is in the future")
    return when
