"""Message times: the ISO 8601 forms gauges and stations write read the same on every Python
(3.10's ``fromisoformat`` takes only its own output)."""

from __future__ import annotations

import pytest

from edge.station.messages import epoch_seconds, utc_iso

NOON = 1_781_524_800.0  # 2026-06-15T12:00:00Z


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2026-06-15T12:00:00Z", NOON),
        ("2026-06-15T12:00:00.5Z", NOON + 0.5),
        ("2026-06-15T12:00:00.25+00:00", NOON + 0.25),
        ("2026-06-15T12:00:00.123456789Z", NOON + 0.123457),
        ("2026-06-15 12:00:00+0000", NOON),
        ("20260615T120000Z", NOON),
        ("2026-06-15T14:00:00+02", NOON),
        ("2026-06-15T07:30:00-04:30", NOON),
        ("2026-06-15T12:00Z", NOON),
    ],
)
def test_iso_times_in_the_forms_met_in_the_field(text, epoch):
    assert epoch_seconds(text) == pytest.approx(epoch, abs=1e-6)


def test_our_own_times_round_trip_and_bad_ones_are_refused():
    for t in (NOON, NOON + 0.125):
        assert epoch_seconds(utc_iso(t)) == pytest.approx(t)
    with pytest.raises(ValueError, match="no time zone"):
        epoch_seconds("2026-06-15T12:00:00")
    assert epoch_seconds("2026-06-15T12:00:00", naive_is_utc=True) == NOON
    for bad in ("noon", "2026-13-15T12:00:00Z", "2026-06-15T12:00:00+2", ""):
        with pytest.raises(ValueError):
            epoch_seconds(bad)
