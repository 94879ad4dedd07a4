"""``[[cameras]]``: one entry per camera of a beach station."""

from __future__ import annotations

from pydantic import Field, model_validator

from edge.config.base import ExistingFile, Section


class CameraSection(Section):
    """One camera: its video source and its calibration.

    ``source`` is a file path, an ``rtsp://``/``http://`` URL, a V4L2 device index
    (``"0"``) or a GStreamer pipeline string (contains ``!``). Calibration uses the
    CIRN convention (see :mod:`edge.camera_model`): ``intrinsics`` is a CoastCam
    JSON file, and either ``extrinsics`` (x y z a t r, radians) or ``gcps`` (CSV of
    world x,y,z and pixel u,v) gives the pose.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    source: str
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

    @model_validator(mode="after")
    def _one_pose(self) -> CameraSection:
        if (self.extrinsics is None) == (self.gcps is None):
            raise ValueError("give exactly one of 'extrinsics' or 'gcps'")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self
