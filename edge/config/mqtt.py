"""``[mqtt]`` and ``[outbox]``: the link to the control room."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import ConfigPath, ExistingFile, Section


class TlsSection(Section):
    """TLS to the broker. ``ca_file`` alone = server authentication only."""

    ca_file: ExistingFile | None = None
    cert_file: ExistingFile | None = None
    key_file: ExistingFile | None = None
    #: Skip host name verification (test benches only): needs ``ca_file`` beside it (the
    #: certificate chain is still checked), logged as a warning and shown by ``geoedge status``.
    insecure: bool = False

    @model_validator(mode="after")
    def _pair(self) -> TlsSection:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both 'cert_file' and 'key_file' for a client certificate")
        if self.insecure and self.ca_file is None:
            raise ValueError(
                "insecure = true skips the host name check only: give the CA you trust in "
                "'ca_file' beside it"
            )
        return self


class MqttSection(Section):
    """Broker connection. The password is read from ``password_file``, never logged.

    ``enabled = false``: no broker at all; every message stays in the outbox (what
    ``geoedge demo`` does without ``--broker``).
    """

    enabled: bool = True
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=1883, gt=0, lt=65536)
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    client_id: str | None = None
    username: str | None = None
    password_file: ExistingFile | None = None
    tls: TlsSection | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    topic_prefix: str = Field(default="geoedge", min_length=1)
    stats_interval_s: float = Field(default=60.0, gt=0)
    #: Reconnect back-off after the broker drops: first delay and cap, whole seconds
    #: (doubles after each failed attempt).
    reconnect_min_s: int = Field(default=1, ge=1)
    reconnect_max_s: int = Field(default=60, ge=1)
    #: QoS 1 messages sent and not yet acknowledged, at most.
    max_inflight: int = Field(default=32, ge=1, le=1000)
    #: On shutdown, seconds spent sending what is still queued before giving up
    #: (what is left stays in the outbox for the next start).
    shutdown_grace_s: float = Field(default=5.0, ge=0)
    #: Send the images the results name (TimeX, waterline overlays, cavity snippets) on
    #: ``<prefix>/<station>/image/<kind>`` (:mod:`edge.station.images`); off: they cost bandwidth.
    publish_images: bool = False
    #: Largest image message, header included (KiB): a bigger image is re-encoded as JPEG and
    #: downscaled to fit, or refused (counted in ``stats``) when it cannot be.
    image_max_kb: int = Field(default=200, ge=8, le=65536)
    #: Images waiting to be sent, at most (MiB; their own outbox, ``images.sqlite`` beside the
    #: results' one): beyond it the oldest images are dropped and counted, never a result.
    image_queue_mb: float = Field(default=32.0, gt=0)

    @field_validator("topic_prefix")
    @classmethod
    def _publishable(cls, value: str) -> str:
        """Stations publish under the prefix: no wildcards, no empty level, no NUL."""
        if any(c in value for c in "+#\0") or "" in value.split("/"):
            raise ValueError("expected topic levels without wildcards (+ #) or empty levels")
        return value

    @model_validator(mode="after")
    def _backoff(self) -> MqttSection:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        if self.username is None and self.password_file is not None:
            raise ValueError("'password_file' needs 'username'")
        return self


class OutboxSection(Section):
    """Disk-backed outbox (SQLite, WAL).

    When the outbox holds ``max_messages`` messages or ``max_bytes`` bytes, the
    oldest ``stats`` messages are dropped first, then the oldest messages of any
    kind; every drop is counted and reported in ``stats``. The ids of results sent
    are remembered for ``remember_days``: a result recomputed within that time (after
    a restart) is not sent again.
    """

    path: ConfigPath = Field(default=Path("state/outbox.sqlite"), validate_default=True)
    max_messages: int = Field(default=100_000, gt=0)
    max_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    remember_days: float = Field(default=7.0, gt=0)
    #: Disk kept free for the outbox (MiB): a file this size lies beside it and is deleted
    #: when the disk fills up, so that results computed then are still stored durably
    #: (recreated once the disk has room for it twice over). 0 = none.
    reserve_mb: float = Field(default=8.0, ge=0)
