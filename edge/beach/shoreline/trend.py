"""Shoreline trend: the advance (+) / retreat (-) rate of a transect's tide-datum shoreline.

An ordinary least-squares line through (time, chainage) points, chainage in metres from the
transect's landward end, positive seaward (CoastSat), time in years: the slope is the rate in
m/yr, reported with its standard error. Fewer than :data:`MIN_POINTS` points, or all at one
time, give no rate (None), never a number fitted to nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import linregress

SECONDS_PER_YEAR = 365.25 * 86400.0
#: Points a rate needs at least.
MIN_POINTS = 3


@dataclass(frozen=True, slots=True)
class Trend:
    """``rate_m_per_yr`` (positive seaward) and its standard error, both rounded to mm/yr;
    None with fewer than :data:`MIN_POINTS` points at distinct times."""

    n: int
    rate_m_per_yr: float | None
    stderr_m_per_yr: float | None


def shoreline_trend(times_s: Sequence[float], distances_m: Sequence[float]) -> Trend:
    """The trend of chainages ``distances_m`` (m) observed at ``times_s`` (epoch s UTC)."""
    t = np.asarray(times_s, dtype=float) / SECONDS_PER_YEAR
    x = np.asarray(distances_m, dtype=float)
    if len(t) < MIN_POINTS or np.ptp(t) == 0:
        return Trend(len(t), None, None)
    fit = linregress(t, x)
    return Trend(len(t), round(float(fit.slope), 3), round(float(fit.stderr), 3))
