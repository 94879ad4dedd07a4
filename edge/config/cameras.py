"""``[[cameras]]``: one entry per camera of a beach station."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edge.config.base import ExistingFile, Section

#: What a camera ``source`` string names.
SourceKind = Literal["file", "url", "device", "gstreamer"]
#: What a capture decodes (see :mod:`edge.beach.capture`): every frame, every frame but only
#: the sampled ones converted to BGR, or key frames only (PyAV; files and URLs).
DecodeMode = Literal["all", "sampled", "keyframes"]

#: Decoder threads per camera a station uses unless ``decode_threads`` says otherwise.
DECODE_THREADS = 1

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def source_kind(source: str) -> SourceKind:
    """Classify a video source: a GStreamer pipeline contains ``!``, a URL has a scheme
    (``rtsp://``, ``http://``, ...), a V4L2 device is a bare index (``"0"``), anything
    else is a file path."""
    text = source.strip()
    if "!" in text:
        return "gstreamer"
    if _URL.match(text):
        return "url"
    if text.isdigit():
        return "device"
    return "file"


class CameraSection(Section):
    """One camera: its video source and its calibration.

    ``source`` is a file path (relative to the config file; it must exist), an
    ``rtsp://``/``http://`` URL, a V4L2 device index (``"0"``) or a GStreamer pipeline
    string (contains ``!``). Calibration uses the CIRN convention (see
    :mod:`edge.beach.geometry.camera`): ``intrinsics`` is a CoastCam JSON file whose ``NU x NV``
    must equal the frame size, and either ``extrinsics`` (x y z a t r, radians) or
    ``gcps`` (CSV of world x,y,z and pixel u,v) gives the pose. A password in ``source``
    works but is better in ``password_file``; either way it is never logged.

    Timeouts are in seconds. ``open_timeout_s`` and ``read_timeout_s`` are handed to
    OpenCV when the capture is created (FFmpeg sources: files and URLs); the
    watchdog recreates a capture that delivered no frame for ``stall_timeout_s``
    (all live sources, including V4L2 and GStreamer, which take no timeouts).

    ``decode`` chooses what is decoded: ``"sampled"`` (default) grabs every frame and converts
    only the ones ``collection.sample_hz`` keeps; ``"keyframes"`` decodes key frames only
    (PyAV; an ``rtsp://``/``http://`` URL or a file), for a camera whose GOP (I-frame
    interval) is set to the sample interval; ``"all"`` converts every frame. A GStreamer
    pipeline chooses its own decoding (``nvv4l2decoder skip-frames=2``: key frames only).
    ``decode_threads`` is the FFmpeg decoder's thread count (one per camera by default: the
    least CPU per frame; cameras run in parallel).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    source: str = Field(min_length=1)
    #: The camera's password, kept out of the config and the logs: a file readable only by the
    #: station (0600/0640); ``source`` then names the user without a password
    #: (``rtsp://user@192.0.2.10/stream1``).
    password_file: ExistingFile | None = None
    intrinsics: ExistingFile
    extrinsics: ExistingFile | None = None
    gcps: ExistingFile | None = None
    #: Seconds allowed to open the stream (passed to OpenCV when the capture is created).
    open_timeout_s: float = Field(default=10.0, gt=0)
    #: Seconds allowed for one frame read before the read fails.
    read_timeout_s: float = Field(default=5.0, gt=0)
    #: Seconds without a new frame before the watchdog recreates the capture.
    stall_timeout_s: float = Field(default=20.0, gt=0)
    #: Reconnect back-off: first delay and cap, seconds (doubles each failure).
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    decode: DecodeMode = "sampled"
    #: FFmpeg decoder threads for a file or URL source (OpenCV or, for ``"keyframes"``, PyAV):
    #: 1 (default) decodes with the fewest CPU-s per frame (FFmpeg's frame threads add
    #: hand-over work); 0 leaves the count to the decoder (OpenCV: one per core). More threads
    #: only help when one core cannot decode the camera in real time. V4L2 and GStreamer
    #: sources ignore it.
    decode_threads: int = Field(default=DECODE_THREADS, ge=0, le=64)

    @field_validator("source")
    @classmethod
    def _resolve_file(cls, value: str, info: ValidationInfo) -> str:
        if source_kind(value) != "file":
            return value
        path = Path(value).expanduser()
        base = (info.context or {}).get("base_dir")
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        if not path.exists():
            raise ValueError(f"video file not found: {path}")
        return str(path)

    @model_validator(mode="after")
    def _one_pose(self) -> CameraSection:
        if (self.extrinsics is None) == (self.gcps is None):
            raise ValueError("give exactly one of 'extrinsics' or 'gcps'")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        kind = source_kind(self.source)
        if self.decode == "keyframes" and kind in ("device", "gstreamer"):
            hint = " (in the pipeline: nvv4l2decoder skip-frames=2)" if kind == "gstreamer" else ""
            raise ValueError(
                f'decode = "keyframes" reads files and URLs, not a {kind} source; use '
                f'"sampled"{hint}'
            )
        return self
