"""Beach-station config errors: each stops start-up with one line naming the key."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edge.cli import main

GOOD_CAMERA = """
[[cameras]]
name = "c1"
source = "rtsp://192.0.2.10/stream1"
intrinsics = "c1_IO.json"
extrinsics = "c1_EO.json"
"""


def config(
    tmp_path: Path, camera: str = GOOD_CAMERA, collection: str = "", extra: str = ""
) -> Path:
    io = {"NU": 96, "NV": 64, "c0U": 48, "c0V": 32, "fx": 100, "fy": 100}
    io |= {"d1": 0, "d2": 0, "d3": 0, "t1": 0, "t2": 0}
    (tmp_path / "c1_IO.json").write_text(json.dumps(io))
    (tmp_path / "c1_EO.json").write_text('{"x":0,"y":0,"z":10,"a":0,"t":1.2,"r":0}')
    path = tmp_path / "beach.toml"
    text = f'[station]\nid = "s1"\ncrs = "EPSG:26919"\n{camera}\n[collection]\n{collection}\n'
    text += extra
    path.write_text(text)
    return path


CASES = {
    "collection longer than its interval": (
        {"collection": "interval_min = 10\nduration_min = 15"},
        r"collection: a 15-minute collection at offset 0 does not fit in a 10-minute interval",
    ),
    "unknown key": (
        {"collection": "sample_hz = 1\nsampel_hz = 2"},
        r"unknown key 'collection.sampel_hz'",
    ),
    "wrong type": (
        {"collection": 'sample_hz = "fast"'},
        r"collection.sample_hz: .*number.* \(got 'fast'\)",
    ),
    "missing calibration file": (
        {"camera": GOOD_CAMERA.replace("c1_IO.json", "calib/missing_IO.json")},
        r"cameras\[0\].intrinsics: file not found: .*calib/missing_IO.json",
    ),
    "missing video file": (
        {"camera": GOOD_CAMERA.replace("rtsp://192.0.2.10/stream1", "video/c1.avi")},
        r"cameras\[0\].source: video file not found: .*video/c1.avi",
    ),
    "missing model file (relative to the config)": (
        {"extra": '[segmentation]\nmodel = "models/unet.onnx"\n'},
        r"segmentation.model: file not found: .*/models/unet.onnx",
    ),
    "negative decoder threads": (
        {"camera": GOOD_CAMERA + "decode_threads = -1\n"},
        r"cameras\[0\].decode_threads: .*greater than or equal to 0",
    ),
    "unknown collection mode": (
        {"collection": 'align = "sometimes"'},
        r"collection.align: .*'clock' or 'immediate'",
    ),
    "daylight that no window starts in": (
        {"collection": "daylight_utc = [5.1, 5.2]"},
        r"no collection starts inside daylight_utc \[5.1, 5.2\]",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys, case):
    parts, pattern = CASES[case]
    path = config(tmp_path, **parts)
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"geoedge run: error: {path}: ")
    assert re.search(pattern, err[0]), err[0]


def test_the_installed_command_reports_it_too(tmp_path):
    exe = shutil.which("geoedge")
    assert exe is not None, "the geoedge console script is not on PATH (pip install -e .)"
    path = config(tmp_path, collection="interval_min = 10\nduration_min = 15")
    run = subprocess.run([exe, "run", "--config", str(path)], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "does not fit in a 10-minute interval" in run.stderr
