"""The hub's config: ``[mqtt]`` (the same section, keys and checks as a station's) and ``[hub]``.

:func:`load_hub_config` is the only entry point; any problem raises
:class:`~edge.errors.ConfigError` with one line naming the file and the key, as the station's
config does (:mod:`edge.config`)::

    hub.toml: hub.http: expected HOST:PORT with a port 1..65535 (got 'localhost')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from edge.config import validate_toml
from edge.config.base import ConfigPath, ExistingFile, Section
from edge.config.mqtt import MqttSection
from edge.config.secrets import read_secret, redact, with_password
from edge.errors import ConfigError

__all__ = ["HttpAddress", "HubConfig", "HubSection", "load_hub_config", "parse_http"]

#: ``[mqtt]`` keys that only a station's publisher uses: refused in a hub config rather than
#: silently ignored.
STATION_ONLY_MQTT_KEYS = frozenset({"stats_interval_s", "max_inflight", "shutdown_grace_s"})


@dataclass(frozen=True)
class HttpAddress:
    """Where the HTTP API and the dashboard listen (``HOST:PORT``; ``[::1]:8080`` for IPv6)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_http(value: str) -> HttpAddress:
    """``HOST:PORT`` -> :class:`HttpAddress`; ValueError naming what was expected."""
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT with a port 1..65535")
    return HttpAddress(host, int(port))


def _store(value: str, info: ValidationInfo) -> str:
    """A ``postgresql://`` URL as given, or the absolute path of an SQLite file: a plain path
    (relative to the config file) or ``sqlite:///ABSOLUTE/PATH``."""
    if value.startswith(("postgresql://", "postgres://")):
        return "postgresql://" + value.split("://", 1)[1]
    if "://" in value and not value.startswith("sqlite://"):
        raise ValueError(
            "expected a postgresql:// URL, sqlite:///ABSOLUTE/PATH or a file path "
            "(relative to the config file)"
        )
    if value.startswith("sqlite://"):
        path = Path("/" + value.removeprefix("sqlite://").lstrip("/"))
    else:
        path = Path(value).expanduser()
        base = (info.context or {}).get("base_dir")
        if base is not None and not path.is_absolute():
            path = Path(base) / path
    if path.name == "" or str(path) == "/":
        raise ValueError("the SQLite store needs a file name")
    return str(path)


class HubSection(Section):
    """The hub itself.

    ``store``: where every message is kept, an SQLite file (default ``hub.sqlite`` beside the
    config; ``sqlite:///ABSOLUTE/PATH`` also works) or a ``postgresql://user@host[:port]/db``
    URL, whose password, if any, comes from ``store_password_file``. ``share_group``: join the
    MQTT 5 shared subscription ``$share/<group>/...`` so that several hubs split the messages
    (needs ``[mqtt] protocol = "5"``). A station is *stale* when its last ``stats`` is older
    than ``stale_after_missed`` x ``stats_interval_s`` (the stations' interval, s).
    """

    http: str = "127.0.0.1:8080"
    store: str = Field(default="hub.sqlite", min_length=1, validate_default=True)
    store_password_file: ExistingFile | None = None
    #: Topic filters; default ``<mqtt.topic_prefix>/+/#``.
    topics: list[str] | None = None
    share_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    stats_interval_s: float = Field(default=60.0, gt=0)
    stale_after_missed: int = Field(default=3, ge=1)
    #: ``stats`` and ``status`` messages are deleted this many days after they arrived (the
    #: registry keeps each station's latest); results are kept.
    keep_health_days: float = Field(default=30.0, gt=0)
    #: Payloads larger than this (KiB) are refused before they are parsed (counted, logged once).
    max_payload_kb: int = Field(default=1024, ge=1, le=256 * 1024)
    #: Messages stored per transaction at most (one commit each, then the MQTT acknowledgements).
    batch_max: int = Field(default=500, ge=1, le=100_000)
    #: The dashboard's map tiles: an XYZ raster template in Web Mercator
    #: (``https://tile.example.org/{z}/{x}/{y}.png``); unset: a plain lon/lat grid (offline).
    tile_url: str | None = Field(default=None, pattern=r"^https?://.*\{z\}.*\{x\}.*\{y\}")
    #: Where the stations' images are kept (:mod:`edge.hub.images`), relative to the config.
    images_dir: ConfigPath = Field(default=Path("images"), validate_default=True)
    #: Image retention: received more than this many days ago (None: no age limit) ...
    image_keep_days: float | None = Field(default=30.0, gt=0)
    #: ... and the oldest beyond this total size (MiB; None: no size limit).
    image_keep_mb: float | None = Field(default=2048.0, gt=0)

    @field_validator("http")
    @classmethod
    def _http(cls, value: str) -> str:
        parse_http(value)
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str, info: ValidationInfo) -> str:
        return _store(value, info)

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or any(not t or "\0" in t for t in value)):
            raise ValueError("expected a non-empty list of MQTT topic filters")
        return value

    @property
    def address(self) -> HttpAddress:
        return parse_http(self.http)

    @property
    def is_postgresql(self) -> bool:
        return self.store.startswith("postgresql://")


