"""Live GNSS for the GPR unit: NMEA sentences in, a time-indexed track out.

Inputs (``[gpr.positioning] gnss``): an NMEA log the receiver is still appending
to (tailed from its start; a file that shrinks or is replaced is read again from
its start), or ``tcp://HOST:PORT`` where the receiver streams its sentences
(reconnecting with back-off). GGA and RMC sentences with a position and a fix
quality of at least ``min_fix_quality`` become fixes; a GGA takes its date from
the latest RMC of the same input, else from the system clock's UTC date (the
nearest day to now: a live receiver's epoch is within hours of the clock).
Garbage lines and bad checksums are skipped and counted, one log line per run.

The track holds the last ``track_s`` seconds of fixes (bounded memory),
projected with pyproj to the station CRS (x east, y north, m), and the path
length ``s`` along them (m, cumulative since the input started, so it survives
trimming; a gap is bridged by the chord). :meth:`GnssTrack.at` interpolates x,
y and s linearly in time, and says why not where it cannot: no fix yet, before
the oldest fix held, after the newest fix, or a gap longer than ``max_gap_s``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import math
import os
import socket
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from pyproj import Transformer

from edge.config.base import TcpAddress
from edge.config.gpr import PositioningSection
from edge.gpr.formats.nmea import read_sentence
from edge.station.backoff import Backoff

log = logging.getLogger(__name__)

#: Longest run of bytes without a line break kept as one line (longer: garbage).
MAX_LINE_BYTES = 4096
#: Most fixes held, whatever ``track_s`` says (a receiver at 20 Hz for ``track_s``).
MAX_RATE_HZ = 20


@dataclass(frozen=True)
class TrackPoint:
    """The track at one time: CRS x/y (m), path length s (m); ``reason`` when unknown."""

    x: float | None
    y: float | None
    s: float | None
    reason: str | None = None


@dataclass
class GnssStats:
    """Counters of the GNSS input (lines by kind, fixes kept, connection state)."""

    lines: int = 0
    fixes: int = 0
    no_fix: int = 0
    low_quality: int = 0
    out_of_order: int = 0
    other_sentences: int = 0
    bad_checksum: int = 0
    garbage_lines: int = 0
    connected: bool = False
    newest_fix_time: float | None = None
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The counters, the age of the newest fix (s) and the last error, JSON-ready."""
        out: dict[str, Any] = {
            k: v for k, v in asdict(self).items() if k not in ("newest_fix_time", "errors")
        }
        newest = self.newest_fix_time
        out["fix_age_s"] = None if newest is None else round(time.time() - newest, 3)
        out["last_error"] = self.errors[-1] if self.errors else None
        return out


