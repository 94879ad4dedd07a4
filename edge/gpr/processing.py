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
from collections.abc import Callable, Sequence
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


def agc(x: np.ndarray, window: int) -> np.ndarray:
    """Divide by the running RMS over ``window`` samples along time, per trace."""
    power = uniform_filter1d(x.astype(np.float64) ** 2, size=max(window, 1), axis=1, mode="nearest")
    rms = np.sqrt(power)
    floor = np.maximum(1e-6 * rms.max(axis=1, keepdims=True), 1e-30)
    return (x / np.maximum(rms, floor)).astype(np.float32)


class BackgroundRemoval:
    """Subtract the causal moving mean trace over the last ``n`` traces (state: those traces)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.history: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        c, s, m = x.shape
        past = self.history if self.history is not None else np.zeros((c, s, 0))
        full = np.concatenate([past, x.astype(np.float64)], axis=2)
        k = past.shape[2]
        csum = np.concatenate([np.zeros((c, s, 1)), np.cumsum(full, axis=2)], axis=2)
        ends = np.arange(k + 1, k + m + 1)
        starts = np.maximum(ends - self.n, 0)
        mean = (csum[:, :, ends] - csum[:, :, starts]) / (ends - starts)
        self.history = full[:, :, -(self.n - 1) :] if self.n > 1 else full[:, :, :0]
        return (x - mean).astype(np.float32)


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
    return lambda x: sosfiltfilt(sos, x, axis=1, padlen=pad).astype(np.float32)


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
