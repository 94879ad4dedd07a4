"""GSSI DZT files (SIR-3000, SIR-4000, UtilityScan), with their DZG (GPS) and DZX (XML).

Layout: one 1024-byte header per channel, then the data. The data offset is
``rh_data * 1024`` when ``rh_data < 1024`` (SIR-4000: ``rh_data = 128`` gives
131072 bytes) and ``rh_nchan * 1024`` otherwise. Scans follow each other; inside
a scan the channels follow each other, ``rh_nsamp`` words each. Words are 8-bit
unsigned (centred by subtracting 128), 16-bit unsigned (centred by subtracting
32768) or 32-bit signed, little-endian.

Header fields used (byte offset: name): 0 rh_tag, 2 rh_data, 4 rh_nsamp,
6 rh_bits, 8 rh_zero, 10 rhf_sps (scans/s), 14 rhf_spm (scans/m), 18 rhf_mpm
(m/mark), 22 rhf_position (ns), 26 rhf_range (ns), 32 created (bit-packed date),
52 rh_nchan, 54 rhf_epsr, 98 rh_antname (14 chars).

Time axis: ``dt = range / nsamp``. Time zero: ``rhf_position`` is the time of the
first sample relative to time zero, so when it is negative time zero sits
``-position / dt`` samples into the trace; the processing chain's ``time_zero``
step can override this. A position that puts time zero past the end of the trace is the
file's error: one warning, and time zero is left to the data (:mod:`edge.gpr.directwave`).
Where the data follows ``rh_nchan`` 1024-byte channel headers (``rh_data >= 1024``), a count
whose headers are not there is one error naming the field (not a "truncated" warning).

Samples 0 and 1 of every scan are header words, not radar data: sample 0 is a
scan counter and sample 1 carries the user mark (non-zero where the operator
pressed the mark button). The reader records the marks and overwrites both words
with sample 2, so processing does not see them as spikes.

A file whose data part ends inside a scan (the unit stopped writing, a copy was
cut) gives a warning and the complete scans: scans are fixed-size records, so
the ones before the cut are intact. A file with no complete scan or an
impossible header raises InputError.
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import InputError
from edge.gpr.formats.nmea import read_dzg
from edge.gpr.traces import TraceBlock, sibling_file

log = logging.getLogger(__name__)

HEADER_BYTES = 1024
_WORDS = {8: ("<u1", 128), 16: ("<u2", 32768), 32: ("<i4", 0)}
_TAGS = {0x00FF, 0x01FF, 0x02FF, 0x03FF, 0x0700, 0x07FF}


@dataclass(frozen=True)
class DztHeader:
    """The header facts of one DZT file (channel 0's header; ns, m, scans)."""

    tag: int
    data_offset: int
    n_samples: int
    bits: int
    scans_per_s: float
    scans_per_m: float
    m_per_mark: float
    position_ns: float
    range_ns: float
    n_channels: int
    epsr: float
    antenna: str
    created: dt.datetime | None

    @property
    def dt_ns(self) -> float:
        return self.range_ns / self.n_samples

    @property
    def scan_bytes(self) -> int:
        return self.n_samples * self.n_channels * self.bits // 8


def _date(word: int) -> dt.datetime | None:
    """A DZT bit-packed date: sec/2 (5 bits), min (6), hour (5), day (5), month (4), year-1980."""
    try:
        return dt.datetime(
            (word >> 25) + 1980,
            (word >> 21) & 0xF,
            (word >> 16) & 0x1F,
            (word >> 11) & 0x1F,
            (word >> 5) & 0x3F,
            min((word & 0x1F) * 2, 59),
            tzinfo=dt.timezone.utc,
        )
    except ValueError:
        return None


def antenna_mhz(name: str) -> float | None:
    """Centre frequency from a GSSI antenna name: '400MHz' -> 400; model '5106' -> 400."""
    models = {
        "5106": 400.0,
        "5103": 400.0,
        "50400": 400.0,
        "3101": 900.0,
        "50270": 270.0,
        "5100": 1500.0,
        "62000": 2000.0,
        "62300": 2000.0,
        "50300": 300.0,
        "3207": 100.0,
    }
    digits = "".join(ch for ch in name.upper().split("MHZ")[0] if ch.isdigit() or ch == ".")
    if "MHZ" in name.upper() and digits:
        return float(digits)
    return models.get(name.strip())


def read_header(path: Path, head: bytes, file_size: int) -> DztHeader:
    """Parse and sanity-check the first channel header; InputError naming the bad field."""
    if len(head) < HEADER_BYTES:
        raise InputError(f"{path}: not a DZT file (only {len(head)} bytes, header is 1024)")
    tag, rh_data, nsamp, bits, _zero = struct.unpack_from("<5H", head, 0)
    sps, spm, mpm, position, rng = struct.unpack_from("<5f", head, 10)
    (created,) = struct.unpack_from("<I", head, 32)
    (nchan,) = struct.unpack_from("<H", head, 52)
    (epsr,) = struct.unpack_from("<f", head, 54)
    name = head[98:112].split(b"\x00")[0].decode("ascii", errors="replace").strip()
    if tag not in _TAGS and (tag & 0x00FF) != 0x00FF:
        raise InputError(f"{path}: not a DZT file (rh_tag 0x{tag:04x}, expected 0x00ff or 0x0700)")
    if bits not in _WORDS:
        raise InputError(f"{path}: rh_bits {bits} unsupported (expected 8, 16 or 32)")
    if nsamp < 3 or not 1 <= nchan <= 64:
        raise InputError(f"{path}: bad header (rh_nsamp {nsamp}, rh_nchan {nchan})")
    if not (rng > 0 and np.isfinite(rng)):
        raise InputError(f"{path}: bad header (rhf_range {rng} ns, expected > 0)")
    offset = rh_data * HEADER_BYTES if rh_data < HEADER_BYTES else nchan * HEADER_BYTES
    if offset > file_size:
        raise InputError(f"{path}: truncated inside the header ({file_size} < {offset} bytes)")
    for k in range(1, nchan if rh_data >= HEADER_BYTES else 1):
        if len(head) >= (k + 1) * HEADER_BYTES:
            (other,) = struct.unpack_from("<H", head, k * HEADER_BYTES)
            if other not in _TAGS and (other & 0x00FF) != 0x00FF:
                raise InputError(
                    f"{path}: bad header: rh_nchan {nchan} but no channel header at byte "
                    f"{k * HEADER_BYTES} (tag 0x{other:04x}): the channel count is corrupt"
                )
    return DztHeader(
        tag=tag,
        data_offset=offset,
        n_samples=nsamp,
        bits=bits,
        scans_per_s=float(sps),
        scans_per_m=float(spm),
        m_per_mark=float(mpm),
        position_ns=float(position),
        range_ns=float(rng),
        n_channels=nchan,
        epsr=float(epsr),
        antenna=name,
        created=_date(created),
    )


def decode_scans(raw: np.ndarray, header: DztHeader) -> tuple[np.ndarray, np.ndarray]:
    """Raw words (n_scans * n_channels * n_samples,) -> (samples float32 (C, S, N), marks).

    ``marks`` are the scan indices (0-based, relative to ``raw``) whose sample 1 is
    non-zero on any channel.
    """
    _, centre = _WORDS[header.bits]
    n = raw.size // (header.n_channels * header.n_samples)
    words = raw[: n * header.n_channels * header.n_samples]
    words = words.reshape(n, header.n_channels, header.n_samples).transpose(1, 2, 0)
    marks = np.nonzero((words[:, 1, :] != 0).any(axis=0))[0].astype(np.int64)
    samples = words.astype(np.float32)
    if centre:
        samples -= np.float32(centre)
    samples[:, 0:2, :] = samples[:, 2:3, :]
    return samples, marks


def read_dzx(path: Path, n_traces: int) -> tuple[np.ndarray | None, list[int]]:
    """Along-track distance per trace (m) from DZX waypoints, and DZX user marks.

    Waypoints give (scan, local x); distance is interpolated linearly between them
    and extended with the end segments' slope. Fewer than two waypoints: None.
    """
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        log.warning("%s: DZX ignored (%s)", path, exc)
        return None, []
    scale = 1.0
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "horizontalUnit":
            unit = (el.text or "m").strip()
            scale = {"m": 1.0, "cm": 0.01, "ft": 0.3048, "in": 0.0254}.get(unit, 1.0)
    scans, xs, marks = [], [], []
    for way in root.iter():
        if way.tag.rsplit("}", 1)[-1] != "WayPt":
            continue
        kids = {k.tag.rsplit("}", 1)[-1]: (k.text or "").strip() for k in way}
        try:
            scan = int(kids["scan"])
        except (KeyError, ValueError):
            continue
        if "mark" in kids:
            marks.append(scan)
        if "localCoords" in kids:
            try:
                local_x = float(kids["localCoords"].split(",")[0])
            except ValueError:
                local_x = float("nan")
            if not np.isfinite(local_x):
                log.warning(
                    "%s: waypoint at scan %d has coordinates %r (not numbers): DZX distances "
                    "ignored, the radar data is read as it is",
                    path, scan, kids["localCoords"],
                )  # fmt: skip
                return None, marks
            scans.append(scan)
            xs.append(local_x * scale)
    if len(scans) < 2:
        return None, marks
    order = np.argsort(scans)
    s = np.asarray(scans, float)[order]
    x = np.asarray(xs, float)[order]
    t = np.arange(n_traces, dtype=float)
    dist = np.interp(t, s, x)
    lo_slope = (x[1] - x[0]) / max(s[1] - s[0], 1)
    hi_slope = (x[-1] - x[-2]) / max(s[-1] - s[-2], 1)
    dist[t < s[0]] = x[0] + (t[t < s[0]] - s[0]) * lo_slope
    dist[t > s[-1]] = x[-1] + (t[t > s[-1]] - s[-1]) * hi_slope
    return dist - dist[0], marks


def header_dict(h: DztHeader) -> dict[str, Any]:
    return {
        "rh_tag": f"0x{h.tag:04x}",
        "header_bytes": h.data_offset,
        "rh_nsamp": h.n_samples,
        "rh_bits": h.bits,
        "rh_nchan": h.n_channels,
        "rhf_sps": h.scans_per_s,
        "rhf_spm": h.scans_per_m,
        "rhf_mpm": h.m_per_mark,
        "rhf_position_ns": h.position_ns,
        "rhf_range_ns": h.range_ns,
        "rhf_epsr": h.epsr,
        "antenna": h.antenna,
        "created": None if h.created is None else h.created.isoformat().replace("+00:00", "Z"),
    }


def read_dzt(path: str | Path) -> TraceBlock:
    """A DZT file (and its DZG/DZX siblings when present) as one :class:`TraceBlock`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    h = read_header(path, data[: HEADER_BYTES * 64], len(data))
    dtype, _ = _WORDS[h.bits]
    body = len(data) - h.data_offset
    n = body // h.scan_bytes
    if n == 0:
        raise InputError(f"{path}: no complete scan after the {h.data_offset}-byte header")
    if body % h.scan_bytes:
        log.warning(
            "%s: truncated: %d complete scans read, %d trailing bytes of a partial scan ignored",
            path,
            n,
            body % h.scan_bytes,
        )
    count = n * h.scan_bytes * 8 // h.bits
    raw = np.frombuffer(data, dtype=dtype, count=count, offset=h.data_offset)
    samples, marks = decode_scans(raw, h)
    distance = None
    spacing = 1.0 / h.scans_per_m if h.scans_per_m > 0 else None
    if spacing is not None:
        distance = np.arange(n) * spacing
    dzx = sibling_file(path, ".dzx")
    if dzx is not None:
        dzx_dist, dzx_marks = read_dzx(dzx, n)
        if dzx_dist is not None:
            distance = dzx_dist
            spacing = float(np.median(np.diff(dzx_dist))) if n > 1 else spacing
        marks = np.union1d(marks, np.asarray([m for m in dzx_marks if m < n], dtype=np.int64))
    dzg = sibling_file(path, ".dzg")
    gps = read_dzg(dzg, h.created.date() if h.created else None) if dzg else []
    trace_times = None
    if h.created is not None and h.scans_per_s > 0:
        trace_times = h.created.timestamp() + np.arange(n) / h.scans_per_s
    time_zero = max(0.0, -h.position_ns / h.dt_ns) if np.isfinite(h.position_ns) else 0.0
    if time_zero >= h.n_samples:
        log.warning(
            "%s: rhf_position %g ns puts time zero past the end of the %g ns trace: the "
            "header's time zero is ignored (the data's direct wave sets it)",
            path, h.position_ns, h.range_ns,
        )  # fmt: skip
        time_zero = 0.0
    return TraceBlock(
        samples=samples,
        dt_ns=h.dt_ns,
        time_zero_sample=time_zero,
        distance_m=distance,
        trace_spacing_m=spacing,
        trace_times=trace_times,
        gps=[g for g in gps if g.trace < n],
        marks=marks.astype(np.int64),
        antenna_mhz=antenna_mhz(h.antenna),
        bits=h.bits,
        format="dzt",
        source=str(path),
        header=header_dict(h),
    )
