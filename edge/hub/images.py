"""Images from the stations (``<prefix>/<station>/image/<kind>``), kept on the hub's disk.

The payload is the station's framing (:mod:`edge.station.images`: length-prefixed JSON header,
then the JPEG/PNG bytes). :meth:`ImageArchive.ingest` checks it, writes the image file under
``<images dir>/<station>/<kind>/<YYYY-MM-DD>/<id>.<jpg|png>`` (atomically: a temp file renamed)
and indexes it in the hub's store, table ``images`` (station, kind, view, time, source message
id and kind, path relative to the images dir, content type, size). Idempotent by the image
``id``: an image received twice is stored once.

Retention: :meth:`ImageArchive.sweep` deletes the images received more than ``keep_days`` ago,
then the oldest until the rest fit ``keep_mb``; the hub runs it after an ingest at most once a
minute. A file is written before its row and deleted after it, so every row has its file; a
crash between the two leaves at most an orphan file, which the same image arriving again
overwrites (files are named by id).

One code path for SQLite and PostgreSQL (SQLAlchemy Core, the store's engine).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from edge.errors import GeoEdgeError, InputError
from edge.station.images import ImageHeader, unframe
from edge.station.messages import epoch_seconds

log = logging.getLogger(__name__)

#: Seconds between two retention sweeps triggered by ingests.
SWEEP_EVERY_S = 60.0
#: Station ids and image ids become folder and file names: nothing else is accepted.
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png"}

METADATA = sa.MetaData()
IMAGES = sa.Table(
    "images",
    METADATA,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("station", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("view", sa.String(128)),
    sa.Column("time_s", sa.Float, nullable=False),
    sa.Column("received_s", sa.Float, nullable=False),
    sa.Column("source_id", sa.String(128), nullable=False),
    sa.Column("source_kind", sa.String(32), nullable=False),
    sa.Column("content_type", sa.String(32), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Index("images_station_kind_time", "station", "kind", "time_s"),
    sa.Index("images_source", "source_id"),
    sa.Index("images_received", "received_s"),
)


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One stored image. ``time_s``: its result's time, ``received_s``: when the hub took it
    (epoch seconds UTC); ``path`` relative to the images folder."""

    id: str
    station: str
    kind: str
    view: str | None
    time_s: float
    received_s: float
    source_id: str
    source_kind: str
    content_type: str
    path: str
    bytes: int
    width: int
    height: int

    def to_json(self) -> dict[str, object]:
        """The API's description of the image (its bytes at ``/api/images/<id>``)."""
        when = dt.datetime.fromtimestamp(self.time_s, dt.timezone.utc)
        return {
            "id": self.id,
            "station": self.station,
            "kind": self.kind,
            "view": self.view,
            "time": when.isoformat().replace("+00:00", "Z"),
            "source_id": self.source_id,
            "source_kind": self.source_kind,
            "content_type": self.content_type,
            "bytes": self.bytes,
            "width": self.width,
            "height": self.height,
            "url": f"/api/images/{self.id}",
        }


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one retention sweep deleted: images and bytes."""

    deleted: int
    freed_bytes: int


class ImageArchive:
    """Image files under ``root`` indexed in the store of ``engine`` (see the module doc).

    ``keep_days`` / ``keep_mb``: retention by age of receipt (days) and by total size (MiB);
    None for no bound. ``max_bytes``: larger image messages are refused (the hub's
    ``max_payload_kb``). Thread-safe (SQLAlchemy's pool; sweeps are serialised)."""

    def __init__(
        self,
        root: Path,
        engine: Engine,
        keep_days: float | None,
        keep_mb: float | None,
        max_bytes: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.engine = engine
        self.keep_days = keep_days
        self.keep_bytes = None if keep_mb is None else round(keep_mb * (1 << 20))
        self._sweep_lock = threading.Lock()
        self._last_sweep = 0.0
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GeoEdgeError(
                f"hub.images_dir: cannot create {self.root} ({exc.strerror or exc})"
            ) from None
        METADATA.create_all(engine)

    def handle(self, station: str, subtopic: str, payload: bytes) -> None:
        """The hub subscriber's handler for ``image/<kind>`` topics (InputError: refused)."""
        self.ingest(station, payload, time.time())

    def ingest(self, station: str, payload: bytes, received_s: float) -> ImageRecord | None:
        """Store the image message ``payload`` received on ``station``'s topic; its record, or
        None when that image id is already stored. InputError naming what is wrong."""
        if self.max_bytes is not None and len(payload) > self.max_bytes:
            size = len(payload)
            raise InputError(f"image from {station}: {size} bytes is over hub.max_payload_kb")
        try:
            header, data = unframe(payload)
            when = epoch_seconds(header.time)
        except ValueError as exc:
            raise InputError(f"image from {station}: {exc}") from None
        self._check(header, station)
        if self.get(header.id) is not None:
            return None
        day = dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%Y-%m-%d")
        rel = f"{station}/{header.kind}/{day}/{header.id}{_SUFFIX[header.content_type]}"
        self._write(self.root / rel, data)
        record = ImageRecord(
            header.id, station, header.kind, header.view, when, received_s, header.source_id,
            header.source_kind, header.content_type, rel, len(data), header.width, header.height,
        )  # fmt: skip
        try:
            with self.engine.begin() as db:
                db.execute(IMAGES.insert().values(**_row(record)))
        except sa.exc.IntegrityError:
            return None  # the same image from another worker, a moment ago: same file
        if time.monotonic() - self._last_sweep >= SWEEP_EVERY_S:
            self.sweep(received_s)
        return record

    @staticmethod
    def _check(header: ImageHeader, station: str) -> None:
        if header.station != station:
            raise InputError(f"image from {station} says station {header.station!r}")
        if not _SAFE.match(station) or not _SAFE.match(header.id):
            raise InputError(f"image from {station}: station or id {header.id!r} not a file name")

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def file(self, record: ImageRecord) -> Path:
        """The image file of ``record``."""
        return self.root / record.path

    def get(self, image_id: str) -> ImageRecord | None:
        """The image with ``image_id``, or None."""
        return self._one(IMAGES.select().where(IMAGES.c.id == image_id))

    def latest(self, station: str, kind: str, view: str | None = None) -> ImageRecord | None:
        """The newest image (by its result's time) of ``kind`` from ``station`` (``view``: that
        camera or ``plan`` only)."""
        query = IMAGES.select().where(IMAGES.c.station == station, IMAGES.c.kind == kind)
        if view is not None:
            query = query.where(IMAGES.c.view == view)
        return self._one(query.order_by(IMAGES.c.time_s.desc(), IMAGES.c.id).limit(1))

    def of_message(self, source_id: str) -> list[ImageRecord]:
        """The images that belong to the result message ``source_id``."""
        return self.of_messages([source_id])

    def of_messages(self, source_ids: list[str]) -> list[ImageRecord]:
        """The images that belong to any of the result messages ``source_ids``."""
        found: list[ImageRecord] = []
        with self.engine.connect() as db:
            for start in range(0, len(source_ids), 500):
                chunk = source_ids[start : start + 500]
                query = IMAGES.select().where(IMAGES.c.source_id.in_(chunk))
                found += [
                    _record(row) for row in db.execute(query.order_by(IMAGES.c.id)).mappings()
                ]
        return found

    def _one(self, query: sa.Select) -> ImageRecord | None:
        with self.engine.connect() as db:
            row = db.execute(query).mappings().first()
        return None if row is None else _record(row)

    def sweep(self, now_s: float | None = None) -> SweepResult:
        """Apply the retention: delete images received before ``now_s - keep_days``, then the
        oldest received until the rest fit ``keep_mb``."""
        now_s = time.time() if now_s is None else now_s
        with self._sweep_lock:
            self._last_sweep = time.monotonic()
            victims: list[tuple[str, str, int]] = []
            with self.engine.connect() as db:
                if self.keep_days is not None:
                    cutoff = now_s - self.keep_days * 86400.0
                    old = sa.select(IMAGES.c.id, IMAGES.c.path, IMAGES.c.bytes).where(
                        IMAGES.c.received_s < cutoff
                    )
                    victims += [(r.id, r.path, r.bytes) for r in db.execute(old)]
                if self.keep_bytes is not None:
                    total = db.execute(sa.select(sa.func.coalesce(sa.func.sum(IMAGES.c.bytes), 0)))
                    excess = int(total.scalar_one()) - sum(v[2] for v in victims)
                    excess -= self.keep_bytes
                    if excess > 0:
                        taken = {v[0] for v in victims}
                        oldest = sa.select(IMAGES.c.id, IMAGES.c.path, IMAGES.c.bytes).order_by(
                            IMAGES.c.received_s, IMAGES.c.id
                        )
                        for image_id, path, size in db.execute(oldest):
                            if excess <= 0:
                                break
                            if image_id not in taken:
                                victims.append((image_id, path, size))
                                excess -= size
            return self._delete(victims)

    def _delete(self, victims: list[tuple[str, str, int]]) -> SweepResult:
        if not victims:
            return SweepResult(0, 0)
        with self.engine.begin() as db:
            for start in range(0, len(victims), 500):
                ids = [v[0] for v in victims[start : start + 500]]
                db.execute(IMAGES.delete().where(IMAGES.c.id.in_(ids)))
        for _, path, _ in victims:
            try:
                (self.root / path).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("images: cannot delete %s (%s)", path, exc.strerror)
        freed = sum(v[2] for v in victims)
        log.info("images: retention deleted %d image(s), %d bytes", len(victims), freed)
        return SweepResult(len(victims), freed)


def _row(record: ImageRecord) -> dict[str, object]:
    return asdict(record)


def _record(row: sa.RowMapping) -> ImageRecord:
    return ImageRecord(**{f.name: row[f.name] for f in fields(ImageRecord)})
