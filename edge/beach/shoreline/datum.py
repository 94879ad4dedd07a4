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
the day's slope per transect (:mod:`edge.beach.shoreline.slope`) and returns the typed
:class:`SlopeResult` and :class:`ShorelineResult`; the site serialises them (``beach/slope``,
``beach/shoreline``) just before the outbox.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from shapely.geometry import LineString

from edge.beach.shoreline.runup import stockdon2006
from edge.beach.shoreline.slope import Observation, SlopeEstimate, fit_slope
from edge.beach.shoreline.store import ShorelineStore
from edge.beach.shoreline.waves import WaveState
from edge.beach.waterline.analysis import WaterlineResult
from edge.beach.waterline.transects import Crossing, load_transects
from edge.config import StationConfig
from edge.station.messages import envelope

log = logging.getLogger(__name__)


def published_chainage(distance_m: float) -> float:
    """A waterline chainage as the waterline message publishes it (mm): the observations
    stored, fitted and shifted are the ones a control room receives."""
    return round(distance_m, 3)


def chainage_point(line: LineString, chainage_m: float) -> tuple[float, float]:
    """The point at ``chainage_m`` (m from the first, landward point, positive seaward) along
    the transect ``line`` (station CRS); beyond either end, on the end segment's extension."""
    length = line.length
    if 0.0 <= chainage_m <= length:
        p = line.interpolate(chainage_m)
        return float(p.x), float(p.y)
    coords = np.asarray(line.coords, dtype=float)[:, :2]
    a, b = (coords[0], coords[1]) if chainage_m < 0 else (coords[-2], coords[-1])
    base, beyond = (coords[0], chainage_m) if chainage_m < 0 else (coords[-1], chainage_m - length)
    unit = (b - a) / np.hypot(*(b - a))
    x, y = base + beyond * unit
    return float(x), float(y)


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
    day = dt.datetime.fromtimestamp(t, dt.timezone.utc).date()
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()
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
        #: Transect lines by id (station CRS), to place each datum chainage in the world.
        self.transects: dict[str, LineString] = (
            {t.id: t.line for t in load_transects(config.transects.file)}
            if config.transects
            else {}
        )

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
        waterline: WaterlineResult,
        time: float,
        tide_m: float | None,
        waves: WaveState | None,
    ) -> tuple[SlopeResult, ShorelineResult]:
        """The day's slope and the datum shoreline after one collection's waterline.

        The waterline points lie on the plane ``waterline.water_level_m`` (the elevation the
        waterline stage used): that elevation is the observation's z, so the chainages and
        elevations fitted and shifted here are the same pairs the geometry produced.
        """
        cfg = self.config
        day, start, end = _day(time)
        level = None
        if tide_m is not None:
            level = self.water_level(time, tide_m, waves)
            plane = waterline.water_level_m
            if abs(plane - level.z_m) > 1e-6:
                log.info(
                    "waterline placed at %.3f m, not the %.3f m of tide + waves: using %.3f m",
                    plane, level.z_m, plane,
                )  # fmt: skip
                level = dataclasses.replace(level, z_m=plane)
            for c in waterline.crossings:
                if c.valid and c.distance_m is not None:
                    obs = Observation(
                        time, published_chainage(c.distance_m), level.z_m,
                        None if waves is None else waves.h0_m,
                        None if waves is None else waves.tp_s,
                    )  # fmt: skip
                    self.store.add_observation(c.id, obs, tide_m, level.z_m - tide_m)
        slopes: dict[str, SlopeEstimate] = {}
        for c in waterline.crossings:
            day_obs = self.store.observations(c.id, start, end)
            est = fit_slope(day_obs, cfg.slope, self.store.last_good_slope(c.id, day))
            self.store.save_slope(day, c.id, est)
            slopes[c.id] = est
        points = [self._point(c, time, level, slopes[c.id]) for c in waterline.crossings]
        shoreline = ShorelineResult(
            time=time,
            datum_m=cfg.shoreline.datum_m,
            level=level,
            tide_m=tide_m,
            waves=waves,
            points=points,
        )
        return SlopeResult(time, day, slopes), shoreline

    def _point(
        self, crossing: Crossing, time: float, level: WaterLevel | None, slope: SlopeEstimate
    ) -> ShorelinePoint:
        cfg = self.config
        if level is None or not crossing.valid or crossing.distance_m is None:
            why = "no tide level" if level is None else f"waterline invalid: {crossing.reason}"
            return ShorelinePoint(crossing.id, slope, None, reason=why)
        z_wl = level.z_m
        x_wl = published_chainage(crossing.distance_m)
        x = datum_chainage(x_wl, z_wl, cfg.shoreline.datum_m, slope.tan_beta)
        sigma = datum_sigma(
            z_wl, cfg.shoreline.datum_m, slope.tan_beta, cfg.shoreline.waterline_uncertainty_m,
            cfg.tide.uncertainty_m, slope.stderr,
        )  # fmt: skip
        self.store.add_shoreline(crossing.id, time, x, sigma, slope.tan_beta)
        line = self.transects.get(crossing.id)
        return ShorelinePoint(
            crossing.id,
            slope,
            x,
            waterline_distance_m=x_wl,
            level=level,
            swash_fraction=cfg.shoreline.swash_fraction,
            sigma_m=sigma,
            point=None if line is None else chainage_point(line, x),
        )


