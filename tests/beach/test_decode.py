"""Decoding only what is sampled: ``decode = "sampled"`` and ``"keyframes"`` against ``"all"``
on real H.264 videos written with PyAV (libx264, the GOP set per video).

Frames differ from each other, so pixel equality tells which frame was kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edge.beach.capture import Capture, check_decoding
from edge.beach.site import collect_window
from edge.config.cameras import CameraSection, DecodeMode
from edge.config.collection import CollectionSection
from edge.config.quality import QualitySection
from edge.errors import ConfigError

START = 1_581_508_800.0
SIZE = (160, 96)


def write_h264(path: Path, frames: int, fps: int, gop: int) -> Path:
    """An H.264 video with an I-frame every ``gop`` frames (no B-frames, no scene-cut
    I-frames): frame i is a noisy gradient whose grey level rises with ``i % 40``."""
    rng = np.random.default_rng(3)
    w, h = SIZE
    base = np.tile(np.linspace(0, 40, w), (h, 1))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"bf": "0", "sc_threshold": "0", "keyint_min": str(gop)}
        for i in range(frames):
            grey = base + 8 + 4 * (i % 40) + rng.normal(0, 3, base.shape)
            image = np.clip(np.dstack([grey, grey * 0.9, grey * 0.8]), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def keyframe_times(path: Path) -> list[float]:
    """Presentation times (s) of the video's key frames, from its packets."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        return [
            float(p.pts * stream.time_base)
            for p in container.demux(stream)
            if p.size and p.is_keyframe and p.pts is not None
        ]


def delivered(
    video: Path, decode: DecodeMode, sample_hz: float, threads: int = 0
) -> dict[float, np.ndarray]:
    """The frames a capture delivers, by time relative to the start (s, to the ms), decoded
    with ``threads`` decoder threads (0: the decoder's choice)."""
    with Capture(
        str(video), start_time=START, decode=decode, sample_hz=sample_hz, decode_threads=threads
    ) as cap:
        return {round(f.time - START, 3): f.image for f in iter(lambda: cap.read(5.0), None)}


def collect(video: Path, decode: DecodeMode, out: Path, seconds: float) -> dict:
    """One collection at 1 Hz through the station's own loop; the sidecar and product pixels."""
    collection = CollectionSection(
        interval_min=1, duration_min=seconds / 60, output_dir=out, image_format="png"
    )
    with Capture(str(video), start_time=START, decode=decode, sample_hz=1.0) as cap:
        result, _ = collect_window(
            cap,
            station="s",
            camera="c1",
            window=(START, START + seconds),
            collection=collection,
            gates=QualitySection(),
        )
    assert result.sidecar is not None
    images = {name: cv2.imread(str(path)) for name, path in result.paths.items()}
    return {"sidecar": json.loads(result.sidecar.read_text()), "images": images}


def assert_same_products(a: dict, b: dict) -> None:
    assert (
        a["images"].keys() == b["images"].keys() == {"timex", "variance", "bright", "dark", "snap"}
    )
    for name in a["images"]:
        np.testing.assert_array_equal(a["images"][name], b["images"][name], err_msg=name)
    same = ("frame_count", "first_frame", "last_frame", "flags", "quality")
    assert {k: a["sidecar"][k] for k in same} == {k: b["sidecar"][k] for k in same}


def test_sampled_mode_makes_the_same_products_as_decoding_every_frame(tmp_path):
    # 12 s at 15 fps, GOP 2 s, sampled at 1 Hz: "sampled" converts 12 of 180 frames, and they
    # are the ones "all" keeps (first frame of each 1 s slot), so every product is identical.
    video = write_h264(tmp_path / "v.mp4", 180, 15, gop=30)
    every = collect(video, "all", tmp_path / "all", 12.0)
    sampled = collect(video, "sampled", tmp_path / "sampled", 12.0)
    assert every["sidecar"]["frame_count"] == 12
    assert_same_products(every, sampled)
    assert (every["sidecar"]["decode"], sampled["sidecar"]["decode"]) == ("all", "sampled")


def test_keyframes_mode_with_the_gop_equal_to_the_sample_interval_changes_no_product(tmp_path):
    # GOP 15 frames at 15 fps = one I-frame per second = the 1 Hz sample interval: the frames
    # kept are the same, decoded by PyAV instead of OpenCV (same FFmpeg decoder and conversion).
    video = write_h264(tmp_path / "v.mp4", 150, 15, gop=15)
    every = collect(video, "all", tmp_path / "all", 10.0)
    keyframes = collect(video, "keyframes", tmp_path / "kf", 10.0)
    assert keyframes["sidecar"]["frame_count"] == 10
    assert keyframes["sidecar"]["decode"] == "keyframes"
    assert_same_products(every, keyframes)


