"""Tide, waves, slope and shoreline: ``[tide]``, ``[waves]``, ``[slope]``, ``[shoreline]``.

Elevations are metres in the station's vertical datum (the datum of the camera
extrinsics and of every water level), times UTC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import ConfigPath, ExistingFile, Section


class ConstituentSection(Section):
    """One harmonic constituent: amplitude (m) and Greenwich phase lag g (degrees)."""

    name: Literal["M2", "S2", "N2", "K2", "K1", "O1", "P1", "Q1", "M4", "MS4", "M6"]
    amplitude_m: float = Field(ge=0)
    phase_deg: float


class TideSection(Section):
    """Where the water level comes from.

    ``source``: ``"mqtt"`` (a live gauge: ``topic`` and the JSON ``field`` holding the
    level in m; ``time_field`` its UTC time, else the arrival time), ``"csv"`` (``file``
    with columns ``time,level_m``, interpolated in time), ``"harmonic"``
    (``constituents`` predicted on the device, plus ``z0_m``, the mean level), or
    ``"none"``. ``offset_m`` is added to every level (gauge datum -> station datum).
    A level older than ``max_age_s`` (MQTT) or farther than ``max_gap_s`` from the table
    rows (CSV) is unavailable: the shoreline is then marked unavailable, never guessed.
    ``uncertainty_m`` is the 1-sigma error of a level, used in the shoreline error.
    A gauge message outside ``level_range_m`` (m, gauge datum) is ignored as bad.
    """

    source: Literal["none", "mqtt", "csv", "harmonic"] = "none"
    topic: str | None = None
    field: str = "level_m"
    time_field: str | None = "time"
    file: ExistingFile | None = None
    constituents: list[ConstituentSection] = Field(default_factory=list)
    z0_m: float = 0.0
    offset_m: float = 0.0
    max_age_s: float = Field(default=900.0, gt=0)
    max_gap_s: float = Field(default=3 * 3600.0, gt=0)
    uncertainty_m: float = Field(default=0.05, ge=0)
    level_range_m: tuple[float, float] = (-20.0, 20.0)

    @model_validator(mode="after")
    def _source_inputs(self) -> TideSection:
        if self.level_range_m[0] >= self.level_range_m[1]:
            raise ValueError("level_range_m must be [low, high] with low < high")
        need = {"mqtt": ("topic", self.topic), "csv": ("file", self.file)}
        if self.source in need and need[self.source][1] is None:
            raise ValueError(f"tide source '{self.source}' needs '{need[self.source][0]}'")
        if self.source == "harmonic" and not self.constituents:
            raise ValueError("tide source 'harmonic' needs [[tide.constituents]]")
        return self


class WavesSection(Section):
    """Significant wave height and peak period (and direction where given).

    ``source`` ``"mqtt"`` (``topic``; JSON fields ``hs_field``, ``tp_field``, ``dir_field``),
    ``"csv"`` (``file`` with columns ``time,hs_m,tp_s[,dir_deg]``) or ``"none"``.
    ``gauge_depth_m`` is the water depth at the gauge (None: deep water); with
    ``reverse_shoal = true`` Hs is shoaled back to deep water by linear theory.
    """

    source: Literal["none", "mqtt", "csv"] = "none"
    topic: str | None = None
    hs_field: str = "hs_m"
    tp_field: str = "tp_s"
    dir_field: str | None = "dir_deg"
    time_field: str | None = "time"
    file: ExistingFile | None = None
    gauge_depth_m: float | None = Field(default=None, gt=0)
    reverse_shoal: bool = False
    max_age_s: float = Field(default=3 * 3600.0, gt=0)

    @model_validator(mode="after")
    def _source_inputs(self) -> WavesSection:
        if self.source == "mqtt" and self.topic is None:
            raise ValueError("waves source 'mqtt' needs 'topic'")
        if self.source == "csv" and self.file is None:
            raise ValueError("waves source 'csv' needs 'file'")
        if self.reverse_shoal and self.gauge_depth_m is None:
            raise ValueError("reverse_shoal needs gauge_depth_m")
        return self


class SlopeSection(Section):
    """Beach slope from the day's waterlines (published selection rules as thresholds).

    A day's fit uses collections with valid crossings whose Hs and Tp lie within
    ``max_hs_change`` / ``max_tp_change`` (fractions) of the day's median; it needs at
    least ``min_points`` of them spanning ``min_tide_range_m`` of water level, and that
    range must move the waterline by at least ``min_shift_pixels`` ground pixels of
    ``pixel_size_m`` at the default slope. Otherwise the last good slope of the
    transect is used, then ``default``.
    """

    default: float = Field(default=0.08, gt=0, lt=1)
    min_points: int = Field(default=3, ge=2)
    min_tide_range_m: float = Field(default=0.3, ge=0)
    pixel_size_m: float = Field(default=0.5, gt=0)
    min_shift_pixels: float = Field(default=4.0, ge=0)
    max_hs_change: float = Field(default=0.3, ge=0)
    max_tp_change: float = Field(default=0.3, ge=0)


class ShorelineSection(Section):
    """Tide-datum shoreline: the chainage of the ``datum_m`` contour on each transect.

    ``z_waterline = tide + setup + swash_fraction * swash`` (Stockdon 2006 with the
    transect's slope, when waves are known). Every shoreline and waterline observation
    is kept in the SQLite ``store``.
    """

    datum_m: float = 0.0
    swash_fraction: float = Field(default=0.0, ge=0, le=1)
    store: ConfigPath = Field(default=Path("state/shoreline.sqlite"), validate_default=True)
    waterline_uncertainty_m: float = Field(default=0.5, ge=0)
