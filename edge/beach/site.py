"""The beach station: capture -> sampler -> products -> quality gates -> ``products``
message -> (later stages via ``analyse``).

:class:`BeachStation` is the daemon's site for ``station.kind = "beach"``. Each
collection runs one capture + sampler per camera (one thread each), writes the
products and the JSON sidecar per camera, runs the quality gates, emits one
``products`` message for the whole collection, then hands the collections to
``analyse`` (waterline, shoreline) and emits what it returns.

When collections run (``collection.align``):

- ``"clock"``: each clock-aligned window (:class:`edge.beach.sampler.Schedule`). The
  captures are opened ``open_timeout_s`` before the window starts and closed after
  it; a video file source is replayed from its start for each window.
- ``"immediate"``: the first window starts now, the next follow back to back;
  captures stay open across windows and a video file is read along its own
  timeline (timestamps relative to the first window's start), so a recorded video
  is processed at decoding speed. :meth:`BeachStation.run` returns when every file
  source has ended.

On ``stop`` in the middle of a collection, the collection is finished with the
frames so far, flagged ``interrupted``, written and emitted (checkpoint).

The daemon's factory ``beach_site(config, emit, subscribe)`` builds the
:class:`BeachStation` and hands it a :class:`CollectionAnalysis`, which for each finished
collection:

1. keeps the cameras whose TimeX passed the quality gates;
2. takes the water level at the middle of the window from the shoreline stage: tide
   (``[tide]``) plus wave setup and the configured swash fraction (Stockdon 2006,
   ``[waves]``, with the station's latest fitted slope) -- without a tide level
   no waterline can be placed in the world, so the collection's shoreline is reported
   unavailable and nothing is guessed;
3. runs the waterline stage (``beach/waterline``), then slope and shoreline
   (``beach/slope``, ``beach/shoreline``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edge.beach.capture import Capture, CaptureStats, Frame, check_decoding
from edge.beach.products import Collection, ProductAccumulator, write_collection
from edge.beach.quality import assess
from edge.beach.sampler import Sampler, Schedule, Window, expected_frames, too_few_frames
from edge.beach.shoreline.datum import ShorelineResult, ShorelineStage
from edge.beach.shoreline.tide import TideSource
from edge.beach.shoreline.waves import WaveSource
from edge.beach.waterline.analysis import BeachAnalyser
from edge.config import StationConfig
from edge.config.collection import CollectionSection
from edge.config.quality import QualitySection
from edge.errors import GeoEdgeError
from edge.station.disk_space import DiskSpace, NoSpaceError
from edge.station.messages import envelope, utc_iso
from edge.station.site import Emit, Subscribe

log = logging.getLogger(__name__)


class Analyse(Protocol):
    """The later stages on one collection: ``analyse(collections) -> [(kind, message)]``."""

    def __call__(self, collections: list[Collection]) -> list[tuple[str, dict[str, Any]]]: ...

    def stats(self) -> dict[str, Any]:
        """Counters of the stages (merged into the site's ``stats``)."""


#: How long one read waits before the loop checks ``stop`` and the clock again (s).
POLL_S = 0.5
#: Quality flags that make a TimeX unfit to become the movement reference.
_NOT_REFERENCE = {"too_dark", "low_contrast", "too_few_frames", "no_frames"}


def collect_window(
    capture: Capture,
    *,
    station: str,
    camera: str,
    window: Window,
    collection: CollectionSection,
    gates: QualitySection,
    reference: np.ndarray | None = None,
    stop: threading.Event | None = None,
    carry: Frame | None = None,
    expected: int | None = None,
    disk: DiskSpace | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> tuple[Collection, Frame | None]:
    """Sample ``capture`` over ``window``, accumulate, gate, and write the products.

    Frames stamped before the window are skipped; the first frame at or after its
    end is returned (with the collection) to open the next window. ``carry`` is
    such a frame from the previous window. ``expected`` overrides the expected
    frame count (default: a full window at ``collection.sample_hz``). A fatal capture
    error ends the collection with the frames so far and sets ``error`` (not logged
    here: the caller reports it once); the collection is always written (sidecar at
    least) and returned, unless ``disk`` says the products folder is out of space:
    then nothing is written, the collection is flagged ``products_not_written`` and
    its TimeX is kept in memory for the later stages. ``heartbeat()`` is called on
    every turn of the read loop (the daemon's watchdog counts it as progress).
    """
    start, end = window
    sampler = Sampler(collection.sample_hz, start)
    acc = ProductAccumulator()
    first = last = None
    leftover: Frame | None = None
    interrupted = False
    error: str | None = None
    pending = carry
    while True:
        if heartbeat is not None:
            heartbeat()
        if stop is not None and stop.is_set():
            interrupted = True
            break
        try:
            frame = pending if pending is not None else capture.read(POLL_S)
        except GeoEdgeError as exc:
            error = str(exc)
            break
        pending = None
        if frame is None:
            if capture.ended or (capture.live and time.time() >= end):
                break
            continue
        if frame.time >= end:
            leftover = frame
            break
        if frame.time < start or not sampler.take(frame.time):
            continue
        try:
            acc.add(frame.image)
        except GeoEdgeError as exc:
            error = f"{camera}: {exc}"
            break
        first = frame.time if first is None else first
        last = frame.time
    if expected is None:
        expected = expected_frames(end - start, collection.sample_hz)
    flags = []
    if capture.stats.truncated:
        flags.append("input_truncated")
    if interrupted:
        flags.append("interrupted")
    if too_few_frames(acc.count, expected, collection.min_frame_fraction):
        flags.append("too_few_frames")
    result = Collection(
        station=station,
        camera=camera,
        start=start,
        end=end,
        sample_hz=collection.sample_hz,
        frame_count=acc.count,
        expected_frames=expected,
        first_frame_time=first,
        last_frame_time=last,
        error=error,
        decode=capture.decode,
    )
    images = None
    if acc.count == 0:
        flags.append("no_frames")
    else:
        images = acc.images()
        report = assess(images["timex"], gates, reference)
        flags.extend(report.flags)
        result.quality = report.values()
    result.flags = flags
    out = collection.output_dir
    try:
        if disk is not None and not disk.allows(out):
            raise NoSpaceError(f"{out}: below the free-space reserve")
        write_collection(
            result,
            images,
            out,
            image_format=collection.image_format,
            jpeg_quality=collection.jpeg_quality,
        )
    except NoSpaceError:
        if disk is not None:
            disk.mark_full(out)
        flags.append("products_not_written")
        result.timex = None if images is None else images["timex"]
    return result, leftover


class BeachStation:
    """The daemon's beach-station site.

    ``emit(kind, message)`` stores a message for MQTT (the daemon's outbox);
    ``analyse(collections)``, optional, runs the later stages (waterline,
    shoreline) on the collections of one window and returns ``[(kind, message)]``
    to emit; an exception there is logged in one line and the ``products`` message
    is already out. ``run(stop)`` returns after ``stop`` is set (finishing the
    current collection as ``interrupted``) or, with ``align = "immediate"``, when
    every file source has ended.
    """

    def __init__(self, config: StationConfig, emit: Emit, analyse: Analyse | None = None) -> None:
        for camera in config.cameras:
            check_decoding(camera)
        self.config = config
        self.emit = emit
        self.analyse = analyse
        self.station = config.station.id
        self.schedule = Schedule(config.collection)
        self._lock = threading.Lock()
        self._totals = {cam.name: CaptureStats() for cam in config.cameras}
        self._open: dict[str, Capture] = {}
        self._collections = 0
        self._failed = 0
        self._last_collection: float | None = None
        self._progress = time.monotonic()
        self.disk = DiskSpace(config.storage.min_free_bytes)
        self._references = {cam.name: self._load_reference(cam.name) for cam in config.cameras}

    # -- public ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Collect, write, gate and emit, window after window, until ``stop`` is set."""
        immediate = self.config.collection.align == "immediate"
        carry: dict[str, Frame | None] = {}
        start = self.config.collection.start_utc
        now = math.floor(start.timestamp() if start is not None else time.time())
        window: tuple[float, float] = (float(now), now + self.schedule.duration_s)
        if immediate:
            captures = self._open_captures(window[0])
        try:
            while not stop.is_set():
                if not immediate:
                    window = self.schedule.next_window(time.time())
                    lead = max(c.open_timeout_s for c in self.config.cameras)
                    if self._wait_until(window[0] - lead, stop):
                        break
                    captures = self._open_captures(window[0])
                    carry = {}
                collections = self._collect_all(captures, window, stop, carry)
                self._publish(window, collections)
                if not immediate:
                    self._close_captures()
                    continue
                ended = (not isinstance(c, Capture) or c.ended for c in captures.values())
                if all(ended) and not any(carry.values()):
                    break
                window = self.schedule.back_to_back(window)
        finally:
            self._close_captures()

    def progress(self) -> float:
        """``time.monotonic()`` of the last turn of a read loop or of a wait between
        windows: the daemon's watchdog pings only while this keeps moving."""
        return self._progress

    def heartbeat(self) -> None:
        self._progress = time.monotonic()

    def stats(self) -> dict[str, Any]:
        """Counters: frames read, reconnects, stalls, dropped frames, decode errors (all
        cameras and per camera), collections and ``collections_failed`` (no camera gave
        a frame, or the analysis failed), ``last_collection`` (UTC ISO or None) and the
        disk state (``disk_full``, ``refused_writes``)."""
        with self._lock:
            per_camera = {}
            for name, total in self._totals.items():
                live = self._open.get(name)
                merged = _merged(total, live.stats) if live is not None else total
                per_camera[name] = {
                    k: v for k, v in asdict(merged).items() if k not in ("last_frame_time",)
                }
            summed = {
                key: sum(int(cam[key]) for cam in per_camera.values())
                for key in ("frames_read", "reconnects", "stalls", "dropped", "decode_errors")
            }
            last = self._last_collection
            return {
                **summed,
                "collections": self._collections,
                "collections_failed": self._failed,
                "last_collection": None if last is None else utc_iso(last),
                **self.disk.stats(),
                **({} if self.analyse is None else self.analyse.stats()),
                "cameras": per_camera,
            }

    # -- collection -----------------------------------------------------------------------

    def _open_captures(self, start_time: float) -> dict[str, Capture | GeoEdgeError]:
        """A capture per camera, or the one-line error that prevented it."""
        captures: dict[str, Capture | GeoEdgeError] = {}
        for cam in self.config.cameras:
            try:
                capture = Capture.from_camera(
                    cam, sample_hz=self.config.collection.sample_hz, start_time=start_time
                )
            except GeoEdgeError as exc:
                log.error("%s: cannot start the capture: %s", cam.name, exc)
                captures[cam.name] = exc
                continue
            captures[cam.name] = capture
            with self._lock:
                self._open[cam.name] = capture
        return captures

    def _close_captures(self) -> None:
        with self._lock:
            opened, self._open = self._open, {}
        for name, capture in opened.items():
            capture.close()
            with self._lock:
                self._totals[name] = _merged(self._totals[name], capture.stats)

    def _collect_all(
        self,
        captures: dict[str, Capture | GeoEdgeError],
        window: Window,
        stop: threading.Event,
        carry: dict[str, Frame | None],
    ) -> list[Collection]:
        results: dict[str, Collection] = {}

        def one(name: str) -> None:
            results[name] = self._collect_camera(name, captures[name], window, stop, carry)

        threads = [
            threading.Thread(target=one, args=(cam.name,), name=f"collect-{cam.name}")
            for cam in self.config.cameras
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [results[cam.name] for cam in self.config.cameras if cam.name in results]

    def _collect_camera(
        self,
        name: str,
        capture: Capture | GeoEdgeError,
        window: Window,
        stop: threading.Event,
        carry: dict[str, Frame | None],
    ) -> Collection:
        col = self.config.collection
        try:
            if isinstance(capture, GeoEdgeError):
                raise capture
            result, carry[name] = collect_window(
                capture,
                station=self.station,
                camera=name,
                window=window,
                collection=col,
                gates=self.config.quality,
                reference=self._references.get(name),
                stop=stop,
                carry=carry.get(name),
                disk=self.disk,
                heartbeat=self.heartbeat,
            )
        except Exception as exc:
            if not isinstance(exc, GeoEdgeError):
                log.exception("%s: collection failed", name)
            carry[name] = None
            failed = Collection(
                station=self.station,
                camera=name,
                start=window[0],
                end=window[1],
                sample_hz=col.sample_hz,
                frame_count=0,
                expected_frames=expected_frames(window[1] - window[0], col.sample_hz),
                flags=["no_frames", "too_few_frames"],
                error=str(exc),
                decode=next(c.decode for c in self.config.cameras if c.name == name),
            )
            with contextlib.suppress(GeoEdgeError):
                write_collection(failed, None, col.output_dir)
            return failed
        self._maybe_keep_reference(result)
        return result

    def _wait_until(self, when: float, stop: threading.Event) -> bool:
        """Wait until epoch ``when`` (heartbeat every few s); True if ``stop`` was set."""
        while (left := when - time.time()) > 0:
            self.heartbeat()
            if stop.wait(min(left, POLL_S * 10)):
                return True
        return stop.is_set()

    def _publish(self, window: Window, collections: list[Collection]) -> None:
        with self._lock:
            self._collections += 1
            self._last_collection = window[0]
            if all(c.frame_count == 0 for c in collections):
                self._failed += 1
        log.info(
            "collection %s..%s: %s",
            utc_iso(window[0]),
            utc_iso(window[1]),
            "; ".join(
                f"{c.camera} {c.frame_count}/{c.expected_frames} frames"
                + (f" [{', '.join(c.flags)}]" if c.flags else "")
                + (f" error: {c.error}" if c.error else "")
                for c in collections
            ),
        )
        message = envelope(
            "products",
            self.station,
            window[0],
            window={"start": utc_iso(window[0]), "end": utc_iso(window[1])},
            frame_count=sum(c.frame_count for c in collections),
            flags=sorted({f for c in collections for f in c.flags}),
            cameras=[c.summary() for c in collections],
        )
        self._emit("products", message)
        if self.analyse is None:
            return
        try:
            results = self.analyse(collections)
        except Exception as exc:
            log.error("analysis of the collection at %s failed: %r", utc_iso(window[0]), exc)
            with self._lock:
                self._failed += 1
            return
        for kind, msg in results:
            self._emit(kind, msg)

    def _emit(self, kind: str, message: dict[str, Any]) -> None:
        try:
            self.emit(kind, message)
        except Exception as exc:
            log.error("cannot emit the %s message: %s", kind, exc)

    # -- movement reference ---------------------------------------------------------------

    def _reference_path(self, camera: str) -> Path:
        return self.config.collection.output_dir / f"reference.{self.station}.{camera}.png"

    def _load_reference(self, camera: str) -> np.ndarray | None:
        """The configured reference image, else the kept first good TimeX, else None."""
        path = self.config.quality.reference_images.get(camera) or self._reference_path(camera)
        if not Path(path).is_file():
            return None
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            log.error("%s: reference image %s is not readable; movement not checked", camera, path)
        return image

    def _maybe_keep_reference(self, result: Collection) -> None:
        """Keep the first good TimeX as the movement reference (and save it)."""
        if self._references.get(result.camera) is not None or result.timex is None:
            return
        if _NOT_REFERENCE & set(result.flags):
            return
        self._references[result.camera] = result.timex
        path = self._reference_path(result.camera)
        if not cv2.imwrite(str(path), result.timex):
            log.error("%s: cannot save the movement reference %s", result.camera, path)


def _merged(a: CaptureStats, b: CaptureStats) -> CaptureStats:
    return CaptureStats(
        frames_read=a.frames_read + b.frames_read,
        reconnects=a.reconnects + b.reconnects,
        stalls=a.stalls + b.stalls,
        dropped=a.dropped + b.dropped,
        decode_errors=a.decode_errors + b.decode_errors,
        truncated=a.truncated or b.truncated,
        last_frame_time=b.last_frame_time or a.last_frame_time,
    )


#: Quality flags that make a TimeX unusable for the waterline.
UNUSABLE = {"no_frames", "too_dark", "low_contrast", "camera_moved"}
#: With this flag no overlay is written either (the disk is full).
DISK_FULL = {"products_not_written"}


class CollectionAnalysis:
    """``analyse(collections) -> [(kind, message)]`` for :class:`BeachStation`: the stages
    return typed results; their messages are built here, just before the outbox."""

    def __init__(self, config: StationConfig, subscribe: Subscribe) -> None:
        self.config = config
        self.tide = TideSource(config.tide)
        self.waves = WaveSource(config.waves)
        self.tide.attach(subscribe)
        self.waves.attach(subscribe)
        self.analyser = BeachAnalyser(config)
        self.shoreline = ShorelineStage(config)

    def stats(self) -> dict[str, Any]:
        return {"store_rows_not_stored": self.shoreline.store.rows_not_stored}

    def __call__(self, collections: list[Collection]) -> list[tuple[str, dict[str, Any]]]:
        usable = [c for c in collections if c.timex is not None and not UNUSABLE & set(c.flags)]
        if not usable:
            log.info("no usable TimeX in this collection: waterline skipped")
            return []
        first = usable[0]
        time = (first.start + first.end) / 2.0
        tide = self.tide.level_at(time)
        waves = self.waves.at(time)
        station, crs = self.config.station.id, self.config.station.crs
        if tide is None:
            log.warning("no tide level at %s: waterline and shoreline unavailable", time)
            nothing = ShorelineResult(time, self.config.shoreline.datum_m, None, None, waves, [])
            return [("shoreline", nothing.to_message(station, crs))]
        level = self.shoreline.water_level(time, tide, waves)
        flags = {f for c in usable for f in c.flags}
        waterline = self.analyser.analyse(
            time,
            level.z_m,
            images={c.camera: c.timex for c in usable if c.timex is not None},
            out_dir=None if DISK_FULL & flags else self.config.collection.output_dir,
            stem=f"{first.epoch}.{self.config.station.id}",
        )
        slope, shoreline = self.shoreline.update(waterline, time, tide, waves)
        return [
            (
                "waterline",
                waterline.to_message(
                    station, crs, tide_m=round(level.tide_m, 4), setup_m=round(level.setup_m, 4)
                ),
            ),
            ("slope", slope.to_message(station)),
            ("shoreline", shoreline.to_message(station, crs)),
        ]


def beach_site(config: StationConfig, emit: Emit, subscribe: Subscribe) -> BeachStation:
    """The daemon's factory for a beach station."""
    return BeachStation(config, emit, analyse=CollectionAnalysis(config, subscribe))
