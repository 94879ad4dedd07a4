"""The station registry: who is online, when each station was last seen, who went stale.

A batch of records becomes one :class:`StationUpdate` per station (:func:`updates_from`), which
the store merges into its ``stations`` table so that every hub worker sharing the store sees
the same registry:

- *online/offline* is the ``state`` of the station's latest ``status`` message in the order the
  hub *received* them: the retained status a station publishes on connect, and the last will
  (``offline``) the broker publishes when its link dies. The will's payload was written when the
  station connected, so its own ``time`` is older than the online status it overrides; arrival
  order is what tells them apart;
- *last seen* is the latest arrival of any message from the station;
- *stale*: no ``stats`` for ``stale_after_missed`` x ``stats_interval_s`` seconds (a station
  that is connected but whose daemon no longer reports, or one that went silent without a will).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edge.hub.messages import Record
from edge.station.messages import utc_iso


@dataclass(frozen=True, slots=True)
class StationUpdate:
    """What one batch says about a station; times are epoch seconds UTC (``*_received_s`` by
    the hub's clock, ``*_time_s`` the station's)."""

    station: str
    first_seen_s: float
    last_seen_s: float
    state: str | None = None
    status_received_s: float | None = None
    status_time_s: float | None = None
    stats_received_s: float | None = None
    stats_time_s: float | None = None
    stats_text: str | None = None


@dataclass(frozen=True, slots=True)
class StationRow:
    """A station as the store keeps it (the merge of every update)."""

    station: str
    first_seen_s: float
    last_seen_s: float
    state: str | None
    status_received_s: float | None
    status_time_s: float | None
    stats_received_s: float | None
    stats_time_s: float | None
    stats_text: str | None


def updates_from(records: list[Record]) -> list[StationUpdate]:
    """One update per station of ``records``: its latest arrival, its latest status (by
    arrival) and its latest stats (by the station's time)."""
    first: dict[str, float] = {}
    seen: dict[str, float] = {}
    status: dict[str, Record] = {}
    stats: dict[str, Record] = {}
    for r in records:
        first[r.station] = min(first.get(r.station, r.received_s), r.received_s)
        seen[r.station] = max(seen.get(r.station, r.received_s), r.received_s)
        if r.kind == "status" and isinstance(r.payload.get("state"), str):
            if r.station not in status or r.received_s >= status[r.station].received_s:
                status[r.station] = r
        elif r.kind == "stats" and (r.station not in stats or r.time_s >= stats[r.station].time_s):
            stats[r.station] = r
    out = []
    for station, last_seen in sorted(seen.items()):
        st, sx = status.get(station), stats.get(station)
        out.append(
            StationUpdate(
                station,
                first[station],
                last_seen,
                state=str(st.payload["state"]) if st else None,
                status_received_s=st.received_s if st else None,
                status_time_s=st.time_s if st else None,
                stats_received_s=sx.received_s if sx else None,
                stats_time_s=sx.time_s if sx else None,
                stats_text=sx.text if sx else None,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class StationView:
    """A station for the API at a moment ``now``."""

    station: str
    online: bool
    state: str | None
    stale: bool
    first_seen_s: float
    last_seen_s: float
    status_time_s: float | None
    stats_age_s: float | None
    stats: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """The ``/api/stations`` entry (times UTC ISO 8601, ages in seconds)."""
        return {
            "station": self.station,
            "online": self.online,
            "state": self.state,
            "stale": self.stale,
            "first_seen": utc_iso(self.first_seen_s),
            "last_seen": utc_iso(self.last_seen_s),
            "status_time": None if self.status_time_s is None else utc_iso(self.status_time_s),
            "stats_age_s": None if self.stats_age_s is None else round(self.stats_age_s, 1),
            "stats": self.stats,
        }


def view(row: StationRow, now_s: float, stats_interval_s: float, missed: int) -> StationView:
    """``row`` seen at ``now_s``: online from its latest status, stale after ``missed`` stats
    intervals (``stats_interval_s``) without a ``stats``."""
    age = None if row.stats_received_s is None else max(0.0, now_s - row.stats_received_s)
    since = age if age is not None else now_s - row.first_seen_s
    stats = json.loads(row.stats_text) if row.stats_text else None
    return StationView(
        station=row.station,
        online=row.state == "online",
        state=row.state,
        stale=since > missed * stats_interval_s,
        first_seen_s=row.first_seen_s,
        last_seen_s=row.last_seen_s,
        status_time_s=row.status_time_s,
        stats_age_s=age,
        stats=stats if isinstance(stats, dict) else None,
    )
