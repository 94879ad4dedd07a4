"""Camera capture: one class for video files, network streams, V4L2 devices and
GStreamer pipelines.

Frames are delivered as :class:`Frame` (uint8 BGR image, timestamp in epoch
seconds UTC). Timestamps: for a video file, ``start_time`` plus the frame's
presentation time (``CAP_PROP_POS_MSEC``), so a file replays its own timeline;
for a live source, the wall clock right after the frame was grabbed.

Threads: a reader thread decodes frames into a small queue that :meth:`Capture.read`
drains. A file source never drops a frame (the reader waits for the consumer) and
its end is the end of the stream. A live source drops the oldest queued frame when
the consumer falls behind (counted), and reconnects with exponential back-off
(``reconnect_min_s`` doubling up to ``reconnect_max_s``) when it cannot open or the
stream breaks. A separate watchdog thread recreates a live capture that has been
stuck inside one OpenCV call (open or grab) for more than ``stall_timeout_s``: it
starts a fresh reader and abandons the stuck one, which releases its own capture
when OpenCV returns (a capture is never released from another thread).

Decoding (``decode``, see :data:`DecodeMode`): ``"all"`` converts every frame to BGR and
delivers it; ``"sampled"`` grabs (demuxes and decodes) every frame but converts and delivers
only the first frame of each sampling slot of ``1 / sample_hz`` s anchored at ``start_time``
(the :class:`~edge.beach.sampler.Sampler` rule), so a consumer sampling at ``sample_hz`` from
the same anchor keeps exactly the frames it would keep from ``"all"``; ``"keyframes"`` decodes
key frames only (PyAV, FFmpeg's ``skip_frame = NONKEY``; files and URLs) and delivers those of
them the sampling rule keeps: with the camera's GOP equal to the sample interval this is the
same frame set at a fraction of the CPU. A GStreamer pipeline decodes what the pipeline
decodes (on a Jetson ``nvv4l2decoder skip-frames=2`` decodes key frames only).
``decode_threads`` sets the FFmpeg decoder's thread count (OpenCV ``CAP_PROP_N_THREADS`` at
creation, PyAV ``thread_count``); 0 leaves it to the decoder. Threads change the CPU time per
frame, never the pixels.

Timeouts: OpenCV honours ``CAP_PROP_OPEN_TIMEOUT_MSEC`` / ``CAP_PROP_READ_TIMEOUT_MSEC``
only when given as parameters at creation (``cv2.VideoCapture(src, api, params)``);
set afterwards they are ignored and a hung RTSP server blocks for about 30 s. They
are passed to the FFmpeg backend (files, URLs). V4L2 and GStreamer captures refuse
unknown parameters, so for them the watchdog is the only timeout.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from edge.beach.geometry.camera import Intrinsics
from edge.beach.sampler import Sampler
from edge.config.cameras import CameraSection, DecodeMode, source_kind
from edge.config.secrets import read_secret, redact, with_password
from edge.errors import ConfigError, GeoEdgeError, InputError
from edge.station.backoff import Backoff

if TYPE_CHECKING:
    import av.container

log = logging.getLogger(__name__)

_END = object()
#: Frames queued between the reader thread and the consumer.
QUEUE_FRAMES = 4


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` uint8 BGR (H x W x 3), ``time`` epoch seconds UTC,
    ``index`` the 0-based count of frames this capture delivered before it."""

    image: np.ndarray
    time: float
    index: int


@dataclass
class CaptureStats:
    """Counters of one capture (all since creation); ``frames_read`` counts every frame read
    from the source, delivered or (``decode = "sampled"``) only grabbed."""

    frames_read: int = 0
    reconnects: int = 0
    stalls: int = 0
    dropped: int = 0
    decode_errors: int = 0
    truncated: bool = False
    last_frame_time: float | None = None


@dataclass
class _Reader:
    generation: int
    busy_since: float | None = None
    thread: threading.Thread | None = field(default=None, repr=False)


class _Decoder(Protocol):
    """One opened source, frame by frame: :meth:`grab` advances, :meth:`retrieve` converts."""

    #: Frames the file header announces (0 when unknown or live).
    claimed: int

    def grab(self) -> float | None:
        """Advance to the next frame; its presentation time in s from the stream start, or
        None at the end of the stream (or when it broke)."""

    def retrieve(self) -> np.ndarray | None:
        """The grabbed frame as uint8 BGR, or None when it cannot be decoded."""

    def release(self) -> None: ...


class _OpenCvDecoder:
    """``cv2.VideoCapture``: ``grab`` demuxes and decodes, ``retrieve`` converts to BGR."""

    def __init__(self, cap: cv2.VideoCapture, live: bool) -> None:
        self.cap = cap
        self.live = live
        self.claimed = 0 if live else int(cap.get(cv2.CAP_PROP_FRAME_COUNT))

    def grab(self) -> float | None:
        if not self.cap.grab():
            return None
        return 0.0 if self.live else self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0

    def retrieve(self) -> np.ndarray | None:
        ok, image = self.cap.retrieve()
        return image if ok and image is not None else None

    def release(self) -> None:
        self.cap.release()


