"""``[storage]``: how much disk the station's image products may use.

Image products (TimeX, variance, bright, dark, snap, overlays in
``collection.output_dir``) and B-scan snippets (``gpr.snippets``) are swept every
``sweep_interval_s``: files older than ``max_age_days`` go first, then the oldest
files until the directory holds at most ``max_bytes``. The movement reference
images (``reference.*``) are never swept.

When a product directory's file system has less than ``min_free_bytes`` free, no
product or snippet is written (collections are flagged ``products_not_written``)
but every result is still computed and queued: the reserve keeps room for the
outbox and the shoreline store. ``stats`` reports ``disk_full`` until space is back.
"""

from __future__ import annotations

from pydantic import Field

from edge.config.base import Section


class StorageSection(Section):
    """Retention of image products and snippets, and the free-space reserve."""

    max_age_days: float | None = Field(default=30.0, gt=0)
    max_bytes: int | None = Field(default=20 * 1024**3, gt=0)
    min_free_bytes: int = Field(default=512 * 1024**2, ge=0)
    sweep_interval_s: float = Field(default=600.0, gt=0)
