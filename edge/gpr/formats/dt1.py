"""Sensors & Software pulseEKKO / Noggin DT1 files with their HD header.

The HD file is text, ``KEY = value`` lines (NUMBER OF TRACES, NUMBER OF PTS/TRC,
TIMEZERO AT POINT (1-based), TOTAL TIME WINDOW (ns), STEP SIZE USED, POSITION
UNITS, NOMINAL FREQUENCY (MHz)). The DT1 file is a sequence of traces, each a
128-byte header then the samples. The trace header is 25 little-endian floats
(GPS x/y/z as doubles) and a 28-byte comment; the ones used here: 0 trace
number, 4 position (in POSITION UNITS), 8 number of points, 20 bytes per point
(2 = int16, 4 = float32), 24 time window (ns).

Positions are converted to metres: ``ft`` (XLINE00 uses a 2 ft step) x 0.3048.
``dt = time window / points``. A truncated DT1 gives a warning and its complete
traces (fixed-size records); a missing or inconsistent HD raises InputError.

Trace times: the trace header's time of day (float 23, s past midnight, taken as UTC) on
the survey date the HD states (``YYYY-MM-DD`` line). GNSS: the ``.GPS`` sidecar
(:func:`~edge.gpr.formats.nmea.read_sns_gps`; a bad one is one warning). ``SURVEY MODE``
``CMP``/``WARR`` marks a gather (:attr:`~edge.gpr.traces.TraceBlock.survey_mode`), which
cavity detection refuses.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from pathlib import Path

import numpy as np

from edge.errors import InputError
from edge.gpr.formats.nmea import read_sns_gps
from edge.gpr.traces import (
    TraceBlock,
    header_number,
    read_key_values,
    required_positive,
    sibling_file,
)

log = logging.getLogger(__name__)

TRACE_HEADER_BYTES = 128
#: Float index of the trace header's time of day (s past midnight; byte 92).
TIME_OF_DAY = 23
_UNITS_TO_M = {"m": 1.0, "metres": 1.0, "meters": 1.0, "ft": 0.3048, "feet": 0.3048, "cm": 0.01}


def survey_date(hd_path: Path) -> dt.date | None:
    """The survey date an HD file states on a line of its own (``YYYY-MM-DD``), else None."""
    try:
        text = hd_path.read_text(encoding="latin-1")
    except OSError:
        return None
    for line in text.splitlines()[:5]:
        try:
            return dt.date.fromisoformat(line.strip())
        except ValueError:
            continue
    return None


def time_of_day_s(headers: np.ndarray) -> np.ndarray:
    """Seconds past midnight of each trace, from ``(n, 128)`` uint8 trace headers (float 23,
    taken as UTC); past a midnight within the block, the count goes on past 86400."""
    tod = np.ascontiguousarray(headers).view("<f4")[:, TIME_OF_DAY].astype(float)
    return tod + 86400.0 * np.cumsum(np.r_[0.0, np.diff(tod) < -43200.0])


def trace_times(headers: np.ndarray, day: dt.date | None) -> np.ndarray | None:
    """UTC epoch seconds of each trace from the trace headers' time of day and the HD's
    survey date; None without a date or when the headers carry no time (all zero)."""
    if day is None or not len(headers):
        return None
    tod = time_of_day_s(headers)
    if not np.any(tod):
        return None
    return calendar.timegm(day.timetuple()) + tod


def survey_mode(text: str) -> str:
    """``reflection`` (a common-offset profile; also when the HD does not say), ``cmp`` or
    ``warr`` (gathers: one midpoint, growing antenna separation), from ``SURVEY MODE``."""
    word = text.strip().lower()
    if "cmp" in word or "common mid" in word:
        return "cmp"
    if "warr" in word or "wide angle" in word:
        return "warr"
    return "reflection"


def read_hd(path: Path) -> dict[str, str]:
    """``KEY = value`` pairs of an HD file (keys upper-case, values stripped)."""
    return read_key_values(path, "=", "HD")


def read_dt1(path: str | Path) -> TraceBlock:
    """A DT1 + HD pair as one single-channel :class:`TraceBlock`."""
    path = Path(path)
    hd_path = sibling_file(path, ".hd")
    if hd_path is None:
        raise InputError(f"{path}: no HD header next to it (expected {path.with_suffix('.HD')})")
    hd = read_hd(hd_path)
    n_points = int(required_positive(hd, "NUMBER OF PTS/TRC", hd_path))
    window_ns = required_positive(hd, "TOTAL TIME WINDOW", hd_path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) < TRACE_HEADER_BYTES:
        raise InputError(f"{path}: no complete trace ({len(data)} bytes)")
    first = np.frombuffer(data, dtype="<f4", count=8)
    bytes_per_point = int(first[5]) if int(first[5]) in (2, 4) else 2
    if int(first[2]) not in (0, n_points):
        raise InputError(
            f"{path}: trace header says {int(first[2])} points, HD says {n_points} (expected equal)"
        )
    record = TRACE_HEADER_BYTES + n_points * bytes_per_point
    n = len(data) // record
    declared = (
        int(required_positive(hd, "NUMBER OF TRACES", hd_path)) if "NUMBER OF TRACES" in hd else n
    )
    if n == 0:
        raise InputError(f"{path}: no complete trace of {record} bytes")
    if len(data) % record or n < declared:
        log.warning(
            "%s: truncated: %d complete traces read (HD declares %d), %d trailing bytes ignored",
            path,
            n,
            declared,
            len(data) % record,
        )
    n = min(n, declared) if declared > 0 else n
    records = np.frombuffer(data, dtype=np.uint8, count=n * record).reshape(n, record)
    headers = records[:, :TRACE_HEADER_BYTES].copy().view("<f4")
    word = "<i2" if bytes_per_point == 2 else "<f4"
    samples = records[:, TRACE_HEADER_BYTES:].copy().view(word).astype(np.float32).T
    unit = hd.get("POSITION UNITS", "m").strip().lower()
    if unit not in _UNITS_TO_M:
        raise InputError(f"{hd_path}: POSITION UNITS {unit!r} unknown (expected m, ft or cm)")
    to_m = _UNITS_TO_M[unit]
    positions = headers[:, 1].astype(float) * to_m
    step_hd = header_number(hd, "STEP SIZE USED", hd_path)
    step = None if step_hd is None else step_hd * to_m
    t0_point = header_number(hd, "TIMEZERO AT POINT", hd_path)  # 1-based
    t0 = 0.0 if t0_point is None else t0_point - 1.0
    freq = header_number(hd, "NOMINAL FREQUENCY", hd_path)
    header: dict[str, str | float] = {k.lower(): v for k, v in hd.items()}
    header.update({"bytes_per_point": bytes_per_point, "position_unit_to_m": to_m})
    day = survey_date(hd_path)
    gps_path = sibling_file(path, ".gps")
    gps = [] if gps_path is None else read_sns_gps(gps_path, day)
    return TraceBlock(
        samples=samples[np.newaxis],
        dt_ns=window_ns / n_points,
        time_zero_sample=max(t0, 0.0),
        distance_m=positions - positions[0],
        trace_spacing_m=step,
        trace_times=trace_times(records[:, :TRACE_HEADER_BYTES], day),
        gps=[g for g in gps if g.trace < n],
        antenna_mhz=freq,
        survey_mode=survey_mode(hd.get("SURVEY MODE", "")),
        bits=8 * bytes_per_point,
        format="dt1",
        source=str(path),
        header=header,
    )
