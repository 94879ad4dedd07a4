"""Wave conditions at a time: significant height, peak period, direction.

From a live buoy/gauge over MQTT or a CSV table (``time,hs_m,tp_s[,dir_deg]``).
Stockdon (2006) wants deep-water conditions: a gauge in intermediate depth
``gauge_depth_m`` can be reverse-shoaled with linear wave theory,
``H0 = H / Ks`` with ``Ks = sqrt(Cg0 / Cg)``, ``Cg0 = g T / 4 pi`` and
``Cg = (1 + 2kh / sinh 2kh) c / 2`` from the dispersion relation
``omega^2 = g k tanh(kh)`` (solved by Newton iteration). Refraction is ignored.
"""

from __future__ import annotations

import csv
import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from edge.beach.shoreline.runup import G
from edge.beach.shoreline.tide import now_utc
from edge.config.shoreline import WavesSection
from edge.errors import InputError
from edge.station.inputs import number, reading_time
from edge.station.messages import epoch_seconds
from edge.station.site import Subscribe

#: Largest plausible significant wave height (m) and peak period (s) of a reading.
MAX_HS_M = 30.0
MAX_TP_S = 40.0


@dataclass(frozen=True)
class WaveState:
    """Waves at one time: ``hs_m`` as measured, ``h0_m`` deep-water equivalent (m), ``tp_s``."""

    time: float
    hs_m: float
    tp_s: float
    h0_m: float
    direction_deg: float | None = None


def wavenumber(period_s: float, depth_m: float) -> float:
    """k (rad/m) solving ``(2 pi / T)^2 = g k tanh(k h)``."""
    omega = 2 * math.pi / period_s
    k = omega**2 / G / math.sqrt(math.tanh(omega**2 * depth_m / G))  # Eckart start
    for _ in range(30):
        f = G * k * math.tanh(k * depth_m) - omega**2
        df = G * math.tanh(k * depth_m) + G * k * depth_m / math.cosh(k * depth_m) ** 2
        step = f / df
        k -= step
        if abs(step) < 1e-12 * k:
            break
    return k


def shoaling_coefficient(period_s: float, depth_m: float) -> float:
    """Linear-theory ``Ks = H / H0`` at depth ``depth_m`` (m) for period ``period_s`` (s)."""
    k = wavenumber(period_s, depth_m)
    kh = k * depth_m
    c = 2 * math.pi / period_s / k
    cg = 0.5 * c * (1 + 2 * kh / math.sinh(2 * kh))
    cg0 = G * period_s / (4 * math.pi)
    return math.sqrt(cg0 / cg)


class WaveSource:
    """``at(t)`` for the configured source; MQTT readings arrive through :meth:`on_message`."""

    def __init__(self, section: WavesSection) -> None:
        self.section = section
        self._rows: list[WaveState] = []
        self._live: deque[WaveState] = deque(maxlen=64)
        self._lock = threading.Lock()
        if section.source == "csv":
            self._rows = self._read_table()

    def attach(self, subscribe: Subscribe) -> None:
        topic = self.section.topic  # validated: set for source = "mqtt"
        if self.section.source == "mqtt" and topic is not None:
            subscribe(topic, self.on_message)

    def on_message(self, topic: str, payload: Any) -> None:
        """A reading ``{hs_field: m, tp_field: s, dir_field: deg, time_field: UTC}``.

        Raises InputError for a malformed or out-of-range reading."""
        s = self.section
        hs = number(payload, s.hs_field, 0.0, MAX_HS_M, " m")
        tp = number(payload, s.tp_field, 0.0, MAX_TP_S, " s")
        direction = None
        if s.dir_field and payload.get(s.dir_field) is not None:
            direction = number(payload, s.dir_field, 0.0, 360.0, " deg")
        state = self._state(reading_time(payload, s.time_field, now_utc()), hs, tp, direction)
        with self._lock:
            self._live.append(state)

    def at(self, t: float) -> WaveState | None:
        """The reading nearest ``t`` within ``max_age_s``, or None."""
        with self._lock:
            rows = self._rows or list(self._live)
        if not rows:
            return None
        best = min(rows, key=lambda r: abs(r.time - t))
        return best if abs(best.time - t) <= self.section.max_age_s else None

    def _state(self, when: float, hs: float, tp: float, direction: Any) -> WaveState:
        if not (hs > 0 and tp > 0):
            raise InputError(f"waves: Hs {hs} m and Tp {tp} s must be positive")
        s = self.section
        depth = s.gauge_depth_m if s.reverse_shoal else None  # validated: set when shoaling
        h0 = hs if depth is None else hs / shoaling_coefficient(tp, depth)
        return WaveState(when, hs, tp, h0, None if direction is None else float(direction))

    def _read_table(self) -> list[WaveState]:
        path = self.section.file
        if path is None:
            raise InputError("waves: source = 'csv' needs 'file'")
        try:
            with open(path, newline="", encoding="utf-8") as f:
                return [
                    self._state(
                        epoch_seconds(r["time"]),
                        float(r["hs_m"]),
                        float(r["tp_s"]),
                        r.get("dir_deg") or None,
                    )
                    for r in csv.DictReader(f)
                ]
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"{path}: wave table needs columns time,hs_m,tp_s ({exc})") from None
