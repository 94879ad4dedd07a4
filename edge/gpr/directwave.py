"""Time zero and antenna frequency from the data: the direct wave of a line.

The direct (air and ground-coupled) wave is the strongest flat event near the start of every
raw trace. It is found once per line, on the line's first block (a whole file, or the first
chunk of a stream), on the **mean trace** of up to :data:`MAX_TRACES` traces of every channel
(flat events add up, hyperbolas and noise average out), minus its median (the DC offset).

Conventions (samples are 0-based rows of the raw trace, times in ns from the first sample):

* **Time zero is the envelope peak of the direct wave**: the first peak of the envelope
  (``|hilbert|`` of the mean trace) that reaches :data:`STRONG_SHARE` of the envelope's
  largest value in the first half of the trace, refined to a fraction of a sample by a
  parabola. That is the same point of the wavelet the hyperbola picker takes on a reflection
  (:mod:`edge.gpr.hyperbola`: envelope peaks), so two-way times are measured peak to peak and
  do not carry the half pulse length between a wavelet's onset and its peak.
* The **first break** (onset) is the first sample whose envelope reaches
  :data:`FIRST_BREAK_SHARE` of that peak (linearly interpolated); it is reported beside the
  time zero (Sensors & Software headers put time zero there).
* The **dominant frequency** is the peak of the amplitude spectrum of the mean trace around
  the direct wave (Hann taper over four envelope half-widths on either side of the peak, zero
  padded to 8x), in MHz.

:func:`calibrate_line` chooses the time zero (``auto``: the header's when it lies on the
direct wave's rise, from its first break to its peak, give or take :data:`AGREE_PERIODS` of a
period (at least :data:`AGREE_SAMPLES` samples), since makers put time zero anywhere there
(Sensors & Software at the first break, GSSI operators often at the first peak); else the
data's peak; ``header``; or a fixed time in ns) and the antenna frequency (the header's,
else the config's, unless the data's estimate differs by more than a factor
:data:`PLAUSIBLE_RATIO`; the estimate when neither gives one), with one log line whenever the
data overrules or replaces what the header and config say. A nominal frequency at or above the
Nyquist frequency of the sample interval is kept: the source contradicts itself (a wrong
interval makes every depth wrong too), and the processing chain refuses the line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.signal import hilbert

from edge.gpr.processing import pulse_width
from edge.gpr.traces import TraceBlock

log = logging.getLogger(__name__)

#: Traces (per channel) averaged into the mean trace.
MAX_TRACES = 512
#: The direct wave's envelope peak reaches this share of the early envelope maximum.
STRONG_SHARE = 0.5
#: The first break: the envelope first reaches this share of the direct wave's peak.
FIRST_BREAK_SHARE = 0.1
#: The header's time zero agrees with the data when it lies between the first break and the
#: peak, give or take this many periods ...
AGREE_PERIODS = 0.1
#: ... or this many samples, whichever is more.
AGREE_SAMPLES = 2.0
#: A nominal antenna frequency is implausible when the data's estimate differs by more than
#: this factor (ground-coupled antennas radiate below their nominal frequency, ~0.5-1x).
PLAUSIBLE_RATIO = 2.5
#: The envelope peak must stand this many times above the median envelope of the trace.
MIN_CONTRAST = 4.0
#: Traces (of the first channel, spread evenly over the block) whose first strong arrival is
#: picked to tell a gather from a profile (:func:`arrival_moveout`).
MOVEOUT_TRACES = 256
#: A gather's first arrival moves steadily: a straight line explains at least this share of
#: the picks' variance ...
GATHER_MIN_R2 = 0.9
#: ... by at least this many ns per trace (an antenna separation step of 3 mm in air; a
#: profile's time-zero drift is orders of magnitude slower) ...
GATHER_MIN_NS_PER_TRACE = 0.01
#: ... and by at least this many pulse lengths (envelope widths at half height) in all.
GATHER_MIN_PULSES = 3.0

TimeZeroSetting = Literal["auto", "header"] | float


@dataclass(frozen=True)
class DirectWave:
    """The direct wave of a line (rows of the raw trace, 0-based, fractional; MHz)."""

    peak_sample: float
    first_break_sample: float
    dominant_mhz: float | None


@dataclass(frozen=True)
class LineCalibration:
    """What a line is processed with, and where each value came from.

    ``time_zero_sample`` (row of the raw trace) with ``time_zero_source`` ``header``, ``data``
    or ``config``; ``antenna_mhz`` (None: unknown) with ``antenna_source`` ``header``,
    ``config``, ``data`` or ``none``; ``direct_wave`` the data's picks (None: no clear direct
    wave); ``header_time_zero_sample`` what the source's header said.
    """

    dt_ns: float
    time_zero_sample: float
    time_zero_source: str
    header_time_zero_sample: float
    antenna_mhz: float | None
    antenna_source: str
    direct_wave: DirectWave | None

    @property
    def time_zero_ns(self) -> float:
        """Time zero in ns after the first recorded sample."""
        return self.time_zero_sample * self.dt_ns

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly facts for the line's stats (ns, MHz)."""
        dw = self.direct_wave
        return {
            "time_zero_ns": round(self.time_zero_ns, 3),
            "time_zero_source": self.time_zero_source,
            "header_time_zero_ns": round(self.header_time_zero_sample * self.dt_ns, 3),
            "direct_wave_peak_ns": None if dw is None else round(dw.peak_sample * self.dt_ns, 3),
            "first_break_ns": None if dw is None else round(dw.first_break_sample * self.dt_ns, 3),
            "antenna_mhz": None if self.antenna_mhz is None else round(self.antenna_mhz, 1),
            "antenna_source": self.antenna_source,
            "estimated_mhz": None
            if dw is None or dw.dominant_mhz is None
            else round(dw.dominant_mhz, 1),
        }


