"""`geoedge timex` on videos written by OpenCV, against numpy on the same decoded frames."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from edge.cli import main

START = "2020-02-12T12:00:00Z"
EPOCH = 1581508800


def write_scene(path: Path, frames: int, fps: float, fourcc: str, size=(128, 96)) -> None:
    """A moving, noisy scene: a bright band sweeping across a gradient (like swash)."""
    rng = np.random.default_rng(7)
    w, h = size
    base = np.tile(np.linspace(30, 220, w, dtype=np.float32), (h, 1))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        grey = base.copy()
        x = int(i * 3) % w
        grey[:, x : x + 12] = 250
        grey += rng.normal(0, 6, grey.shape)
        bgr = np.dstack([grey * 1.1, grey, grey * 0.8])
        writer.write(np.clip(bgr, 0, 255).astype(np.uint8))
    writer.release()


def decoded(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All frames as OpenCV decodes them, and their presentation times (s)."""
    cap = cv2.VideoCapture(str(path))
    frames, times = [], []
    while cap.grab():
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
        frames.append(cap.retrieve()[1])
    cap.release()
    return np.stack(frames), np.array(times)


def products(out: Path, ext: str) -> dict[str, np.ndarray]:
    names = ("timex", "variance", "bright", "dark")
    return {n: cv2.imread(str(out / f"{EPOCH}.local.c1.{n}.{ext}")) for n in names}


def numpy_reference(frames: np.ndarray) -> dict[str, np.ndarray]:
    f = frames.astype(np.float64)
    return {"timex": f.mean(0), "variance": f.std(0), "bright": f.max(0), "dark": f.min(0)}


def test_timex_reproduces_numpy_within_one_grey_level(tmp_path, capsys):
    # 12 s at 25 fps, 1 Hz: the sampled frames are numbers 0, 25, ..., 275 (t = 0..11 s).
    video = tmp_path / "swash.avi"
    write_scene(video, 300, 25.0, "MJPG")
    frames, _ = decoded(video)
    ref = numpy_reference(frames[::25])
    out = tmp_path / "out"
    assert main(["timex", str(video), "--out", str(out), "--start", START, "--format", "png"]) == 0
    assert "12/12 frames" in capsys.readouterr().out
    got = products(out, "png")
    for name, expected in ref.items():
        diff = np.abs(got[name].astype(np.float64) - expected)
        assert diff.max() <= 1.0, name  # rounding to whole grey levels: <= 0.5 in fact
    np.testing.assert_array_equal(cv2.imread(str(out / f"{EPOCH}.local.c1.snap.png")), frames[0])
    side = json.loads((out / f"{EPOCH}.local.c1.json").read_text())
    assert side["frame_count"] == 12 and side["expected_frames"] == 12
    assert side["window"] == {"start": "2020-02-12T12:00:00Z", "end": "2020-02-12T12:00:12Z"}
    assert side["first_frame"] == "2020-02-12T12:00:00Z"
    assert side["last_frame"] == "2020-02-12T12:00:11Z"
    assert side["flags"] == []


def test_ntsc_mp4_two_hz_seconds_and_jpeg(tmp_path):
    # 29.97 fps mp4v, 2 Hz over the first 5 s: the first frame at or after each half
    # second by its presentation time (k * 0.5 s, k = 0..9): 10 frames.
    video = tmp_path / "ntsc.mp4"
    write_scene(video, 240, 29.97, "mp4v")
    frames, times = decoded(video)
    picks = [int(np.argmax(times >= k * 0.5 - 1e-6)) for k in range(10)]
    ref = numpy_reference(frames[picks])
    out = tmp_path / "out"
    args = ["timex", str(video), "--out", str(out), "--start", START, "--seconds", "5"]
    assert main([*args, "--sample-hz", "2", "--format", "png"]) == 0
    got = products(out, "png")
    for name, expected in ref.items():
        assert np.abs(got[name] - expected).max() <= 1.0, name
    # Default JPEG (quality 95) products: close to numpy on average, not exact.
    jpg = tmp_path / "jpg"
    assert main(["timex", str(video), "--out", str(jpg), "--start", START, "--seconds", "5",
                 "--sample-hz", "2"]) == 0  # fmt: skip
    assert np.abs(products(jpg, "jpg")["timex"] - ref["timex"]).mean() < 1.5


def test_truncated_video_keeps_its_frames_and_is_flagged(tmp_path, capsys):
    video = tmp_path / "full.avi"
    write_scene(video, 250, 25.0, "MJPG")  # 10 s
    data = video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "out"
    assert main(["timex", str(cut), "--out", str(out), "--start", START]) == 0
    side = json.loads((out / f"{EPOCH}.local.c1.json").read_text())
    # The header announces 10 s (10 frames at 1 Hz); about 6 s survive.
    assert side["expected_frames"] == 10
    assert 5 <= side["frame_count"] <= 6
    assert {"input_truncated", "too_few_frames"} <= set(side["flags"])
    assert (out / f"{EPOCH}.local.c1.timex.jpg").is_file()
    assert "flags: input_truncated" in capsys.readouterr().out


def test_bad_inputs_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video at all" * 100)
    calib = tmp_path / "io.json"
    fields = (0, 0, 100.0, 100.0, 1, 0, 0, 0, 0)
    keys = ("c0U", "c0V", "fx", "fy", "d1", "d2", "d3", "t1", "t2")
    calib.write_text(json.dumps({"NU": 2448, "NV": 2048, **dict(zip(keys, fields, strict=True))}))
    video = tmp_path / "small.avi"
    write_scene(video, 10, 25.0, "MJPG")
    cases = [
        ([str(tmp_path / "nope.avi")], "video file not found"),
        ([str(junk)], "cannot open the video"),
        ([str(video), "--intrinsics", str(calib)], "frame size 128x96 .* 2448x2048"),
    ]
    for extra, message in cases:
        run = subprocess.run(
            [sys.executable, "-m", "edge", "timex", *extra, "--out", str(tmp_path / "o")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 2, run.stderr
        # Exactly one line on stderr: no OpenCV "[ WARN ]" before it, no traceback.
        errors = run.stderr.strip().splitlines()
        assert len(errors) == 1 and errors[0].startswith("geoedge timex: error:"), errors
        assert re.search(message, errors[0]), errors[0]
