"""Camera capture on real video written by OpenCV and a real HTTP MJPEG stream.

The stream server is a plain socket thread speaking HTTP ``multipart/x-mixed-replace``
(what IP cameras serve); OpenCV's FFmpeg backend reads it like any camera URL.
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
import pytest

from edge.beach.capture import Capture
from edge.config.cameras import CameraSection
from edge.config.secrets import redact
from edge.errors import InputError
from tests.helpers import mjpeg


def write_video(path: Path, frames: int, fps: float, size=(96, 64), fourcc="MJPG") -> Path:
    """Frames whose grey level encodes the frame number (5 levels per frame, mod 250)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (i * 5) % 250, np.uint8))
    writer.release()
    return path


def read_all(capture: Capture, timeout_s: float = 5.0) -> list:
    frames = []
    while (frame := capture.read(timeout_s)) is not None:
        frames.append(frame)
    return frames


def test_file_timestamps_follow_the_files_timeline(tmp_path):
    # 50 frames at 25 fps: frame i is stamped start + i / 25 s, exactly (PTS in ms).
    video = write_video(tmp_path / "a.avi", 50, 25.0)
    with Capture(str(video), start_time=1_000.0) as cap:
        frames = read_all(cap)
        assert cap.ended and not cap.stats.truncated
    assert len(frames) == 50
    times = np.array([f.time for f in frames])
    np.testing.assert_allclose(times, 1_000.0 + np.arange(50) / 25.0, atol=1e-6)
    assert [f.index for f in frames] == list(range(50))
    assert cap.stats.frames_read == 50 and cap.stats.reconnects == 0


def test_ntsc_rate_mp4_timestamps(tmp_path):
    # 29.97 fps (30000/1001): frame 30 sits at 1.001 s, not 1.000 s.
    video = write_video(tmp_path / "b.mp4", 31, 29.97, fourcc="mp4v")
    with Capture(str(video), start_time=0.0) as cap:
        frames = read_all(cap)
    assert len(frames) == 31
    assert frames[30].time == pytest.approx(30 / 29.97, abs=1e-3)


def test_truncated_file_keeps_the_frames_before_the_cut(tmp_path):
    # Noise frames make every JPEG packet large, so cutting the file in half cuts frames.
    video = tmp_path / "full.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(100):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    data = video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with Capture(str(cut), start_time=0.0) as cap:
        frames = read_all(cap)
        assert cap.ended
        assert cap.stats.truncated
    # About half of the 100 frames survive (each packet ~15 kB); none is lost before the cut.
    assert 40 <= len(frames) <= 55
    np.testing.assert_allclose([f.time for f in frames], np.arange(len(frames)) / 25.0)


def test_unreadable_file_is_one_input_error(tmp_path):
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    with Capture(str(junk)) as cap, pytest.raises(InputError, match="cannot open the video"):
        cap.read(5.0)
    assert cap.ended
    with pytest.raises(InputError, match="video file not found"):
        Capture(str(tmp_path / "missing.avi"))


def test_frame_size_must_match_the_calibration(tmp_path):
    video = write_video(tmp_path / "a.avi", 5, 25.0, size=(96, 64))
    with (
        Capture(str(video), name="c1", expected_size=(2448, 2048)) as cap,
        pytest.raises(InputError, match=r"c1: frame size 96x64 .* calibration 2448x2048"),
    ):
        cap.read(5.0)


def test_gstreamer_pipeline_without_gstreamer_backend_says_so():
    if cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
        pytest.skip("this OpenCV has GStreamer; the missing-backend message does not apply")
    with pytest.raises(InputError, match="no GStreamer backend"):
        Capture("videotestsrc ! videoconvert ! appsink")


class MjpegServer:
    """HTTP MJPEG camera: each connection gets ``burst`` frames 40 ms apart, then
    silence for ``silence_s`` (a hung camera) before the server drops it."""

    def __init__(self, burst: int, silence_s: float, size=(64, 48)) -> None:
        self.burst, self.silence_s, self.size = burst, silence_s, size
        self.connections = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._closing = threading.Event()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/stream"

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._stream, args=(conn,), daemon=True).start()

    def _stream(self, conn: socket.socket) -> None:
        try:
            conn.recv(4096)
            conn.sendall(mjpeg.RESPONSE)
            for i in range(self.burst):
                image = np.full((self.size[1], self.size[0], 3), i % 250, np.uint8)
                jpg = cv2.imencode(".jpg", image)[1].tobytes()
                conn.sendall(mjpeg.part(jpg))
                time.sleep(0.04)
            self._closing.wait(self.silence_s)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._closing.set()
        self._sock.close()
        for conn in self._open:
            conn.close()


def read_for(capture: Capture, seconds: float) -> list:
    frames, until = [], time.monotonic() + seconds
    while time.monotonic() < until:
        if (frame := capture.read(0.2)) is not None:
            frames.append(frame)
    return frames


