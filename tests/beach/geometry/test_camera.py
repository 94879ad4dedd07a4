"""CIRN camera model: projection round trips, lens distortion and the validity rules."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.beach.geometry.calibration import load_camera
from edge.beach.geometry.camera import Camera, Extrinsics, Intrinsics
from edge.config.cameras import CameraSection
from edge.errors import InputError
from tests.helpers.data import COASTCAM as DATA


@pytest.fixture(scope="module")
def caco_c2() -> Camera:
    """The real CACO-01 camera 2 (UTM 19N, strong barrel distortion, d1 = -0.22)."""
    return Camera.from_files(
        DATA / "CACO01_C2_IOBest.json", DATA / "CACO01_C2_EOBest.json", name="c2"
    )


def test_pixel_to_world_to_pixel_round_trip(caco_c2):
    """Pixels over the lower image (below the horizon) cast onto the plane z = 0.7 m and
    projected back land on the same pixel: the undistortion inverts the distortion and the
    ray intersection inverts the projection. 0.01 px is far below any useful accuracy and
    far above the float round-off."""
    u, v = np.meshgrid(np.linspace(50, 2400, 12), np.linspace(1200, 2000, 8))
    uv = np.column_stack([u.ravel(), v.ravel()])
    xyz, valid = caco_c2.image_to_world(uv, 0.7)
    assert valid.all()
    assert np.allclose(xyz[:, 2], 0.7)
    back, seen = caco_c2.world_to_image(xyz)
    assert seen.all()
    assert np.abs(back - uv).max() < 0.01


def test_world_to_pixel_to_world_round_trip_with_large_coordinates(caco_c2):
    """Beach points 50..300 m from the camera in UTM (eastings 4e5, northings 4.6e6) at a
    known z of 1.5 m come back within 1 mm: no precision lost to the large coordinates."""
    rng = np.random.default_rng(4)
    cam = caco_c2.position
    az = caco_c2.extrinsics.a + rng.uniform(-0.3, 0.3, 60)  # around the view direction
    dist = rng.uniform(50, 300, 60)
    xyz = np.column_stack(
        [cam[0] + dist * np.sin(az), cam[1] + dist * np.cos(az), np.full(60, 1.5)]
    )
    uv, valid = caco_c2.world_to_image(xyz)
    back, ok = caco_c2.image_to_world(uv[valid], 1.5)
    assert valid.sum() > 40 and ok.all()
    assert np.abs(back - xyz[valid]).max() < 1e-3


def test_image_axes_follow_the_cirn_convention():
    """A level camera (tilt 90 deg) looking east (azimuth 90 deg clockwise from north):
    a point to the north is on its left (u < c0U), a point above the horizon is in the
    upper half (v < c0V), and a point straight ahead falls on the principal point."""
    cam = Camera(
        Intrinsics(NU=1000, NV=800, c0U=500, c0V=400, fx=800, fy=800),
        Extrinsics(x=5e5, y=4e6, z=10.0, a=np.pi / 2, t=np.pi / 2, r=0.0),
    )
    ahead, left, up = [5e5 + 100, 4e6, 10.0], [5e5 + 100, 4e6 + 20, 10.0], [5e5 + 100, 4e6, 30.0]
    uv, valid = cam.world_to_image(np.array([ahead, left, up]))
    assert valid.all()
    assert uv[0] == pytest.approx([500, 400], abs=1e-9)
    assert uv[1, 0] == pytest.approx(500 - 800 * 20 / 100)  # 160 px left, same row
    assert uv[2, 1] == pytest.approx(400 - 800 * 20 / 100)  # 160 px up, same column


def test_undistort_inverts_the_brown_model():
    """Normalised points distorted with radial (d1..d3) and tangential (t1, t2) terms of
    the size of real coastal lenses are recovered by the iterative undistortion to 1e-9."""
    ic = Intrinsics(NU=2448, NV=2048, c0U=1215, c0V=1076, fx=2412, fy=2410,
                    d1=-0.22, d2=0.18, d3=-0.055, t1=0.0001, t2=-0.0026)  # fmt: skip
    cam = Camera(ic, Extrinsics(0, 0, 0, 0, 0, 0))
    x, y = np.meshgrid(np.linspace(-0.45, 0.45, 9), np.linspace(-0.4, 0.4, 9))
    x, y = x.ravel(), y.ravel()
    r2 = x**2 + y**2
    fr = ic.radial(r2)
    xd = x * fr + 2 * ic.t1 * x * y + ic.t2 * (r2 + 2 * x**2)
    yd = y * fr + ic.t1 * (r2 + 2 * y**2) + 2 * ic.t2 * x * y
    uv = np.column_stack([xd * ic.fx + ic.c0U, yd * ic.fy + ic.c0V])
    assert np.abs(cam.undistort(uv) - np.column_stack([x, y])).max() < 1e-9


def test_points_behind_outside_or_beyond_the_distortion_fold_are_invalid():
    """Nadir camera 100 m up. Behind it (above its height), outside the image, and a point
    at normalised radius sqrt(2) where the strong radial term d1 = -0.5 folds the lens
    curve (r f(r) peaks at r^2 = 2/3) and would otherwise map it onto the image centre."""
    cam = Camera(
        Intrinsics(NU=4000, NV=4000, c0U=2000, c0V=2000, fx=1000, fy=1000, d1=-0.5),
        Extrinsics(x=3e5, y=4e6, z=100.0, a=0.0, t=0.0, r=0.0),
    )
    assert cam.intrinsics.max_r2() == pytest.approx(2 / 3, rel=0.01)
    points = np.array(
        [
            [3e5 + 10, 4e6 + 5, 0.0],  # in view near the centre
            [3e5, 4e6, 150.0],  # behind (above) the camera
            [3e5 + 5000, 4e6, 0.0],  # far outside the image
            [3e5 + 100 * np.sqrt(2), 4e6, 0.0],  # beyond the fold: r^2 = 2, f(r) = 0
        ]
    )
    uv, valid = cam.world_to_image(points)
    assert valid.tolist() == [True, False, False, False]
    # The folded point would have landed on the principal point: that is why the rule exists.
    assert uv[3] == pytest.approx([2000, 2000], abs=1e-6)
    # A pixel looking above the horizon never reaches the ground.
    level = Camera(cam.intrinsics, Extrinsics(3e5, 4e6, 10.0, 0.0, np.pi / 2, 0.0))
    _, reaches = level.image_to_world(np.array([[2000.0, 1500.0], [2000.0, 2500.0]]), 0.0)
    assert reaches.tolist() == [False, True]
    # A pixel outside the image has no calibrated ray, even if it would reach the plane.
    nu, nv = level.intrinsics.NU, level.intrinsics.NV
    _, seen = level.image_to_world(np.array([[nu + 50.0, nv - 10.0], [-3.0, nv - 10.0]]), 0.0)
    assert not seen.any()


def test_load_camera_uses_extrinsics_or_solves_them_from_gcps(tmp_path, caco_c2):
    """A config entry with extrinsics reads them; one with a GCP file (the CACO-01 camera's
    own exact projections of 12 surveyed points) solves the same pose to 1 cm / 1e-5 rad."""
    direct = load_camera(
        CameraSection(
            name="c2", source="0",
            intrinsics=DATA / "CACO01_C2_IOBest.json", extrinsics=DATA / "CACO01_C2_EOBest.json",
        )
    )  # fmt: skip
    assert direct.extrinsics == caco_c2.extrinsics
    uv = np.array([[u, v] for u in (200, 900, 1600, 2300) for v in (1300, 1650, 2000)], float)
    xyz, _ = caco_c2.image_to_world(uv, np.resize([0.0, 2.0, 4.5], 12))
    gcps = tmp_path / "c2_gcps.csv"
    lines = ["x,y,z,u,v"] + [f"{p[0]:.6f},{p[1]:.6f},{p[2]:.6f},{q[0]},{q[1]}" for p, q in
                              zip(xyz, uv, strict=True)]  # fmt: skip
    gcps.write_text("\n".join(lines) + "\n")
    solved = load_camera(
        CameraSection(name="c2", source="0", intrinsics=DATA / "CACO01_C2_IOBest.json", gcps=gcps)
    )
    e, t = solved.extrinsics, caco_c2.extrinsics
    assert np.allclose([e.x, e.y, e.z], [t.x, t.y, t.z], atol=0.01)
    assert np.allclose([e.a, e.t, e.r], [t.a, t.t, t.r], atol=1e-5)


def test_unreadable_calibration_is_one_clear_error(tmp_path):
    bad = tmp_path / "io.json"
    bad.write_text('{"NU": 2448, "NV": 2048}')
    with pytest.raises(InputError, match=r"io\.json: calibration lacks keys"):
        Intrinsics.from_json(bad)


def test_a_one_based_calibration_projects_one_pixel_up_and_left(tmp_path, caco_c2):
    """A CIRN toolbox (MATLAB) calibration counts pixels from 1: with ``pixel_origin = 1``
    the same world point lands exactly 1 px lower in u and v (0-based array indices);
    any other origin is refused in one line."""
    io = json.loads((DATA / "CACO01_C2_IOBest.json").read_text())
    one_based = tmp_path / "io1.json"
    one_based.write_text(json.dumps({**io, "pixel_origin": 1}))
    cam1 = Camera(Intrinsics.from_json(one_based), caco_c2.extrinsics)
    xyz, _ = caco_c2.image_to_world(np.array([[1200.0, 1500.0], [300.0, 1900.0]]), 0.0)
    uv0, ok0 = caco_c2.world_to_image(xyz)
    uv1, ok1 = cam1.world_to_image(xyz)
    assert ok0.all() and ok1.all()
    assert np.allclose(uv0 - uv1, 1.0, atol=1e-9)
    bad = tmp_path / "io2.json"
    bad.write_text(json.dumps({**io, "pixel_origin": 0.5}))
    with pytest.raises(InputError, match=r"pixel_origin must be 0 or 1"):
        Intrinsics.from_json(bad)


def test_every_pixel_of_a_barrel_lens_is_valid_up_to_the_corners(caco_c2):
    """CACO-01 c2 has strong barrel distortion (d1 = -0.22): its corner pixels look along
    rays whose undistorted radius (r^2 up to 0.54) exceeds the distorted one (0.46). A
    point 100 m along the ray of each corner pixel must project back, valid, onto it; a
    limit taken from the distorted corners would wrongly cut the image corners off."""
    ic = caco_c2.intrinsics
    uv = np.array([[0.5, 0.5], [ic.NU - 1.5, 0.5], [0.5, ic.NV - 1.5], [ic.NU - 1.5, ic.NV - 1.5]])
    xyz = caco_c2.position + 100.0 * caco_c2.rays(uv)
    back, valid = caco_c2.world_to_image(xyz)
    assert valid.all()
    assert np.abs(back - uv).max() < 1e-6
