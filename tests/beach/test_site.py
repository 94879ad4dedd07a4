"""The beach station site on real video files and a real HTTP MJPEG camera.

``collection.align = "immediate"`` runs back-to-back windows along a video file's
own timeline, so these tests need no wall-clock wait.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from edge.beach.site import BeachStation
from edge.config import load_config
from tests.helpers import mjpeg

W, H = 96, 64


class Stages:
    """The later stages as the site sees them (edge.beach.site.Analyse), doing ``fn``."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, collections):
        return self.fn(collections)

    def stats(self) -> dict:
        return {}


def write_video(path: Path, seconds: float, fps: float, seed: int) -> np.ndarray:
    """A fixed scene (a dune-to-sea gradient with a bright bar) under per-frame noise;
    returns what OpenCV decodes back, one per frame."""
    rng = np.random.default_rng(seed)
    scene = np.tile(np.linspace(40, 200, W), (H, 1))
    scene[20:30, 30:60] = 240
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    for _ in range(round(seconds * fps)):
        noisy = scene[..., None] + rng.normal(0, 15, (H, W, 3))
        writer.write(np.clip(noisy, 0, 255).astype(np.uint8))
    writer.release()
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    return np.stack(frames)


def write_config(tmp_path: Path, cameras: dict[str, tuple[str, int, int]], **collection) -> Path:
    """Station TOML with one camera per entry: name -> (source, NU, NV)."""
    lines = ['[station]\nid = "test-beach"\ncrs = "EPSG:26919"\n']
    for name, (source, nu, nv) in cameras.items():
        io = {"NU": nu, "NV": nv, "c0U": nu / 2, "c0V": nv / 2, "fx": 100.0, "fy": 100.0}
        io |= {"d1": 0, "d2": 0, "d3": 0, "t1": 0, "t2": 0}
        (tmp_path / f"{name}_IO.json").write_text(json.dumps(io))
        eo = {"x": 0.0, "y": 0.0, "z": 10.0, "a": 0.0, "t": 1.2, "r": 0.0}
        (tmp_path / f"{name}_EO.json").write_text(json.dumps(eo))
        lines.append(
            f'[[cameras]]\nname = "{name}"\nsource = "{source}"\n'
            f'intrinsics = "{name}_IO.json"\nextrinsics = "{name}_EO.json"\n'
        )
    settings = {"align": "immediate", "output_dir": "products", "image_format": "png"}
    settings |= collection
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
    lines.append(f"[collection]\n{body}\n")
    lines.append("[quality]\nmin_contrast = 5.0\n")
    path = tmp_path / "beach.toml"
    path.write_text("\n".join(lines))
    return path


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict]] = []

    def __call__(self, kind: str, message: dict) -> None:
        json.dumps(message)  # what the outbox will do: must be JSON
        self.messages.append((kind, message))

    def of(self, kind: str) -> list[dict]:
        return [m for k, m in self.messages if k == kind]


def test_two_cameras_back_to_back_windows_from_video_files(tmp_path):
    # Two 10 fps videos of 15 s, 6-s windows at 2 Hz: windows [0,6), [6,12), [12,18)
    # hold 12, 12 and 6 samples (the last is flagged too_few_frames: 6 < 0.8 * 12).
    # Each TimeX is the mean of the frames at t = 0, 0.5, 1.0, ... s of its window,
    # i.e. every 5th frame, exactly as numpy computes it (PNG is lossless).
    f1 = write_video(tmp_path / "c1.avi", 15, 10.0, seed=1)
    f2 = write_video(tmp_path / "c2.avi", 15, 10.0, seed=2)
    cfg = load_config(
        write_config(
            tmp_path,
            {"c1": ("c1.avi", W, H), "c2": ("c2.avi", W, H)},
            duration_min=0.1,
            interval_min=1,
            sample_hz=2.0,
        )
    )
    seen: list[list] = []

    def analyse(collections):
        seen.append(collections)
        c1 = collections[0]
        return [("waterline", {"schema": "geoedge.waterline/1", "camera": c1.camera})]

    emit = Recorder()
    station = BeachStation(cfg, emit, analyse=Stages(analyse))
    station.run(threading.Event())  # returns when both files have ended

    products = emit.of("products")
    assert [m["frame_count"] for m in products] == [24, 24, 12]
    assert len(emit.of("waterline")) == 3  # analyse output emitted after each products
    assert [k for k, _ in emit.messages] == ["products", "waterline"] * 3
    first, last = products[0], products[-1]
    assert first["schema"] == "geoedge.products/1" and first["station"] == "test-beach"
    assert first["time"] == first["window"]["start"]
    assert last["flags"] == ["too_few_frames"]
    cams = {c["camera"]: c for c in first["cameras"]}
    assert cams["c1"]["frame_count"] == 12 and cams["c1"]["expected_frames"] == 12
    assert cams["c1"]["flags"] == []
    epoch = cams["c1"]["epoch"]
    assert cams["c1"]["products"]["timex"] == f"{epoch}.test-beach.c1.timex.png"
    out = tmp_path / "products"
    for k, frames in enumerate((f1, f2)):
        name = f"c{k + 1}"
        for w, col in enumerate(c for cs in seen for c in cs if c.camera == name):
            window = frames[w * 60 : (w + 1) * 60 : 5]
            expected = np.rint(window.astype(np.float64).mean(0)).astype(np.uint8)
            assert col.frame_count == len(window)
            np.testing.assert_array_equal(col.timex, expected)
            np.testing.assert_array_equal(cv2.imread(str(col.paths["timex"])), expected)
            assert col.paths["timex"].parent == out and col.sidecar.is_file()
            assert col.start == seen[0][0].start + 6 * w
    stats = station.stats()
    assert stats["frames_read"] == 300 and stats["collections"] == 3
    assert stats["last_collection"] == last["window"]["start"]
    # The first good TimeX became each camera's movement reference, saved beside the products.
    assert (out / "reference.test-beach.c1.png").is_file()
    assert seen[1][0].quality["shift_px"] is not None


