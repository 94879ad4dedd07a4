"""Tide, waves, slope and shoreline: ``[tide]``, ``[waves]``, ``[slope]``, ``[shoreline]``."""

from __future__ import annotations

from edge.config.base import Section


class TideSection(Section):
    """Where the water level comes from (MQTT gauge, CSV table or harmonics)."""


class WavesSection(Section):
    """Where significant wave height and peak period come from."""


class SlopeSection(Section):
    """Beach slope estimation rules."""


class ShorelineSection(Section):
    """Tide-datum shoreline."""
