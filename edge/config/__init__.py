"""Station configuration: TOML validated into typed sections at start-up.

:func:`load_config` is the only entry point. Any problem (unknown key, wrong
type, missing calibration file, impossible value) raises
:class:`~edge.errors.ConfigError` with one line naming the file, the key and
what was expected, e.g.::

    beach.toml: collection: a 15-minute collection at offset 0 does not fit in a
    10-minute interval (expected duration_min + offset_min <= interval_min)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (JetPack 6)
    import tomli as tomllib

from pydantic import Field, ValidationError, model_validator

from edge.config.base import Section
from edge.config.beach import (
    GridSection,
    SegmentationSection,
    TransectsSection,
    WaterlineSection,
)
from edge.config.cameras import CameraSection
from edge.config.collection import CollectionSection
from edge.config.gpr import GprSection
from edge.config.mqtt import MqttSection, OutboxSection
from edge.config.quality import QualitySection
from edge.config.shoreline import ShorelineSection, SlopeSection, TideSection, WavesSection
from edge.config.station import StationSection
from edge.config.storage import StorageSection
from edge.errors import ConfigError

#: A validated config file's model (the station's, the hub's).
ConfigT = TypeVar("ConfigT", bound=Section)

__all__ = [
    "StationConfig",
    "format_validation_error",
    "load_config",
    "read_toml",
    "referenced_files",
    "with_changes",
]


class StationConfig(Section):
    """The whole station config. ``source_path`` is the file it was read from."""

    station: StationSection
    cameras: list[CameraSection] = Field(default_factory=list)
    collection: CollectionSection = Field(default_factory=CollectionSection)
    quality: QualitySection = Field(default_factory=QualitySection)
    grid: GridSection | None = None
    transects: TransectsSection | None = None
    segmentation: SegmentationSection = Field(default_factory=SegmentationSection)
    waterline: WaterlineSection = Field(default_factory=WaterlineSection)
    tide: TideSection = Field(default_factory=TideSection)
    waves: WavesSection = Field(default_factory=WavesSection)
    slope: SlopeSection = Field(default_factory=SlopeSection)
    shoreline: ShorelineSection = Field(default_factory=ShorelineSection)
    gpr: GprSection | None = None
    mqtt: MqttSection = Field(default_factory=MqttSection)
    outbox: OutboxSection = Field(default_factory=OutboxSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    source_path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _site_kind(self) -> StationConfig:
        if self.station.kind == "beach":
            if not self.cameras:
                raise ValueError("a beach station needs at least one [[cameras]] entry")
            names = [c.name for c in self.cameras]
            if len(set(names)) != len(names):
                raise ValueError(f"camera names must be unique, got {names}")
        elif self.gpr is None:
            raise ValueError("a GPR unit (station.kind = 'gpr') needs a [gpr] section")
        return self

    def camera(self, name: str) -> CameraSection:
        """The camera called ``name``; raises ConfigError naming the known cameras."""
        for cam in self.cameras:
            if cam.name == name:
                return cam
        known = ", ".join(c.name for c in self.cameras) or "none"
        raise ConfigError(f"no camera {name!r} in the config (cameras: {known})")


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line for the first error of a pydantic ValidationError."""
    err = exc.errors()[0]
    # Drop union/tagged-branch names pydantic inserts into the location.
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
    where = _location(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{where}'"
    if kind == "missing":
        return f"{source}: missing key '{where}'"
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    shown = "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {where}: {msg}{shown}{more}"


def read_toml(path: Path) -> dict[str, Any]:
    """The tables of the TOML file ``path``; ConfigError with one line when it cannot be read
    or is no valid TOML (shared by every config file: station, hub)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}): a TOML file is expected"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML (arrays or tables nested too deeply)") from None
    return data


def validate_toml(model: type[ConfigT], path: Path) -> ConfigT:
    """Read the TOML file ``path`` and validate it as ``model`` (relative paths in it are
    relative to the file); ConfigError with one line on any problem. The station's and the
    hub's config files both load through here."""
    data = read_toml(path)
    try:
        return model.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    except RecursionError:
        raise ConfigError(f"{path}: a value is nested too deeply") from None


def load_config(path: str | Path) -> StationConfig:
    """Read and validate a station TOML file; raise ConfigError with one line on any problem."""
    path = Path(path)
    cfg = validate_toml(StationConfig, path)
    return cfg.model_copy(update={"source_path": path.resolve()})


def with_changes(
    config: StationConfig, **sections: dict[str, Any] | list[dict[str, Any]]
) -> StationConfig:
    """A copy of ``config`` with keys of its sections replaced (a dict: those keys; a list:
    the whole array of tables, e.g. ``cameras``), validated as at load
    (``with_changes(cfg, segmentation={"method": "colour"})``); ``config`` is unchanged."""
    data = config.model_dump()
    for name, change in sections.items():
        if isinstance(change, list):
            data[name] = change
        elif isinstance(data.get(name), dict):
            data[name] = {**data[name], **change}
        else:
            raise ConfigError(f"with_changes: the config has no [{name}] section")
    base = config.source_path.parent if config.source_path else None
    try:
        changed = StationConfig.model_validate(data, context={"base_dir": base})
    except ValidationError as exc:
        source = str(config.source_path) if config.source_path else "config"
        raise ConfigError(format_validation_error(exc, source)) from None
    return changed.model_copy(update={"source_path": config.source_path})


def referenced_files(config: StationConfig) -> list[Path]:
    """The existing files the config names (calibration, transects, ROI, tide tables, models,
    password files, a file source...), the config file first: what a device needs of its
    config folder, and nothing that merely lies beside it (outputs, old snippets)."""
    found: list[Path] = [] if config.source_path is None else [config.source_path]

    def walk(value: object) -> None:
        if isinstance(value, Path):
            if value.is_file() and value not in found:
                found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, str) and "/" in value and Path(value).is_file():
            walk(Path(value))

    walk(config.model_dump())
    return found
