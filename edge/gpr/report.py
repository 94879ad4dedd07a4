"""Cavity reports: the ``geoedge.cavity/1`` message and a B-scan PNG snippet with the box.

Message fields (DESIGN.md): ``trace`` is the apex trace (0-based, per channel, in
the file or stream), ``distance_m`` the apex's along-track distance from the first
trace, ``depth_top_m`` the depth of the reflector top below time zero (``v t0 /
2``), ``width_m`` the target's along-track size with ``width_source``: ``radius`` (twice
the fitted cylinder radius), ``fresnel`` (no radius resolved: the first Fresnel zone's
diameter at the target's depth, an upper bound) or ``box`` (antenna frequency unknown: the
detection box's width); ``height_m`` the vertical size where the hyperbola fit constrains a
radius (else null); ``radius_m`` the cylinder radius the fit resolves, with its standard
error ``radius_sd_m`` (both null when the point-reflector hyperbola explains the picks as
well: the radius is not resolved, F test and standard error in :mod:`edge.gpr.hyperbola`);
``time_zero_ns`` the line's time zero (ns after the first recorded sample; depths and
``two_way_time_ns`` count from it);
``position``/``lon``/``lat`` are null without GNSS, and ``position_note`` then
says why (no GNSS, a gap longer than allowed, no fix after the trace);
``distance_source`` says where ``distance_m`` came from (``file``, ``gnss`` path
length, ``odometer``). ``channels`` and
``trace_range`` give the de-duplicated extent; ``channel`` is the channel of the
most confident detection. A stream's messages also carry ``line_start``, the UTC
time of the line's first trace (from its frame), which is part of their ids.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.gpr.dedup import Cavity
from edge.station.messages import envelope, utc_iso


def cavity_id(
    station: str, source: str, channel: int, trace: float, line_start: float | None = None
) -> str:
    """Stable id: the same cavity of the same line gets the same id on every run.

    A file is keyed by its name; a stream (``line_start`` given: the UTC epoch time
    of the line's first trace, from its frame) by that time instead, since trace
    numbers restart with every line and the address is no part of the line's
    identity. A line replayed after a restart keeps its ids; two lines never share one.
    """
    line = Path(source).name if line_start is None else f"stream@{line_start:.6f}"
    key = f"{station}|{line}|{channel}|{round(trace)}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def cavity_message(
    cavity: Cavity,
    station: str,
    crs: str,
    source: str,
    when: float | None = None,
    snippet: str | None = None,
    line_start: float | None = None,
    time_zero_ns: float = 0.0,
) -> dict[str, Any]:
    """The ``gpr/cavity`` payload of one de-duplicated cavity (``line_start``: streams;
    ``time_zero_ns``: the line's time zero, ns after the first recorded sample)."""
    b = cavity.best
    position = None if b.x is None else {"crs": crs, "x": b.x, "y": b.y}
    extra = {} if line_start is None else {"line_start": utc_iso(line_start)}
    return envelope(
        "cavity",
        station,
        time.time() if when is None else when,
        id=cavity_id(station, source, b.channel, b.apex_trace, line_start),
        **{"class": b.cls},
        confidence=round(b.confidence, 4),
        channel=b.channel,
        channels=cavity.channels,
        trace=round(b.apex_trace),
        distance_m=round(
            b.distance_m if b.reported_distance_m is None else b.reported_distance_m, 3
        ),
        distance_source=b.distance_source,
        depth_top_m=round(b.depth_top_m, 3),
        width_m=round(cavity.width_m, 3),
        width_source=b.width_source,
        height_m=None if cavity.height_m is None else round(cavity.height_m, 3),
        velocity_m_per_ns=round(b.velocity_m_per_ns, 4),
        velocity_source=b.velocity_source,
        two_way_time_ns=round(b.t0_ns, 3),
        time_zero_ns=round(time_zero_ns, 3),
        radius_m=None if b.radius_m is None else round(b.radius_m, 3),
        radius_sd_m=None if b.radius_sd_m is None else round(b.radius_sd_m, 3),
        position=position,
        lon=b.lon,
        lat=b.lat,
        position_note=b.position_note,
        source=source,
        trace_range=list(cavity.trace_range),
        time_range_ns=[round(b.time_range_ns[0], 3), round(b.time_range_ns[1], 3)],
        detections=cavity.detections,
        snippet=snippet,
        **extra,
    )


def snippet_png(data: np.ndarray, box: tuple[float, float, float, float], scale: int = 2) -> bytes:
    """Grey B-scan ``(samples, traces)`` with the box (trace0, sample0, trace1, sample1) in red."""
    lo, hi = np.percentile(data, [1, 99]) if data.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    grey = np.clip((data - lo) / span * 255, 0, 255).astype(np.uint8)
    img = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    t0, s0, t1, s1 = (round(v * scale) for v in box)
    cv2.rectangle(img, (t0, s0), (t1, s1), (0, 0, 255), 1)
    ok, png = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return png.tobytes()


def write_snippet(cavity: Cavity, directory: Path, cavity_id_: str) -> str | None:
    """Write the cavity's snippet PNG as ``<id>.png`` in ``directory``; its path, or None."""
    b = cavity.best
    if b.snippet is None or b.box is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{cavity_id_}.png"
    path.write_bytes(snippet_png(b.snippet, b.box))
    return str(path)
