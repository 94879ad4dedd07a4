"""Frame sampling by timestamp and clock-aligned collection windows.

Times are epoch seconds, UTC. A window is ``(start, end)`` with ``start``
inclusive and ``end`` exclusive. Sampling uses frame *timestamps*, never frame
counts, so a 25 fps, a 29.97 fps and a variable-rate stream all give
``sample_hz`` frames per second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge.config.collection import CollectionSection

#: Windows are ``(start, end)`` epoch seconds UTC, start inclusive, end exclusive.
Window = tuple[float, float]

_DAY_S = 86400.0
#: Slack for float round-off when a timestamp lands exactly on a slot boundary (s).
_EPS_S = 1e-6


def expected_frames(duration_s: float, sample_hz: float) -> int:
    """Frames a full window of ``duration_s`` seconds yields at ``sample_hz``."""
    return max(1, math.ceil(duration_s * sample_hz - 1e-9))


def too_few_frames(frame_count: int, expected: int, min_fraction: float) -> bool:
    """True when a collection got fewer than ``min_fraction`` of its expected frames."""
    return frame_count < min_fraction * expected


class Sampler:
    """Pick frames at ``sample_hz`` by their timestamps.

    Time is cut into slots of ``1 / sample_hz`` seconds starting at ``anchor``
    (the window start); the first frame whose timestamp falls in a slot not yet
    sampled is taken. A frame earlier than the last taken slot (a clock stepped
    back) is skipped. Gaps in the stream simply leave slots empty.
    """

    def __init__(self, sample_hz: float, anchor: float) -> None:
        if sample_hz <= 0:
            raise ValueError(f"sample_hz must be > 0, got {sample_hz}")
        self.sample_hz = float(sample_hz)
        self.anchor = float(anchor)
        self._last_slot: int | None = None

    def slot(self, t: float) -> int:
        """Index of the sampling slot holding timestamp ``t`` (s)."""
        return math.floor((t - self.anchor + _EPS_S) * self.sample_hz)

    def take(self, t: float) -> bool:
        """Whether the frame stamped ``t`` (epoch s) is sampled; records it if so."""
        k = self.slot(t)
        if k < 0 or (self._last_slot is not None and k <= self._last_slot):
            return False
        self._last_slot = k
        return True


@dataclass(frozen=True)
class Schedule:
    """Clock-aligned collection windows of a :class:`CollectionSection`.

    Windows start ``offset_min + k * interval_min`` minutes after each UTC
    midnight, last ``duration_min`` minutes, and run only when their start lies in
    the daylight hours. All methods are pure functions of their arguments.
    """

    collection: CollectionSection

    @property
    def duration_s(self) -> float:
        return self.collection.duration_min * 60.0

    def next_window(self, now: float) -> Window:
        """The first window that has not ended at ``now``: the one in progress, or the next.

        A window in progress is returned as scheduled (its start lies before ``now``);
        the caller collects what remains and flags a short collection.
        """
        day0 = math.floor(now / _DAY_S) * _DAY_S
        for day in (day0 - _DAY_S, day0, day0 + _DAY_S, day0 + 2 * _DAY_S):
            for offset in self.collection.day_starts_s():
                start = day + offset
                if start + self.duration_s > now and self.collection.starts_in_daylight(offset):
                    return (start, start + self.duration_s)
        # Unreachable: the config guarantees one daylight start per day.
        raise ValueError(f"no collection window after {now} with {self.collection}")

    def back_to_back(self, window: Window) -> Window:
        """The window right after ``window`` (``align = "immediate"``)."""
        return (window[1], window[1] + self.duration_s)
