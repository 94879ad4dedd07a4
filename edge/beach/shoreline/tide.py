"""Tide level at a time: live gauge over MQTT, a CSV table, or harmonic prediction.

Every source answers ``level_at(t)`` with the water level (m, station datum, the
config's ``offset_m`` applied) or ``None`` when it does not know: the shoreline is
then marked unavailable, never guessed.

Harmonic prediction: ``h(t) = z0 + sum f_i A_i cos(V_i(t) + u_i(t) - g_i)`` with the
amplitude ``A`` (m) and Greenwich phase lag ``g`` of each constituent, the equilibrium
argument ``V`` from its Doodson numbers and the astronomical mean longitudes (Meeus,
J2000 polynomials, degrees), and the nodal factors ``f`` and ``u`` of Schureman (1958)
/ the IHO formulas, evaluated at the prediction time.
"""

from __future__ import annotations

import csv
import datetime as dt
import threading
from collections import deque
from typing import Any

import numpy as np

from edge.config.shoreline import ConstituentSection, TideSection
from edge.errors import InputError
from edge.station.inputs import number, reading_time
from edge.station.messages import epoch_seconds
from edge.station.site import Subscribe

_J2000 = dt.datetime(2000, 1, 1, 12, tzinfo=dt.timezone.utc).timestamp()

#: Doodson numbers (tau, s, h, p, N', p1) and phase offset (units of 90 degrees), with
#: lunar time tau = 15 UT + 180 + h - s, so that V matches Schureman's table.
DOODSON: dict[str, tuple[tuple[int, int, int, int, int, int], int]] = {
    "M2": ((2, 0, 0, 0, 0, 0), 0),
    "S2": ((2, 2, -2, 0, 0, 0), 0),
    "N2": ((2, -1, 0, 1, 0, 0), 0),
    "K2": ((2, 2, 0, 0, 0, 0), 0),
    "K1": ((1, 1, 0, 0, 0, 0), -1),
    "O1": ((1, -1, 0, 0, 0, 0), 1),
    "P1": ((1, 1, -2, 0, 0, 0), 1),
    "Q1": ((1, -2, 0, 1, 0, 0), 1),
    "M4": ((4, 0, 0, 0, 0, 0), 0),
    "MS4": ((4, 2, -2, 0, 0, 0), 0),
    "M6": ((6, 0, 0, 0, 0, 0), 0),
}


def astronomical_longitudes(t: np.ndarray) -> dict[str, np.ndarray]:
    """Mean longitudes (degrees) at epoch seconds ``t``: lunar time T, moon s, sun h,
    lunar perigee p, N' = -N (node), solar perigee p1."""
    c = (np.asarray(t, dtype=float) - _J2000) / (86400.0 * 36525.0)
    s = 218.3164477 + 481267.88123421 * c
    h = 280.46646 + 36000.76983 * c
    p = 83.3532465 + 4069.0137287 * c
    n = 125.0445479 - 1934.1362891 * c
    p1 = 282.93735 + 1.71946 * c
    hours = (np.asarray(t, dtype=float) % 86400.0) / 3600.0
    tau = 15.0 * hours + 180.0 + h - s
    return {"T": tau, "s": s, "h": h, "p": p, "Np": -n, "p1": p1, "N": n}


