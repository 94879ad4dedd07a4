"""`geoedge timex VIDEO --out DIR`: image products from a video file or stream.

Samples the source at ``--sample-hz`` by frame timestamps over one window and
writes TimeX (mean), variance (standard deviation), bright (max), dark (min) and
snap (first frame) with Argus-style names plus a JSON sidecar, after the
brightness and contrast gates (and the movement gate with ``--reference``).
For a file, the window starts at ``--start`` (default: now) and covers the whole
file unless ``--seconds`` is given; the file's frame timestamps are taken
relative to it. For a stream, the window is the next ``--seconds`` (default 600).
"""

from __future__ import annotations

import argparse
import math
import time
from functools import partial
from pathlib import Path

import cv2

from edge.beach.capture import Capture
from edge.beach.geometry.camera import Intrinsics
from edge.beach.site import collect_window
from edge.commands.arguments import utc_time
from edge.config.cameras import source_kind
from edge.config.collection import CollectionSection
from edge.config.quality import QualitySection
from edge.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "timex",
        help="image products (timex, variance, bright, dark, snap) from a video",
        description=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("video", help="video file, rtsp:// or http:// URL, device index")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--seconds", type=_positive, help="window length, s (default: whole file / 600 s)"
    )
    parser.add_argument("--sample-hz", type=_positive, default=1.0, help="default 1")
    parser.add_argument("--station", default="local", help="station id for file names")
    parser.add_argument("--camera", default="c1", help="camera name for file names")
    parser.add_argument(
        "--start",
        type=partial(utc_time, naive_is_utc=True),
        help="window start, UTC ISO 8601 (default: now)",
    )
    parser.add_argument("--format", choices=("jpg", "png"), default="jpg", help="image format")
    parser.add_argument("--intrinsics", type=Path, help="CoastCam JSON: check NU x NV")
    parser.add_argument("--reference", type=Path, help="reference image for the movement gate")
    parser.add_argument(
        "--decode",
        choices=("sampled", "keyframes", "all"),
        default="sampled",
        help="convert only the sampled frames (default), decode key frames only (PyAV), "
        "or convert every frame",
    )
    parser.set_defaults(handler=_handle)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _file_span(path: str) -> tuple[float, int] | None:
    """(duration s, frame count) from a video file's header, or None if it has none."""
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [])
    try:
        if not cap.isOpened():
            raise InputError(
                f"{path}: cannot open the video (not a video file, truncated header, "
                "or a codec this OpenCV lacks)"
            )
        frames, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    if frames <= 0 or fps <= 0:
        return None
    return frames / fps, int(frames)


def _handle(args: argparse.Namespace) -> int:
    kind = source_kind(args.video)
    start = float(math.floor(time.time() if args.start is None else args.start))
    seconds, expected = args.seconds, None
    if kind == "file" and not Path(args.video).is_file():
        raise InputError(f"{args.video}: video file not found")
    if kind == "file" and seconds is None:
        span = _file_span(args.video)
        if span is None:
            raise InputError(
                f"{args.video}: cannot read the duration from the file header; give --seconds"
            )
        seconds, frames = span
        # Frames exist from t = 0 to the last frame at (frames - 1) / fps.
        last = seconds * (frames - 1) / frames
        expected = math.floor(last * args.sample_hz + 1e-9) + 1
    seconds = 600.0 if seconds is None else seconds
    collection = CollectionSection(
        interval_min=max(1, math.ceil(seconds / 60.0)),
        duration_min=seconds / 60.0,
        sample_hz=args.sample_hz,
        output_dir=args.out,
        image_format=args.format,
    )
    reference = None
    if args.reference is not None:
        reference = cv2.imread(str(args.reference), cv2.IMREAD_COLOR)
        if reference is None:
            raise InputError(f"{args.reference}: not a readable image")
    size = None
    if args.intrinsics is not None:
        intr = Intrinsics.from_json(args.intrinsics)
        size = (intr.NU, intr.NV)
    with Capture(
        args.video,
        name=args.camera,
        expected_size=size,
        size_origin=f"NU x NV in {args.intrinsics}",
        start_time=start,
        decode=args.decode,
        sample_hz=args.sample_hz,
    ) as capture:
        result, _ = collect_window(
            capture,
            station=args.station,
            camera=args.camera,
            window=(start, start + seconds),
            collection=collection,
            gates=QualitySection(),
            reference=reference,
            expected=expected,
        )
    if result.error is not None:
        raise InputError(result.error)
    if result.sidecar is None:  # without a disk guard the sidecar is always written
        raise InputError(f"{args.out}: the products were not written")
    if result.frame_count == 0:
        raise InputError(f"{args.video}: no frames in the window; wrote {result.sidecar}")
    flags = ", ".join(result.flags) or "none"
    print(
        f"{result.frame_count}/{result.expected_frames} frames -> "
        f"{args.out}/{result.epoch}.{args.station}.{args.camera}.*.{args.format} "
        f"(sidecar {result.sidecar.name}); flags: {flags}"
    )
    return 0
