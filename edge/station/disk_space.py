"""Free-space reserve for product files: write images only while the disk has room.

:class:`DiskSpace` answers :meth:`DiskSpace.allows` for a directory: True while its
file system has at least ``min_free_bytes`` free and, after a write there failed for
lack of space, once ``RECOVERY_BYTES`` more than at the failure are free again (so a
disk that is still full is not retried on every collection). Crossing into "full"
and back is logged once each way, not on every refused write. Results are computed
and queued either way; only the image products and snippets are skipped (the caller
flags them).
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
import time
from pathlib import Path

from edge.errors import InputError

log = logging.getLogger(__name__)

#: Errors that mean "no room", as opposed to a permission or path problem.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class NoSpaceError(InputError):
    """A product file could not be written for lack of disk space."""


#: Bytes that must be freed after a failed write before products are written again.
RECOVERY_BYTES = 8 * 1024**2
#: Seconds a free-space reading is reused before ``statvfs`` is asked again.
RECHECK_S = 5.0


class DiskSpace:
    """Tracks whether product directories may be written (thread-safe)."""

    def __init__(self, min_free_bytes: int) -> None:
        self.min_free_bytes = min_free_bytes
        self._lock = threading.Lock()
        self._full: dict[Path, bool] = {}
        self._checked: dict[Path, float] = {}
        self._free_at_failure: dict[Path, int] = {}
        self.refused_writes = 0

    def allows(self, directory: Path) -> bool:
        """True when product files may be written to ``directory`` now."""
        directory = Path(directory)
        with self._lock:
            now = time.monotonic()
            if now - self._checked.get(directory, -RECHECK_S) >= RECHECK_S:
                self._checked[directory] = now
                free = free_bytes(directory)
                need = self.min_free_bytes
                if directory in self._free_at_failure:
                    need = max(need, self._free_at_failure[directory] + RECOVERY_BYTES)
                full = free is not None and free < need
                if not full:
                    self._free_at_failure.pop(directory, None)
                self._set(directory, full, free)
            if self._full.get(directory, False):
                self.refused_writes += 1
                return False
            return True

    def mark_full(self, directory: Path) -> None:
        """A write to ``directory`` failed for lack of space: full until a check says not."""
        directory = Path(directory)
        with self._lock:
            free = free_bytes(directory)
            self._checked[directory] = time.monotonic()
            self._free_at_failure[directory] = free or 0
            self._set(directory, True, free)

    @property
    def full(self) -> bool:
        """True while any watched directory is out of space."""
        with self._lock:
            return any(self._full.values())

    def stats(self) -> dict[str, object]:
        with self._lock:
            return {
                "disk_full": any(self._full.values()),
                "full_dirs": sorted(str(d) for d, full in self._full.items() if full),
                "refused_writes": self.refused_writes,
            }

    def _set(self, directory: Path, full: bool, free: int | None) -> None:
        if full == self._full.get(directory, False):
            return
        self._full[directory] = full
        if full:
            log.error(
                "disk nearly full at %s (%s bytes free, reserve %d): product images are NOT "
                "written; results are still computed and queued",
                directory,
                "?" if free is None else free,
                self.min_free_bytes,
            )
        else:
            log.info("disk space is back at %s (%s bytes free): writing products again",
                     directory, free)  # fmt: skip


def free_bytes(directory: Path) -> int | None:
    """Free bytes for unprivileged writers on the file system of ``directory`` (or a parent)."""
    for candidate in (directory.absolute(), *directory.absolute().parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None
