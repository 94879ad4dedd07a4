"""The geometric beach scene renderer: the ground truth of the waterline tests.

Situation: a camera 25 m above a planar beach (tan(beta) = 0.08, z = 1 m at the
shore origin), looking seaward and down. Every number checked below follows from
that geometry alone, so the renderer is verified against closed-form answers.
"""

from __future__ import annotations

import numpy as np
import pytest

from export.data.scene import SAND, SKY, WATER, BeachProfile, BeachScene, look_at_camera


@pytest.fixture(scope="module")
def scene() -> BeachScene:
    cam = look_at_camera((5.0, -60.0, 25.0), (0.0, 120.0, 0.0), nu=612, nv=512, hfov_deg=60)
    return BeachScene(cam, BeachProfile(z_origin=1.0, slope=0.08), seaward_azimuth_deg=0.0)


@pytest.fixture(scope="module")
def render(scene: BeachScene):
    return scene.render(water_level=0.3)


def test_surface_points_reproject_to_their_own_pixels(scene, render):
    # A ray-cast point seen by pixel (u, v) must project back onto (u, v); 0.01 px
    # allows only for the convergence tolerance of the ray march (1e-4 m). The border
    # pixels are left out: they project to -1e-14 or 511.0000001 and count as outside.
    seen = np.argwhere(render.labels[1:-1, 1:-1] != SKY)[::97] + 1
    uv, valid = scene.camera.world_to_image(render.world_xyz[seen[:, 0], seen[:, 1]])
    assert valid.all()
    assert np.abs(uv - seen[:, ::-1]).max() < 0.01


def test_points_lie_on_the_water_plane_or_the_terrain(scene, render):
    # Water pixels sit on the plane z = 0.3 m; sand pixels on z = 1 - 0.08 s.
    water = render.world_xyz[render.labels == WATER]
    sand = render.world_xyz[render.labels == SAND]
    assert len(water) > 1000 and len(sand) > 1000
    assert np.abs(water[:, 2] - 0.3).max() < 1e-3
    assert np.abs(sand[:, 2] - (1.0 - 0.08 * sand[:, 1])).max() < 1e-3


def test_labels_split_at_the_analytic_shoreline(render):
    # The planar beach meets z = 0.3 m at s = (1.0 - 0.3) / 0.08 = 8.75 m (north = seaward).
    water_s = render.world_xyz[render.labels == WATER][:, 1]
    sand_s = render.world_xyz[render.labels == SAND][:, 1]
    assert water_s.min() >= 8.75 - 1e-3
    assert sand_s.max() <= 8.75 + 1e-3


def test_true_chainage_on_an_oblique_transect(scene):
    # A transect from (0, -20) to (30, 100): the crossing at y = 8.75 is at 28.75/120 of
    # its length. Rising water (0.3 -> 0.7 m) moves it 5 m landward in y.
    from shapely.geometry import LineString

    t = LineString([(0.0, -20.0), (30.0, 100.0)])
    frac = 28.75 / 120.0
    assert scene.true_chainage(t, 0.3) == pytest.approx(frac * t.length, abs=1e-3)
    frac_hi = (28.75 - 5.0) / 120.0
    assert scene.true_chainage(t, 0.7) == pytest.approx(frac_hi * t.length, abs=1e-3)


def test_rhythmic_shoreline_truth_follows_the_shift():
    # A cuspate shoreline (3 m amplitude, 80 m wavelength): at alongshore 20 m the
    # shoreline sits 3 m seaward of the straight one.
    cam = look_at_camera((0.0, -60.0, 25.0), (0.0, 100.0, 0.0), nu=64, nv=48)
    scene = BeachScene(
        cam, BeachProfile(z_origin=1.0, slope=0.1), rhythm_amplitude_m=3.0, rhythm_wavelength_m=80.0
    )
    t = scene.transect(alongshore_m=20.0, start_m=-10.0, end_m=50.0)
    assert scene.true_chainage(t, 0.5) == pytest.approx(10.0 + 5.0 + 3.0, abs=1e-3)
    line = scene.waterline(0.5, alongshore=(-40.0, 40.0))
    assert line.distance(t.interpolate(18.0)) < 1e-6
