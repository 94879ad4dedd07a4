"""Retention of image products: delete what is too old, then the oldest beyond a size.

:func:`sweep` works on one directory tree: files whose modification time is older
than ``max_age_s`` are deleted, then the oldest remaining files until the tree
holds at most ``max_bytes``. Half-written files (``*.part``) older than an hour
are left-overs of a crash and are deleted too. Files for which ``keep(path)`` is
true are never deleted and count toward nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: A ``*.part`` file this old (s) is a crash left-over, not a write in progress.
STALE_PART_S = 3600.0


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did: files deleted and bytes freed; files and bytes kept."""

    deleted: int = 0
    freed_bytes: int = 0
    kept: int = 0
    kept_bytes: int = 0


def sweep(
    directory: Path,
    max_age_s: float | None,
    max_bytes: int | None,
    *,
    now: float | None = None,
    keep: Callable[[Path], bool] = lambda path: False,
) -> SweepResult:
    """Apply the age and size limits to the files under ``directory`` (see module doc)."""
    now = time.time() if now is None else now
    files: list[tuple[float, int, Path]] = []
    for root, _, names in os.walk(directory):
        for name in names:
            path = Path(root) / name
            if keep(path):
                continue
            try:
                st = path.stat()
            except OSError:
                continue  # deleted meanwhile
            files.append((st.st_mtime, st.st_size, path))
    files.sort()
    doomed: list[tuple[float, int, Path]] = []
    kept: list[tuple[float, int, Path]] = []
    for entry in files:
        mtime, _, path = entry
        too_old = max_age_s is not None and now - mtime > max_age_s
        stale_part = path.suffix == ".part" and now - mtime > STALE_PART_S
        (doomed if too_old or stale_part else kept).append(entry)
    total = sum(size for _, size, _ in kept)
    while max_bytes is not None and total > max_bytes and kept:
        entry = kept.pop(0)
        doomed.append(entry)
        total -= entry[1]
    deleted = freed = 0
    for _, size, path in doomed:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("retention: cannot delete %s (%s)", path, exc.strerror)
            total += size
            continue
        deleted += 1
        freed += size
    return SweepResult(deleted, freed, len(files) - deleted, total)