@dataclass(frozen=True)
class Moveout:
    """How the first strong arrival moves across a block's traces.

    ``ns_per_trace`` the straight-line slope of the picks, ``total_ns`` that slope over the
    block's traces, ``r2`` the share of the picks' variance the line explains, ``pulse_ns``
    the median envelope width at half height of the picked arrivals.
    """

    ns_per_trace: float
    total_ns: float
    r2: float
    pulse_ns: float

    @property
    def is_gather(self) -> bool:
        """A CMP or WARR gather: the direct wave moves out steadily with the antenna
        separation (a common-offset profile keeps it at one time)."""
        return (
            self.r2 >= GATHER_MIN_R2
            and abs(self.ns_per_trace) >= GATHER_MIN_NS_PER_TRACE
            and abs(self.total_ns) >= GATHER_MIN_PULSES * self.pulse_ns
        )


def arrival_moveout(samples: np.ndarray, dt_ns: float) -> Moveout | None:
    """The moveout of the first strong arrival over the traces of ``(C, S, N)`` raw samples.

    Per trace of the first channel (up to :data:`MOVEOUT_TRACES`, evenly spread), the first
    sample whose envelope reaches :data:`STRONG_SHARE` of the trace's largest envelope value in
    its first half (the direct wave's rise); traces without a clear arrival
    (:data:`MIN_CONTRAST`) are left out. A straight line is fitted to the picks (ns) against
    the trace index, picks more than 3 robust standard deviations off it dropped once. None
    when fewer than 8 traces show an arrival.
    """
    n_samples, n = samples.shape[1], samples.shape[2]
    if n < 8 or n_samples < 8:
        return None
    cols = np.unique(np.linspace(0, n - 1, min(n, MOVEOUT_TRACES)).round().astype(int))
    x = np.asarray(samples[0][:, cols], np.float64)
    env = np.abs(hilbert(x - np.median(x, axis=0), axis=0))
    early = env[: max(n_samples // 2, 4)]
    top = early.max(axis=0)
    clear = (top > 0) & (top >= MIN_CONTRAST * np.median(env, axis=0))
    if clear.sum() < 8:
        return None
    picks = np.argmax(early >= STRONG_SHARE * top, axis=0)
    traces = cols[clear].astype(np.float64)
    times = picks[clear] * dt_ns
    keep = np.ones(len(times), bool)
    for _ in range(2):
        slope, intercept = np.polyfit(traces[keep], times[keep], 1)
        resid = times - (slope * traces + intercept)
        spread = 1.4826 * float(np.median(np.abs(resid[keep]))) + 1e-9
        keep = np.abs(resid) <= 3.0 * spread + dt_ns
    variance = float(times[keep].var())
    r2 = 1.0 - float(resid[keep].var()) / variance if variance > 0 else 0.0
    widths = [
        pulse_width(env[:, j], int(np.argmax(env[: max(n_samples // 2, 4), j])))
        for j in np.nonzero(clear)[0]
    ]
    return Moveout(float(slope), float(slope) * (n - 1), r2, float(np.median(widths)) * dt_ns)


def mean_trace(samples: np.ndarray, max_traces: int = MAX_TRACES) -> np.ndarray:
    """Mean of the first ``max_traces`` traces of every channel of ``(C, S, N)``, minus its
    median (float64, ``(S,)``)."""
    m = np.asarray(samples[:, :, :max_traces], np.float64).mean(axis=(0, 2))
    return m - np.median(m)


def find_direct_wave(samples: np.ndarray, dt_ns: float) -> DirectWave | None:
    """The direct wave of raw traces ``(C, S, N)`` (``dt_ns`` ns per sample), or None when no
    early event stands out (see the module docstring for the conventions)."""
    if samples.shape[1] < 8 or samples.shape[2] == 0:
        return None
    m = mean_trace(samples)
    env = np.abs(hilbert(m))
    early = env[: max(len(env) // 2, 4)]
    top = float(early.max())
    if not top > 0 or top < MIN_CONTRAST * float(np.median(env)):
        return None
    strong = np.nonzero(early >= STRONG_SHARE * top)[0]
    k = int(strong[0])
    while k + 1 < len(early) and early[k + 1] > early[k]:
        k += 1
    half_width = max(pulse_width(env, k) // 2, 1)
    lo, hi = max(k - half_width, 0), min(k + half_width + 1, len(m))
    i = lo + int(np.argmax(np.abs(m[lo:hi])))
    peak = float(i)
    a = np.abs(m)
    if 0 < i < len(a) - 1:
        y0, y1, y2 = a[i - 1], a[i], a[i + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            peak += float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
    above = np.nonzero(env[: k + 1] >= FIRST_BREAK_SHARE * env[k])[0]
    j = int(above[0])
    first_break = float(j)
    if j > 0:
        lo, hi, level = env[j - 1], env[j], FIRST_BREAK_SHARE * env[k]
        first_break = j - 1 + float((level - lo) / (hi - lo)) if hi > lo else float(j)
    return DirectWave(peak, first_break, _dominant_mhz(m, env, k, dt_ns))


def _dominant_mhz(m: np.ndarray, env: np.ndarray, k: int, dt_ns: float) -> float | None:
    """Peak of the amplitude spectrum of ``m`` around the envelope peak ``k`` (MHz)."""
    width = max(pulse_width(env, k), 4)
    lo, hi = max(k - 4 * width, 0), min(k + 4 * width + 1, len(m))
    seg = m[lo:hi] * np.hanning(hi - lo)
    n_fft = 8 * int(2 ** np.ceil(np.log2(max(len(seg), 16))))
    spectrum = np.abs(np.fft.rfft(seg, n_fft))
    freqs = np.fft.rfftfreq(n_fft, dt_ns) * 1000.0
    spectrum[freqs < 2.0 * freqs[1] * n_fft / len(seg)] = 0.0  # DC and the taper's own width
    if not spectrum.any():
        return None
    return float(freqs[int(np.argmax(spectrum))])


def calibrate_line(
    block: TraceBlock,
    time_zero: TimeZeroSetting,
    config_antenna_mhz: float | None,
) -> LineCalibration:
    """Time zero and antenna frequency for the line whose first block is ``block``.

    ``time_zero``: ``"auto"`` (header when it agrees with the data, else the data; the
    header when the data shows no direct wave), ``"header"``, or a time in ns after the first
    sample. ``config_antenna_mhz``: ``[gpr] antenna_mhz`` (used when the header has none).
    One warning when the data overrules or replaces the header/config.
    """
    dt_ns = block.dt_ns
    dw = find_direct_wave(block.samples, dt_ns)
    antenna, antenna_source = _antenna(block, config_antenna_mhz, dw)
    header_t0 = block.time_zero_sample
    if isinstance(time_zero, (int, float)):
        t0, source = float(time_zero) / dt_ns, "config"
    elif time_zero == "header" or dw is None:
        t0, source = header_t0, "header"
        if dw is None and time_zero == "auto" and block.n_traces:
            log.warning(
                "%s: no clear direct wave in the data: time zero from the header (%.2f ns)",
                block.source, header_t0 * dt_ns,
            )  # fmt: skip
    else:
        period = 1000.0 / antenna / dt_ns if antenna else 0.0
        tolerance = max(AGREE_PERIODS * period, AGREE_SAMPLES)
        if dw.first_break_sample - tolerance <= header_t0 <= dw.peak_sample + tolerance:
            t0, source = header_t0, "header"
        else:
            t0, source = dw.peak_sample, "data"
            log.warning(
                "%s: time zero %.2f ns from the direct wave (first break %.2f ns); the header "
                "says %.2f ns",
                block.source, dw.peak_sample * dt_ns, dw.first_break_sample * dt_ns,
                header_t0 * dt_ns,
            )  # fmt: skip
    return LineCalibration(dt_ns, t0, source, header_t0, antenna, antenna_source, dw)


def _antenna(
    block: TraceBlock, config_mhz: float | None, dw: DirectWave | None
) -> tuple[float | None, str]:
    """The antenna frequency (MHz) and its source (see :func:`calibrate_line`)."""
    nominal, source = (block.antenna_mhz, "header") if block.antenna_mhz else (config_mhz, "config")
    estimate = None if dw is None else dw.dominant_mhz
    if estimate is None:
        if nominal is None:
            return None, "none"
        return nominal, source
    if nominal is None:
        log.warning(
            "%s: antenna frequency not given: %.0f MHz estimated from the direct wave's "
            "spectrum sets the processing",
            block.source, estimate,
        )  # fmt: skip
        return estimate, "data"
    if nominal >= 500.0 / block.dt_ns:
        return nominal, source  # above Nyquist: the header contradicts itself; the chain refuses
    ratio = max(nominal / estimate, estimate / nominal)
    if ratio > PLAUSIBLE_RATIO:
        log.warning(
            "%s: the %s says %.0f MHz but the direct wave's spectrum peaks at %.0f MHz: "
            "processing with %.0f MHz",
            block.source, source, nominal, estimate, estimate,
        )  # fmt: skip
        return estimate, "data"
    return nominal, source
