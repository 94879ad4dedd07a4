"""De-duplication: one cavity per physical target, across overlapping windows and channels.

Overlapping windows see the same hyperbola twice, and neighbouring channels of an
antenna array see the same void; rebar 15 cm apart are as many targets, although their
hyperbolas (and boxes) overlap. Two candidates are the same target when

* they have the same class and their channels are at most ``channels`` apart
  (0 = same channel only);
* their boxes overlap: the intersection of their (trace range x time range) boxes covers at
  least ``min_overlap`` of the smaller box;
* their apexes lie within the target's own extent: along track no farther apart than half
  the larger of their fitted widths (``width_m``), or the first Fresnel zone radius at their
  depth (``fresnel_m``: targets closer than that are not resolved apart), or ``tolerance_m``
  (about two trace spacings: the scatter of one apex fitted in two windows), whichever is
  most, and never more than ``distance_m``; in depth no farther apart than ``depth_m``, or
  than ``echo_m`` (the deeper one is an echo of the upper: an air void's bottom reflection,
  a pipe's ringing; measured on held-out synthetic survey lines, 7 of 16 false reports were
  such echoes 0.33-0.76 m under a target found at its top).

Groups grow transitively (a void seen on channels 3, 4 and 5 is one cavity). The reported
cavity takes its fit (apex, depth, width, velocity) from one member and the group's highest
confidence, with the group's extent: all its channels and the union of trace ranges. The
member chosen is one of the upper layer (within ``depth_m`` of the shallowest member: echoes
are not the target's top), and there, in this order, one from the narrowest window, one
whose fit resolved a radius (otherwise the width is only a Fresnel-zone upper bound), the
most confident.
Windows of several widths (``[gpr.windows] scales``) see one target: a wide window is
resampled to the same detector input, so its box is coarser along track and its fit less
precise (a 0.2 m pipe sized 0.19 m from a 256-trace window measured 0.27 m from a 768-trace
one; rebar 7 cm deep measured 4.3-5.3 cm from 512- and 1024-trace windows); wide windows are
there to find targets a narrow one does not hold whole.

In a stream a group is closed, and reported, once the stream has moved more than
``distance_m`` plus one window past it; :meth:`Deduplicator.flush` closes the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
    sample0, trace1, sample1), for the report image. ``width_m`` is the target's along-track
    size with ``width_source``: ``radius`` (twice the fitted cylinder radius), ``fresnel``
    (no radius resolved: the first Fresnel zone's diameter at the target's depth, the
    smallest width the radar tells apart, so an upper bound) or ``box`` (neither known: the
    box width); ``fresnel_m`` the first Fresnel zone radius (0 when the antenna frequency is
    unknown).
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
    width_source: str = "box"
    fresnel_m: float = 0.0
    radius_sd_m: float | None = None
    window_traces: int = 0  # width of the window it was found in (0 = unknown)


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


def box_overlap(a: CavityCandidate, b: CavityCandidate) -> float:
    """Intersection of the two (trace range x time range) boxes over the smaller box (0..1)."""
    w = min(a.trace_range[1], b.trace_range[1]) - max(a.trace_range[0], b.trace_range[0]) + 1
    h = min(a.time_range_ns[1], b.time_range_ns[1]) - max(a.time_range_ns[0], b.time_range_ns[0])
    if w <= 0 or h <= 0:
        return 0.0
    areas = [
        (c.trace_range[1] - c.trace_range[0] + 1) * (c.time_range_ns[1] - c.time_range_ns[0])
        for c in (a, b)
    ]
    return float(w * h / max(min(areas), 1e-12))


@dataclass(frozen=True)
class SameTarget:
    """When two candidates are one target (see the module docstring; m, 0..1, channels)."""

    distance_m: float
    depth_m: float
    channels: int
    min_overlap: float = 0.3
    tolerance_m: float = 0.0
    echo_m: float = 0.0

    def __call__(self, a: CavityCandidate, b: CavityCandidate) -> bool:
        own = max(a.width_m / 2.0, b.width_m / 2.0, a.fresnel_m, b.fresnel_m)
        reach = min(max(own, self.tolerance_m), self.distance_m)
        return (
            a.cls == b.cls
            and abs(a.channel - b.channel) <= self.channels
            and abs(a.distance_m - b.distance_m) <= reach
            and abs(a.depth_top_m - b.depth_top_m) <= max(self.depth_m, self.echo_m)
            and box_overlap(a, b) >= self.min_overlap
        )


def merge(group: list[CavityCandidate], depth_m: float = np.inf) -> Cavity:
    """The cavity a group of candidates stands for (see the module docstring): its fit
    comes from the members within ``depth_m`` of the shallowest (deeper ones are echoes)."""
    top = min(c.depth_top_m for c in group)
    upper = [c for c in group if c.depth_top_m <= top + depth_m]
    sized = min(upper, key=lambda c: (c.window_traces, c.radius_m is None, -c.confidence))
    best = replace(sized, confidence=max(c.confidence for c in group))
    heights = [c.height_m for c in group if c.height_m is not None]
    return Cavity(
        best=best,
        channels=sorted({c.channel for c in group}),
        trace_range=(min(c.trace_range[0] for c in group), max(c.trace_range[1] for c in group)),
        width_m=best.width_m,
        height_m=max(heights) if heights else None,
        detections=len(group),
    )


class Deduplicator:
    """Groups candidates as they arrive; :meth:`add` returns the cavities that closed."""

    def __init__(self, same: SameTarget, horizon_m: float = 0.0) -> None:
        self.same = same
        self.distance_m = same.distance_m
        self.horizon_m = horizon_m
        self._groups: list[list[CavityCandidate]] = []

    def add(self, candidates: list[CavityCandidate], stream_distance_m: float) -> list[Cavity]:
        """Add candidates; close groups the stream (now at ``stream_distance_m``) has left."""
        for cand in candidates:
            hits = [g for g in self._groups if any(self.same(cand, m) for m in g)]
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
        return [merge(g, self.same.depth_m) for g in closed]

    def flush(self) -> list[Cavity]:
        """Close every open group (end of stream)."""
        out = [merge(g, self.same.depth_m) for g in self._groups]
        self._groups = []
        return out


def deduplicate(candidates: list[CavityCandidate], same: SameTarget) -> list[Cavity]:
    """All candidates of a file at once -> cavities ordered along track."""
    dedup = Deduplicator(same)
    dedup.add(candidates, stream_distance_m=-np.inf)
    return sorted(dedup.flush(), key=lambda c: (c.best.distance_m, c.best.channel))
