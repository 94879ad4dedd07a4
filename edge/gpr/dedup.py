"""De-duplication: one cavity per physical target, across overlapping windows and channels.

Overlapping windows see the same hyperbola twice, and neighbouring channels of an
antenna array see the same void. Two candidates are the same target when they
have the same class, their apexes are within ``distance_m`` along track (m) and
``depth_m`` in depth (m), and their channels are at most ``channels`` apart
(0 = same channel only). Groups grow transitively (a void seen on channels 3, 4
and 5 is one cavity). The reported cavity is the most confident member, with the
group's extent: all its channels, the union of trace ranges, and the largest
width and height.

In a stream a group is closed, and reported, once the stream has moved more than
``distance_m`` plus one window past it; :meth:`Deduplicator.flush` closes the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CavityCandidate:
    """One localised detection in one window (units: m, ns, m/ns; traces 0-based per channel).

    ``distance_m`` is the stream's own along-track measure (the source's distance or
    the odometer), used to group and close candidates; ``reported_distance_m`` the
    distance the message reports when it differs (the GNSS path length), with
    ``distance_source``; ``position_note`` says why x/y/lon/lat are None.
    ``snippet`` is the window's processed data and ``box`` the box in it, (trace0,
    sample0, trace1, sample1), for the report image.
    """

    cls: str
    confidence: float
    channel: int
    apex_trace: float
    distance_m: float
    depth_top_m: float
    width_m: float
    height_m: float | None
    velocity_m_per_ns: float
    velocity_source: str
    t0_ns: float
    trace_range: tuple[int, int]
    time_range_ns: tuple[float, float]
    x: float | None = None
    y: float | None = None
    lon: float | None = None
    lat: float | None = None
    radius_m: float | None = None
    reported_distance_m: float | None = None
    distance_source: str = "odometer"
    position_note: str | None = None
    snippet: np.ndarray | None = field(default=None, repr=False, compare=False)
    box: tuple[float, float, float, float] | None = None
    window_first_trace: int = 0


@dataclass
class Cavity:
    """A de-duplicated cavity: the best candidate and the group's extent."""

    best: CavityCandidate
    channels: list[int]
    trace_range: tuple[int, int]
    width_m: float
    height_m: float | None
    detections: int
    extra: dict[str, Any] = field(default_factory=dict)


def _same(
    a: CavityCandidate, b: CavityCandidate, distance_m: float, depth_m: float, channels: int
) -> bool:
    return (
        a.cls == b.cls
        and abs(a.distance_m - b.distance_m) <= distance_m
        and abs(a.depth_top_m - b.depth_top_m) <= depth_m
        and abs(a.channel - b.channel) <= channels
    )


def merge(group: list[CavityCandidate]) -> Cavity:
    """The cavity a group of candidates stands for (see the module docstring)."""
    best = max(group, key=lambda c: c.confidence)
    heights = [c.height_m for c in group if c.height_m is not None]
    return Cavity(
        best=best,
        channels=sorted({c.channel for c in group}),
        trace_range=(min(c.trace_range[0] for c in group), max(c.trace_range[1] for c in group)),
        width_m=max(c.width_m for c in group),
        height_m=max(heights) if heights else None,
        detections=len(group),
    )


class Deduplicator:
    """Groups candidates as they arrive; :meth:`add` returns the cavities that closed."""

    def __init__(
        self, distance_m: float, depth_m: float, channels: int, horizon_m: float = 0.0
    ) -> None:
        self.distance_m = distance_m
        self.depth_m = depth_m
        self.channels = channels
        self.horizon_m = horizon_m
        self._groups: list[list[CavityCandidate]] = []

    def add(self, candidates: list[CavityCandidate], stream_distance_m: float) -> list[Cavity]:
        """Add candidates; close groups the stream (now at ``stream_distance_m``) has left."""
        for cand in candidates:
            hits = [
                g
                for g in self._groups
                if any(_same(cand, m, self.distance_m, self.depth_m, self.channels) for m in g)
            ]
            if not hits:
                self._groups.append([cand])
                continue
            first = hits[0]
            first.append(cand)
            for other in hits[1:]:
                first.extend(other)
                self._groups.remove(other)
        limit = stream_distance_m - self.distance_m - self.horizon_m
        closed = [g for g in self._groups if max(c.distance_m for c in g) < limit]
        self._groups = [g for g in self._groups if max(c.distance_m for c in g) >= limit]
        return [merge(g) for g in closed]

    def flush(self) -> list[Cavity]:
        """Close every open group (end of stream)."""
        out = [merge(g) for g in self._groups]
        self._groups = []
        return out


def deduplicate(
    candidates: list[CavityCandidate], distance_m: float, depth_m: float, channels: int
) -> list[Cavity]:
    """All candidates of a file at once -> cavities ordered along track."""
    dedup = Deduplicator(distance_m, depth_m, channels)
    dedup.add(candidates, stream_distance_m=-np.inf)
    return sorted(dedup.flush(), key=lambda c: (c.best.distance_m, c.best.channel))
