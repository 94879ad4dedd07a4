"""Online, offline and stale, as the API reports a station at a given moment."""

from __future__ import annotations

import json

from edge.hub.registry import StationRow, view

INTERVAL_S, MISSED = 60.0, 3
T0 = 1.8e9


def _row(state: str | None, stats_received_s: float | None) -> StationRow:
    stats = None if stats_received_s is None else json.dumps({"queue_depth": 4})
    return StationRow("st-1", T0, T0, state, T0, T0, stats_received_s, stats_received_s, stats)


def test_a_station_goes_stale_after_three_missed_stats():
    row = _row("online", T0 + 10)
    assert view(row, T0 + 10 + 180, INTERVAL_S, MISSED).stale is False  # exactly 3 intervals
    late = view(row, T0 + 10 + 181, INTERVAL_S, MISSED)
    assert late.stale is True and late.online is True and late.stats_age_s == 181
    assert late.to_json()["stats"] == {"queue_depth": 4}


def test_without_any_stats_a_station_is_stale_three_intervals_after_it_was_first_seen():
    row = _row(None, None)
    assert view(row, T0 + 100, INTERVAL_S, MISSED).stale is False
    seen = view(row, T0 + 200, INTERVAL_S, MISSED)
    assert seen.stale is True and seen.online is False and seen.to_json()["stats"] is None


def test_offline_is_the_last_status_not_the_stats():
    assert view(_row("offline", T0), T0 + 1, INTERVAL_S, MISSED).online is False
