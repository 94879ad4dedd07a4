"""``geoedge rectify`` refuses bad input with one line naming it (exit status 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers.data import COASTCAM as DATA

STATION = f"""
[station]
id = "caco-01"
crs = "EPSG:26919"

[[cameras]]
name = "c1"
source = "rtsp://127.0.0.1:1/none"
intrinsics = "{DATA / "CACO01_C1_IOBest.json"}"
extrinsics = "{DATA / "CACO01_C1_EOBest.json"}"
"""
GRID = """
[grid]
origin = [410935.0, 4655890.0]
rotation_deg = 55.0
x = [200.0, 250.0]
y = [450.0, 500.0]
"""


def _rectify(tmp: Path, toml: str, image: str) -> subprocess.CompletedProcess:
    cfg = tmp / "station.toml"
    cfg.write_text(toml)
    return subprocess.run(
        [sys.executable, "-m", "edge", "rectify", "--config", str(cfg), "--image", image,
         "--z", "0.4", "--out", str(tmp / "plan.png")],
        capture_output=True, text=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no_grid", "rectify needs a [grid] section"),
        ("unknown_camera", "no camera 'c9' in the config (cameras: c1)"),
        ("wrong_size", "camera c1: image is 64x48 pixels, calibration expects 2448x2048"),
        ("unreadable", "cannot read image"),
    ],
)
def test_bad_input_is_one_line(tmp_path, case, expected):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((48, 64, 3), np.uint8))
    toml = STATION if case == "no_grid" else STATION + GRID
    image = {
        "no_grid": f"c1={small}",
        "unknown_camera": f"c9={small}",
        "wrong_size": f"c1={small}",
        "unreadable": f"c1={tmp_path / 'missing.jpg'}",
    }[case]
    out = _rectify(tmp_path, toml, image)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and expected in out.stderr
    assert not (tmp_path / "plan.png").exists()


def test_one_camera_plan_view_is_written(tmp_path):
    """A 50 x 50 m patch of the CACO-01 grid (x 200..250, y 450..500) seen by camera 1 at
    z = 0.4 m: 51 x 51 nodes, colour, every node seen (the patch lies well inside c1's view)."""
    out = _rectify(tmp_path, STATION + GRID, f"c1={DATA / '1581508801.c1.timex.jpg'}")
    assert out.returncode == 0, out.stderr
    plan = cv2.imread(str(tmp_path / "plan.png"), cv2.IMREAD_UNCHANGED)
    assert plan.shape == (51, 51, 3)
    assert (plan.max(axis=2) > 0).all()
