"""One collection through ``analyse_collection``: spurious pieces, two cameras, overlays.

Situation: the rendered station of :mod:`tests.helpers.beach_scene` (planar beach tan(beta) =
0.08, z = 1 m at the shore origin, camera c1 on a 26 m mast) at water level 0.35 m,
so the true waterline is the contour s = (1 - 0.35) / 0.08 = 8.125 m. A second camera
c2 on another mast 100 m further along the beach (alongshore -150 m) looks the same way;
the two cameras share the transects at alongshore -30 and -10 m.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from shapely.geometry import LineString

from edge.beach.geometry.camera import Camera, Extrinsics, Intrinsics
from edge.beach.waterline.analysis import BeachAnalyser, analyse_collection
from edge.beach.waterline.transects import Transect
from edge.config import load_config, with_changes
from export.data.scene import BeachScene, look_at_camera
from tests.helpers.beach_scene import make_station

LEVEL = 0.35


def _camera_json(tmp, name: str, cam: Camera) -> None:
    keys = ("NU", "NV", "c0U", "c0V", "fx", "fy", "d1", "d2", "d3", "t1", "t2")
    (tmp / f"{name}_IO.json").write_text(json.dumps({k: getattr(cam.intrinsics, k) for k in keys}))
    ex = cam.extrinsics
    (tmp / f"{name}_EO.json").write_text(json.dumps({k: getattr(ex, k) for k in "xyzatr"}))


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two-cameras")
    first = make_station(tmp)
    s = first.scene
    pos = s.to_world(np.array([-45.0]), np.array([-150.0]))[0]
    tgt = s.to_world(np.array([30.0]), np.array([-70.0]))[0]
    ideal = look_at_camera((*pos, 24.0), (*tgt, 0.0), nu=800, nv=640, hfov_deg=55.0)
    ic, e = ideal.intrinsics, ideal.extrinsics
    lens = Intrinsics(ic.NU, ic.NV, ic.c0U - 4.0, ic.c0V + 2.0, ic.fx, ic.fy, d1=-0.04)
    c2 = Camera(lens, Extrinsics(e.x, e.y, e.z, e.a, e.t, -0.002), "c2")
    _camera_json(tmp, "c2", c2)
    corners = s.to_world(np.array([-40.0, -40.0, 120.0, 120.0]), np.array([-90, 90, -90, 90.0]))
    x0, y0 = corners.min(axis=0) - 20.0
    grid = (
        f"\n[grid]\norigin = [{x0:.3f}, {y0:.3f}]\nrotation_deg = 0.0\n"
        "x = [0.0, 300.0]\ny = [0.0, 300.0]\nresolution_m = 1.0\n"
    )
    text = (tmp / "station.toml").read_text()
    text = text.replace(
        "[transects]",
        '[[cameras]]\nname = "c2"\nsource = "rtsp://127.0.0.1:1/none"\n'
        'intrinsics = "c2_IO.json"\nextrinsics = "c2_EO.json"\n\n[transects]',
    )
    (tmp / "station.toml").write_text(text + grid)
    config = load_config(tmp / "station.toml")
    scene2 = BeachScene(c2, s.profile, shore_origin=s.shore_origin, seaward_azimuth_deg=80.0)
    return config, s, scene2


def _mask(scene: BeachScene) -> np.ndarray:
    return scene.render(LEVEL).water_mask.astype(np.uint8) * 255


def _pixel(scene: BeachScene, s_m: float, a_m: float) -> tuple[int, int]:
    xy = scene.to_world(np.array([s_m]), np.array([a_m]))[0]
    uv, ok = scene.camera.world_to_image(np.array([[*xy, LEVEL]]))
    assert ok[0]
    return round(float(uv[0, 0])), round(float(uv[0, 1]))


def test_wet_sand_patches_and_foam_islands_do_not_move_the_crossings(station):
    # On transect T03 (alongshore 10 m) the mask gets a false water patch on the dry sand
    # 12 m landward of the shoreline (a wet-sand patch / puddle) and a false land island
    # 15 m seaward in the water (a swash foam island), each about 2 m across. The
    # cleaning rule (largest water region, small enclosed land filled) must remove both:
    # the chainage stays within 0.3 m of the analytic 8.125 + 40 = 48.125 m.
    config, scene, _ = station
    mask = _mask(scene)
    for s_m, value in ((8.125 - 12.0, 255), (8.125 + 15.0, 0)):
        u, v = _pixel(scene, s_m, 10.0)
        cv2.ellipse(mask, (u, v), (9, 4), 0, 0, 360, value, -1)
    msg = analyse_collection(config, {}, 0.0, LEVEL, masks={"c1": mask})
    t03 = next(t for t in msg["transects"] if t["id"] == "T03")
    assert t03["valid"], t03
    assert t03["distance_m"] == pytest.approx(48.125, abs=0.3)
    coords = np.array(msg["waterline"]["coordinates"])
    assert np.abs(scene.terrain(coords) - LEVEL).max() < 0.08  # no piece around the blobs


def test_two_cameras_merge_and_each_transect_uses_a_camera_that_sees_it(station):
    # A transect at alongshore -70 m is outside c1's view but inside c2's: it must be
    # measured (by c2) within 0.3 m of the truth, and all the others still agree with it.
    config, scene, scene2 = station
    analyser = BeachAnalyser(config, load_model=False)
    far = scene.transect(-70.0, -40.0, 110.0)
    analyser.transects = [*analyser.transects, Transect("T06", LineString(far.coords))]
    only_c1 = analyser.analyse(0.0, LEVEL, masks={"c1": _mask(scene)})
    assert only_c1.crossings[-1].reason == "outside the camera view"
    both = analyser.analyse(0.0, LEVEL, masks={"c1": _mask(scene), "c2": _mask(scene2)})
    assert both.cameras == ["c1", "c2"]
    by_id = {c.id: c for c in both.crossings}
    assert by_id["T06"].camera == "c2" and by_id["T06"].valid
    for c in both.crossings:
        assert c.distance_m == pytest.approx(48.125, abs=0.3), c


def test_overlays_are_written_beside_the_products(station, tmp_path):
    # TimeX images (the flat-shaded renders, segmented by the colour method) with an output
    # folder: one overlay per camera at the camera's size and one plan view of the [grid]
    # (301 x 301 nodes at 1 m), named by the collection time in UTC.
    config, scene, scene2 = station
    config = with_changes(config, segmentation={"method": "colour"})
    images = {"c1": scene.render(LEVEL).image, "c2": scene2.render(LEVEL).image}
    msg = analyse_collection(config, images, 1_781_492_400.0, LEVEL, out_dir=tmp_path)
    assert msg["method"] == "colour"
    assert sorted(msg["overlays"]) == ["c1", "c2", "plan"]
    stamp = "20260615T030000Z"
    for key, shape in (("c1", (640, 800, 3)), ("c2", (640, 800, 3)), ("plan", (301, 301, 3))):
        path = tmp_path / f"{stamp}.{key}.waterline.jpg"
        assert msg["overlays"][key] == str(path)
        image = cv2.imread(str(path))
        assert image is not None and image.shape == shape
    plan = cv2.imread(msg["overlays"]["plan"]).astype(int)
    red = (plan[..., 2] > plan[..., 1] + 60) & (plan[..., 2] > plan[..., 0] + 60)
    assert red.sum() > 50  # the waterline is drawn on the plan view
    assert all(t["valid"] and abs(t["distance_m"] - 48.125) < 1.0 for t in msg["transects"])