class GnssTrack:
    """Time-indexed fixes of one receiver (see the module docstring). Thread-safe."""

    def __init__(self, crs: str, max_gap_s: float = 2.0, track_s: float = 600.0) -> None:
        self.crs, self.max_gap_s, self.track_s = crs, max_gap_s, track_s
        self._to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        self.to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        cap = max(int(track_s * MAX_RATE_HZ), 16)
        self._t: deque[float] = deque(maxlen=cap)
        self._x: deque[float] = deque(maxlen=cap)
        self._y: deque[float] = deque(maxlen=cap)
        self._s: deque[float] = deque(maxlen=cap)
        self._cond = threading.Condition()
        #: Number of fixes ever added (a change means a new fix arrived).
        self.version = 0

    def __len__(self) -> int:
        """Fixes held."""
        with self._cond:
            return len(self._t)

    @property
    def newest_time(self) -> float | None:
        with self._cond:
            return self._t[-1] if self._t else None

    def add(self, when: float, lat: float, lon: float) -> bool:
        """Add a fix (UTC epoch s, WGS 84 degrees); False when not newer than the newest."""
        x, y = self._to_crs.transform(lon, lat)
        with self._cond:
            if self._t and when <= self._t[-1]:
                return False
            s = self._s[-1] + math.hypot(x - self._x[-1], y - self._y[-1]) if self._t else 0.0
            for seq, value in ((self._t, when), (self._x, x), (self._y, y), (self._s, s)):
                seq.append(value)
            while self._t[0] < when - self.track_s:
                for seq in (self._t, self._x, self._y, self._s):
                    seq.popleft()
            self.version += 1
            self._cond.notify_all()
        return True

    def wait_for(self, when: float, timeout_s: float) -> bool:
        """Block until a fix at or after ``when`` is held, at most ``timeout_s``; True if so."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._t) and self._t[-1] >= when, timeout_s)

    def first_fix_after(self, when: float) -> tuple[float, float] | None:
        """(time, s) of the first fix held at or after ``when``, else None."""
        with self._cond:
            t = np.fromiter(self._t, float)
            k = int(np.searchsorted(t, when))
            return None if k == t.size else (float(t[k]), self._s[k])

    def at(self, when: float) -> TrackPoint:
        """x, y, s interpolated at ``when`` (UTC epoch s), or the reason there is none."""
        with self._cond:
            t = np.fromiter(self._t, float)
            if t.size == 0:
                return TrackPoint(None, None, None, "no GNSS fix received")
            if when > t[-1]:
                return TrackPoint(
                    None, None, None, f"no GNSS fix since {when - t[-1]:.1f} s before the trace"
                )
            if when < t[0]:
                return TrackPoint(
                    None, None, None, f"trace {t[0] - when:.1f} s before the oldest GNSS fix held"
                )
            k = int(np.searchsorted(t, when, side="right")) - 1
            if t[k] == when:
                return TrackPoint(self._x[k], self._y[k], self._s[k])
            gap = t[k + 1] - t[k]
            if gap > self.max_gap_s:
                return TrackPoint(
                    None,
                    None,
                    None,
                    f"GNSS gap of {gap:.1f} s at the trace (max {self.max_gap_s:g} s)",
                )
            w = (when - t[k]) / gap
            x = self._x[k] + w * (self._x[k + 1] - self._x[k])
            y = self._y[k] + w * (self._y[k + 1] - self._y[k])
            s = self._s[k] + w * (self._s[k + 1] - self._s[k])
            return TrackPoint(float(x), float(y), float(s))


class NmeaIngest:
    """Lines of one NMEA input -> fixes in a :class:`GnssTrack`, counted in :class:`GnssStats`."""

    def __init__(
        self, track: GnssTrack, stats: GnssStats, name: str, min_fix_quality: int = 1
    ) -> None:
        self.track, self.stats, self.name = track, stats, name
        self.min_fix_quality = min_fix_quality
        self._date: dt.date | None = None
        self._bad_run: dict[str, int] = {}
        self._clock_date_said = False

    def line(self, text: str) -> None:
        """One line (without its line break)."""
        if not text.strip():
            return
        self.stats.lines += 1
        status, fix = read_sentence(text)
        if status in ("garbage", "bad_checksum"):
            if status == "garbage":
                self.stats.garbage_lines += 1
            else:
                self.stats.bad_checksum += 1
            self._bad_run[status] = self._bad_run.get(status, 0) + 1
            return
        self.end_bad_run()
        if status == "other":
            self.stats.other_sentences += 1
            return
        if fix is None or fix.seconds_of_day is None:
            self.stats.no_fix += 1
            return
        if fix.date is not None:
            self._date = fix.date
        if fix.quality < self.min_fix_quality:
            self.stats.low_quality += 1
            return
        when = self._epoch(fix.date or self._date, fix.seconds_of_day)
        if self.track.add(when, fix.lat, fix.lon):
            self.stats.fixes += 1
            self.stats.newest_fix_time = when
        else:
            self.stats.out_of_order += 1

    def end_bad_run(self) -> None:
        """Log the run of skipped lines that just ended (one line per run)."""
        if self._bad_run:
            log.warning(
                "GNSS %s: skipped %s",
                self.name,
                ", ".join(
                    f"{n} {kind.replace('_', ' ')} line(s)" for kind, n in self._bad_run.items()
                ),
            )
            self._bad_run = {}

    def _epoch(self, date: dt.date | None, seconds_of_day: float) -> float:
        if date is not None:
            return calendar.timegm(date.timetuple()) + seconds_of_day
        if not self._clock_date_said:
            log.info(
                "GNSS %s: no RMC date yet; GGA times take the system clock's UTC date", self.name
            )
            self._clock_date_said = True
        now = time.time()
        when = now - now % 86400.0 + seconds_of_day
        if when - now > 43200.0:
            return when - 86400.0
        if now - when > 43200.0:
            return when + 86400.0
        return when


def _lines(buffer: bytearray, data: bytes, ingest: NmeaIngest) -> None:
    """Append ``data``; hand every complete line to ``ingest``; cap a line with no break."""
    buffer.extend(data)
    *complete, rest = buffer.split(b"\n")
    for raw in complete:
        ingest.line(raw.decode("ascii", errors="replace").rstrip("\r"))
    buffer[:] = rest
    if len(buffer) > MAX_LINE_BYTES:
        ingest.line(buffer.decode("ascii", errors="replace"))
        buffer.clear()


class NmeaTcpSource:
    """NMEA sentences from ``tcp://HOST:PORT``, reconnecting with back-off."""

    def __init__(self, host: str, port: int, ingest: NmeaIngest, backoff: Backoff) -> None:
        self.host, self.port, self.ingest, self.backoff = host, port, ingest, backoff

    def run(self, stop: threading.Event) -> None:
        stats = self.ingest.stats
        while not stop.is_set():
            buffer = bytearray()
            try:
                with socket.create_connection((self.host, self.port), timeout=2.0) as sock:
                    sock.settimeout(0.5)
                    stats.connected = True
                    self.backoff.succeeded()
                    log.info("GNSS %s: connected", self.ingest.name)
                    while not stop.is_set():
                        try:
                            data = sock.recv(1 << 14)
                        except TimeoutError:
                            continue
                        if not data:
                            break
                        _lines(buffer, data, self.ingest)
                    self.ingest.end_bad_run()
            except OSError as exc:
                if not stop.is_set():
                    stats.errors.append(f"{self.ingest.name}: {exc}")
                    log.warning("GNSS %s: %s", self.ingest.name, exc.strerror or exc)
            stats.connected = False
            if not stop.is_set():
                delay = self.backoff.failed()
                log.info("GNSS %s: reconnecting in %.1f s", self.ingest.name, delay)
                stop.wait(delay)


