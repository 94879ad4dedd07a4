"""Beach station wiring: the daemon's beach site and what runs after each collection.

``beach_site(config, emit, subscribe)`` builds the :class:`~edge.beach_station.BeachStation`
(capture -> sampler -> products -> quality gates -> ``beach/products``) and hands it
the stages that run on each finished collection.
"""

from __future__ import annotations

from edge.beach_station import BeachStation
from edge.config import StationConfig


def beach_site(config: StationConfig, emit, subscribe) -> BeachStation:
    """The daemon's factory for a beach station."""
    del subscribe
    return BeachStation(config, emit)
