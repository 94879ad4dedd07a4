"""Local SQLite store of waterline observations, daily slopes and tide-datum shorelines.

One row per (collection time, transect). The slope fit reads the day's observations
back; ``geoedge shoreline trend`` reads the shorelines. Times are epoch seconds UTC,
distances chainages in m (positive seaward), elevations m in the station datum.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edge.beach.shoreline.slope import Observation, SlopeEstimate
from edge.errors import GeoEdgeError
from edge.station.outbox import WAL_BOUNDS

_SCHEMA = """
CREATE TABLE IF NOT EXISTS observations (
    time REAL NOT NULL, transect TEXT NOT NULL, distance_m REAL NOT NULL, z_m REAL NOT NULL,
    tide_m REAL NOT NULL, wave_m REAL NOT NULL, hs_m REAL, tp_s REAL,
    PRIMARY KEY (time, transect));
CREATE TABLE IF NOT EXISTS slopes (
    day TEXT NOT NULL, transect TEXT NOT NULL, tan_beta REAL NOT NULL, stderr REAL,
    n INTEGER NOT NULL, source TEXT NOT NULL, PRIMARY KEY (day, transect));
CREATE TABLE IF NOT EXISTS shorelines (
    time REAL NOT NULL, transect TEXT NOT NULL, distance_m REAL NOT NULL,
    sigma_m REAL, tan_beta REAL NOT NULL, PRIMARY KEY (time, transect));
"""


@dataclass(frozen=True)
class ShorelinePoint:
    """One stored shoreline: time (epoch s), chainage (m) and its 1-sigma error (m)."""

    time: float
    distance_m: float
    sigma_m: float | None


log = logging.getLogger(__name__)


class ShorelineStore:
    """SQLite file (WAL) with the three tables of the module docstring."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            for pragma in WAL_BOUNDS:
                self.db.execute(pragma)
            self.db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise GeoEdgeError(f"shoreline store {path}: {exc}") from None
        self.path = path
        #: Rows the store could not take (disk full): counted, logged once per run.
        self.rows_not_stored = 0
        self._failing = False

    def close(self) -> None:
        self.db.close()

    def _write(self, sql: str, row: tuple[object, ...]) -> None:
        """One row, or, when the store cannot take it (disk full, read-only), one log line
        per run and a count (``rows_not_stored``): the store is a side record; the results
        it would have kept are computed and published all the same."""
        try:
            with self.db:
                self.db.execute(sql, row)
        except sqlite3.Error as exc:
            self.rows_not_stored += 1
            if not self._failing:
                log.error(
                    "shoreline store %s cannot store (%s): results are still published; "
                    "slope history waits for space",
                    self.path, exc,
                )  # fmt: skip
            self._failing = True
            return
        self._failing = False

    def add_observation(
        self, transect: str, obs: Observation, tide_m: float, wave_m: float
    ) -> None:
        """One valid crossing; ``wave_m`` = z - tide (setup plus the swash fraction)."""
        self._write(
            "INSERT OR REPLACE INTO observations VALUES (?,?,?,?,?,?,?,?)",
            (obs.time, transect, obs.distance_m, obs.z_m, tide_m, wave_m, obs.hs_m, obs.tp_s),
        )

    def observations(self, transect: str, start: float, end: float) -> list[Observation]:
        rows = self.db.execute(
            "SELECT time, distance_m, z_m, hs_m, tp_s FROM observations "
            "WHERE transect = ? AND time >= ? AND time < ? ORDER BY time",
            (transect, start, end),
        ).fetchall()
        return [Observation(*row) for row in rows]

    def save_slope(self, day: str, transect: str, est: SlopeEstimate) -> None:
        self._write(
            "INSERT OR REPLACE INTO slopes VALUES (?,?,?,?,?,?)",
            (day, transect, est.tan_beta, est.stderr, est.n, est.source),
        )

    def last_good_slope(self, transect: str, before_day: str) -> float | None:
        row = self.db.execute(
            "SELECT tan_beta FROM slopes WHERE transect = ? AND day < ? AND source = 'fit' "
            "ORDER BY day DESC LIMIT 1",
            (transect, before_day),
        ).fetchone()
        return None if row is None else float(row[0])

    def latest_fitted_slopes(self, before_day: str) -> list[float]:
        """Each transect's most recent fitted slope from days before ``before_day``."""
        rows = self.db.execute(
            "SELECT s.tan_beta FROM slopes s WHERE s.source = 'fit' AND s.day = ("
            "SELECT MAX(day) FROM slopes WHERE transect = s.transect AND source = 'fit' "
            "AND day < ?)",
            (before_day,),
        ).fetchall()
        return [float(r[0]) for r in rows]

    def add_shoreline(
        self, transect: str, time: float, distance_m: float, sigma_m: float | None, tan_beta: float
    ) -> None:
        self._write(
            "INSERT OR REPLACE INTO shorelines VALUES (?,?,?,?,?)",
            (time, transect, distance_m, sigma_m, tan_beta),
        )

    def shorelines(
        self, since: float | None = None, until: float | None = None
    ) -> dict[str, list[ShorelinePoint]]:
        rows = self.db.execute(
            "SELECT transect, time, distance_m, sigma_m FROM shorelines "
            "WHERE time >= ? AND time <= ? ORDER BY transect, time",
            (since if since is not None else -1e18, until if until is not None else 1e18),
        ).fetchall()
        out: dict[str, list[ShorelinePoint]] = {}
        for transect, *rest in rows:
            out.setdefault(transect, []).append(ShorelinePoint(*rest))
        return out
