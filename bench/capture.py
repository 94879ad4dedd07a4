"""Camera decode cost per decoding mode, as a ratio to a plain OpenCV read of every frame.

Writes a 2448 x 2048, 15 fps H.264 video (PyAV, libx264, one I-frame per second = the 1 Hz
sample interval; a moving swash band over a gradient with sensor noise), then runs, in the
same process and interleaved over ``--repeat`` rounds:

- ``cv2 read()``: ``cv2.VideoCapture.read()`` of every frame (the reference);
- GeoEdge's capture + sampler (1 Hz) + TimeX accumulation for ``decode = "all"``,
  ``"sampled"`` (the default) and ``"keyframes"`` (PyAV; skipped when not installed), with a
  station camera's default decoder threads (``decode_threads = 1``; the plain read keeps
  OpenCV's default, one per core).

For each it prints the CPU seconds (process CPU time, every decoder thread included) per
minute of video, the cameras of that kind one core sustains (60 / that), and the ratio to
the plain read. The collection's one-off product writing is not included.

    python3 bench/capture.py [--seconds 12] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.beach.capture import Capture
from edge.beach.products import ProductAccumulator
from edge.beach.sampler import Sampler
from edge.config.cameras import DECODE_THREADS, DecodeMode

WIDTH, HEIGHT, FPS = 2448, 2048, 15
SAMPLE_HZ = 1.0
SAMPLED, KEYFRAMES = 'geoedge decode="sampled"', 'geoedge decode="keyframes"'


def write_video(path: Path, seconds: float) -> None:
    """The bench video: H.264 High profile (libx264 veryfast) at 8 Mbit/s, as a 5 MP IP
    camera streams it, GOP = FPS frames (one I-frame per second)."""
    import av

    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 1.0, WIDTH, dtype=np.float32)
    y = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None]
    base = 60 + 120 * x[None, :] + 30 * y
    noise = [rng.normal(0.0, 3.0, (HEIGHT, WIDTH)).astype(np.float32) for _ in range(5)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = 8_000_000
        stream.codec_context.gop_size = FPS
        stream.options = {"preset": "veryfast", "sc_threshold": "0"}
        for i in range(round(seconds * FPS)):
            grey = base + noise[i % len(noise)]
            front = int(WIDTH * (0.5 + 0.1 * np.sin(i / 10.0)))
            grey[:, front : front + 200] += 60
            grey = np.clip(grey, 0, 255)
            image = np.dstack([grey, grey * 0.95, grey * 0.85]).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def plain_read(video: Path) -> int:
    cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    frames = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        frames += 1
    cap.release()
    return frames


def geoedge(video: Path, decode: DecodeMode) -> int:
    """Capture + 1 Hz sampler + TimeX accumulation, as ``collect_window`` runs them (with a
    camera's default decoder threads)."""
    sampler = Sampler(SAMPLE_HZ, 0.0)
    acc = ProductAccumulator()
    with Capture(
        str(video),
        start_time=0.0,
        decode=decode,
        sample_hz=SAMPLE_HZ,
        decode_threads=DECODE_THREADS,
    ) as cap:
        while (frame := cap.read(10.0)) is not None:
            if sampler.take(frame.time):
                acc.add(frame.image)
    return acc.count


def cpu_seconds(run: Callable[[], int]) -> tuple[float, int]:
    t0 = time.process_time()
    frames = run()
    return time.process_time() - t0, frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="video length, s")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median)")
    args = parser.parse_args(argv)
    try:
        import av  # noqa: F401
    except ImportError:
        print("bench/capture.py: PyAV is not installed (pip install 'geoedge[keyframes]'); "
              "it writes the bench video and runs the keyframes mode", file=sys.stderr)  # fmt: skip
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "bench.mp4"
        t0 = time.perf_counter()
        write_video(video, args.seconds)
        size_mb = video.stat().st_size / 1e6
        print(f"video: {WIDTH}x{HEIGHT} H.264 {FPS} fps, GOP {FPS} frames (1 s), "
              f"{args.seconds:g} s, {size_mb:.1f} MB (written in "
              f"{time.perf_counter() - t0:.1f} s); sampling at {SAMPLE_HZ:g} Hz")  # fmt: skip
        runs: dict[str, Callable[[], int]] = {
            "cv2 read() every frame": lambda: plain_read(video),
            'geoedge decode="all"': lambda: geoedge(video, "all"),
            SAMPLED: lambda: geoedge(video, "sampled"),
            KEYFRAMES: lambda: geoedge(video, "keyframes"),
        }
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        frames: dict[str, int] = {}
        for _ in range(args.repeat):
            for name, run in runs.items():
                seconds, frames[name] = cpu_seconds(run)
                cpu[name].append(seconds)
    per_minute = {name: statistics.median(v) * 60.0 / args.seconds for name, v in cpu.items()}
    reference = per_minute["cv2 read() every frame"]
    print(f"median of {args.repeat} interleaved rounds; CPU-s per minute of video, "
          "cameras per core, ratio to the plain read:")  # fmt: skip
    for name, value in per_minute.items():
        print(f"  {name:28s} {value:6.2f} CPU-s/min  {60.0 / value:5.1f} cameras/core  "
              f"{value / reference:5.2f}x  ({frames[name]} frames used)")  # fmt: skip
    default, keyframes = per_minute[SAMPLED], per_minute[KEYFRAMES]
    print(f'keyframes vs the default "sampled": {default / keyframes:.1f}x fewer CPU-s')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
