"""Arguments shared by several sub-commands: argparse ``type=`` callables and groups."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.station.messages import epoch_seconds


def utc_time(text: str, naive_is_utc: bool = False) -> float:
    """UTC ISO 8601 (``2026-06-15T03:00:00Z``) -> epoch seconds (:func:`epoch_seconds`).

    A time without a zone is refused, unless ``naive_is_utc`` says to read it as UTC.
    """
    try:
        return epoch_seconds(text, naive_is_utc)
    except ValueError as exc:
        if "no time zone" in str(exc):
            raise argparse.ArgumentTypeError(f"{text!r} has no time zone: add Z") from None
        raise argparse.ArgumentTypeError(f"expected UTC ISO 8601, got {text!r}") from None


def camera_path(text: str) -> tuple[str, Path]:
    """``CAM=PATH`` -> (camera name, path)."""
    cam, sep, path = text.partition("=")
    if not sep or not cam or not path:
        raise argparse.ArgumentTypeError(f"expected CAM=PATH, got {text!r}")
    return cam, Path(path)


def config_or_state(parser: argparse.ArgumentParser, state_holds: str) -> None:
    """``--config FILE`` or ``--state DIR`` (exactly one): a station's TOML, or the folder
    where a daemon keeps its state (``geoedge demo``'s ``geoedge-demo/beach``, say), which
    holds ``state_holds``."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="station TOML file")
    where.add_argument(
        "--state",
        type=Path,
        metavar="DIR",
        help=f"folder with {state_holds} instead of a config (e.g. geoedge-demo/beach)",
    )
