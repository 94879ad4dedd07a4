"""The processing chain: time-zero, dewow, background removal, gain, band-pass (migration).

Every step works on a chunk of traces ``x`` of shape ``(n_channels, n_samples,
n_traces)`` (float32, time along axis 1, traces along axis 2, see
:mod:`edge.gpr.traces`) and returns an array of the same shape. Steps are run in
the configured order by :class:`ProcessingChain`, which is STATEFUL across
chunks: feeding a file trace by trace, in odd-sized chunks or all at once gives
the same output (to float rounding). That holds because every step is either
per trace (time-zero, dewow, gain, AGC, band-pass: they look along time only) or
causal along the track (background removal keeps the last N traces as state). The
exception, off by default, is ``migrate`` (Stolt f-k, :mod:`edge.gpr.migration`): it needs
the traces on both sides, so it migrates each chunk on its own (a whole file fed as one chunk
is migrated whole).

Nothing is delayed: trace i comes out when trace i goes in. Background removal is
the causal mean of traces ``i-N+1 .. i`` (fewer at the start of a line), so a
hyperbola's apex is compared with the traces before it; the apex time is not
shifted (the band-pass is zero-phase, ``sosfiltfilt`` along each trace, so
two-way times and depths are not biased by a filter delay).

Time after the ``time_zero`` step: sample k is at ``k * dt_ns`` ns after time zero.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, sosfiltfilt

from edge.config.gpr import (
    AgcStep,
    BackgroundStep,
    BandpassStep,
    DewowStep,
    MigrateStep,
    ProcessingStep,
    SecGainStep,
    TimeZeroStep,
)
from edge.errors import ConfigError
from edge.gpr.migration import stolt_migrate

log = logging.getLogger(__name__)

#: One processing step: ``(n_channels, n_samples, n_traces)`` -> the same shape.
Step = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TraceGeometry:
    """What the steps need to know about the traces: ns per sample, time zero, antenna (MHz),
    trace spacing (m) and ground velocity (m/ns, for migration)."""

    dt_ns: float
    n_samples: int
    time_zero_sample: float = 0.0
    antenna_mhz: float | None = None
    trace_spacing_m: float | None = None
    velocity_m_per_ns: float | None = None


def shift_time_zero(x: np.ndarray, shift: int) -> np.ndarray:
    """Move sample ``shift`` to row 0 (rows past the end filled with zeros)."""
    if shift <= 0:
        return x
    out = np.zeros_like(x)
    out[:, : x.shape[1] - shift, :] = x[:, shift:, :]
    return out


def dewow(x: np.ndarray, window: int) -> np.ndarray:
    """Subtract the running mean over ``window`` samples along time, per trace."""
    return x - uniform_filter1d(x, size=max(window, 1), axis=1, mode="nearest")


def sec_gain_curve(
    n_samples: int, dt_ns: float, power: float, alpha_per_ns: float, max_gain: float
) -> np.ndarray:
    """g(t) = (t / 1 ns)^power * exp(alpha t), t = k dt (ns, >= 1 ns), capped at max_gain."""
    t = np.maximum(np.arange(n_samples) * dt_ns, 1.0)
    return np.minimum(t**power * np.exp(alpha_per_ns * t), max_gain).astype(np.float32)


def pulse_width(envelope: np.ndarray, k: int) -> int:
    """Width in samples of the pulse whose envelope peaks at sample ``k`` of ``envelope`` (1-D):
    the distance between the nearest samples on either side of ``k`` where the envelope is
    below half of ``envelope[k]`` (a trace end counts as such a sample), i.e. the full width at
    half maximum plus one."""
    half = envelope >= 0.5 * envelope[k]
    right = int(np.argmin(half[k:])) if not half[k:].all() else len(envelope) - k
    left = int(np.argmin(half[k::-1])) if not half[k::-1].all() else k + 1
    return left + right


def agc(x: np.ndarray, window: int) -> np.ndarray:
    """Divide by the running RMS over ``window`` samples along time, per trace."""
    power = uniform_filter1d(x.astype(np.float64) ** 2, size=max(window, 1), axis=1, mode="nearest")
    rms = np.sqrt(power)
    floor = np.maximum(1e-6 * rms.max(axis=1, keepdims=True), 1e-30)
    return (x / np.maximum(rms, floor)).astype(np.float32)


class BackgroundRemoval:
    """Subtract the causal moving mean trace over the last ``n`` traces.

    State: the last ``n`` traces (a ring buffer, float32 as they came in) and the sum of the
    window ending at the last trace (float64). Per chunk of ``m`` traces the cost is O(m),
    whatever ``n``: the window sum of trace ``i`` is the previous one plus trace ``i`` minus
    trace ``i - n``, added up for the whole chunk with one cumulative sum. The running sum
    is carried in float64 along the line; its round-off stays ~1e-12 of the amplitudes over
    10^6 traces, far below the float32 output. A chunk with a non-finite sample, or one
    after it while the sum is NaN/inf, is summed afresh over the window instead, so the
    output is what a fresh sum gives (finite again once that trace has left the window).

    Internally traces are rows (``(n_channels, n_traces, n_samples)``, time contiguous, the
    layout the band-pass returns); the result is that layout seen as ``(c, s, m)``.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen = 0
        self._ring: np.ndarray | None = None
        self._sum: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(x.transpose(0, 2, 1))
        c, m, s = rows.shape
        if self._ring is None or self._sum is None:
            self._ring = np.zeros((c, self.n, s), np.float32)
            self._sum = np.zeros((c, s), np.float64)
        if np.isfinite(self._sum).all() and np.isfinite(rows).all():
            sums = self._running(rows, self._ring, self._sum)
        else:
            sums = self._fresh(rows, self._ring)
        counts = np.minimum(self.seen + np.arange(1, m + 1), self.n)
        self._sum = sums[:, -1].copy()
        sums /= counts[:, np.newaxis]
        out = np.subtract(rows, sums, out=sums).astype(np.float32)
        kept = min(m, self.n)
        slots = (self.seen + m - kept + np.arange(kept)) % self.n
        self._ring[:, slots] = rows[:, m - kept :]
        self.seen += m
        return out.transpose(0, 2, 1)

    def _running(self, rows: np.ndarray, ring: np.ndarray, last: np.ndarray) -> np.ndarray:
        """Window sums ``(c, m, s)`` of the chunk's traces from the previous window sum."""
        n, seen, m = self.n, self.seen, rows.shape[1]
        j = np.arange(m)
        # The trace leaving when trace seen + j comes in is trace seen + j - n: in the ring
        # for j < n, in this chunk for j >= n, none before the line has n traces.
        steps = rows.astype(np.float64)
        old = j[(j < n) & (seen + j >= n)]
        steps[:, old] -= ring[:, (seen + old - n) % n]
        if m > n:
            steps[:, n:] -= rows[:, : m - n]
        steps[:, 0] += last
        # Running total along the traces, row by row: numpy's cumsum along a non-last axis
        # walks the array with a stride and is ~6x slower than these row additions.
        for k in range(1, m):
            np.add(steps[:, k - 1], steps[:, k], out=steps[:, k])
        return steps

    def _fresh(self, rows: np.ndarray, ring: np.ndarray) -> np.ndarray:
        """Window sums ``(c, m, s)`` of the chunk's traces summed afresh over the window."""
        n, seen, m = self.n, self.seen, rows.shape[1]
        h = min(seen, n)
        past = ring[:, (seen - h + np.arange(h)) % n]
        full = np.concatenate([past, rows], axis=1).astype(np.float64)
        zero = np.zeros((rows.shape[0], 1, rows.shape[2]))
        csum = np.concatenate([zero, np.cumsum(full, axis=1)], axis=1)
        ends = np.arange(h + 1, h + m + 1)
        result: np.ndarray = csum[:, ends] - csum[:, np.maximum(ends - n, 0)]
        return result