class _KeyframeDecoder:
    """PyAV with ``skip_frame = "NONKEY"``: only key frames are decoded; ``grab`` returns the
    next key frame (counting the packets it passes in :attr:`packets`)."""

    def __init__(self, container: av.container.InputContainer, shown: str, threads: int) -> None:
        self.container = container
        self.shown = shown
        self.stream = container.streams.video[0]
        self.stream.codec_context.skip_frame = "NONKEY"
        self.stream.codec_context.thread_count = threads
        self.claimed = int(self.stream.frames or 0)
        self.packets = 0
        self._frames = self._decode()
        self._frame: av.VideoFrame | None = None
        start = self.stream.start_time
        self._origin = 0 if start is None else int(start)

    def _decode(self) -> Iterator[av.VideoFrame]:
        for packet in self.container.demux(self.stream):
            if packet.size:
                self.packets += 1
            yield from packet.decode()

    def grab(self) -> float | None:
        import av

        try:
            self._frame = next(self._frames, None)
        except av.FFmpegError as exc:
            log.warning("%s: stream broken (%s)", self.shown, redact(str(exc)))
            self._frame = None
        if self._frame is None:
            return None
        pts, unit = self._frame.pts, self.stream.time_base
        return 0.0 if pts is None or unit is None else float((pts - self._origin) * unit)

    def retrieve(self) -> np.ndarray | None:
        if self._frame is None:
            return None
        return self._frame.to_ndarray(format="bgr24")

    def release(self) -> None:
        self.container.close()


def check_decoding(camera: CameraSection) -> None:
    """Refuse, in one line, a camera whose source or ``decode`` mode this machine cannot
    decode: a GStreamer pipeline without OpenCV's GStreamer backend, ``"keyframes"``
    without PyAV. Called when the station starts."""
    if source_kind(camera.source) == "gstreamer" and not cv2.videoio_registry.hasBackend(
        cv2.CAP_GSTREAMER
    ):
        raise ConfigError(
            f"cameras.{camera.name}.source: a GStreamer pipeline, but this OpenCV "
            f"{cv2.__version__} has no GStreamer backend: on a Jetson install with "
            "systemd/install.sh (a venv that sees JetPack's OpenCV); see 'geoedge doctor'"
        )
    if camera.decode == "keyframes":
        _import_av(f'cameras.{camera.name}.decode = "keyframes"')


def _import_av(what: str) -> None:
    try:
        import av  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"{what} needs PyAV, which is not installed (pip install 'geoedge[keyframes]'), "
            'or use decode = "sampled"'
        ) from None


class _Fatal(Exception):
    """A problem retrying cannot fix (wrong frame size, unreadable file)."""

    def __init__(self, error: GeoEdgeError) -> None:
        super().__init__(str(error))
        self.error = error


