"""NMEA 0183 sentences (GGA, RMC) and the GSSI DZG file that ties them to scans.

Latitude/longitude come out in decimal degrees (WGS 84, south and west negative),
altitude in metres (NaN when the field is empty, as receivers write it before a
fix), time as UTC epoch seconds when a date is known. A sentence with a bad
checksum or too few fields is skipped and counted, never fatal: GPS logs from
the field have gaps and half-written lines.

A DZG file alternates ``$GSSIS,<scan>,<...>`` lines (the 0-based scan number the
next fix belongs to) with the receiver's own sentences.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from edge.gpr.traces import GpsFix

log = logging.getLogger(__name__)

#: Longest line taken as a sentence (NMEA 0183 allows 82 characters; some receivers
#: write longer proprietary ones).
MAX_SENTENCE = 256


@dataclass(frozen=True)
class NmeaFix:
    """A parsed GGA or RMC sentence. ``seconds_of_day`` is UTC; ``date`` only from RMC."""

    kind: str
    lat: float
    lon: float
    alt_m: float
    quality: int
    seconds_of_day: float | None
    date: dt.date | None = None


def _checksum_ok(sentence: str) -> bool:
    if "*" not in sentence:
        return True
    body, _, given = sentence[1:].partition("*")
    value = 0
    for ch in body:
        value ^= ord(ch)
    try:
        return value == int(given[:2], 16)
    except ValueError:
        return False


def _angle(text: str, hemisphere: str, degree_digits: int) -> float:
    degrees = float(text[:degree_digits])
    minutes = float(text[degree_digits:])
    value = degrees + minutes / 60.0
    return -value if hemisphere in ("S", "W") else value


def _time_of_day(text: str) -> float | None:
    if len(text) < 6:
        return None
    return int(text[0:2]) * 3600 + int(text[2:4]) * 60 + float(text[4:])


def parse_sentence(line: str) -> NmeaFix | None:
    """One GGA or RMC sentence -> :class:`NmeaFix`; None for other, broken or empty ones."""
    return read_sentence(line)[1]


def read_sentence(line: str) -> tuple[str, NmeaFix | None]:
    """Classify one line: ``("fix", fix)`` for a GGA/RMC with a position, else
    ``("no_fix", None)`` (GGA/RMC without one), ``("other", None)`` (another sentence),
    ``("bad_checksum", None)``, or ``("garbage", None)`` (not an NMEA sentence, or
    fields that do not parse)."""
    line = line.strip()
    if (
        not line.startswith("$")
        or not 7 <= len(line) <= MAX_SENTENCE
        or not (line.isascii() and line.isprintable())
    ):
        return "garbage", None
    if not _checksum_ok(line):
        return "bad_checksum", None
    fields = line.split("*")[0].split(",")
    kind = fields[0][3:6]
    if kind not in ("GGA", "RMC"):
        return "other", None
    if len(fields) < 10:
        return "garbage", None
    try:
        if kind == "GGA":
            if not fields[2] or not fields[4]:
                return "no_fix", None
            return "fix", NmeaFix(
                kind="GGA",
                lat=_angle(fields[2], fields[3], 2),
                lon=_angle(fields[4], fields[5], 3),
                alt_m=float(fields[9]) if fields[9] else float("nan"),
                quality=int(fields[6]) if fields[6] else 0,
                seconds_of_day=_time_of_day(fields[1]),
            )
        if not fields[3] or not fields[5]:
            return "no_fix", None
        date = None
        if len(fields[9]) == 6:
            day, month, year = int(fields[9][:2]), int(fields[9][2:4]), int(fields[9][4:])
            date = dt.date(2000 + year if year < 80 else 1900 + year, month, day)
        return "fix", NmeaFix(
            kind="RMC",
            lat=_angle(fields[3], fields[4], 2),
            lon=_angle(fields[5], fields[6], 3),
            alt_m=float("nan"),
            quality=1 if fields[2] == "A" else 0,
            seconds_of_day=_time_of_day(fields[1]),
            date=date,
        )
    except ValueError:
        return "garbage", None


def epoch(date: dt.date | None, seconds_of_day: float | None) -> float | None:
    """UTC epoch seconds of a date plus seconds of day; None when either is unknown."""
    if date is None or seconds_of_day is None:
        return None
    return calendar.timegm(date.timetuple()) + seconds_of_day


#: A DZG line naming the 0-based scan the next sentences belong to: ``$GSSIS,<scan>,...``.
_DZG_TAG = re.compile(r"^\$GSSIS,([^,]*)")
#: A Sensors & Software ``.GPS`` line naming the 1-based trace the next sentence belongs to:
#: ``Trace #12 at position 5.500000``.
_SNS_TAG = re.compile(r"^Trace\s*#\s*(\S+)", re.IGNORECASE)


def read_dzg(path: str | Path, survey_date: dt.date | None = None) -> list[GpsFix]:
    """GNSS fixes of a GSSI DZG file, one per scan that has a usable GGA/RMC sentence.

    GGA carries no date: the date comes from an RMC sentence when the file has one,
    else from ``survey_date`` (the DZT header's creation date), else time is None.
    When a scan has both GGA and RMC, GGA wins (it has altitude and fix quality).
    A sidecar that cannot be read or holds no usable record gives one warning and no
    fixes: the radar file is read all the same.
    """
    return _read_tagged(Path(path), _DZG_TAG, 0, survey_date)


def read_sns_gps(path: str | Path, survey_date: dt.date | None = None) -> list[GpsFix]:
    """GNSS fixes of a Sensors & Software ``.GPS`` sidecar (pulseEKKO, Noggin): lines
    ``Trace #N at position X`` (N 1-based, as in the DT1 trace headers) each followed by the
    receiver's GGA/RMC sentence(s) at that trace. Dates and warnings as :func:`read_dzg`."""
    return _read_tagged(Path(path), _SNS_TAG, 1, survey_date)


def _read_tagged(
    path: Path, tag: re.Pattern[str], first_index: int, survey_date: dt.date | None
) -> list[GpsFix]:
    """Fixes of a sidecar whose ``tag`` lines name the trace (numbered from ``first_index``)
    of the NMEA sentences after them."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        log.warning("%s: GPS sidecar ignored (%s)", path, exc.strerror or exc)
        return []
    fixes: dict[int, NmeaFix] = {}
    scan: int | None = None
    date = None
    skipped = lines = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        lines += 1
        found = tag.match(line)
        if found:
            try:
                scan = int(float(found.group(1))) - first_index
            except ValueError:
                scan = None
                skipped += 1
            continue
        kind, fix = read_sentence(line)
        if fix is None:
            skipped += kind in ("garbage", "bad_checksum")
            continue
        if fix.date is not None:
            date = fix.date
        if scan is not None and scan >= 0 and (scan not in fixes or fix.kind == "GGA"):
            fixes[scan] = fix
    if lines and not fixes:
        log.warning(
            "%s: no usable GPS record in %d line(s) (%d unreadable): GPS ignored, the radar "
            "data is read as it is",
            path, lines, skipped,
        )  # fmt: skip
    elif skipped:
        log.warning("%s: skipped %d unreadable GPS line(s)", path, skipped)
    date = date or survey_date
    return [
        GpsFix(
            trace=float(s),
            lat=f.lat,
            lon=f.lon,
            alt_m=f.alt_m,
            time=epoch(f.date or date, f.seconds_of_day),
            quality=f.quality,
        )
        for s, f in sorted(fixes.items())
    ]
