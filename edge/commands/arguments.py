"""Argument types shared by several sub-commands (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path


def utc_time(text: str, naive_is_utc: bool = False) -> float:
    """UTC ISO 8601 (``2026-06-15T03:00:00Z``) -> epoch seconds.

    A time without a zone is refused, unless ``naive_is_utc`` says to read it as UTC.
    """
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected UTC ISO 8601, got {text!r}") from None
    if when.tzinfo is None:
        if not naive_is_utc:
            raise argparse.ArgumentTypeError(f"{text!r} has no time zone: add Z")
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def camera_path(text: str) -> tuple[str, Path]:
    """``CAM=PATH`` -> (camera name, path)."""
    cam, sep, path = text.partition("=")
    if not sep or not cam or not path:
        raise argparse.ArgumentTypeError(f"expected CAM=PATH, got {text!r}")
    return cam, Path(path)
