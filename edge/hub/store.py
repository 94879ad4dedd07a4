"""The hub's store: every station message once, by its ``id``, in SQLite or PostgreSQL.

One schema and one code path, written with SQLAlchemy Core: its dialects supply what differs
(the driver, ``INSERT .. ON CONFLICT DO NOTHING`` / ``DO UPDATE``, ``RETURNING`` over many
rows), so no SQL text is written twice. SQLite (the default; a file, WAL, ``synchronous=FULL``:
the hub acknowledges a message to the broker only after its commit) or PostgreSQL through
psycopg 3.

Tables:

- ``messages``: every message as published (``payload`` is the JSON text), keyed by ``id``;
  ``time_s`` is the message's time and ``received_s`` the hub's, epoch seconds UTC;
- ``cavities``: a cavity's class and position (station CRS as published, and WGS84) for the
  bounding-box query;
- ``shoreline_points``: the tide-datum shoreline chainage per transect and time (m, positive
  seaward) for the time series;
- ``stations``: the registry (:mod:`edge.hub.registry`), merged with ``ON CONFLICT DO UPDATE``
  so that several hub workers sharing one PostgreSQL keep one registry.

PostGIS: when the extension is installed in the PostgreSQL database, ``cavities`` gets a
``geom geometry(Point, 4326)`` column filled from lon/lat on insert (for QGIS and spatial SQL);
without it (and always on SQLite) lon/lat columns serve the same queries; which one a store
found is reported (``/api/health``). ``tests/hub/test_store.py`` runs both (``tests/run.sh``
installs Debian's ``postgresql-N-postgis-3``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from edge.errors import GeoEdgeError
from edge.hub.messages import Record, cavity_row, shoreline_points
from edge.hub.registry import StationRow, StationUpdate, updates_from

log = logging.getLogger(__name__)

metadata = MetaData()

messages = Table(
    "messages",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("station", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("time_s", Float(53), nullable=False),
    Column("received_s", Float(53), nullable=False),
    Column("topic", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_messages_station_kind_time", "station", "kind", "time_s"),
    Index("ix_messages_kind_time", "kind", "time_s"),
)

cavities = Table(
    "cavities",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("station", String(64), nullable=False),
    Column("time_s", Float(53), nullable=False),
    Column("class", String(32), nullable=False),
    Column("confidence", Float(53)),
    Column("crs", String(64)),
    Column("x", Float(53)),
    Column("y", Float(53)),
    Column("lon", Float(53)),
    Column("lat", Float(53)),
    Index("ix_cavities_time", "time_s"),
    Index("ix_cavities_lon_lat", "lon", "lat"),
)

shoreline_points_table = Table(
    "shoreline_points",
    metadata,
    Column("message_id", String(128), primary_key=True),
    Column("transect", String(64), primary_key=True),
    Column("station", String(64), nullable=False),
    Column("time_s", Float(53), nullable=False),
    Column("distance_m", Float(53), nullable=False),
    Index("ix_shoreline_station_transect_time", "station", "transect", "time_s"),
)

stations = Table(
    "stations",
    metadata,
    Column("station", String(64), primary_key=True),
    Column("first_seen_s", Float(53), nullable=False),
    Column("last_seen_s", Float(53), nullable=False),
    Column("state", String(16)),
    Column("status_received_s", Float(53)),
    Column("status_time_s", Float(53)),
    Column("stats_received_s", Float(53)),
    Column("stats_time_s", Float(53)),
    Column("stats_text", Text),
)

#: The schema's version, kept in ``hub_schema`` (a later change migrates from it).
SCHEMA_VERSION = 1
hub_schema = Table(
    "hub_schema",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("postgis", Boolean, nullable=False),
)


class StoreError(GeoEdgeError):
    """The store cannot be opened (bad URL, server unreachable, no permission)."""


@dataclass(frozen=True, slots=True)
class Stored:
    """What :meth:`Store.add` did: ``new`` records stored, ``duplicates`` already there (same
    ``id``: a re-delivery, a retained status seen again, a station re-sending)."""

    new: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A stored message: its payload as published (decoded), with the hub's arrival time."""

    id: str
    station: str
    kind: str
    time_s: float
    received_s: float
    payload: dict[str, Any]


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Store:
    """The store at ``url`` (an SQLAlchemy URL: ``sqlite:///PATH`` or
    ``postgresql+psycopg://...``); ``shown`` names it in errors (no password). Thread-safe:
    one writer (the ingest) and any number of readers (the HTTP API)."""

    def __init__(self, url: str, shown: str | None = None) -> None:
        self.shown = shown or url
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=True)
        except (SQLAlchemyError, ValueError) as exc:
            raise StoreError(f"store {self.shown}: {_brief(exc)}") from None
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        elif self.dialect != "postgresql":
            raise StoreError(f"store {self.shown}: only SQLite and PostgreSQL are supported")
        self._insert: Callable[..., Any] = (
            sqlite.insert if self.dialect == "sqlite" else postgresql.insert
        )
        self._write_lock = threading.Lock()
        self.postgis = False
        self._create()

    def _create(self) -> None:
        """Create the tables (if missing) and detect PostGIS. Several workers may start at
        once against one PostgreSQL: a creation that lost the race is simply retried."""
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    metadata.create_all(conn)
                    self.postgis = self._detect_postgis(conn)
                    conn.execute(
                        self._insert(hub_schema)
                        .values(version=SCHEMA_VERSION, postgis=self.postgis)
                        .on_conflict_do_nothing(index_elements=["version"])
                    )
                return
            except DBAPIError as exc:
                if attempt == 2 or exc.connection_invalidated or _unreachable(exc):
                    raise StoreError(f"store {self.shown}: {_brief(exc)}") from None
            except SQLAlchemyError as exc:
                raise StoreError(f"store {self.shown}: {_brief(exc)}") from None

    def _detect_postgis(self, conn: Connection) -> bool:
        if self.dialect != "postgresql":
            return False
        found = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).first()
        if found is None:
            log.info("store: PostGIS is not installed in %s: lon/lat columns only", self.shown)
            return False
        conn.execute(
            text("ALTER TABLE cavities ADD COLUMN IF NOT EXISTS geom geometry(Point, 4326)")
        )
        log.info("store: PostGIS found: cavities.geom (EPSG:4326) is filled on insert")
        return True

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.shown}: {_brief(exc)}") from None

    # -- writing -------------------------------------------------------------------------

    def add(self, records: list[Record]) -> Stored:
        """Store ``records`` in one transaction, each ``id`` once; update the registry.

        Raises SQLAlchemyError when the database fails (the caller keeps the batch and
        retries: nothing is acknowledged to the broker before this returns)."""
        unique = list({r.id: r for r in records}.values())
        if not unique:
            return Stored(0, 0)
        rows = [
            {"id": r.id, "station": r.station, "kind": r.kind, "time_s": r.time_s,
             "received_s": r.received_s, "topic": r.topic, "payload": r.text}
            for r in unique
        ]  # fmt: skip
        with self._write_lock, self.engine.begin() as conn:
            inserted = conn.execute(
                self._insert(messages)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(messages.c.id),
                rows,
            )
            new_ids = {row[0] for row in inserted}
            fresh = [r for r in unique if r.id in new_ids]
            self._add_cavities(conn, [r for r in fresh if r.kind == "cavity"])
            points = [p for r in fresh if r.kind == "shoreline" for p in shoreline_points(r)]
            if points:
                conn.execute(
                    self._insert(shoreline_points_table).on_conflict_do_nothing(
                        index_elements=["message_id", "transect"]
                    ),
                    [
                        {"message_id": p.message_id, "transect": p.transect,
                         "station": p.station, "time_s": p.time_s, "distance_m": p.distance_m}
                        for p in points
                    ],
                )  # fmt: skip
            # Every status counts for the registry, a repeated one too: the last will repeats
            # the payload (and so the id) written when the station connected.
            for update in updates_from(records):
                self._merge_station(conn, update)
        return Stored(len(new_ids), len(records) - len(new_ids))

    def _add_cavities(self, conn: Connection, records: list[Record]) -> None:
        if not records:
            return
        rows = [cavity_row(r) for r in records]
        conn.execute(
            self._insert(cavities).on_conflict_do_nothing(index_elements=["id"]),
            [
                {"id": c.id, "station": c.station, "time_s": c.time_s, "class": c.cls,
                 "confidence": c.confidence, "crs": c.position.crs, "x": c.position.x,
                 "y": c.position.y, "lon": c.position.lon, "lat": c.position.lat}
                for c in rows
            ],
        )  # fmt: skip
        if self.postgis:
            conn.execute(
                text(
                    "UPDATE cavities SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326) "
                    "WHERE geom IS NULL AND lon IS NOT NULL AND lat IS NOT NULL"
                )
            )

    def _merge_station(self, conn: Connection, u: StationUpdate) -> None:
        stmt = self._insert(stations).values(
            station=u.station, first_seen_s=u.first_seen_s, last_seen_s=u.last_seen_s,
            state=u.state, status_received_s=u.status_received_s,
            status_time_s=u.status_time_s, stats_received_s=u.stats_received_s,
            stats_time_s=u.stats_time_s, stats_text=u.stats_text,
        )  # fmt: skip
        new, old = stmt.excluded, stations.c

        def newer(when_new: Any, when_old: Any, columns: tuple[str, ...]) -> dict[str, Any]:
            later = (when_new.is_not(None)) & ((when_old.is_(None)) | (when_new >= when_old))
            return {c: case((later, new[c]), else_=old[c]) for c in columns}

        update: dict[str, Any] = {
            "first_seen_s": case((new.first_seen_s < old.first_seen_s, new.first_seen_s),
                                 else_=old.first_seen_s),
            "last_seen_s": case((new.last_seen_s > old.last_seen_s, new.last_seen_s),
                                else_=old.last_seen_s),
        }  # fmt: skip
        if u.state is not None:
            update |= newer(
                new.status_received_s, old.status_received_s,
                ("state", "status_received_s", "status_time_s"),
            )  # fmt: skip
        if u.stats_text is not None:
            update |= newer(
                new.stats_time_s, old.stats_time_s,
                ("stats_received_s", "stats_time_s", "stats_text"),
            )  # fmt: skip
        conn.execute(stmt.on_conflict_do_update(index_elements=["station"], set_=update))

    def prune_health(self, before_s: float) -> int:
        """Delete the ``stats`` and ``status`` messages received before ``before_s`` (epoch s);
        the number deleted. Results are never deleted here."""
        query = messages.delete().where(
            messages.c.kind.in_(("stats", "status")), messages.c.received_s < before_s
        )
        with self._write_lock, self.engine.begin() as conn:
            return int(conn.execute(query).rowcount or 0)

    # -- reading -------------------------------------------------------------------------

    def messages(
        self,
        station: str | None = None,
        kind: str | None = None,
        since_s: float | None = None,
        limit: int | None = None,
    ) -> list[StoredMessage]:
        """Messages, newest first (by the message's time), filtered by what is given."""
        query = select(messages).order_by(messages.c.time_s.desc(), messages.c.id)
        if station is not None:
            query = query.where(messages.c.station == station)
        if kind is not None:
            query = query.where(messages.c.kind == kind)
        if since_s is not None:
            query = query.where(messages.c.time_s >= since_s)
        if limit is not None:
            query = query.limit(limit)
        with self._reading() as conn:
            return [
                StoredMessage(r.id, r.station, r.kind, r.time_s, r.received_s,
                              json.loads(r.payload))
                for r in conn.execute(query)
            ]  # fmt: skip

    def cavities(
        self,
        station: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        since_s: float | None = None,
        cls: str | None = None,
        limit: int | None = None,
    ) -> list[StoredMessage]:
        """Cavity messages, newest first; ``bbox`` is (min lon, min lat, max lon, max lat) in
        WGS84 degrees (cavities without a position are left out by a bbox)."""
        query = (
            select(messages)
            .join(cavities, cavities.c.id == messages.c.id)
            .order_by(messages.c.time_s.desc(), messages.c.id)
        )
        if station is not None:
            query = query.where(cavities.c.station == station)
        if since_s is not None:
            query = query.where(cavities.c.time_s >= since_s)
        if cls is not None:
            query = query.where(cavities.c["class"] == cls)
        if bbox is not None:
            west, south, east, north = bbox
            query = query.where(
                cavities.c.lon.between(west, east), cavities.c.lat.between(south, north)
            )
        if limit is not None:
            query = query.limit(limit)
        with self._reading() as conn:
            return [
                StoredMessage(r.id, r.station, r.kind, r.time_s, r.received_s,
                              json.loads(r.payload))
                for r in conn.execute(query)
            ]  # fmt: skip

    def shoreline_series(
        self, station: str, transect: str | None = None
    ) -> dict[str, list[tuple[float, float]]]:
        """Per transect, the (time s, chainage m) of every stored shoreline, oldest first."""
        t = shoreline_points_table
        query = select(t.c.transect, t.c.time_s, t.c.distance_m).where(t.c.station == station)
        if transect is not None:
            query = query.where(t.c.transect == transect)
        series: dict[str, list[tuple[float, float]]] = {}
        with self._reading() as conn:
            for row in conn.execute(query.order_by(t.c.transect, t.c.time_s)):
                series.setdefault(row.transect, []).append((row.time_s, row.distance_m))
        return series

    def stations(self) -> list[StationRow]:
        """Every station the hub has heard of, by name."""
        with self._reading() as conn:
            return [
                StationRow(*row)
                for row in conn.execute(
                    select(
                        stations.c.station, stations.c.first_seen_s, stations.c.last_seen_s,
                        stations.c.state, stations.c.status_received_s,
                        stations.c.status_time_s, stations.c.stats_received_s,
                        stations.c.stats_time_s, stations.c.stats_text,
                    ).order_by(stations.c.station)
                )
            ]  # fmt: skip

    def count(self, kind: str | None = None) -> int:
        """Messages stored (of ``kind``)."""
        query = select(func.count()).select_from(messages)
        if kind is not None:
            query = query.where(messages.c.kind == kind)
        with self._reading() as conn:
            return int(conn.execute(query).scalar_one())


def _unreachable(exc: DBAPIError) -> bool:
    """A server that does not answer (retrying the schema creation cannot help)."""
    return "connection" in str(exc.orig).lower() and "refused" in str(exc.orig).lower()


def _brief(exc: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's background link."""
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return first if len(first) <= 200 else first[:197] + "..."
