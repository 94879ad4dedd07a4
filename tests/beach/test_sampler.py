"""Sampling by frame timestamps and clock-aligned collection windows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from edge.beach.sampler import Sampler, Schedule, expected_frames, too_few_frames
from edge.config.collection import CollectionSection


def sampled(times: np.ndarray, hz: float, anchor: float = 0.0) -> np.ndarray:
    sampler = Sampler(hz, anchor)
    return np.array([t for t in times if sampler.take(t)])


def utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


@pytest.mark.parametrize("fps", [25.0, 29.97, 30.0, 7.5])
def test_one_frame_per_second_whatever_the_frame_rate(fps):
    # 600 s of video at fps: exactly 600 samples at 1 Hz, one in each second,
    # each the first frame at or after the whole second (within one frame period).
    times = np.arange(0, 600, 1 / fps)
    picks = sampled(times, 1.0)
    assert len(picks) == 600
    np.testing.assert_array_equal(np.floor(picks + 1e-6), np.arange(600))
    assert np.all(picks - np.arange(600) < 1 / fps + 1e-9)


def test_variable_rate_stream_and_gaps():
    # A variable-rate stream (frame spacing 10..90 ms at random) over 100 s gives 100
    # samples at 1 Hz; a 5.5 s outage (30.2..35.7 s) empties seconds 31..34 only
    # (second 30 has frames before the outage, second 35 after it): 96 samples.
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.uniform(0.01, 0.09, 5000))
    times = times[times < 100.0]
    assert len(sampled(times, 1.0)) == 100
    gappy = times[(times < 30.2) | (times > 35.7)]
    picks = sampled(gappy, 1.0)
    assert len(picks) == 96
    assert set(range(100)) - set(np.floor(picks).astype(int)) == {31, 32, 33, 34}


def test_two_hz_anchor_and_clock_step_back():
    # 2 Hz from a window starting at 1000 s: frames before the anchor are not taken,
    # and a frame stamped earlier than the last sample (clock stepped back) is skipped.
    sampler = Sampler(2.0, 1000.0)
    assert not sampler.take(999.9)
    assert [sampler.take(t) for t in (1000.0, 1000.2, 1000.5, 1000.3, 1001.0)] == [
        True,
        False,
        True,
        False,
        True,
    ]


def test_default_windows_are_the_first_ten_minutes_of_every_hour():
    sched = Schedule(CollectionSection())
    # 12:05 is inside the 12:00 window: joined, as scheduled (the short collection
    # is flagged by the frame count).
    assert sched.next_window(utc(2024, 5, 1, 12, 5)) == (
        utc(2024, 5, 1, 12),
        utc(2024, 5, 1, 12, 10),
    )
    # 12:10 exactly: that window has ended, so 13:00.
    assert sched.next_window(utc(2024, 5, 1, 12, 10))[0] == utc(2024, 5, 1, 13)
    assert sched.next_window(utc(2024, 5, 1, 23, 59, 59))[0] == utc(2024, 5, 2, 0)


def test_offset_interval_and_daylight_hours():
    # Every 30 min at +5 min, 5-minute collections, only 06:00..18:00 UTC.
    col = CollectionSection(interval_min=30, offset_min=5, duration_min=5, daylight_utc=(6, 18))
    sched = Schedule(col)
    # Starts at :05 and :35: 09:36 is inside 09:35..09:40, 09:41 waits for 10:05.
    assert sched.next_window(utc(2024, 5, 1, 9, 36)) == (
        utc(2024, 5, 1, 9, 35),
        utc(2024, 5, 1, 9, 40),
    )
    assert sched.next_window(utc(2024, 5, 1, 9, 41))[0] == utc(2024, 5, 1, 10, 5)
    # After the last daylight start (17:35) the next is 06:05 the next day.
    assert sched.next_window(utc(2024, 5, 1, 17, 41))[0] == utc(2024, 5, 2, 6, 5)
    # Consecutive windows step by the interval.
    w = sched.next_window(utc(2024, 5, 1, 7))
    assert sched.next_window(w[1])[0] - w[0] == 1800


def test_daylight_hours_may_wrap_past_midnight():
    # A station in the far east of UTC: daylight 21:00..09:00 UTC.
    sched = Schedule(CollectionSection(daylight_utc=(21, 9)))
    assert sched.next_window(utc(2024, 5, 1, 9, 30))[0] == utc(2024, 5, 1, 21)
    assert sched.next_window(utc(2024, 5, 1, 23, 30))[0] == utc(2024, 5, 2, 0)


def test_interval_that_does_not_divide_a_day_restarts_at_midnight():
    sched = Schedule(CollectionSection(interval_min=25, duration_min=10))
    # 23:45 is the last start of the day (57 * 25 min); then 00:00.
    assert sched.next_window(utc(2024, 5, 1, 23, 56))[0] == utc(2024, 5, 2, 0)
    assert sched.next_window(utc(2024, 5, 1, 23, 40))[0] == utc(2024, 5, 1, 23, 45)


def test_expected_frames_and_the_too_few_frames_flag():
    assert expected_frames(600, 1.0) == 600
    assert expected_frames(600, 0.5) == 300
    assert expected_frames(10, 30.0) == 300
    # Default min fraction 0.8: 480 of 600 is enough, 479 is not.
    assert not too_few_frames(480, 600, 0.8)
    assert too_few_frames(479, 600, 0.8)