@dataclass(frozen=True)
class SlopeResult:
    """The day's slope per transect after a collection at ``time`` (epoch s, UTC)."""

    time: float
    day: str
    estimates: dict[str, SlopeEstimate]

    def to_message(self, station: str) -> dict[str, Any]:
        """The ``geoedge.slope/1`` message."""
        transects = [{"id": k, **v.to_message()} for k, v in self.estimates.items()]
        return envelope("slope", station, self.time, day=self.day, transects=transects)


@dataclass(frozen=True)
class ShorelinePoint:
    """The datum shoreline on one transect: chainage ``distance_m`` (m, positive seaward)
    with its 1-sigma ``sigma_m``, None with a ``reason`` when unavailable; ``point`` is that
    chainage in the world (station CRS, m), when the transect's line is known."""

    id: str
    slope: SlopeEstimate
    distance_m: float | None
    reason: str | None = None
    waterline_distance_m: float | None = None
    level: WaterLevel | None = None
    swash_fraction: float | None = None
    sigma_m: float | None = None
    point: tuple[float, float] | None = None

    def to_message(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.id, "tan_beta": round(self.slope.tan_beta, 5),
                               "slope_source": self.slope.source}  # fmt: skip
        if self.distance_m is None or self.level is None or self.waterline_distance_m is None:
            return {**row, "available": False, "reason": self.reason, "distance_m": None}
        return {
            **row,
            "available": True,
            "distance_m": round(self.distance_m, 3),
            "offset_m": round(self.distance_m - self.waterline_distance_m, 3),
            "waterline_distance_m": round(self.waterline_distance_m, 3),
            "z_waterline_m": round(self.level.z_m, 4),
            "tide_m": round(self.level.tide_m, 4),
            "setup_m": round(self.level.setup_m, 4),
            "swash_m": round(self.level.swash_m, 4),
            "swash_fraction": self.swash_fraction,
            "runup_slope": round(self.level.slope, 5),
            "sigma_m": None if self.sigma_m is None else round(self.sigma_m, 3),
            "point": None if self.point is None else [round(v, 3) for v in self.point],
        }


@dataclass(frozen=True)
class ShorelineResult:
    """The tide-datum shoreline of one collection at ``time`` (epoch s, UTC).

    ``level`` is the waterline's elevation and its parts; None when there was no tide level
    (then nothing can be placed: every point is unavailable).
    """

    time: float
    datum_m: float
    level: WaterLevel | None
    tide_m: float | None
    waves: WaveState | None
    points: list[ShorelinePoint]

    def to_message(self, station: str, crs: str) -> dict[str, Any]:
        """The ``geoedge.shoreline/1`` message."""
        waves = self.waves
        return envelope(
            "shoreline", station, self.time, crs=crs, datum_m=self.datum_m,
            available=self.level is not None,
            reason=None if self.level is not None else "no tide level for this collection",
            tide_m=self.tide_m,
            waves=None if waves is None else {"h0_m": waves.h0_m, "tp_s": waves.tp_s},
            transects=[p.to_message() for p in self.points],
        )  # fmt: skip
