"""MALA RD3 (int16) and RD7 (int32) files with their RAD header and COR GPS file.

RD3/RD7 have no header: traces of SAMPLES words each, little-endian, one after
the other. The RAD file is ``KEY:value`` text (SAMPLES, FREQUENCY (MHz, the
sampling frequency), TIMEWINDOW (ns), DISTANCE INTERVAL (m), ANTENNAS, LAST
TRACE). The trace count comes from the file size; LAST TRACE is only checked.

Time step: ``dt = TIMEWINDOW / SAMPLES`` (ten_col.rad: 422.06 / 512 = 0.824 ns),
the convention of most readers and the one consistent with the stated time
window. ``1 / FREQUENCY`` (0.412 ns there) is kept in the header dict as
``sampling_dt_ns`` for reference, not used.

The COR file is tab-separated: trace number (1-based), date, time, latitude,
N/S, longitude, E/W, altitude, unit, HDOP. Fixes are attached to 0-based trace
``number - 1``; fixes for traces past the end of the data are kept out.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from pathlib import Path

import numpy as np

from edge.errors import InputError
from edge.gpr.traces import (
    GpsFix,
    TraceBlock,
    header_number,
    read_key_values,
    required_positive,
    sibling_file,
)

log = logging.getLogger(__name__)


def read_rad(path: Path) -> dict[str, str]:
    """``KEY:value`` pairs of a RAD file (keys upper-case, values stripped)."""
    return read_key_values(path, ":", "RAD")


def read_cor(path: Path, n_traces: int) -> list[GpsFix]:
    """GNSS fixes of a MALA COR file; unreadable lines are skipped with one warning."""
    fixes, skipped = [], 0
    for line in path.read_text(encoding="latin-1").splitlines():
        parts = line.split()
        if not parts:
            continue
        try:
            trace = int(parts[0]) - 1
            lat = float(parts[3]) * (-1 if parts[4].upper() == "S" else 1)
            lon = float(parts[5]) * (-1 if parts[6].upper() == "W" else 1)
            alt = float(parts[7]) if len(parts) > 7 else float("nan")
            when = dt.datetime.strptime(f"{parts[1]} {parts[2]}", "%Y-%m-%d %H:%M:%S")
        except (IndexError, ValueError):
            skipped += 1
            continue
        if trace < n_traces:
            fixes.append(
                GpsFix(
                    trace=float(trace),
                    lat=lat,
                    lon=lon,
                    alt_m=alt,
                    time=float(calendar.timegm(when.timetuple())),
                )
            )
    if skipped:
        log.warning("%s: skipped %d unreadable GPS line(s)", path, skipped)
    return fixes


def read_rd3(path: str | Path) -> TraceBlock:
    """An RD3 or RD7 file plus its RAD (required) and COR (optional) as a :class:`TraceBlock`."""
    path = Path(path)
    rad_path = sibling_file(path, ".rad")
    if rad_path is None:
        raise InputError(f"{path}: no RAD header next to it (expected {path.with_suffix('.rad')})")
    rad = read_rad(rad_path)
    n_samples = int(required_positive(rad, "SAMPLES", rad_path))
    window_ns = required_positive(rad, "TIMEWINDOW", rad_path)
    word, bits = ("<i4", 32) if path.suffix.lower() == ".rd7" else ("<i2", 16)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    record = n_samples * bits // 8
    n = len(data) // record
    if n == 0:
        raise InputError(f"{path}: no complete trace of {record} bytes")
    if len(data) % record:
        log.warning(
            "%s: truncated: %d complete traces read, %d trailing bytes ignored",
            path,
            n,
            len(data) % record,
        )
    samples = np.frombuffer(data, dtype=word, count=n * n_samples).reshape(n, n_samples)
    step = header_number(rad, "DISTANCE INTERVAL", rad_path) or 0.0
    freq = header_number(rad, "FREQUENCY", rad_path) or 0.0
    cor = sibling_file(path, ".cor")
    header: dict[str, str | float | None] = {k.lower(): v for k, v in rad.items()}
    header["sampling_dt_ns"] = 1000.0 / freq if freq > 0 else None
    antenna = "".join(ch for ch in rad.get("ANTENNAS", "").split("_")[0] if ch.isdigit())
    return TraceBlock(
        samples=samples.T.astype(np.float32)[np.newaxis],
        dt_ns=window_ns / n_samples,
        distance_m=np.arange(n) * step if step > 0 else None,
        trace_spacing_m=step if step > 0 else None,
        gps=read_cor(cor, n) if cor else [],
        antenna_mhz=float(antenna) if antenna else None,
        bits=bits,
        format=path.suffix.lower().lstrip("."),
        source=str(path),
        header=header,
    )