def test_keyframes_mode_keeps_only_key_frames(tmp_path):
    # GOP 7 at 10 fps: I-frames at 0, 0.7, 1.4, 2.1 ... s. At 1 Hz the first key frame of
    # each 1 s slot is kept (0, 1.4, 2.1, 3.5, 4.2 ...): every delivered frame is a key frame,
    # the first of its slot, with the pixels OpenCV decodes for that frame.
    video = write_h264(tmp_path / "v.mp4", 100, 10, gop=7)
    keys = keyframe_times(video)
    assert keys[:4] == pytest.approx([0.0, 0.7, 1.4, 2.1])
    first_key_per_slot = sorted({min(k for k in keys if int(k) == int(t)) for t in keys})
    kept = delivered(video, "keyframes", 1.0)
    assert list(kept) == pytest.approx(first_key_per_slot)
    every = delivered(video, "all", 1.0)
    for t, image in kept.items():
        np.testing.assert_array_equal(image, every[t], err_msg=f"frame at {t} s")


def test_sampled_capture_converts_only_the_sampled_frames(tmp_path):
    # The capture itself delivers one frame per slot; the others are read, not converted.
    video = write_h264(tmp_path / "v.mp4", 60, 15, gop=15)
    kept = delivered(video, "sampled", 2.0)
    # 4 s at 2 Hz: the first of the 15 fps frames at or after 0, 0.5, 1.0 ... s.
    assert list(kept) == pytest.approx(np.ceil(np.arange(8) * 7.5) / 15, abs=1e-3)
    every = delivered(video, "all", 2.0)
    assert len(every) == 60
    for t, image in kept.items():
        np.testing.assert_array_equal(image, every[t], err_msg=f"frame at {t} s")


@pytest.mark.parametrize("decode", ["sampled", "keyframes"])
def test_decoder_threads_change_no_pixel(tmp_path, decode):
    # A station decodes each camera in one thread (the fewest CPU-s per frame); H.264 decoding
    # is bit-exact, so one thread and three deliver the same frames with the same pixels.
    video = write_h264(tmp_path / "v.mp4", 45, 15, gop=15)
    one = delivered(video, decode, 1.0, threads=1)
    three = delivered(video, decode, 1.0, threads=3)
    assert list(one) == list(three) == pytest.approx([0.0, 1.0, 2.0])
    for t, image in one.items():
        np.testing.assert_array_equal(image, three[t], err_msg=f"frame at {t} s")


def test_a_station_camera_decodes_in_one_thread_unless_configured(tmp_path):
    video = write_h264(tmp_path / "v.mp4", 15, 15, gop=15)
    camera = _camera(tmp_path, str(video), "sampled")
    assert camera.decode_threads == 1
    with Capture.from_camera(camera, sample_hz=1.0, start_time=START) as cap:
        assert cap.decode_threads == 1
        assert cap.read(5.0) is not None
    auto = _camera(tmp_path, str(video), "sampled", decode_threads=0)
    with Capture.from_camera(auto, sample_hz=1.0, start_time=START) as cap:
        assert cap.decode_threads == 0
        assert cap.read(5.0) is not None
    with pytest.raises(ValueError, match="decode_threads"):
        _camera(tmp_path, str(video), "sampled", decode_threads=-1)


def _camera(tmp_path: Path, source: str, decode: str, **extra: object) -> CameraSection:
    intrinsics = {"NU": 160, "NV": 96, "c0U": 80, "c0V": 48, "fx": 100, "fy": 100}
    intrinsics |= dict.fromkeys(("d1", "d2", "d3", "t1", "t2"), 0)
    (tmp_path / "io.json").write_text(json.dumps(intrinsics))
    (tmp_path / "eo.json").write_text('{"x":0,"y":0,"z":10,"a":0,"t":1.2,"r":0}')
    return CameraSection.model_validate(
        {"name": "c1", "source": source, "intrinsics": "io.json", "extrinsics": "eo.json",
         "decode": decode, **extra},
        context={"base_dir": tmp_path},
    )  # fmt: skip


def test_a_gstreamer_source_without_gstreamer_is_refused_at_start_up_in_one_line(tmp_path):
    if cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
        pytest.skip("this OpenCV has GStreamer; the missing-backend refusal does not apply")
    camera = _camera(tmp_path, "rtspsrc location=rtsp://cam/1 ! nvv4l2decoder ! appsink", "sampled")
    with pytest.raises(ConfigError, match=r"^cameras\.c1\.source: .* no GStreamer backend"):
        check_decoding(camera)


def test_keyframes_needs_a_file_or_url_source(tmp_path):
    with pytest.raises(ValueError, match="nvv4l2decoder skip-frames=2"):
        _camera(tmp_path, "rtspsrc location=rtsp://cam/1 ! nvv4l2decoder ! appsink", "keyframes")
    with pytest.raises(ValueError, match="not a device source"):
        _camera(tmp_path, "0", "keyframes")
    check_decoding(_camera(tmp_path, "rtsp://192.0.2.10/stream1", "keyframes"))
