"""A rendered beach station for the beach tests: config files + scene, in a tmp folder.

Camera ``c1``: 26 m mast, 800 x 640 pixels, mild barrel distortion, looking obliquely
along a planar beach of slope ``tan(beta)`` at projected coordinates around
(500 000, 4 000 000) m; five shore-normal transects (first point landward).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.beach.geometry.camera import Camera, Extrinsics, Intrinsics
from edge.config import StationConfig, load_config
from export.data.scene import BeachProfile, BeachScene, look_at_camera

ORIGIN = (500_000.0, 4_000_000.0)
ALONGSHORE = (-30.0, -10.0, 10.0, 30.0, 50.0)


@dataclass
class RenderedStation:
    config: StationConfig
    scene: BeachScene
    transects: list


def make_station(tmp: Path, slope: float = 0.08, extra_toml: str = "") -> RenderedStation:
    base = BeachScene(
        look_at_camera((0, 0, 0), (0, 1, 0), nu=800, nv=640),
        BeachProfile(z_origin=1.0, slope=slope, crest_z=5.0),
        shore_origin=ORIGIN,
        seaward_azimuth_deg=80.0,
    )
    cam_xy = base.to_world(np.array([-45.0]), np.array([-50.0]))[0]
    tgt_xy = base.to_world(np.array([35.0]), np.array([15.0]))[0]
    ideal = look_at_camera((*cam_xy, 26.0), (*tgt_xy, 0.0), nu=800, nv=640, hfov_deg=60.0)
    ic, e = ideal.intrinsics, ideal.extrinsics
    lens = Intrinsics(ic.NU, ic.NV, ic.c0U + 2.0, ic.c0V - 3.0, ic.fx, ic.fy, d1=-0.05, d2=0.01)
    camera = Camera(lens, Extrinsics(e.x, e.y, e.z, e.a, e.t, 0.003), "c1")
    scene = BeachScene(camera, base.profile, shore_origin=ORIGIN, seaward_azimuth_deg=80.0)
    keys = ("NU", "NV", "c0U", "c0V", "fx", "fy", "d1", "d2", "d3", "t1", "t2")
    (tmp / "c1_IO.json").write_text(json.dumps({k: getattr(lens, k) for k in keys}))
    ex = camera.extrinsics
    (tmp / "c1_EO.json").write_text(json.dumps({k: getattr(ex, k) for k in "xyzatr"}))
    transects = [scene.transect(a, -40.0, 110.0) for a in ALONGSHORE]
    features = [
        {"type": "Feature", "properties": {"id": f"T{i:02d}"},
         "geometry": {"type": "LineString", "coordinates": [list(p) for p in t.coords]}}
        for i, t in enumerate(transects, start=1)
    ]  # fmt: skip
    (tmp / "transects.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )
    ring = scene.to_world(
        np.array([-35, 115, 115, -35, -35.0]), np.array([-80, -80, 80, 80, -80.0])
    )
    (tmp / "roi.geojson").write_text(
        json.dumps({"type": "Polygon", "coordinates": [ring.tolist()]})
    )
    (tmp / "station.toml").write_text(
        f"""
[station]
id = "scene-01"
crs = "EPSG:32633"

[[cameras]]
name = "c1"
source = "rtsp://127.0.0.1:1/none"
intrinsics = "c1_IO.json"
extrinsics = "c1_EO.json"

[transects]
file = "transects.geojson"

[waterline]
roi = "roi.geojson"

[shoreline]
store = "shoreline.sqlite"
{extra_toml}
"""
    )
    return RenderedStation(load_config(tmp / "station.toml"), scene, transects)
