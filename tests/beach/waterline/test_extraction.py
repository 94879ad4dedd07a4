"""Waterline on rendered scenes with a known water edge (oblique camera, sloping beach)."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge.beach.waterline.analysis import BeachAnalyser
from edge.config import with_changes
from edge.errors import InputError
from export.data.synth_timex import paint
from tests.helpers.beach_scene import make_station


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    return make_station(tmp_path_factory.mktemp("scene"), slope=0.08)


def _truth(station, level):
    return [station.scene.true_chainage(t, level) for t in station.transects]


def test_mask_waterline_matches_the_rendered_edge_on_every_transect(station, tmp_path):
    """A perfect water mask: the crossings must land on the analytic contour terrain ==
    water level. 1 m is the issue's bound at 0.5 m grid resolution; the sub-pixel
    crossing on the mask should do far better (a pixel is ~0.1-0.4 m on the ground)."""
    level = 0.35
    mask = station.scene.render(level).water_mask.astype(np.uint8) * 255
    analyser = BeachAnalyser(station.config, load_model=False)
    result = analyser.analyse(1_781_492_400.0, level, masks={"c1": mask})
    got = [c.distance_m for c in result.crossings]
    assert all(c.valid for c in result.crossings), result.crossings
    np.testing.assert_allclose(got, _truth(station, level), atol=0.3)
    msg = result.to_message("test", "EPSG:32633")
    assert msg["schema"] == "geoedge.waterline/1" and msg["crs"] == "EPSG:32633"
    assert msg["water_level_m"] == level
    line = np.array(msg["waterline"]["coordinates"])
    # Every vertex of the world waterline lies on the water-level contour of the terrain.
    z = station.scene.terrain(line)
    assert np.abs(z - level).max() < 0.08


def test_colour_method_on_a_painted_timex_is_within_1_m(station):
    """A realistic painted TimeX (surf foam, wet sand, texture) segmented by the colour
    method alone: the published bound is the one to meet (1 m at 0.5 m resolution)."""
    level = 0.2
    rng = np.random.default_rng(5)
    painted = paint(rng, station.scene, level)
    config = with_changes(station.config, segmentation={"method": "colour"})
    analyser = BeachAnalyser(config)
    result = analyser.analyse(0.0, level, images={"c1": painted.image})
    got = np.array([c.distance_m if c.valid else np.nan for c in result.crossings])
    truth = np.array(_truth(station, level))
    print("colour method chainages", got.round(2), "truth", truth.round(2))
    assert np.isfinite(got).sum() >= 4
    assert np.nanmax(np.abs(got - truth)) < 1.0


def test_the_waterline_moves_seaward_by_dz_over_tan_beta(station):
    """Same beach, water 0.4 m lower: the crossing moves 0.4 / 0.08 = 5 m seaward."""
    analyser = BeachAnalyser(station.config, load_model=False)
    d = []
    for level in (0.5, 0.1):
        mask = station.scene.render(level).water_mask.astype(np.uint8) * 255
        result = analyser.analyse(0.0, level, masks={"c1": mask})
        d.append(np.array([c.distance_m for c in result.crossings]))
    np.testing.assert_allclose(d[1] - d[0], 5.0, atol=0.3)


def test_no_water_level_is_refused(station):
    analyser = BeachAnalyser(station.config, load_model=False)
    with pytest.raises(InputError, match="water level"):
        analyser.analyse(0.0, float("nan"), masks={"c1": np.zeros((640, 800), np.uint8)})


def test_a_transect_the_camera_cannot_see_is_flagged(station):
    analyser = BeachAnalyser(station.config, load_model=False)
    from shapely.geometry import LineString

    from edge.beach.waterline.transects import Transect

    far = station.scene.transect(2000.0, -40.0, 110.0)
    analyser.transects = [Transect("FAR", LineString(far.coords))]
    mask = station.scene.render(0.3).water_mask.astype(np.uint8) * 255
    result = analyser.analyse(0.0, 0.3, masks={"c1": mask})
    assert result.crossings[0].valid is False
    assert result.crossings[0].reason == "outside the camera view"


def test_waterline_command_with_a_mask(station, tmp_path):
    mask_path = tmp_path / "mask.png"
    cv2.imwrite(str(mask_path), station.scene.render(0.35).water_mask.astype(np.uint8) * 255)
    out = tmp_path / "wl.json"
    cmd = [
        sys.executable, "-m", "edge", "waterline", "--config", str(station.config.source_path),
        "--mask", f"c1={mask_path}", "--water-level", "0.35", "--out", str(out),
        "--time", "2026-06-15T03:00:00Z",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    msg = json.loads(out.read_text())
    assert msg["time"] == "2026-06-15T03:00:00Z"
    assert len(msg["transects"]) == 5
    bad = subprocess.run(
        [*cmd[:6], "--mask", "zz=" + str(mask_path), *cmd[8:]], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "no camera 'zz'" in bad.stderr
