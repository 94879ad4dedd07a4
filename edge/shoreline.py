"""Tide-datum shoreline: move each waterline to the datum contour along its transect.

With chainage ``x`` positive seaward and a beach that falls seaward with slope
``tan(beta) > 0``, the waterline at elevation ``z_wl`` lies on ``z = z_wl - tan(beta)
(x - x_wl)``, so the datum contour ``z_datum`` is at::

    x_datum = x_wl + (z_wl - z_datum) / tan(beta)

(the issue's ``x_wl - (z_wl - z_datum) / tan(beta)`` written with the signed gradient
``dz/dx = -tan(beta)``). ``z_wl`` = tide + setup (+ a configured fraction of the
swash), from Stockdon (2006) with the station's current slope (the median of the
transects' latest fitted slopes, else the configured default) and the deep-water
waves; it is also the plane the waterline was placed on, so each (chainage, z) pair
is the one the camera geometry produced.
The 1-sigma error combines the waterline position, the tide error and the slope error:
``sigma^2 = s_x^2 + (s_z / tb)^2 + ((z_wl - z_datum) s_tb / tb^2)^2``.

:class:`ShorelineStage` runs after each collection: it stores the observations, fits
the day's slope per transect (:mod:`edge.slope`) and returns the ``slope`` and
``shoreline`` messages.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.config import StationConfig
from edge.messages import envelope
from edge.runup import stockdon2006
from edge.shoreline_store import ShorelineStore
from edge.slope import Observation, SlopeEstimate, fit_slope
from edge.waves import WaveState

log = logging.getLogger(__name__)


def datum_chainage(x_wl: float, z_wl: float, z_datum: float, tan_beta: float) -> float:
    """Chainage (m, positive seaward) of the ``z_datum`` contour (module docstring)."""
    return x_wl + (z_wl - z_datum) / tan_beta


def datum_sigma(
    z_wl: float,
    z_datum: float,
    tan_beta: float,
    sigma_x: float,
    sigma_z: float,
    sigma_tb: float | None,
) -> float:
    """1-sigma error (m) of :func:`datum_chainage` from its inputs' errors."""
    slope_term = 0.0 if sigma_tb is None else (z_wl - z_datum) * sigma_tb / tan_beta**2
    return math.sqrt(sigma_x**2 + (sigma_z / tan_beta) ** 2 + slope_term**2)


def _day(t: float) -> tuple[str, float, float]:
    day = dt.datetime.fromtimestamp(t, dt.UTC).date()
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    return day.isoformat(), start, start + 86400.0


@dataclass(frozen=True)
class WaterLevel:
    """Elevation (m) of a collection's waterline and its parts (m, station datum).

    ``z_m = tide_m + setup_m + swash_fraction * swash_m``; setup and swash from
    Stockdon (2006) with ``slope`` (the station's current slope), 0 without waves.
    """

    z_m: float
    tide_m: float
    setup_m: float
    swash_m: float
    slope: float


