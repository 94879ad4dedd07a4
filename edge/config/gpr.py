"""``[gpr]``: the GPR unit's trace source, processing, detection and positioning."""

from __future__ import annotations

from edge.config.base import Section


class GprSection(Section):
    """GPR unit settings."""