def test_stream_that_goes_silent_hits_the_read_timeout_and_reconnects():
    # The camera sends 8 frames then hangs for 30 s per connection. With a 0.5 s read
    # timeout given at creation, OpenCV gives up on the silent stream and the capture
    # reconnects (0.2 s back-off): within 4 s we see at least 3 connections and all
    # their frames, stamped by the wall clock. (A read timeout set after creation is
    # ignored: the read would block and only one connection would be seen.)
    server = MjpegServer(burst=8, silence_s=30.0)
    try:
        t0 = time.time()
        cap = Capture(
            server.url,
            read_timeout_s=0.5,
            open_timeout_s=2.0,
            stall_timeout_s=60.0,
            reconnect_min_s=0.2,
            reconnect_max_s=0.4,
        )
        with cap:
            frames = read_for(cap, 4.0)
        assert server.connections >= 3
        assert cap.stats.reconnects >= 2 and cap.stats.stalls == 0
        assert len(frames) >= 8 * 2
        assert all(t0 <= f.time <= time.time() for f in frames)
    finally:
        server.close()


def test_watchdog_recreates_a_capture_stuck_in_opencv():
    # Same hung camera, but the read timeout (30 s) is longer than the stall timeout
    # (1 s): the watchdog thread must notice the capture stuck inside grab() and start
    # a fresh one. Within 4.5 s: at least 2 stalls, frames from at least 2 connections.
    server = MjpegServer(burst=5, silence_s=30.0)
    try:
        cap = Capture(server.url, read_timeout_s=30.0, open_timeout_s=2.0, stall_timeout_s=1.0)
        with cap:
            frames = read_for(cap, 4.5)
        assert cap.stats.stalls >= 2
        assert server.connections >= 2
        assert len(frames) >= 10
    finally:
        server.close()


def test_open_timeout_is_honoured_on_a_server_that_never_answers():
    # A TCP server that accepts and never replies (hung RTSP server). With a 0.5 s open
    # timeout the capture gives up and retries; 3 s see at least 3 connection attempts
    # (OpenCV's default would block ~30 s on the first).
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        url = f"rtsp://127.0.0.1:{sock.getsockname()[1]}/stream1"
        cap = Capture(url, open_timeout_s=0.5, read_timeout_s=0.5, reconnect_min_s=0.1)
        with cap:
            assert read_for(cap, 3.0) == []
        assert len(accepted) >= 3
        assert cap.stats.reconnects >= 2
    finally:
        sock.close()
        for conn in accepted:
            conn.close()


def test_a_camera_password_never_reaches_the_log(tmp_path, caplog):
    """The password of an RTSP camera (in the URL, or in a password file) is replaced by ***
    in every log line, through connection failures and reconnects (a hung server: the capture
    times out and retries, logging each time)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    (tmp_path / "cam.pw").write_text("s3cr3t-pw\n")
    (tmp_path / "cam.pw").chmod(0o600)
    io = {"NU": 64, "NV": 48, "c0U": 32, "c0V": 24, "fx": 50, "fy": 50}
    io |= {"d1": 0, "d2": 0, "d3": 0, "t1": 0, "t2": 0}
    (tmp_path / "io.json").write_text(json.dumps(io))
    (tmp_path / "eo.json").write_text('{"x":0,"y":0,"z":10,"a":0,"t":1.2,"r":0}')
    section = CameraSection.model_validate(
        {
            "name": "c1",
            "source": f"rtsp://admin@127.0.0.1:{port}/stream1",
            "password_file": "cam.pw",
            "intrinsics": "io.json",
            "extrinsics": "eo.json",
            "open_timeout_s": 0.5,
            "read_timeout_s": 0.5,
            "reconnect_min_s": 0.1,
        },
        context={"base_dir": tmp_path},
    )
    try:
        with caplog.at_level(logging.DEBUG):
            with Capture.from_camera(section, sample_hz=1.0) as cap:
                assert cap.source == f"rtsp://admin:s3cr3t-pw@127.0.0.1:{port}/stream1"
                read_for(cap, 1.5)
            inline = Capture(f"rtsp://admin:hunter2@127.0.0.1:{port}/x", open_timeout_s=0.5)
            with inline:
                read_for(inline, 1.0)
        assert "reconnecting" in caplog.text
        assert "admin:***@127.0.0.1" in caplog.text
        assert "s3cr3t-pw" not in caplog.text and "hunter2" not in caplog.text
    finally:
        sock.close()


def test_redact_hides_every_password_in_urls_and_pipelines():
    assert redact("rtsp://u:p@h/s") == "rtsp://u:***@h/s"
    assert redact("rtspsrc location=rtsp://u:p%40ss@h:554/s ! fakesink") == (
        "rtspsrc location=rtsp://u:***@h:554/s ! fakesink"
    )
    assert redact("rtsp://h/s") == "rtsp://h/s" and redact("/data/c1.mp4") == "/data/c1.mp4"