class Capture:
    """Frames from ``source``: a file path, a URL, a V4L2 index (``"0"``) or a GStreamer
    pipeline (contains ``!``).

    ``decode`` and ``sample_hz`` (frames per s kept, slots anchored at ``start_time``) choose
    what is decoded (see the module notes); ``"sampled"`` and ``"keyframes"`` need
    ``sample_hz``. ``decode_threads`` is the FFmpeg decoder's thread count (files and URLs;
    0: the decoder's choice, OpenCV's is one per core). ``expected_size`` is ``(NU, NV)``
    (width, height in pixels) from the camera's calibration; the first frame of another size
    stops the capture with one :class:`InputError` naming both sizes. ``start_time`` (epoch s)
    anchors a file's timeline (default: now). Timeouts are in seconds (see the module notes).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        source: str,
        *,
        name: str = "camera",
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        stall_timeout_s: float = 20.0,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        expected_size: tuple[int, int] | None = None,
        size_origin: str = "",
        start_time: float | None = None,
        decode: DecodeMode = "all",
        sample_hz: float | None = None,
        decode_threads: int = 0,
    ) -> None:
        self.source = source
        #: The source as it may be logged: any password replaced by ``***``.
        self.shown = redact(source)
        self.name = name
        self.kind = source_kind(source)
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.expected_size = expected_size
        self.size_origin = size_origin
        self.start_time = time.time() if start_time is None else float(start_time)
        self.decode: DecodeMode = decode
        self.sample_hz = sample_hz
        self.decode_threads = decode_threads
        if decode != "all" and sample_hz is None:
            raise ValueError(f"decode = {decode!r} needs sample_hz")
        self.stats = CaptureStats()
        self._api, self._params = self._backend()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._ended = False
        self._index = 0
        self._generation = 0
        self._reader = self._start_reader()
        self._watchdog: threading.Thread | None = None
        if self.live:
            self._watchdog = threading.Thread(
                target=self._watch, name=f"watchdog-{name}", daemon=True
            )
            self._watchdog.start()

    @classmethod
    def from_camera(
        cls, camera: CameraSection, *, sample_hz: float, start_time: float | None = None
    ) -> Capture:
        """A capture for a configured camera, checking frames against its intrinsics and
        decoding as ``camera.decode`` says for sampling at ``sample_hz``."""
        intr = Intrinsics.from_json(camera.intrinsics)
        source = camera.source
        if camera.password_file is not None:
            key = f"cameras.{camera.name}.password_file"
            source = with_password(source, read_secret(camera.password_file, key))
        return cls(
            source,
            name=camera.name,
            open_timeout_s=camera.open_timeout_s,
            read_timeout_s=camera.read_timeout_s,
            stall_timeout_s=camera.stall_timeout_s,
            reconnect_min_s=camera.reconnect_min_s,
            reconnect_max_s=camera.reconnect_max_s,
            expected_size=(intr.NU, intr.NV),
            size_origin=f"NU x NV in {camera.intrinsics}",
            start_time=start_time,
            decode=camera.decode,
            sample_hz=sample_hz,
            decode_threads=camera.decode_threads,
        )

    @property
    def live(self) -> bool:
        """True for streams and devices (reconnect, watchdog); False for a video file."""
        return self.kind != "file"

    @property
    def ended(self) -> bool:
        """True once a file source delivered its last frame, or a fatal error was raised."""
        return self._ended

    def read(self, timeout_s: float) -> Frame | None:
        """The next frame, or None when none arrives within ``timeout_s`` or the stream ended.

        Raises :class:`InputError` once for a fatal problem (file not readable, frame
        size differs from the calibration); the capture has then ended.
        """
        if self._ended:
            return None
        try:
            item = self._queue.get(timeout=max(timeout_s, 0.0))
        except queue.Empty:
            return None
        if item is _END:
            self._ended = True
            return None
        if isinstance(item, GeoEdgeError):
            self._ended = True
            raise item
        assert isinstance(item, Frame)
        return item

    def close(self) -> None:
        """Stop the threads and release the capture (a stuck reader is left to exit alone)."""
        self._closing.set()
        for thread in (self._reader.thread, self._watchdog):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=2.0)

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reader ---------------------------------------------------------------------------

    def _backend(self) -> tuple[int, list[int]]:
        if self.kind == "file" and not Path(self.source).is_file():
            raise InputError(f"{self.shown}: video file not found")
        if self.decode == "keyframes":
            if self.kind not in ("file", "url"):
                raise InputError(
                    f'{self.name}: decode = "keyframes" reads files and URLs only, not a '
                    f"{self.kind} source"
                )
            _import_av(f'{self.name}: decode = "keyframes"')
            return 0, []
        if self.kind == "gstreamer":
            if not cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
                raise InputError(
                    f"{self.name}: source is a GStreamer pipeline but this OpenCV "
                    f"{cv2.__version__} has no GStreamer backend (install an OpenCV "
                    "built with GStreamer, e.g. JetPack's)"
                )
            return cv2.CAP_GSTREAMER, []
        if self.kind == "device":
            return cv2.CAP_V4L2, []
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            round(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            round(self.read_timeout_s * 1000),
        ]
        if self.decode_threads:
            params += [cv2.CAP_PROP_N_THREADS, self.decode_threads]
        return cv2.CAP_FFMPEG, params

    def _start_reader(self) -> _Reader:
        with self._lock:
            self._generation += 1
            reader = _Reader(self._generation)
            reader.thread = threading.Thread(
                target=self._read_loop,
                args=(reader,),
                name=f"capture-{self.name}-{reader.generation}",
                daemon=True,
            )
            self._reader = reader
        reader.thread.start()
        return reader

    def _current(self, reader: _Reader) -> bool:
        return not self._closing.is_set() and reader.generation == self._generation

    def _read_loop(self, reader: _Reader) -> None:
        backoff = Backoff(self.reconnect_min_s, self.reconnect_max_s)
        try:
            while self._current(reader):
                decoder = self._open(reader)
                delivered = 0
                if decoder is not None:
                    try:
                        delivered = self._pump(reader, decoder)
                    finally:
                        decoder.release()
                if not self.live or not self._current(reader):
                    return
                if delivered:
                    backoff.succeeded()
                delay = backoff.failed()
                what = "cannot open the stream" if decoder is None else "stream lost"
                log.warning(
                    "%s: %s (%s); reconnecting in %.1f s", self.name, what, self.shown, delay
                )
                if self._closing.wait(delay):
                    return
                with self._lock:
                    self.stats.reconnects += 1
        except _Fatal as fatal:
            self._put_always(reader, fatal.error)

    def _open(self, reader: _Reader) -> _Decoder | None:
        reader.busy_since = time.monotonic()
        try:
            decoder = self._open_keyframes() if self.decode == "keyframes" else self._open_cv()
        finally:
            reader.busy_since = None
        if decoder is not None:
            return decoder
        if not self.live:
            raise _Fatal(
                InputError(
                    f"{self.shown}: cannot open the video (not a video file, truncated "
                    "header, or a codec this OpenCV lacks)"
                )
            )
        return None

    def _open_cv(self) -> _Decoder | None:
        source: str | int = int(self.source) if self.kind == "device" else self.source
        cap = cv2.VideoCapture(source, self._api, self._params)
        if cap.isOpened():
            return _OpenCvDecoder(cap, self.live)
        cap.release()
        return None

    def _open_keyframes(self) -> _Decoder | None:
        import av

        # RTSP over TCP, as OpenCV's FFmpeg backend does (UDP loses packets of large frames).
        options = {"rtsp_transport": "tcp"} if self.source.startswith("rtsp") else {}
        try:
            container = av.open(
                self.source,
                mode="r",
                options=options,
                timeout=(self.open_timeout_s, self.read_timeout_s),
            )
        except (av.FFmpegError, OSError):
            return None
        if not container.streams.video:
            container.close()
            return None
        return _KeyframeDecoder(container, self.shown, self.decode_threads)

    def _pump(self, reader: _Reader, decoder: _Decoder) -> int:
        """Grab frames until the stream ends or breaks; return how many were delivered."""
        sampler = None
        if self.decode != "all" and self.sample_hz is not None:
            sampler = Sampler(self.sample_hz, self.start_time)
        grabbed = delivered = 0
        while self._current(reader):
            reader.busy_since = time.monotonic()
            try:
                pos_s = decoder.grab()
                wall = time.time()
            finally:
                reader.busy_since = None
            if pos_s is None:
                break
            grabbed += 1
            with self._lock:
                self.stats.frames_read += 1
            stamp = self.start_time + pos_s if not self.live else wall
            if sampler is not None and not sampler.take(stamp):
                continue
            image = decoder.retrieve()
            if image is None:
                with self._lock:
                    self.stats.decode_errors += 1
                    first = self.stats.decode_errors == 1
                if first:
                    log.warning(
                        "%s: frame %d of %s cannot be decoded", self.name, grabbed, self.shown
                    )
                continue
            self._check_size(image)
            with self._lock:
                frame = Frame(image, stamp, self._index)
                self._index += 1
                self.stats.last_frame_time = stamp
            self._deliver(reader, frame)
            delivered += 1
        if isinstance(decoder, _KeyframeDecoder):
            grabbed = decoder.packets
        claimed = decoder.claimed
        if not self.live and self._current(reader):
            if claimed > 0 and grabbed < 0.99 * claimed - 1:
                self.stats.truncated = True
                log.warning(
                    "%s: video ends after %d of the %d frames its header announces "
                    "(truncated or corrupt); keeping the %d frames read",
                    self.shown,
                    grabbed,
                    claimed,
                    delivered,
                )
            self._put_always(reader, _END)
        return delivered

    def _check_size(self, image: np.ndarray) -> None:
        if self.expected_size is None:
            return
        height, width = image.shape[:2]
        if (width, height) != tuple(self.expected_size):
            nu, nv = self.expected_size
            raise _Fatal(
                InputError(
                    f"{self.name}: frame size {width}x{height} from {self.shown} does not "
                    f"match the calibration {nu}x{nv}"
                    + (f" ({self.size_origin})" if self.size_origin else "")
                )
            )

    def _deliver(self, reader: _Reader, frame: Frame) -> None:
        if not self.live:
            self._put_always(reader, frame)
            return
        while self._current(reader):
            try:
                self._queue.put_nowait(frame)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    with self._lock:
                        self.stats.dropped += 1
                except queue.Empty:
                    pass

    def _put_always(self, reader: _Reader, item: object) -> None:
        """Block until the consumer takes ``item`` (file sources, end and error markers)."""
        while self._current(reader):
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    # -- watchdog -------------------------------------------------------------------------

    def _watch(self) -> None:
        period = min(1.0, self.stall_timeout_s / 4.0)
        while not self._closing.wait(period):
            busy = self._reader.busy_since
            if busy is None or time.monotonic() - busy <= self.stall_timeout_s:
                continue
            log.warning(
                "%s: no frame for %.1f s (capture stuck in OpenCV, %s); recreating the capture",
                self.name,
                time.monotonic() - busy,
                self.shown,
            )
            with self._lock:
                self.stats.stalls += 1
                self.stats.reconnects += 1
            self._start_reader()
