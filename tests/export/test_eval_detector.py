"""The held-out evaluation measures windows the way the device cuts them (`--scales`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.config import load_config
from export.data.real_bscan import eval_tiles
from export.train.eval_detector import CONFIG, main, score_lines, with_scales


def test_tiles_at_scale_two_are_twice_as_wide_and_cover_the_image():
    """A 200 x 1000 screenshot, model input 256 x 128: isotropic tiles are 100 px wide every
    50 px; at scale 2, 200 px every 100 px; at scale 16 the tile is capped at the image."""
    for scale, width, n in ((1.0, 100, 19), (2.0, 200, 9), (16.0, 1000, 1)):
        tiles = eval_tiles((200, 1000), (256, 128), "tiles", scale)
        assert {c1 - c0 for _, _, c0, c1 in tiles} == {width} and len(tiles) == n
        assert tiles[0][2] == 0 and tiles[-1][3] == 1000
    assert eval_tiles((200, 1000), (256, 128), "whole", 2.0) == [(0, 200, 0, 1000)]


def test_raw_files_run_the_station_config_with_the_given_scales(capsys):
    """`--scales 1 2` replaces the config's [gpr.windows] scales, keeping its other keys;
    a scale below 1 is one usage error, as in the config."""
    cfg = load_config(CONFIG)
    scaled = with_scales(cfg, [1.0, 2.0])
    assert cfg.gpr is not None and scaled.gpr is not None
    assert scaled.gpr.windows.scales == [1.0, 2.0]
    assert scaled.gpr.windows.overlap == cfg.gpr.windows.overlap
    assert scaled.gpr.detector == cfg.gpr.detector
    with pytest.raises(SystemExit) as stop:
        main(["default", "--scales", "0.5", "--json", str(Path("/nonexistent/x.json"))])
    assert stop.value.code == 2
    assert "--scales [0.5]" in capsys.readouterr().err


def test_held_out_survey_lines_are_scored_through_the_pipeline(monkeypatch):
    """Three held-out synthetic lines (seed 2: never trained on) through detect_file: every
    visible target is counted; the shipped detector finds some of them with their class,
    within the matching rule's depth tolerance. A pipeline that reports every cavity 0.5 m
    too deep finds none and reports them all as false."""
    res = score_lines("default", 3)
    assert res["lines"] == 3 and res["targets"] >= 3
    assert 0 < res["recall"] <= 1 and res["class_accuracy"] > 0.5
    assert res["median_depth_error"] <= 0.25
    from edge.gpr import stream

    real = stream.detect_file

    def deeper(*args, **kwargs):
        return [{**m, "depth_top_m": m["depth_top_m"] + 0.5} for m in real(*args, **kwargs)]

    monkeypatch.setattr(stream, "detect_file", deeper)
    worse = score_lines("default", 3)
    assert worse["recall"] == 0
    assert worse["false_reports_per_line"] > res["false_reports_per_line"]


def test_tiles_merge_one_hyperbola_boxed_at_two_scales_but_not_neighbours():
    """A narrow tile boxes a hyperbola's apex tightly (40 x 30 px), a wide one the whole
    hyperbola (160 x 90 px): IoU 0.08, yet one target (the device's de-duplication merges
    them), with the higher score. A neighbour overlapping a quarter of the smaller box stays."""
    from export.train.eval_detector import merge_tiles

    dets = np.array(
        [
            [100.0, 50.0, 140.0, 80.0, 0.7, 0],  # apex, narrow tile
            [40.0, 45.0, 200.0, 135.0, 0.9, 0],  # whole hyperbola, wide tile
            [190.0, 50.0, 230.0, 80.0, 0.6, 0],  # neighbour: 10 of its 40 px inside
        ]
    )
    merged = merge_tiles(dets)
    assert merged[:, 4].tolist() == [0.9, 0.6]
    assert len(merge_tiles(dets, share=1.01)) == 3


def test_a_box_counts_for_the_labelled_box_its_centre_lies_in():
    """Two 26 px wide apex boxes; detections shifted 9 px (IoU under 0.5, centre inside) and
    one between them count once each; a second detection on a found box and one below the
    threshold do not."""
    from export.train.eval_detector import centre_matches

    truth = np.array([[100.0, 50.0, 126.0, 170.0, 0], [160.0, 50.0, 186.0, 170.0, 0]])
    dets = np.array(
        [
            [109.0, 55.0, 135.0, 175.0, 0.9, 0],  # shifted 9 px: centre 122 inside the first
            [110.0, 55.0, 136.0, 175.0, 0.8, 0],  # the first again: a false report
            [165.0, 40.0, 191.0, 160.0, 0.7, 0],  # the second
            [300.0, 40.0, 326.0, 160.0, 0.2, 0],  # below the threshold
        ]
    )
    assert centre_matches([dets], [truth], 0.5) == (2, 3)
