"""Beach station wiring: the daemon's beach site and what runs after each collection.

``beach_site(config, emit, subscribe)`` builds the :class:`~edge.beach_station.BeachStation`
(capture -> sampler -> products -> quality gates -> ``beach/products``) and hands it a
:class:`CollectionAnalysis`, which for each finished collection:

1. keeps the cameras whose TimeX passed the quality gates;
2. takes the water level at the middle of the window from the shoreline stage: tide
   (``[tide]``) plus wave setup and the configured swash fraction (Stockdon 2006,
   ``[waves]``, with the station's latest fitted slope) -- without a tide level
   no waterline can be placed in the world, so the collection's shoreline is reported
   unavailable and nothing is guessed;
3. runs the waterline stage (``beach/waterline``), then slope and shoreline
   (``beach/slope``, ``beach/shoreline``).
"""

from __future__ import annotations

import logging
from typing import Any

from edge.beach_analysis import BeachAnalyser
from edge.beach_station import BeachStation
from edge.config import StationConfig
from edge.messages import envelope
from edge.products import Collection
from edge.shoreline import ShorelineStage
from edge.tide import TideSource
from edge.waves import WaveSource

log = logging.getLogger(__name__)

#: Quality flags that make a TimeX unusable for the waterline.
UNUSABLE = {"no_frames", "too_dark", "low_contrast", "camera_moved"}
#: With this flag no overlay is written either (the disk is full).
DISK_FULL = {"products_not_written"}


class CollectionAnalysis:
    """``analyse(collections) -> [(kind, message)]`` for :class:`BeachStation`."""

    def __init__(self, config: StationConfig, subscribe) -> None:
        self.config = config
        self.tide = TideSource(config.tide)
        self.waves = WaveSource(config.waves)
        self.tide.attach(subscribe)
        self.waves.attach(subscribe)
        self.analyser = BeachAnalyser(config)
        self.shoreline = ShorelineStage(config)

    def __call__(self, collections: list[Collection]) -> list[tuple[str, dict[str, Any]]]:
        usable = [c for c in collections if c.timex is not None and not UNUSABLE & set(c.flags)]
        if not usable:
            log.info("no usable TimeX in this collection: waterline skipped")
            return []
        first = usable[0]
        time = (first.start + first.end) / 2.0
        tide = self.tide.level_at(time)
        waves = self.waves.at(time)
        if tide is None:
            log.warning("no tide level at %s: waterline and shoreline unavailable", time)
            return [
                (
                    "shoreline",
                    envelope(
                        "shoreline",
                        self.config.station.id,
                        time,
                        crs=self.config.station.crs,
                        available=False,
                        reason="no tide level for this collection",
                        transects=[],
                    ),
                )
            ]
        level = self.shoreline.water_level(time, tide, waves)
        flags = {f for c in usable for f in c.flags}
        waterline = self.analyser.analyse(
            time,
            level.z_m,
            images={c.camera: c.timex for c in usable},
            out_dir=None if DISK_FULL & flags else self.config.collection.output_dir,
            stem=f"{first.epoch}.{self.config.station.id}",
        )
        waterline["tide_m"] = round(level.tide_m, 4)
        waterline["setup_m"] = round(level.setup_m, 4)
        return [("waterline", waterline), *self.shoreline.update(waterline, time, tide, waves)]


def beach_site(config: StationConfig, emit, subscribe) -> BeachStation:
    """The daemon's factory for a beach station."""
    return BeachStation(config, emit, analyse=CollectionAnalysis(config, subscribe))
