"""Image products of one collection: TimeX, variance, bright, dark, snap.

Frames are uint8 images (BGR, H x W x 3, or grey H x W) of any size; all frames
of one collection have the same shape. Products, per pixel and channel, over the
N sampled frames (grey levels 0..255):

- ``timex``    the mean (time exposure),
- ``variance`` the population standard deviation (ddof = 0, as ``numpy.std``),
  named "variance" after the Argus product,
- ``bright``   the maximum, ``dark`` the minimum,
- ``snap``     the first sampled frame.

Accumulation is streaming and constant-memory. Sums of the grey levels and of
their squares are exact: every frame is accumulated into block sums of at most 256
frames, the grey levels in uint16 (256 * 255 < 2**16) and their squares in float32
(integers below 2**24 are exact in float32, and 256 * 255**2 < 2**24), and each block
is added into float64 totals (exact integers below 2**53, i.e. more than 10**8
frames). The standard deviation is then ``sqrt(S2/N - (S1/N)**2)`` from exact
sums, which loses only float64 round-off (~1e-11 grey levels), unlike the
naive float32 formula. Written images are the values rounded to the nearest
grey level.

Files use Argus-style names: ``<epoch>.<station>.<camera>.<product>.jpg`` with
``epoch`` the window start in integer seconds UTC, plus a JSON sidecar
``<epoch>.<station>.<camera>.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.config.cameras import DecodeMode
from edge.errors import InputError
from edge.station.disk_space import NO_SPACE, NoSpaceError
from edge.station.messages import utc_iso

log = logging.getLogger(__name__)

#: Product names, in the order they are written and listed.
PRODUCTS = ("timex", "variance", "bright", "dark", "snap")
#: Frames per float32 block before it is folded into the float64 totals (exactness bound).
BLOCK_FRAMES = 256


@dataclass
class _Sums:
    """The accumulator's per-pixel buffers, allocated from the first frame's shape."""

    sum16: np.ndarray
    sq32: np.ndarray
    sum64: np.ndarray
    sq64: np.ndarray
    bright: np.ndarray
    dark: np.ndarray
    snap: np.ndarray

    @classmethod
    def start(cls, frame: np.ndarray) -> _Sums:
        return cls(
            sum16=np.zeros(frame.shape, np.uint16),
            sq32=np.zeros(frame.shape, np.float32),
            sum64=np.zeros(frame.shape, np.float64),
            sq64=np.zeros(frame.shape, np.float64),
            bright=frame.copy(),
            dark=frame.copy(),
            snap=frame.copy(),
        )


class ProductAccumulator:
    """Streaming accumulator of the five products over uint8 frames.

    Memory is constant in the number of frames: for an H x W x C frame it holds
    a uint16 and a float32 block sum, two float64 totals and three uint8 images
    (25 bytes per sample value, about 148 MiB for 1920x1080x3).
    """

    def __init__(self) -> None:
        self.count = 0
        self._block = 0
        self._sums: _Sums | None = None

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of the frames accumulated so far (None before the first)."""
        return None if self._sums is None else self._sums.snap.shape

    def add(self, frame: np.ndarray) -> None:
        """Accumulate one uint8 frame (H x W x C or H x W)."""
        if frame.dtype != np.uint8:
            raise InputError(f"frames must be uint8 images, got {frame.dtype}")
        if self._sums is None:
            self._sums = _Sums.start(frame)
        elif frame.shape != self._sums.snap.shape:
            raise InputError(
                f"frame shape {frame.shape} differs from the collection's {self._sums.snap.shape}"
            )
        sums = self._sums
        np.add(sums.sum16, frame, out=sums.sum16)
        cv2.accumulateSquare(frame, sums.sq32)
        cv2.max(frame, sums.bright, dst=sums.bright)
        cv2.min(frame, sums.dark, dst=sums.dark)
        self.count += 1
        self._block += 1
        if self._block == BLOCK_FRAMES:
            self._fold(sums)

    def _fold(self, sums: _Sums) -> None:
        np.add(sums.sum64, sums.sum16, out=sums.sum64)
        np.add(sums.sq64, sums.sq32, out=sums.sq64)
        sums.sum16.fill(0)
        sums.sq32.fill(0.0)
        self._block = 0

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and population standard deviation (float64 arrays, grey levels)."""
        sums = self._require()
        mean = np.empty(sums.snap.shape, np.float64)
        std = np.empty_like(mean)
        for rows in _row_chunks(sums.snap.shape[0]):
            mean[rows], std[rows] = self._moments(sums, rows)
        return mean, std

    def images(self) -> dict[str, np.ndarray]:
        """The five products as uint8 images (rounded to the nearest grey level).

        Computed in bands of rows, so finishing adds only the uint8 outputs and a
        few MB of temporaries to the accumulator's memory.
        """
        sums = self._require()
        timex = np.empty(sums.snap.shape, np.uint8)
        variance = np.empty_like(timex)
        for rows in _row_chunks(sums.snap.shape[0]):
            mean, std = self._moments(sums, rows)
            timex[rows] = _to_uint8(mean)
            variance[rows] = _to_uint8(std)
        return {
            "timex": timex,
            "variance": variance,
            "bright": sums.bright.copy(),
            "dark": sums.dark.copy(),
            "snap": sums.snap.copy(),
        }

    def _require(self) -> _Sums:
        if self.count == 0 or self._sums is None:
            raise InputError("no frames were accumulated")
        if self._block:
            self._fold(self._sums)
        return self._sums

    def _moments(self, sums: _Sums, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        mean = sums.sum64[rows] / self.count
        var = sums.sq64[rows] / self.count
        var -= mean * mean
        np.maximum(var, 0.0, out=var)
        return mean, np.sqrt(var, out=var)


def _row_chunks(height: int, rows: int = 64) -> list[slice]:
    return [slice(r, r + rows) for r in range(0, height, rows)]


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


@dataclass
class Collection:
    """One camera's collection: what the waterline and shoreline stages consume.

    Times are epoch seconds UTC. ``start``/``end`` are the scheduled window
    (``epoch`` = ``int(start)`` names the files). ``frame_count`` frames were
    sampled out of ``expected_frames`` for a full window at ``sample_hz``.
    ``flags`` lists quality and completeness flags (see :data:`FLAGS`); a
    collection with any flag is still written and reported, never silently
    dropped, and consumers decide (the waterline stage should skip ``too_dark``,
    ``low_contrast``, ``camera_moved`` and ``no_frames``). ``quality`` holds the
    measured values behind the gates (see :class:`edge.beach.quality.QualityReport`).
    ``paths`` maps each product name (:data:`PRODUCTS`) to its image file;
    ``sidecar`` is the JSON file. ``timex`` is the TimeX image (uint8, H x W x 3
    BGR, rounded mean, the same pixels as the file before JPEG compression), or
    None when no frame was read. ``error`` is the one-line reason when the camera
    gave no frames (capture failed). ``decode`` is the capture's decoding mode that sampled
    the frames (:data:`edge.config.cameras.DecodeMode`), written to the sidecar.
    """

    station: str
    camera: str
    start: float
    end: float
    sample_hz: float
    frame_count: int
    expected_frames: int
    flags: list[str] = field(default_factory=list)
    quality: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    sidecar: Path | None = None
    timex: np.ndarray | None = field(default=None, repr=False)
    first_frame_time: float | None = None
    last_frame_time: float | None = None
    error: str | None = None
    decode: DecodeMode = "all"

    @property
    def epoch(self) -> int:
        """Window start, integer seconds UTC (the Argus file-name epoch)."""
        return math.floor(self.start)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (the sidecar and the ``products`` message use it)."""
        return {
            "camera": self.camera,
            "window": {"start": utc_iso(self.start), "end": utc_iso(self.end)},
            "epoch": self.epoch,
            "sample_hz": self.sample_hz,
            "frame_count": self.frame_count,
            "expected_frames": self.expected_frames,
            "first_frame": _iso_or_none(self.first_frame_time),
            "last_frame": _iso_or_none(self.last_frame_time),
            "flags": list(self.flags),
            "quality": dict(self.quality),
            "products": {name: p.name for name, p in self.paths.items()},
            "sidecar": None if self.sidecar is None else self.sidecar.name,
            "error": self.error,
        }


