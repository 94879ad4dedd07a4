"""Beach slope tan(beta) per transect and day, from the day's waterlines and water levels.

The published method takes two waterlines (low and high tide) and
``tan(beta) = dz / dx``. Here every valid collection of the day contributes one
point ``(x, z)``: the waterline chainage ``x`` (m, positive seaward) and its elevation
``z`` = tide + setup (m). Over the intertidal zone the profile is close to a plane,
``x = x0 - z / tan(beta)``: chainage is regressed on elevation, because the error is in
the waterline position while the water level is known to a few centimetres (regressing
z on x instead attenuates the slope: pairs of collections at nearly the same tide give
near-zero pairwise slopes that pull the median flat). The fit is Theil-Sen (median of
pairwise slopes; one bad waterline cannot drag it); the standard error of ``dx/dz``
comes from the estimator's 95 % interval (half-width / 1.96) and is carried to
tan(beta) = -1 / (dx/dz) by the delta method (times tan(beta)^2).

Selection rules (thresholds in ``[slope]``): the points must have similar waves (Hs
and Tp within a fraction of the day's median: runup and setup differ otherwise), at
least ``min_points`` of them, a water-level range of at least ``min_tide_range_m``,
and that range must move the waterline by ``min_shift_pixels`` ground pixels at the
default slope. A day that fails falls back to the transect's last good slope, then to
``[slope] default``; the result says which (``source``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import theilslopes

from edge.config.shoreline import SlopeSection
from edge.station.messages import utc_iso


@dataclass(frozen=True)
class Observation:
    """One valid waterline crossing: time (epoch s), chainage (m), elevation z (m)."""

    time: float
    distance_m: float
    z_m: float
    hs_m: float | None = None
    tp_s: float | None = None


@dataclass(frozen=True)
class SlopeEstimate:
    """tan(beta) (positive: the beach falls seaward) with its provenance."""

    tan_beta: float
    stderr: float | None
    n: int
    source: str  # "fit" | "last_good" | "default"
    used: list[Observation] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    tide_range_m: float | None = None
    reason: str | None = None

    def to_message(self) -> dict:
        return {
            "tan_beta": round(self.tan_beta, 5),
            "stderr": None if self.stderr is None else round(self.stderr, 5),
            "n": self.n,
            "source": self.source,
            "collections": [utc_iso(o.time) for o in self.used],
            "points": [
                {
                    "time": utc_iso(o.time),
                    "distance_m": round(o.distance_m, 3),
                    "z_m": round(o.z_m, 4),
                }
                for o in self.used
            ],
            "rejected": self.rejected,
            "z_range_m": None if self.tide_range_m is None else round(self.tide_range_m, 3),
            "reason": self.reason,
        }


def similar_waves(obs: list[Observation], rules: SlopeSection) -> tuple[list[Observation], dict]:
    """Observations whose Hs and Tp lie near the day's medians; the others with a reason."""
    hs = [o.hs_m for o in obs if o.hs_m is not None]
    tp = [o.tp_s for o in obs if o.tp_s is not None]
    hs_med = float(np.median(hs)) if hs else None
    tp_med = float(np.median(tp)) if tp else None
    keep, rejected = [], {}
    for o in obs:
        if hs_med and o.hs_m is not None and abs(o.hs_m / hs_med - 1) > rules.max_hs_change:
            rejected[utc_iso(o.time)] = f"Hs {o.hs_m:.2f} m vs day median {hs_med:.2f} m"
        elif tp_med and o.tp_s is not None and abs(o.tp_s / tp_med - 1) > rules.max_tp_change:
            rejected[utc_iso(o.time)] = f"Tp {o.tp_s:.1f} s vs day median {tp_med:.1f} s"
        else:
            keep.append(o)
    return keep, rejected


def fit_slope(
    obs: list[Observation], rules: SlopeSection, last_good: float | None = None
) -> SlopeEstimate:
    """The day's slope for one transect (see the module docstring for the rules)."""
    keep, rejected = similar_waves(obs, rules)
    z = np.array([o.z_m for o in keep])
    x = np.array([o.distance_m for o in keep])
    z_range = float(np.ptp(z)) if len(z) else 0.0
    needed = max(
        rules.min_tide_range_m, rules.min_shift_pixels * rules.pixel_size_m * rules.default
    )
    reason = None
    if len(keep) < rules.min_points:
        reason = f"{len(keep)} usable collections, need {rules.min_points}"
    elif z_range < needed:
        reason = f"water level range {z_range:.2f} m below the required {needed:.2f} m"
    else:
        fit = theilslopes(x, z)
        if fit.slope >= 0:
            reason = f"fitted profile does not fall seaward (dx/dz {fit.slope:+.2f} m/m)"
        else:
            tan_beta = -1.0 / float(fit.slope)
            stderr = float(fit.high_slope - fit.low_slope) / (2 * 1.96) * tan_beta**2
            return SlopeEstimate(tan_beta, stderr, len(keep), "fit", keep, rejected, z_range)
    if last_good is not None:
        return SlopeEstimate(last_good, None, len(keep), "last_good", [], rejected, z_range, reason)
    return SlopeEstimate(rules.default, None, len(keep), "default", [], rejected, z_range, reason)
