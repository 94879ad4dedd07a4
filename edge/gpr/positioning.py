"""Where a trace is: along-track distance (m), position in the station CRS and lon/lat.

Sources, in order of preference for the along-track distance: the source's own
per-trace distance (survey wheel, header positions), else GNSS path length, else
``trace index * trace_spacing_m`` (odometer setting). Positions come only from
GNSS: fixes (WGS 84 lat/lon) are projected with pyproj to the station CRS
(``station.crs``, x east / y north in metres for a projected CRS) and
interpolated linearly per trace, either by trace index (DZG/COR fixes carry the
scan number) or by time (an NMEA log plus per-trace UTC times). Across a GNSS gap
longer than ``max_gap_traces`` traces, and outside the first/last fix, a trace
has no position (None) rather than an invented one. lon/lat are the inverse
projection of the interpolated x/y. Fixes below ``min_fix_quality`` are not used.

A live stream with live GNSS (:mod:`edge.gpr.live.gnss`) uses :class:`LivePositioner`
instead: each trace's UTC time is looked up in the receiver's track, and the
along-track distance is the GNSS path length from the line's first trace where
the trace has a position, else the odometer count ``trace index *
trace_spacing_m``. Every position says where its distance came from
(``distance_source``: ``file``, ``gnss`` or ``odometer``) and, when it has no
x/y, why (``reason``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyproj import Transformer

from edge.errors import InputError
from edge.gpr.formats.nmea import epoch, parse_sentence
from edge.gpr.live.gnss import GnssTrack
from edge.gpr.traces import GpsFix, TraceBlock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TracePosition:
    """Position of one (fractional) trace: distance (m), CRS x/y (m) and lon/lat (degrees).

    ``distance_source`` is ``file`` (the source's own distances), ``gnss`` (path
    length along the fixes) or ``odometer`` (trace index x spacing); ``reason`` says
    why x/y/lon/lat are None.
    """

    distance_m: float
    x: float | None
    y: float | None
    lon: float | None
    lat: float | None
    distance_source: str = "odometer"
    reason: str | None = None


def read_nmea_log(path: Path) -> list[GpsFix]:
    """GGA/RMC fixes of a plain NMEA log, keyed by time (``trace`` = NaN; needs a date: RMC)."""
    try:
        lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read NMEA log ({exc.strerror or exc})") from None
    fixes, date = [], None
    for line in lines:
        fix = parse_sentence(line)
        if fix is None:
            continue
        date = fix.date or date
        when = epoch(date, fix.seconds_of_day)
        if when is not None:
            fixes.append(GpsFix(float("nan"), fix.lat, fix.lon, fix.alt_m, when, fix.quality))
    return fixes


class TrackPositioner:
    """Interpolates positions and distances for trace indices (see the module docstring)."""

    def __init__(
        self,
        crs: str,
        fixes: Sequence[GpsFix] = (),
        *,
        min_fix_quality: int = 1,
        max_gap_traces: int = 2000,
        trace_spacing_m: float | None = None,
        distance_m: np.ndarray | None = None,
        trace_times: np.ndarray | None = None,
    ) -> None:
        self.crs = crs
        self._to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        self._to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        self.max_gap = max_gap_traces
        self.spacing = trace_spacing_m
        self.distance = distance_m
        good = [f for f in fixes if f.quality >= min_fix_quality]
        self.fixes_used = len(good)
        self.fixes_rejected = len(fixes) - len(good)
        keyed = [f for f in good if np.isfinite(f.trace)]
        if not keyed and trace_times is not None and len(trace_times) > 1:
            keyed = _fixes_by_time(good, np.asarray(trace_times, float))
        keyed.sort(key=lambda f: f.trace)
        self._t = np.array([f.trace for f in keyed], float)
        lon = np.array([f.lon for f in keyed], float)
        lat = np.array([f.lat for f in keyed], float)
        x, y = self._to_crs.transform(lon, lat) if keyed else (lon, lat)
        self._x: np.ndarray = np.asarray(x, float)
        self._y: np.ndarray = np.asarray(y, float)
        self._path = np.concatenate(
            [[0.0], np.cumsum(np.hypot(np.diff(self._x), np.diff(self._y)))]
        )

    @property
    def has_gnss(self) -> bool:
        return self._t.size > 0

    def xy(self, traces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CRS x, y (m) for trace indices; NaN outside the fixes or across a long gap."""
        traces = np.atleast_1d(np.asarray(traces, float))
        x = np.full(traces.shape, np.nan)
        y = np.full(traces.shape, np.nan)
        if self._t.size == 0:
            return x, y
        if self._t.size == 1:
            at = np.abs(traces - self._t[0]) <= 0.5
            x[at], y[at] = self._x[0], self._y[0]
            return x, y
        inside = (traces >= self._t[0]) & (traces <= self._t[-1])
        seg = np.clip(np.searchsorted(self._t, traces, side="right") - 1, 0, self._t.size - 2)
        gap = self._t[seg + 1] - self._t[seg]
        ok = inside & (gap <= self.max_gap)
        x[ok] = np.interp(traces[ok], self._t, self._x)
        y[ok] = np.interp(traces[ok], self._t, self._y)
        return x, y

    def distance_m(self, traces: np.ndarray) -> np.ndarray:
        """Along-track distance (m) from the first trace of the file, for trace indices."""
        traces = np.atleast_1d(np.asarray(traces, float))
        if self.distance is not None and self.distance.size > 1:
            idx = np.arange(self.distance.size)
            inside = np.interp(traces, idx, self.distance)
            step = (self.distance[-1] - self.distance[0]) / (self.distance.size - 1)
            past = traces > idx[-1]
            inside[past] = self.distance[-1] + (traces[past] - idx[-1]) * step
            return inside
        if self.spacing is not None:
            return traces * self.spacing
        if self._t.size > 1:  # GNSS path length, counted from the first fix
            return np.interp(traces, self._t, self._path)
        return np.full(traces.shape, np.nan)

    def observe(self, block: TraceBlock) -> None:
        """Nothing to learn from a block: a file's positions are known from the start."""
        del block

    def locate(self, trace: float) -> TracePosition:
        """Distance, CRS position and lon/lat of one (fractional) trace index."""
        x, y = self.xy(np.array([trace]))
        d = float(self.distance_m(np.array([trace]))[0])
        if self.distance is not None and self.distance.size > 1:
            source = "file"
        else:
            source = "odometer" if self.spacing is not None else "gnss"
        if not np.isfinite(x[0]):
            if not self.has_gnss:
                reason = "no GNSS in the source or the config"
            elif self._t[0] <= trace <= self._t[-1]:
                reason = f"GNSS gap longer than {self.max_gap} traces at the trace"
            else:
                reason = "trace outside the GNSS track"
            return TracePosition(d, None, None, None, None, source, reason)
        lon, lat = self._to_lonlat.transform(x[0], y[0])
        return TracePosition(d, float(x[0]), float(y[0]), float(lon), float(lat), source)