class ProcessingChain:
    """The configured steps, in order, with their state; call :meth:`process` per chunk."""

    def __init__(self, steps: Sequence[ProcessingStep], geometry: TraceGeometry) -> None:
        self.geometry = geometry
        self.names = [s.step for s in steps]
        self._steps = [self._build(s, geometry) for s in steps]

    def process(self, x: np.ndarray) -> np.ndarray:
        """Process one chunk ``(n_channels, n_samples, n_traces)``; returns float32, same shape."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 2:
            x = x[np.newaxis]
        if x.shape[1] != self.geometry.n_samples:
            raise ValueError(
                f"chunk has {x.shape[1]} samples per trace, "
                f"the chain was built for {self.geometry.n_samples}"
            )
        if x.shape[2] == 0:
            return x
        for step in self._steps:
            x = step(x)
        return x

    @staticmethod
    def _build(cfg: ProcessingStep, g: TraceGeometry) -> Step:
        period_ns = 1000.0 / g.antenna_mhz if g.antenna_mhz else None
        if isinstance(cfg, TimeZeroStep):
            shift = round(cfg.sample if cfg.sample is not None else g.time_zero_sample)
            if shift >= g.n_samples:
                raise ConfigError(f"gpr.processing time_zero sample {shift} >= {g.n_samples}")
            return lambda x: shift_time_zero(x, shift)
        if isinstance(cfg, DewowStep):
            fallback = 2 * period_ns if period_ns else g.n_samples * g.dt_ns / 10
            window_ns = cfg.window_ns or fallback
            window = max(round(window_ns / g.dt_ns), 3)
            return lambda x: dewow(x, window)
        if isinstance(cfg, BackgroundStep):
            return BackgroundRemoval(cfg.traces)
        if isinstance(cfg, SecGainStep):
            curve = sec_gain_curve(g.n_samples, g.dt_ns, cfg.power, cfg.alpha_per_ns, cfg.max_gain)
            curve = curve[np.newaxis, :, np.newaxis]
            return lambda x: x * curve
        if isinstance(cfg, AgcStep):
            fallback = 4 * period_ns if period_ns else g.n_samples * g.dt_ns / 8
            window_ns = cfg.window_ns or fallback
            window = max(round(window_ns / g.dt_ns), 3)
            return lambda x: agc(x, window)
        if isinstance(cfg, BandpassStep):
            return _bandpass(cfg, g)
        if isinstance(cfg, MigrateStep):
            return _migrate(cfg, g)
        raise ConfigError(f"gpr.processing: unknown step {cfg!r}")


def _bandpass(cfg: BandpassStep, g: TraceGeometry) -> Step:
    nyquist_mhz = 500.0 / g.dt_ns
    low = cfg.low_mhz or (0.25 * g.antenna_mhz if g.antenna_mhz else None)
    high = cfg.high_mhz or (2.0 * g.antenna_mhz if g.antenna_mhz else None)
    if low is None and high is None:
        raise ConfigError(
            "gpr.processing bandpass: give low_mhz/high_mhz or gpr.antenna_mhz (antenna unknown)"
        )
    if high is not None and high >= 0.95 * nyquist_mhz:
        log.warning("bandpass high %.0f MHz >= Nyquist %.0f MHz: high-pass only", high, nyquist_mhz)
        high = None
    if low is not None and low >= 0.95 * nyquist_mhz:
        raise ConfigError(f"gpr.processing bandpass low_mhz {low} >= Nyquist {nyquist_mhz:.0f} MHz")
    fs = 1000.0 / g.dt_ns
    if low and high:
        sos = butter(cfg.order, [low, high], btype="bandpass", fs=fs, output="sos")
    elif high:
        sos = butter(cfg.order, high, btype="lowpass", fs=fs, output="sos")
    elif low:
        sos = butter(cfg.order, low, btype="highpass", fs=fs, output="sos")
    else:
        raise ConfigError(
            f"gpr.processing bandpass: high_mhz is at or above 0.95 x Nyquist "
            f"({nyquist_mhz:.0f} MHz) and there is no low_mhz (antenna unknown): nothing to filter"
        )
    pad = min(3 * (2 * len(sos) + 1), g.n_samples - 1)
    return Bandpass(sos, pad, BANDPASS_THREADS)


#: Threads one band-pass spreads a chunk's traces over (scipy's IIR filter releases the GIL).
BANDPASS_THREADS = min(os.cpu_count() or 1, 4)
#: Fewer traces than this per thread are filtered in the calling thread.
_MIN_TRACES_PER_THREAD = 16


class Bandpass:
    """Zero-phase (forward-backward) IIR filter ``sos`` along time, ``padlen`` samples of odd
    extension at each end (scipy's ``sosfiltfilt``). A chunk is split along the traces over
    ``threads`` threads: each trace is filtered alone, so the result is the same bits as one
    call. Returned with time contiguous (what ``sosfiltfilt`` returns for axis 1)."""

    def __init__(self, sos: np.ndarray, padlen: int, threads: int) -> None:
        self.sos = sos
        self.padlen = padlen
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, "bandpass") if threads > 1 else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        c, s, m = x.shape
        parts = min(self.threads, m // _MIN_TRACES_PER_THREAD)
        if self._pool is None or parts < 2:
            return self._filter(x)
        rows = np.empty((c, m, s), np.float32)
        edges = np.linspace(0, m, parts + 1).astype(int)

        def part(a: int, b: int) -> None:
            rows[:, a:b] = self._filter(x[:, :, a:b]).transpose(0, 2, 1)

        list(self._pool.map(part, edges[:-1], edges[1:]))
        return rows.transpose(0, 2, 1)

    def _filter(self, x: np.ndarray) -> np.ndarray:
        return sosfiltfilt(self.sos, x, axis=1, padlen=self.padlen).astype(np.float32)


def _migrate(cfg: MigrateStep, g: TraceGeometry) -> Step:
    """Stolt migration of each channel of a chunk (the chunk alone: see MigrateStep)."""
    velocity = cfg.velocity_m_per_ns or g.velocity_m_per_ns
    if not g.trace_spacing_m or not velocity:
        raise ConfigError(
            "gpr.processing migrate: needs a trace spacing (gpr.positioning.trace_spacing_m "
            "or the source's) and a velocity"
        )
    dx, v = g.trace_spacing_m, velocity

    def step(x: np.ndarray) -> np.ndarray:
        if x.shape[2] < 2:
            return x
        return np.stack([stolt_migrate(c, g.dt_ns, dx, v) for c in x])

    return step


def process_block(
    samples: np.ndarray, steps: Sequence[ProcessingStep], geometry: TraceGeometry
) -> np.ndarray:
    """Whole-array convenience: a fresh chain over all traces at once."""
    return ProcessingChain(steps, geometry).process(samples)
