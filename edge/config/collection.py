"""``[collection]``: when a beach station samples video and how often."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from edge.config.base import ConfigPath, Section


class CollectionSection(Section):
    """Collection windows and sampling.

    A collection starts every ``interval_min`` minutes, ``offset_min`` minutes after
    UTC midnight (so with the default 60-minute interval: at the top of every UTC
    hour), lasts ``duration_min`` minutes, and samples frames at ``sample_hz`` using
    frame timestamps. When ``interval_min`` does not divide a day, the sequence
    restarts at each UTC midnight. Collections start only between ``daylight_utc[0]``
    and ``daylight_utc[1]`` (hours UTC; ``[20, 6]`` wraps past midnight; ``[0, 24]`` =
    always). A collection with fewer than ``min_frame_fraction`` of the expected
    frames is flagged ``too_few_frames``.

    ``align`` chooses when collections run:

    - ``"clock"`` (the daemon default): wait for each clock-aligned window; a daemon
      started inside a window joins it (the shortened collection is flagged).
    - ``"immediate"``: the first collection starts now and the next ones follow back
      to back, each ``duration_min`` long. A video file is read along its own
      timeline (frame timestamps relative to the first window's start), and the run
      ends when every file source has ended. This is what ``geoedge demo`` and the
      tests use to process a recorded video without waiting for the wall clock;
      ``start_utc`` gives the recording's own start time instead of now.

    ``image_format`` ``"jpg"`` writes Argus-style JPEG products (``jpeg_quality``);
    ``"png"`` writes lossless products (same names, ``.png``).
    """

    interval_min: int = Field(default=60, gt=0, le=1440)
    duration_min: float = Field(default=10.0, gt=0)
    offset_min: float = Field(default=0.0, ge=0)
    sample_hz: float = Field(default=1.0, gt=0, le=30)
    min_frame_fraction: float = Field(default=0.8, gt=0, le=1)
    daylight_utc: tuple[float, float] = (0.0, 24.0)
    align: Literal["clock", "immediate"] = "clock"
    #: With ``align = "immediate"``: the UTC time of the first window instead of now, for
    #: replaying a recording made at a known time (tide and sun then match the frames).
    start_utc: AwareDatetime | None = None
    #: Where products (images + JSON sidecars) are written.
    output_dir: ConfigPath = Field(default=Path("products"), validate_default=True)
    image_format: Literal["jpg", "png"] = "jpg"
    jpeg_quality: int = Field(default=95, ge=50, le=100)

    @model_validator(mode="after")
    def _fits_interval(self) -> CollectionSection:
        if self.duration_min + self.offset_min > self.interval_min:
            raise ValueError(
                f"a {self.duration_min:g}-minute collection at offset {self.offset_min:g} "
                f"does not fit in a {self.interval_min}-minute interval "
                "(expected duration_min + offset_min <= interval_min)"
            )
        if self.start_utc is not None and self.align != "immediate":
            raise ValueError("start_utc is only meaningful with align = 'immediate'")
        lo, hi = self.daylight_utc
        if not (0 <= lo <= 24 and 0 <= hi <= 24):
            raise ValueError("daylight_utc hours must lie in 0..24")
        if not any(self.starts_in_daylight(s) for s in self.day_starts_s()):
            raise ValueError(
                f"no collection starts inside daylight_utc {list(self.daylight_utc)} "
                f"(interval {self.interval_min} min, offset {self.offset_min:g} min)"
            )
        return self

    def day_starts_s(self) -> list[float]:
        """Window start times within one UTC day, seconds after midnight."""
        step, first = self.interval_min * 60.0, self.offset_min * 60.0
        return [first + k * step for k in range(math.ceil((86400.0 - first) / step))]

    def starts_in_daylight(self, seconds_of_day: float) -> bool:
        """Whether a window starting ``seconds_of_day`` after UTC midnight may run."""
        hour = seconds_of_day / 3600.0
        lo, hi = self.daylight_utc
        return lo <= hour < hi if lo <= hi else (hour >= lo or hour < hi)