def test_wrong_frame_size_fails_one_camera_and_analyse_errors_do_not_stop_products(
    tmp_path, caplog
):
    # c2's calibration says 2448x2048 but its video is 96x64: c2's collection carries
    # the one-line error and no frames; c1 still delivers; the analyse hook raising is
    # one log line and the products message is out anyway.
    caplog.set_level(logging.INFO, logger="edge.beach.site")
    write_video(tmp_path / "c1.avi", 3, 10.0, seed=1)
    write_video(tmp_path / "c2.avi", 3, 10.0, seed=2)
    cfg = load_config(
        write_config(
            tmp_path,
            {"c1": ("c1.avi", W, H), "c2": ("c2.avi", 2448, 2048)},
            duration_min=0.05,
            interval_min=1,
        )
    )

    def analyse(collections):
        raise RuntimeError("segmentation model missing")

    emit = Recorder()
    BeachStation(cfg, emit, analyse=Stages(analyse)).run(threading.Event())
    (message,) = emit.of("products")
    cams = {c["camera"]: c for c in message["cameras"]}
    assert cams["c1"]["frame_count"] == 3 and cams["c1"]["flags"] == []
    assert cams["c2"]["frame_count"] == 0
    assert "no_frames" in cams["c2"]["flags"]
    assert "frame size 96x64" in cams["c2"]["error"] and "2448x2048" in cams["c2"]["error"]
    assert any("segmentation model missing" in r.getMessage() for r in caplog.records)
    per_collection = [r for r in caplog.records if r.getMessage().startswith("collection ")]
    assert len(per_collection) == 1


def mjpeg_camera(stop: threading.Event) -> tuple[str, threading.Thread]:
    """A live HTTP MJPEG camera at 20 fps until ``stop``."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.settimeout(0.2)

    def serve() -> None:
        conns = []
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conns.append(conn)
            conn.recv(4096)
            conn.sendall(mjpeg.RESPONSE)
            try:
                while not stop.is_set():
                    jpg = cv2.imencode(".jpg", np.full((H, W, 3), 128, np.uint8))[1].tobytes()
                    conn.sendall(mjpeg.part(jpg))
                    time.sleep(0.05)
            except OSError:
                pass
        for conn in conns:
            conn.close()
        sock.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}/cam", thread


def test_stop_mid_collection_checkpoints_the_frames_so_far(tmp_path):
    # A 60-s window on a live camera, stopped a few seconds in (SIGTERM in the daemon):
    # the collection is finished with the samples so far, flagged interrupted and
    # too_few_frames, written, and emitted; run() returns promptly.
    camera_stop = threading.Event()
    url, server = mjpeg_camera(camera_stop)
    try:
        cfg = load_config(
            write_config(tmp_path, {"c1": (url, W, H)}, duration_min=1.0, interval_min=1)
        )
        emit = Recorder()
        station = BeachStation(cfg, emit)
        stop = threading.Event()
        runner = threading.Thread(target=station.run, args=(stop,))
        runner.start()
        deadline = time.monotonic() + 30
        while station.stats()["frames_read"] < 20 and time.monotonic() < deadline:
            time.sleep(0.1)  # 20 frames read (~1 s at 20 fps; longer on a loaded machine)
        time.sleep(1.5)
        stop.set()
        runner.join(timeout=10)
        assert not runner.is_alive()
    finally:
        camera_stop.set()
        server.join(timeout=5)
    (message,) = emit.of("products")
    (cam,) = message["cameras"]
    assert 1 <= cam["frame_count"] < 60 and cam["expected_frames"] == 60
    assert {"interrupted", "too_few_frames"} <= set(cam["flags"])
    assert (tmp_path / "products" / cam["products"]["timex"]).is_file()
    assert station.stats()["frames_read"] >= 20  # every frame decoded, not only samples