def _iso_or_none(t: float | None) -> str | None:
    return None if t is None else utc_iso(t)


#: Every flag a collection can carry.
FLAGS = (
    "too_few_frames",  # fewer than min_frame_fraction of the expected frames
    "no_frames",  # nothing sampled: no products written
    "interrupted",  # stopped before the window ended (shutdown); products from frames so far
    "input_truncated",  # the video file ended early or was corrupt; frames read are kept
    "too_dark",  # quality gate: night
    "low_contrast",  # quality gate: fog, rain on the lens
    "camera_moved",  # quality gate: shift against the reference image
    "products_not_written",  # disk full: the products exist in memory only (results still made)
)


def product_name(epoch: int, station: str, camera: str, product: str, ext: str = "jpg") -> str:
    """Argus-style file name ``<epoch>.<station>.<camera>.<product>.<ext>``."""
    return f"{epoch}.{station}.{camera}.{product}.{ext}"


def write_collection(
    collection: Collection,
    images: dict[str, np.ndarray] | None,
    out_dir: str | Path,
    *,
    image_format: str = "jpg",
    jpeg_quality: int = 95,
) -> Collection:
    """Write the product images (if any) and the JSON sidecar; fill ``paths``/``sidecar``.

    Files are written to a temporary name and renamed, so a reader never sees a
    half-written product. Returns the same collection, updated.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the products folder ({exc.strerror})") from None
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if image_format == "jpg" else []
    for name, image in (images or {}).items():
        path = out / product_name(
            collection.epoch, collection.station, collection.camera, name, image_format
        )
        ok, data = cv2.imencode(f".{image_format}", image, params)
        if not ok:
            raise InputError(f"{path}: OpenCV could not encode the {name} image")
        _write_atomic(path, data.tobytes())
        collection.paths[name] = path
    if images:
        collection.timex = images["timex"]
    sidecar = out / f"{collection.epoch}.{collection.station}.{collection.camera}.json"
    collection.sidecar = sidecar
    doc = {"station": collection.station, **collection.summary(), "decode": collection.decode}
    _write_atomic(sidecar, (json.dumps(doc, indent=2) + "\n").encode())
    return collection


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` under a temporary name, then rename; NoSpaceError when the disk is full."""
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        error = NoSpaceError if exc.errno in NO_SPACE else InputError
        raise error(f"{path}: cannot write ({exc.strerror})") from None