class ShorelineStage:
    """Observations -> daily slope -> datum shoreline, per transect (see module docstring).

    After each collection the station calls :meth:`water_level` for the plane on which
    to place the waterline, runs the waterline stage on that plane, then :meth:`update`.
    """

    def __init__(self, config: StationConfig) -> None:
        self.config = config
        self.store = ShorelineStore(config.shoreline.store)

    def close(self) -> None:
        self.store.close()

    def current_slope(self, time: float) -> float:
        """The station's slope before the day of ``time``: the median of the transects'
        latest fitted slopes, else ``[slope] default``."""
        latest = self.store.latest_fitted_slopes(_day(time)[0])
        return float(np.median(latest)) if latest else self.config.slope.default

    def water_level(self, time: float, tide_m: float, waves: WaveState | None) -> WaterLevel:
        """Elevation of the waterline at ``time`` (epoch s): tide + setup + a fraction of
        the swash (``[shoreline] swash_fraction``), see :class:`WaterLevel`."""
        slope = self.current_slope(time)
        setup = swash = 0.0
        if waves is not None:
            r = stockdon2006(waves.h0_m, waves.tp_s, slope)
            setup, swash = r.setup_m, r.swash_m
        z = tide_m + setup + self.config.shoreline.swash_fraction * swash
        return WaterLevel(z, tide_m, setup, swash, slope)

    def update(
        self,
        waterline: dict[str, Any],
        time: float,
        tide_m: float | None,
        waves: WaveState | None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Messages ``slope`` and ``shoreline`` after one collection's waterline message.

        The waterline points lie on the plane ``waterline["water_level_m"]`` (the
        elevation the waterline stage used): that elevation is the observation's z, so
        the chainages and elevations fitted and shifted here are the same pairs the
        geometry produced. Without it, :meth:`water_level` gives z.
        """
        cfg = self.config
        day, start, end = _day(time)
        level = None
        if tide_m is not None:
            level = self.water_level(time, tide_m, waves)
            plane = waterline.get("water_level_m")
            if plane is not None and abs(float(plane) - level.z_m) > 1e-6:
                log.info(
                    "waterline placed at %.3f m, not the %.3f m of tide + waves: using %.3f m",
                    float(plane), level.z_m, float(plane),
                )  # fmt: skip
                level = WaterLevel(float(plane), *dataclasses.astuple(level)[1:])
            for t in waterline.get("transects", []):
                if t["valid"]:
                    obs = Observation(
                        time, float(t["distance_m"]), level.z_m,
                        None if waves is None else waves.h0_m,
                        None if waves is None else waves.tp_s,
                    )  # fmt: skip
                    self.store.add_observation(t["id"], obs, tide_m, level.z_m - tide_m)
        slopes: dict[str, SlopeEstimate] = {}
        for t in waterline.get("transects", []):
            obs = self.store.observations(t["id"], start, end)
            est = fit_slope(obs, cfg.slope, self.store.last_good_slope(t["id"], day))
            self.store.save_slope(day, t["id"], est)
            slopes[t["id"]] = est
        station, crs = cfg.station.id, cfg.station.crs
        slope_msg = envelope(
            "slope", station, time, day=day,
            transects=[{"id": k, **v.to_message()} for k, v in slopes.items()],
        )  # fmt: skip
        rows = [
            self._shoreline_row(t, time, level, slopes[t["id"]])
            for t in waterline.get("transects", [])
        ]
        shore_msg = envelope(
            "shoreline", station, time, crs=crs, datum_m=cfg.shoreline.datum_m,
            available=level is not None,
            reason=None if level is not None else "no tide level for this collection",
            tide_m=tide_m,
            waves=None if waves is None else {"h0_m": waves.h0_m, "tp_s": waves.tp_s},
            transects=rows,
        )  # fmt: skip
        return [("slope", slope_msg), ("shoreline", shore_msg)]

    def _shoreline_row(
        self, t: dict[str, Any], time: float, level: WaterLevel | None, slope: SlopeEstimate
    ) -> dict[str, Any]:
        cfg = self.config
        row: dict[str, Any] = {"id": t["id"], "tan_beta": round(slope.tan_beta, 5),
                               "slope_source": slope.source}  # fmt: skip
        if level is None or not t["valid"]:
            reason = "no tide level" if level is None else f"waterline invalid: {t['reason']}"
            return {**row, "available": False, "reason": reason, "distance_m": None}
        z_wl = level.z_m
        x = datum_chainage(float(t["distance_m"]), z_wl, cfg.shoreline.datum_m, slope.tan_beta)
        sigma = datum_sigma(
            z_wl, cfg.shoreline.datum_m, slope.tan_beta, cfg.shoreline.waterline_uncertainty_m,
            cfg.tide.uncertainty_m, slope.stderr,
        )  # fmt: skip
        self.store.add_shoreline(t["id"], time, x, sigma, slope.tan_beta)
        return {
            **row,
            "available": True,
            "distance_m": round(x, 3),
            "offset_m": round(x - float(t["distance_m"]), 3),
            "waterline_distance_m": t["distance_m"],
            "z_waterline_m": round(z_wl, 4),
            "tide_m": round(level.tide_m, 4),
            "setup_m": round(level.setup_m, 4),
            "swash_m": round(level.swash_m, 4),
            "swash_fraction": cfg.shoreline.swash_fraction,
            "runup_slope": round(level.slope, 5),
            "sigma_m": round(sigma, 3),
        }