class LivePositioner:
    """Positions of a live line's traces from a live GNSS track, by trace time.

    ``observe`` each block before asking about its traces: the positioner keeps
    the UTC times (plus ``time_offset_s``) of the last ``keep_traces`` traces.
    :meth:`locate` waits up to ``max_wait_s`` for a fix at or after a trace newer
    than the newest fix, unless the trace is already more than the track's
    ``max_gap_s`` past it (no fix could bridge that) or a wait has timed out with
    no fix since (an outage: the stream is never held up twice for it).
    """

    def __init__(
        self,
        track: GnssTrack,
        spacing_m: float,
        *,
        time_offset_s: float = 0.0,
        max_wait_s: float = 2.0,
        keep_traces: int = 1 << 16,
    ) -> None:
        self.track, self.spacing = track, spacing_m
        self.time_offset_s, self.max_wait_s = time_offset_s, max_wait_s
        self._times = np.full(keep_traces, np.nan)
        self._seen = 0
        self._line_t0: float | None = None
        self._anchor: tuple[float, float] | None = None  # (path s, odometer distance) there
        self._outage_version: int | None = None
        self.waits = 0
        self.wait_timeouts = 0
        self.waited_s = 0.0
        self.positioned = 0
        self.unpositioned = 0

    def observe(self, block: TraceBlock) -> None:
        """Record the trace times of the next block of the line."""
        n = block.n_traces
        times = (
            np.full(n, np.nan)
            if block.trace_times is None
            else np.asarray(block.trace_times, float) + self.time_offset_s
        )
        idx = (self._seen + np.arange(n)) % self._times.size
        self._times[idx] = times
        if self._line_t0 is None and n and np.isfinite(times[0]):
            self._line_t0 = float(times[0])
        self._seen += n
        self._set_anchor()

    def distance_m(self, traces: np.ndarray) -> np.ndarray:
        """Odometer distance (m) from the line's first trace: ``trace * trace_spacing_m``."""
        return np.atleast_1d(np.asarray(traces, float)) * self.spacing

    def time_of(self, trace: float) -> float:
        """UTC time of a (fractional) trace index; NaN when unknown or no longer held."""
        lo = int(np.floor(trace))
        hi = min(lo + 1, self._seen - 1)
        if lo < max(self._seen - self._times.size, 0) or lo >= self._seen:
            return float("nan")
        t_lo, t_hi = self._times[lo % self._times.size], self._times[hi % self._times.size]
        return float(t_lo + (trace - lo) * (t_hi - t_lo)) if hi > lo else float(t_lo)

    def locate(self, trace: float) -> TracePosition:
        """Distance, CRS position and lon/lat of one (fractional) trace of the line."""
        odometer = float(trace) * self.spacing
        when = self.time_of(trace)
        if not np.isfinite(when):
            self.unpositioned += 1
            return TracePosition(
                odometer, None, None, None, None, "odometer", "no UTC time for the trace"
            )
        self._wait_for(when)
        point = self.track.at(when)
        self._set_anchor()
        if point.x is None or point.s is None or self._anchor is None:
            self.unpositioned += 1
            reason = point.reason or "no GNSS fix at the start of the line"
            return TracePosition(odometer, None, None, None, None, "odometer", reason)
        self.positioned += 1
        s0, d0 = self._anchor
        lon, lat = self.track.to_lonlat.transform(point.x, point.y)
        return TracePosition(point.s - s0 + d0, point.x, point.y, float(lon), float(lat), "gnss")

    def stats(self) -> dict[str, float | int]:
        return {
            "positioned": self.positioned,
            "unpositioned": self.unpositioned,
            "gnss_waits": self.waits,
            "gnss_wait_timeouts": self.wait_timeouts,
            "gnss_waited_s": round(self.waited_s, 3),
        }

    def _wait_for(self, when: float) -> None:
        newest = self.track.newest_time
        if newest is not None and newest >= when:
            return
        if newest is not None and when - newest > self.track.max_gap_s:
            return
        if self._outage_version == self.track.version or self.max_wait_s <= 0:
            return
        self.waits += 1
        t0 = time.monotonic()
        if not self.track.wait_for(when, self.max_wait_s):
            self.wait_timeouts += 1
            self._outage_version = self.track.version
            log.warning(
                "GNSS: no fix after trace time %.3f within %.1f s; null positions until one comes",
                when,
                self.max_wait_s,
            )
        self.waited_s += time.monotonic() - t0

    def _set_anchor(self) -> None:
        """Fix the GNSS path length of the line's start, once: at the first trace if the
        track covers it, else at the first fix after it (odometer distance there)."""
        if self._anchor is not None or self._line_t0 is None:
            return
        start = self.track.at(self._line_t0)
        if start.s is not None:
            self._anchor = (start.s, 0.0)
            return
        first = self.track.first_fix_after(self._line_t0)
        if first is None:
            return
        t_f, s_f = first
        lo = max(self._seen - self._times.size, 0)
        held = self._times[np.arange(lo, self._seen) % self._times.size]
        if not held.size or not held[0] <= t_f <= held[-1]:
            return
        index = lo + float(np.interp(t_f, held, np.arange(held.size)))
        self._anchor = (s_f, index * self.spacing)


def _fixes_by_time(fixes: Sequence[GpsFix], trace_times: np.ndarray) -> list[GpsFix]:
    """Attach time-keyed fixes to fractional trace indices by interpolating the trace times."""
    timed = [(f, f.time) for f in fixes if f.time is not None]
    if not timed or np.any(np.diff(trace_times) <= 0):
        return []
    idx = np.arange(trace_times.size, dtype=float)
    out = []
    for f, when in timed:
        if trace_times[0] <= when <= trace_times[-1]:
            t = float(np.interp(when, trace_times, idx))
            out.append(GpsFix(t, f.lat, f.lon, f.alt_m, when, f.quality))
    return out
