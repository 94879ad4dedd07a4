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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyproj import Transformer

from edge.errors import InputError
from edge.gpr.nmea import epoch, parse_sentence
from edge.gpr.traces import GpsFix


@dataclass(frozen=True)
class TracePosition:
    """Position of one (fractional) trace: distance (m), CRS x/y (m) and lon/lat (degrees)."""

    distance_m: float
    x: float | None
    y: float | None
    lon: float | None
    lat: float | None


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
        self._x, self._y = self._to_crs.transform(lon, lat) if keyed else (lon, lat)
        self._x, self._y = np.asarray(self._x, float), np.asarray(self._y, float)
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

    def locate(self, trace: float) -> TracePosition:
        """Distance, CRS position and lon/lat of one (fractional) trace index."""
        x, y = self.xy(np.array([trace]))
        d = float(self.distance_m(np.array([trace]))[0])
        if not np.isfinite(x[0]):
            return TracePosition(d, None, None, None, None)
        lon, lat = self._to_lonlat.transform(x[0], y[0])
        return TracePosition(d, float(x[0]), float(y[0]), float(lon), float(lat))


def _fixes_by_time(fixes: Sequence[GpsFix], trace_times: np.ndarray) -> list[GpsFix]:
    """Attach time-keyed fixes to fractional trace indices by interpolating the trace times."""
    timed = [f for f in fixes if f.time is not None]
    if not timed or np.any(np.diff(trace_times) <= 0):
        return []
    idx = np.arange(trace_times.size, dtype=float)
    out = []
    for f in timed:
        if trace_times[0] <= f.time <= trace_times[-1]:
            t = float(np.interp(f.time, trace_times, idx))
            out.append(GpsFix(t, f.lat, f.lon, f.alt_m, f.time, f.quality))
    return out
