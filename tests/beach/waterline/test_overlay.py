"""Overlay furniture a person relies on: labels that stay inside the picture, a scale bar of
a round length, a key."""

from __future__ import annotations

import numpy as np
import pytest

from edge.beach.waterline.overlay import _legend, _scale_bar, _text


@pytest.mark.parametrize("at", [(-80, -40), (700, 520), (630, 5)])
def test_a_label_anchored_outside_the_image_is_drawn_inside_it(at):
    img = np.zeros((480, 640, 3), np.uint8)
    _text(img, "T05", at, (0, 255, 255), 0.8, 1)
    ys, xs = np.nonzero(img[:, :, 1])
    assert len(xs) > 20  # drawn, all of it within the image
    assert xs.min() >= 0 and xs.max() < 640 and ys.min() >= 0 and ys.max() < 480


def test_scale_bar_is_the_longest_round_length_under_a_quarter_of_the_width():
    # 0.5 m per pixel, 301 px wide: a quarter is 37.6 m, so the bar is 20 m = 40 px.
    img = np.zeros((301, 301, 3), np.uint8)
    _scale_bar(img, 0.5)
    white = np.all(img == 255, axis=2)
    row = int(np.argmax(white.sum(axis=1)))
    assert white[row].sum() == pytest.approx(41, abs=2)  # +- the rounded line caps


def test_the_key_darkens_its_corner_and_draws_each_swatch():
    img = np.full((200, 300, 3), 200, np.uint8)
    _legend(img, [("waterline", (0, 0, 255)), ("transect", (0, 255, 255))])
    assert img[1, 1].max() < 200  # the key's background is darkened
    red = (img[:, :, 2] > 200) & (img[:, :, 1] < 60) & (img[:, :, 0] < 60)
    yellow = (img[:, :, 2] > 200) & (img[:, :, 1] > 200) & (img[:, :, 0] < 60)
    assert red.any() and yellow.any()