class NmeaFileTail:
    """NMEA sentences of a log the receiver is appending to (polled every ``poll_s``)."""

    def __init__(self, path: Path, ingest: NmeaIngest, poll_s: float = 0.2) -> None:
        self.path, self.ingest, self.poll_s = path, ingest, poll_s

    def run(self, stop: threading.Event) -> None:
        stats = self.ingest.stats
        said_missing = False
        while not stop.is_set():
            try:
                f = self.path.open("rb")
            except OSError as exc:
                if not said_missing:
                    log.warning(
                        "GNSS %s: waiting for the file (%s)", self.path, exc.strerror or exc
                    )
                    said_missing = True
                stop.wait(self.poll_s)
                continue
            with f:
                stats.connected = True
                self._follow(f, stop)
            stats.connected = False

    def _follow(self, f: BinaryIO, stop: threading.Event) -> None:
        """Read ``f`` as it grows; return when the file is replaced or shrinks (to reopen)."""
        inode, buffer, pos = os.fstat(f.fileno()).st_ino, bytearray(), 0
        while not stop.is_set():
            data = f.read(1 << 16)
            if data:
                pos += len(data)
                _lines(buffer, data, self.ingest)
                continue
            self.ingest.end_bad_run()
            try:
                st = os.stat(self.path)
            except OSError:
                return
            if st.st_ino != inode or st.st_size < pos:
                log.info(
                    "GNSS %s: file replaced or truncated; reading it from the start", self.path
                )
                return
            stop.wait(self.poll_s)


class GnssInput:
    """The unit's live GNSS: a track, the NMEA source filling it, and its stats."""

    def __init__(
        self,
        source: TcpAddress | Path,
        crs: str,
        positioning: PositioningSection,
        poll_s: float = 0.2,
    ) -> None:
        self.source = source
        self.track = GnssTrack(crs, positioning.max_gap_s, positioning.track_s)
        self.stats = GnssStats()
        ingest = NmeaIngest(self.track, self.stats, str(source), positioning.min_fix_quality)
        if isinstance(source, TcpAddress):
            backoff = Backoff(positioning.reconnect_s, positioning.max_reconnect_s)
            self.reader: NmeaTcpSource | NmeaFileTail = NmeaTcpSource(
                source.host, source.port, ingest, backoff
            )
        else:
            self.reader = NmeaFileTail(source, ingest, poll_s)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(
            target=self.reader.run, args=(stop,), name="gpr-gnss", daemon=True
        )
        thread.start()
        return thread
