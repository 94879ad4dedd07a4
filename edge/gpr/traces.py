"""The trace block: what every GPR reader and live source yields.

Conventions, stated once for the whole GPR unit:

* ``samples`` has shape ``(n_channels, n_samples, n_traces)``: axis 1 is two-way
  travel time (row ``k`` is at ``(k - time_zero_sample) * dt_ns`` ns after time
  zero), axis 2 is the trace (scan) order along the track. Amplitudes are float32,
  centred on zero (unsigned raw words have their offset removed by the reader).
* Trace indices are 0-based and per channel; ``first_trace`` is the index of the
  block's first trace in its file or stream, so a chunk of a live stream knows
  where it sits.
* Distances are metres along track from the first trace of the file; times are
  UTC epoch seconds; GNSS fixes are WGS 84 latitude/longitude in degrees.
* ``dt_ns`` is the sample interval in ns: for GSSI it is ``range / nsamp``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import InputError


@dataclass(frozen=True)
class GpsFix:
    """One GNSS fix tied to a trace.

    ``trace`` is the (possibly fractional) 0-based trace index the fix belongs to;
    ``time`` is UTC epoch seconds or None when the record has no usable date/time;
    ``alt_m`` is NaN when the record leaves altitude empty; ``quality`` is the NMEA
    GGA fix quality (0 = no fix; RMC 'A' maps to 1, 'V' to 0).
    """

    trace: float
    lat: float
    lon: float
    alt_m: float = float("nan")
    time: float | None = None
    quality: int = 1


@dataclass
class TraceBlock:
    """A block of consecutive traces of one file or stream (see the module conventions).

    ``distance_m`` (n_traces,) is the along-track distance of each trace when the
    source knows it (survey wheel, header positions, DZX waypoints), else None;
    ``trace_spacing_m`` is the nominal spacing (scans per metre, step size) or None.
    ``trace_times`` (n_traces,) are UTC epoch seconds where known, else None.
    ``marks`` are the 0-based indices of traces carrying a user mark.
    ``header`` keeps the raw header facts of the source format, JSON-friendly.
    ``survey_mode`` is ``reflection`` (a common-offset profile, what cavity detection needs)
    or a gather the header declares: ``cmp`` (common midpoint) or ``warr`` (wide-angle
    reflection and refraction), where traces differ by antenna separation, not position.
    """

    samples: np.ndarray
    dt_ns: float
    time_zero_sample: float = 0.0
    first_trace: int = 0
    distance_m: np.ndarray | None = None
    trace_spacing_m: float | None = None
    trace_times: np.ndarray | None = None
    gps: list[GpsFix] = field(default_factory=list)
    marks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    antenna_mhz: float | None = None
    bits: int = 16
    format: str = ""
    source: str = ""
    header: dict[str, Any] = field(default_factory=dict)
    survey_mode: str = "reflection"

    def __post_init__(self) -> None:
        if self.samples.ndim == 2:
            self.samples = self.samples[np.newaxis]
        if self.samples.ndim != 3:
            raise ValueError(
                f"samples must be (n_channels, n_samples, n_traces), got shape {self.samples.shape}"
            )
        if not self.dt_ns > 0:
            raise ValueError(f"dt_ns must be > 0 ns, got {self.dt_ns}")

    @property
    def n_channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[1])

    @property
    def n_traces(self) -> int:
        return int(self.samples.shape[2])

    @property
    def range_ns(self) -> float:
        """Time window of one trace, ns (``n_samples * dt_ns``)."""
        return self.n_samples * self.dt_ns

    def channel(self, index: int) -> np.ndarray:
        """The ``(n_samples, n_traces)`` B-scan of one channel."""
        return self.samples[index]

    def slice(self, start: int, stop: int) -> TraceBlock:
        """Traces ``start:stop`` of this block (block-relative), as a block of their own.

        GNSS fixes and marks keep file-relative trace indices, restricted to the slice.
        """
        start, stop, _ = slice(start, stop).indices(self.n_traces)
        lo, hi = self.first_trace + start, self.first_trace + stop
        return replace(
            self,
            samples=self.samples[:, :, start:stop],
            first_trace=lo,
            distance_m=None if self.distance_m is None else self.distance_m[start:stop],
            trace_times=None if self.trace_times is None else self.trace_times[start:stop],
            gps=[g for g in self.gps if lo <= g.trace < hi],
            marks=self.marks[(self.marks >= lo) & (self.marks < hi)],
        )

    def info(self) -> dict[str, Any]:
        """Header facts as a JSON-friendly dict (what ``geoedge gpr info`` prints)."""
        return {
            "format": self.format,
            "source": self.source,
            "channels": self.n_channels,
            "samples": self.n_samples,
            "traces": self.n_traces,
            "bits": self.bits,
            "dt_ns": self.dt_ns,
            "range_ns": self.range_ns,
            "time_zero_sample": self.time_zero_sample,
            "antenna_mhz": self.antenna_mhz,
            "survey_mode": self.survey_mode,
            "trace_spacing_m": self.trace_spacing_m,
            "length_m": None
            if self.distance_m is None
            else float(self.distance_m[-1])
            if self.n_traces
            else None,
            "marks": [int(m) for m in self.marks],
            "gps_fixes": len(self.gps),
            "gps_fixes_valid": sum(1 for g in self.gps if g.quality > 0),
            "header": self.header,
        }


def read_key_values(path: Path, separator: str, kind: str) -> dict[str, str]:
    """``KEY<separator>value`` lines of a text header (HD: ``=``, RAD: ``:``); keys
    upper-case with runs of white space collapsed, values stripped."""
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise InputError(f"{path}: cannot read {kind} header ({exc.strerror or exc})") from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(separator)
        if sep:
            out[re.sub(r"\s+", " ", key.strip().upper())] = value.strip()
    return out


def header_number(values: dict[str, str], key: str, path: Path) -> float | None:
    """The number a text header gives for ``key`` (its first word), None when the key is absent
    or empty; InputError naming the file and the key for a value that is no finite number
    (``nan``, ``abc``)."""
    text = values.get(key, "").split()
    if not text:
        return None
    try:
        value = float(text[0])
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        raise InputError(f"{path}: header key '{key}' = {text[0]!r} (expected a number)")
    return value


def required_positive(values: dict[str, str], key: str, path: Path) -> float:
    """:func:`header_number` for a key the format needs, > 0 (InputError naming the file and
    the key when it is absent, no number or not > 0)."""
    value = header_number(values, key, path)
    if value is None or value <= 0:
        shown = "missing" if value is None else f"= {values[key].split()[0]!r}"
        raise InputError(f"{path}: header key '{key}' {shown} (expected a number > 0)")
    return value


def sibling_file(path: Path, suffix: str) -> Path | None:
    """The file next to ``path`` with ``suffix`` in either case (``.DZG``/``.dzg``), or None."""
    for candidate in (suffix.upper(), suffix.lower()):
        other = path.with_suffix(candidate)
        if other.is_file():
            return other
    return None