class HubConfig(Section):
    """The whole hub config. ``source_path`` is the file it was read from."""

    hub: HubSection = Field(default_factory=HubSection)
    mqtt: MqttSection = Field(default_factory=MqttSection)
    source_path: Path | None = Field(default=None, exclude=True)

    @field_validator("mqtt")
    @classmethod
    def _mqtt(cls, value: MqttSection) -> MqttSection:
        if not value.enabled:
            raise ValueError("the hub needs its broker: 'enabled = false' is for stations")
        given = sorted(STATION_ONLY_MQTT_KEYS & value.model_fields_set)
        if given:
            raise ValueError(
                f"{', '.join(given)}: a station's key, not the hub's (the stations' stats "
                "interval is [hub] stats_interval_s)"
            )
        return value

    @property
    def topic_filters(self) -> list[str]:
        """What the hub subscribes to (without the shared-subscription prefix)."""
        return self.hub.topics or [f"{self.mqtt.topic_prefix}/+/#"]

    def store_url(self) -> str:
        """The SQLAlchemy URL of the store (the password read from its file, for PostgreSQL)."""
        if not self.hub.is_postgresql:
            return f"sqlite:///{self.hub.store}"
        url = self.hub.store
        if self.hub.store_password_file is not None:
            url = with_password(
                url, read_secret(self.hub.store_password_file, "hub.store_password_file")
            )
        return "postgresql+psycopg://" + url.split("://", 1)[1]

    def referenced_files(self) -> list[Path]:
        """The files the config names (itself first, password files, certificates): what an
        install copies beside it."""
        tls = self.mqtt.tls
        named = [self.source_path, self.hub.store_password_file, self.mqtt.password_file]
        if tls is not None:
            named += [tls.ca_file, tls.cert_file, tls.key_file]
        return [path for path in named if path is not None]

    def store_shown(self) -> str:
        """The store for logs and ``/api/health``: no password."""
        return redact(self.hub.store)


def load_hub_config(path: str | Path) -> HubConfig:
    """Read and validate a hub TOML file; ConfigError with one line on any problem."""
    path = Path(path)
    cfg = validate_toml(HubConfig, path)
    outside = [t for t in cfg.hub.topics or [] if not t.startswith(cfg.mqtt.topic_prefix + "/")]
    if outside:
        raise ConfigError(
            f"{path}: hub.topics: {outside[0]!r} is not under mqtt.topic_prefix "
            f"{cfg.mqtt.topic_prefix!r} (expected e.g. '{cfg.mqtt.topic_prefix}/+/#')"
        )
    if cfg.hub.share_group is not None and cfg.mqtt.protocol != "5":
        raise ConfigError(
            f'{path}: hub.share_group: a shared subscription needs [mqtt] protocol = "5"'
        )
    return cfg.model_copy(update={"source_path": path.resolve()})
