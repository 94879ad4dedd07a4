"""``[quality]``: thresholds of the per-collection image quality gates."""

from __future__ import annotations

from pydantic import Field

from edge.config.base import ExistingFile, Section


class QualitySection(Section):
    """Quality gate thresholds (grey levels 0..255, pixels).

    ``min_brightness``: mean grey of the TimeX below this is ``too_dark`` (night).
    ``min_contrast``: standard deviation of the TimeX grey below this is
    ``low_contrast`` (fog, rain on the lens). ``max_shift_px``: image shift against
    the camera's reference image above this is ``camera_moved``.
    """

    min_brightness: float = Field(default=40.0, ge=0, le=255)
    min_contrast: float = Field(default=12.0, ge=0, le=255)
    max_shift_px: float = Field(default=3.0, gt=0)
    #: Reference image per camera name for the movement check; none = first good TimeX.
    reference_images: dict[str, ExistingFile] = Field(default_factory=dict)
