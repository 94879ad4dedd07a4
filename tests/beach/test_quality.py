"""Quality gates on a real CoastCam TimeX and on synthetic night, fog and shifted frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.beach.quality import assess
from edge.config.quality import QualitySection
from tests.helpers.data import COASTCAM

TIMEX = COASTCAM / "1581508801.c1.timex.jpg"


@pytest.fixture(scope="module")
def timex() -> np.ndarray:
    image = cv2.imread(str(TIMEX))
    assert image is not None, f"missing test data {TIMEX}"
    return image


def test_real_daylight_timex_passes_every_gate(timex):
    report = assess(timex, QualitySection(), reference=timex)
    assert report.flags == []
    assert report.brightness > 100 and report.contrast > 30  # a sunny Cape Cod noon
    assert report.shift_px == pytest.approx(0.0, abs=0.05)


def test_night_is_too_dark(timex):
    # The same scene at 8 % of the light: mean grey ~13 < 40.
    night = (timex.astype(np.float32) * 0.08).astype(np.uint8)
    report = assess(night, QualitySection(), reference=timex)
    assert "too_dark" in report.flags
    assert report.brightness == pytest.approx(
        0.08 * cv2.cvtColor(timex, cv2.COLOR_BGR2GRAY).mean(), abs=1.0
    )
    assert report.shift_px is None  # no movement check on an unusable image


def test_fog_is_low_contrast(timex):
    # Fog: 90 % uniform grey veil over the scene, grey std drops ~10x below 12.
    veil = np.full_like(timex, 180)
    fog = cv2.addWeighted(timex, 0.1, veil, 0.9, 0)
    report = assess(fog, QualitySection(), reference=timex)
    assert report.flags == ["low_contrast"]
    assert report.contrast < 12


@pytest.mark.parametrize(("dx", "dy", "moved"), [(7, -4, True), (1, 1, False), (-2, 2.5, True)])
def test_camera_moved_is_measured_in_pixels(timex, dx, dy, moved):
    # Shift the real image by (dx, dy) px; the gate measures it to 0.6 px at full
    # resolution (phase correlation on a 1024-px working copy) and flags shifts > 3 px.
    shifted = cv2.warpAffine(
        timex,
        np.float32([[1, 0, dx], [0, 1, dy]]),
        (timex.shape[1], timex.shape[0]),
        borderMode=cv2.BORDER_REFLECT,
    )
    report = assess(shifted, QualitySection(), reference=timex)
    assert report.shift_xy_px[0] == pytest.approx(dx, abs=0.6)
    assert report.shift_xy_px[1] == pytest.approx(dy, abs=0.6)
    assert ("camera_moved" in report.flags) is moved


def test_thresholds_come_from_the_config(timex):
    strict = QualitySection(min_brightness=200, min_contrast=100)
    assert assess(timex, strict).flags == ["too_dark", "low_contrast"]
    assert assess(timex, strict).shift_px is None  # no reference given
