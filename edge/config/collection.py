"""``[collection]``: when a beach station samples video and how often."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from edge.config.base import ConfigPath, Section


class CollectionSection(Section):
    """Clock-aligned collection windows.

    A collection starts every ``interval_min`` minutes, ``offset_min`` minutes after
    the top of the UTC hour (or of the interval), lasts ``duration_min`` minutes,
    and samples frames at ``sample_hz`` using frame timestamps. Collections run
    only between ``daylight_utc[0]`` and ``daylight_utc[1]`` (hours UTC, may wrap
    past midnight). A collection with fewer than ``min_frame_fraction`` of the
    expected frames is flagged ``too_few_frames``.
    """

    interval_min: int = Field(default=60, gt=0, le=1440)
    duration_min: float = Field(default=10.0, gt=0)
    offset_min: float = Field(default=0.0, ge=0)
    sample_hz: float = Field(default=1.0, gt=0, le=30)
    min_frame_fraction: float = Field(default=0.8, gt=0, le=1)
    daylight_utc: tuple[float, float] = (0.0, 24.0)
    #: Where products (images + JSON sidecars) are written.
    output_dir: ConfigPath = Field(default=Path("products"), validate_default=True)
    jpeg_quality: int = Field(default=95, ge=50, le=100)

    @model_validator(mode="after")
    def _fits_interval(self) -> CollectionSection:
        if self.duration_min + self.offset_min > self.interval_min:
            raise ValueError(
                f"a {self.duration_min:g}-minute collection at offset {self.offset_min:g} "
                f"does not fit in a {self.interval_min}-minute interval "
                "(expected duration_min + offset_min <= interval_min)"
            )
        lo, hi = self.daylight_utc
        if not (0 <= lo <= 24 and 0 <= hi <= 24):
            raise ValueError("daylight_utc hours must lie in 0..24")
        return self