def nodal(name: str, n_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodal amplitude factor ``f`` and phase ``u`` (degrees) from the node longitude N."""
    n = np.radians(n_deg)
    one = np.ones_like(n)
    m2 = (
        1.0004 - 0.0373 * np.cos(n) + 0.0002 * np.cos(2 * n),
        -2.14 * np.sin(n),
    )
    k1 = (
        1.0060 + 0.1150 * np.cos(n) - 0.0088 * np.cos(2 * n) + 0.0006 * np.cos(3 * n),
        -8.86 * np.sin(n) + 0.68 * np.sin(2 * n) - 0.07 * np.sin(3 * n),
    )
    o1 = (
        1.0089 + 0.1871 * np.cos(n) - 0.0147 * np.cos(2 * n) + 0.0014 * np.cos(3 * n),
        10.80 * np.sin(n) - 1.34 * np.sin(2 * n) + 0.19 * np.sin(3 * n),
    )
    k2 = (
        1.0241 + 0.2863 * np.cos(n) + 0.0083 * np.cos(2 * n) - 0.0015 * np.cos(3 * n),
        -17.74 * np.sin(n) + 0.68 * np.sin(2 * n) - 0.04 * np.sin(3 * n),
    )
    table = {
        "M2": m2, "N2": m2, "K1": k1, "O1": o1, "Q1": o1, "K2": k2,
        "S2": (one, 0 * n), "P1": (one, 0 * n),
        "M4": (m2[0] ** 2, 2 * m2[1]), "MS4": m2, "M6": (m2[0] ** 3, 3 * m2[1]),
    }  # fmt: skip
    return table[name]


def predict(constituents: list[ConstituentSection], z0_m: float, t: np.ndarray) -> np.ndarray:
    """Harmonic tide (m) at epoch seconds ``t`` (see the module docstring)."""
    t = np.atleast_1d(np.asarray(t, dtype=float))
    lon = astronomical_longitudes(t)
    level = np.full(t.shape, float(z0_m))
    for c in constituents:
        (i_t, i_s, i_h, i_p, i_n, i_p1), quarter = DOODSON[c.name]
        v = (
            i_t * lon["T"] + i_s * lon["s"] + i_h * lon["h"] + i_p * lon["p"]
            + i_n * lon["Np"] + i_p1 * lon["p1"] + 90.0 * quarter
        )  # fmt: skip
        f, u = nodal(c.name, lon["N"])
        level += f * c.amplitude_m * np.cos(np.radians(v + u - c.phase_deg))
    return level


class TideSource:
    """``level_at(t)`` for the configured source; MQTT gauges are fed by :meth:`on_message`."""

    def __init__(self, section: TideSection) -> None:
        self.section = section
        #: (epoch s, level m) of the table, for ``source = "csv"``.
        self._table: tuple[np.ndarray, np.ndarray] | None = None
        self._live: deque[tuple[float, float]] = deque(maxlen=256)
        self._lock = threading.Lock()
        if section.source == "csv":
            self._table = _read_table(section)

    def attach(self, subscribe: Subscribe) -> None:
        """Subscribe to the gauge topic (MQTT source only) through the daemon."""
        topic = self.section.topic  # validated: set for source = "mqtt"
        if self.section.source == "mqtt" and topic is not None:
            subscribe(topic, self.on_message)

    def on_message(self, topic: str, payload: Any) -> None:
        """A gauge reading ``{field: level, time_field: UTC time}`` (JSON object).

        Raises InputError for a malformed or out-of-range reading (the daemon logs
        it once per run of bad messages and counts it)."""
        s = self.section
        level = number(payload, s.field, *s.level_range_m, " m")
        when = reading_time(payload, s.time_field, now_utc())
        with self._lock:
            self._live.append((when, level))

    def level_at(self, t: float) -> float | None:
        """Water level (m, station datum) at epoch seconds ``t``, or None when unknown."""
        s = self.section
        if s.source == "none":
            return None
        if s.source == "harmonic":
            return float(predict(s.constituents, s.z0_m, np.array([t]))[0]) + s.offset_m
        if self._table is not None:
            times, levels = self._table
            gap = np.min(np.abs(times - t))
            if gap > s.max_gap_s or t < times[0] - s.max_gap_s or t > times[-1] + s.max_gap_s:
                return None
            return float(np.interp(t, times, levels)) + s.offset_m
        with self._lock:
            live = sorted(self._live)
        if not live:
            return None
        times = np.array([w for w, _ in live])
        levels = np.array([v for _, v in live])
        before, after = times[times <= t], times[times >= t]
        if before.size and after.size and after[0] - before[-1] <= s.max_age_s:
            return float(np.interp(t, times, levels)) + s.offset_m
        nearest = int(np.argmin(np.abs(times - t)))
        if abs(times[nearest] - t) <= s.max_age_s:
            return float(levels[nearest]) + s.offset_m
        return None


def now_utc() -> float:
    return dt.datetime.now(dt.timezone.utc).timestamp()


def _read_table(section: TideSection) -> tuple[np.ndarray, np.ndarray]:
    path = section.file
    if path is None:
        raise InputError("tide: source = 'csv' needs 'file'")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [(epoch_seconds(r["time"]), float(r["level_m"])) for r in csv.DictReader(f)]
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(
            f"{path}: tide table needs columns time (UTC ISO), level_m ({exc})"
        ) from None
    if len(rows) < 1:
        raise InputError(f"{path}: tide table is empty")
    rows.sort()
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
