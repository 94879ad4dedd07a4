"""GPR cavity pipeline: traces -> processing -> windows -> detector -> fit -> position -> dedup.

:class:`CavityPipeline` is fed :class:`~edge.gpr.traces.TraceBlock` chunks in order
(a whole file is one chunk; a live stream many) and returns ``geoedge.cavity/1``
messages as cavities close; :meth:`CavityPipeline.flush` ends the stream.
:func:`detect_file` runs it over a file. Units: m, ns, m/ns; trace indices are
0-based per channel in the file or stream.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge.config import StationConfig
from edge.config.base import TcpAddress
from edge.config.gpr import GprSection, TimeZeroStep
from edge.errors import ConfigError, InputError
from edge.gpr.bscan import BscanWindow, BscanWindower, box_to_profile
from edge.gpr.dedup import Cavity, CavityCandidate, Deduplicator, SameTarget
from edge.gpr.detector import CavityDetector, Detection
from edge.gpr.directwave import (
    LineCalibration,
    TimeZeroSetting,
    arrival_moveout,
    calibrate_line,
)
from edge.gpr.formats.readers import read_gpr
from edge.gpr.hyperbola import FitGates, fit_box, fresnel_radius_m, implausible, not_a_diffraction
from edge.gpr.positioning import LivePositioner, TrackPositioner, read_nmea_log
from edge.gpr.processing import ProcessingChain, TraceGeometry
from edge.gpr.report import cavity_id, cavity_message, write_snippet
from edge.gpr.traces import TraceBlock
from edge.station.disk_space import NO_SPACE, DiskSpace

log = logging.getLogger(__name__)

#: Default window width in traces when [gpr.windows] does not say (the detector is
#: trained on 128-384-trace scans resampled to its input width).
DEFAULT_WIDTH_TRACES = 256
#: Traces per chunk when a whole file is processed: bounds the chain's float64 working arrays
#: (~8 bytes x channels x samples x this; 4096 x 512 samples = 16 MiB per channel).
FILE_CHUNK_TRACES = 4096
#: A box whose fit is poor takes the line's velocity: the median fitted velocity of the last
#: this many trusted fits on the line (plausible targets, fitted over at least
#: LINE_VELOCITY_MIN_PICKS traces), once there are LINE_VELOCITY_MIN_FITS; before that the
#: configured velocity.
LINE_VELOCITY_FITS = 25
LINE_VELOCITY_MIN_FITS = 3
LINE_VELOCITY_MIN_PICKS = 12


class WindowDetector(Protocol):
    """What the pipeline needs of a detector (:class:`~edge.gpr.detector.CavityDetector`)."""

    def detect(self, windows: np.ndarray) -> list[list[Detection]]:
        """Detections per window of an ``(N, samples, traces)`` float32 stack."""
        ...


def build_detector(gpr: GprSection) -> CavityDetector:
    """The configured :class:`~edge.gpr.detector.CavityDetector` (ModelError if unusable)."""
    return CavityDetector(
        gpr.detector.model,
        gpr.detector.providers,
        precision=gpr.detector.precision,
        score_threshold=gpr.detector.threshold,
    )


def build_positioner(gpr: GprSection, crs: str, block: TraceBlock) -> TrackPositioner:
    """Positioning for a file (or a stream without live GNSS) whose first block is ``block``.

    An NMEA log in ``gpr.positioning.gnss`` is read whole; a ``tcp://`` GNSS stream is
    for live sources only (:class:`~edge.gpr.positioning.LivePositioner`) and is not
    used here.
    """
    fixes = list(block.gps)
    gnss = gpr.positioning.gnss
    if isinstance(gnss, TcpAddress):
        log.info("%s: GNSS stream %s is for live sources; not used", block.source, gnss)
    elif gnss is not None:
        fixes += read_nmea_log(gnss)
    return TrackPositioner(
        crs,
        fixes,
        min_fix_quality=gpr.positioning.min_fix_quality,
        max_gap_traces=gpr.positioning.max_gap_traces,
        trace_spacing_m=block.trace_spacing_m or gpr.positioning.trace_spacing_m,
        distance_m=block.distance_m,
        trace_times=block.trace_times,
    )


def require_profile(block: TraceBlock) -> None:
    """InputError (one line) unless ``block`` is a reflection profile: a CMP or WARR gather's
    traces differ by antenna separation, not position, and hold no hyperbolas to detect.

    A gather is known from the header's survey mode where the format has one (DT1), and from
    the data otherwise (DZT has no such field): its direct wave moves out steadily across the
    traces (:func:`~edge.gpr.directwave.arrival_moveout`), a profile's stays at one time.
    """
    if block.survey_mode != "reflection":
        raise InputError(
            f"{block.source}: a {block.survey_mode.upper()} gather (the header's survey "
            "mode), not a reflection profile: cavity detection needs a common-offset line"
        )
    moveout = arrival_moveout(block.samples, block.dt_ns)
    if moveout is not None and moveout.is_gather:
        raise InputError(
            f"{block.source}: looks like a CMP or WARR gather, not a reflection profile: the "
            f"first arrival moves {moveout.total_ns:+.1f} ns across {block.n_traces} traces "
            f"(steadily, R^2 {moveout.r2:.2f}); cavity detection needs a common-offset line"
        )


def time_zero_setting(gpr: GprSection, dt_ns: float) -> TimeZeroSetting:
    """The configured time zero: ``"auto"``, ``"header"`` or ns after the first sample (a
    fixed ``sample`` of the time_zero step in ns; ``"header"`` without a time_zero step)."""
    step = next((s for s in gpr.processing if isinstance(s, TimeZeroStep)), None)
    if step is None:
        return "header"
    return step.sample * dt_ns if step.sample is not None else step.at


class CavityPipeline:
    """The stateful stream pipeline of one GPR line (see the module docstring)."""

    def __init__(
        self,
        config: StationConfig,
        first: TraceBlock,
        detector: WindowDetector,
        snippet_dir: Path | None = None,
        positioner: TrackPositioner | LivePositioner | None = None,
        disk: DiskSpace | None = None,
    ) -> None:
        if config.gpr is None:
            raise ConfigError("no [gpr] section in the config")
        gpr = self.gpr = config.gpr
        require_profile(first)
        self.station, self.crs = config.station.id, config.station.crs
        self.source = first.source
        #: A stream line is identified by its first trace's time (cavity ids, messages).
        self.line_start = None
        if first.format == "stream" and first.trace_times is not None and first.n_traces:
            self.line_start = float(first.trace_times[0])
        self.detector = detector
        self.snippet_dir = snippet_dir
        self.disk = disk
        self.channels = gpr.channels or list(range(first.n_channels))
        bad = [c for c in self.channels if c >= first.n_channels]
        if bad:
            raise ConfigError(f"gpr.channels {bad} not in the source ({first.n_channels} channels)")
        self.dt_ns = first.dt_ns
        #: Time zero and antenna frequency of the line, from its first block.
        self.calibration: LineCalibration = calibrate_line(
            first, time_zero_setting(gpr, first.dt_ns), gpr.antenna_mhz
        )
        self.geometry = TraceGeometry(
            first.dt_ns,
            first.n_samples,
            self.calibration.time_zero_sample,
            self.calibration.antenna_mhz,
            first.trace_spacing_m or gpr.positioning.trace_spacing_m,
            gpr.velocity_m_per_ns,
        )
        self.chain = ProcessingChain(gpr.processing, self.geometry)
        height = None
        if gpr.windows.time_range_ns is not None:
            height = min(round(gpr.windows.time_range_ns / first.dt_ns), first.n_samples)
        elif gpr.windows.height_samples is not None:
            height = gpr.windows.height_samples
        self.windower = BscanWindower(
            gpr.windows.width_traces or DEFAULT_WIDTH_TRACES,
            gpr.windows.overlap,
            first.dt_ns,
            height,
            self.channels,
            gpr.windows.scales,
        )
        self.positioner = positioner or build_positioner(gpr, self.crs, first)
        spacing = self.positioner.distance_m(np.array([0.0, 1.0]))
        spacing_m = float(np.diff(spacing)[0]) if np.all(np.isfinite(spacing)) else None
        if not spacing_m:
            raise ConfigError(
                f"{first.source}: no trace spacing known (no wheel, no GNSS); "
                "set gpr.positioning.trace_spacing_m"
            )
        self.spacing_m: float = spacing_m
        # a candidate arrives when its window completes: up to the widest window behind the apex
        horizon = self.windower.max_width * self.spacing_m
        same = SameTarget(
            gpr.dedup.distance_m,
            gpr.dedup.depth_m,
            gpr.dedup.channels,
            gpr.dedup.min_overlap,
            tolerance_m=2.0 * self.spacing_m,
            echo_m=gpr.dedup.echo_m,
        )
        self.dedup = Deduplicator(same, horizon_m=horizon)
        self.traces_in = 0
        self.windows_run = 0
        self.detections = 0
        self.fits_fallback = 0
        self.not_diffractions = 0
        #: Boxes whose fit is no plausible target, by :class:`~edge.gpr.hyperbola.Refusal` kind.
        self.fits_refused: dict[str, int] = {}
        antenna = self.calibration.antenna_mhz
        self.gates = FitGates(
            (gpr.fit.velocity_min_m_per_ns, gpr.fit.velocity_max_m_per_ns),
            gpr.fit.apex_margin,
            gpr.fit.direct_wave_periods * 1000.0 / antenna if antenna else 0.0,
        )
        self.timing = {"processing_s": 0.0, "detector_s": 0.0, "localisation_s": 0.0}
        self.fitted_velocities: deque[float] = deque(maxlen=LINE_VELOCITY_FITS)

    def accepts(self, block: TraceBlock) -> bool:
        """Whether ``block`` continues this line (same samples per trace and interval)."""
        return block.n_samples == self.geometry.n_samples and block.dt_ns == self.dt_ns

    def feed(self, block: TraceBlock) -> list[dict[str, Any]]:
        """Process a chunk; messages of cavities the stream has moved past."""
        if not self.accepts(block):
            raise InputError(
                f"{block.source}: trace geometry changed mid-stream "
                f"({block.n_samples} samples x {block.dt_ns} ns)"
            )
        self.positioner.observe(block)
        t0 = time.perf_counter()
        processed = self.chain.process(block.samples[self.channels])
        self.timing["processing_s"] += time.perf_counter() - t0
        self.traces_in += block.n_traces
        candidates = self._detect(self.windower.feed(processed))
        here = float(self.positioner.distance_m(np.array([float(self.traces_in - 1)]))[0])
        return self._report(self.dedup.add(candidates, here))

    def flush(self) -> list[dict[str, Any]]:
        """End of stream: detect in the last window and report every open cavity."""
        candidates = self._detect(self.windower.flush())
        self.dedup.add(candidates, -np.inf)
        return self._report(self.dedup.flush())

    def stats(self) -> dict[str, Any]:
        live = self.positioner.stats() if isinstance(self.positioner, LivePositioner) else {}
        return {
            "traces": self.traces_in,
            "windows": self.windows_run,
            "detections": self.detections,
            "velocity_fallbacks": self.fits_fallback,
            "not_diffractions": self.not_diffractions,
            "fits_refused": dict(self.fits_refused),
            "line_velocity_m_per_ns": self.line_velocity(),
            "calibration": self.calibration.as_dict(),
            **{k: round(v, 3) for k, v in self.timing.items()},
            **live,
        }

    def _detect(self, windows: list[BscanWindow]) -> list[CavityCandidate]:
        out: list[CavityCandidate] = []
        by_shape: dict[tuple[int, int], list[BscanWindow]] = {}
        for w in windows:
            by_shape.setdefault(w.data.shape, []).append(w)
        for group in by_shape.values():
            t0 = time.perf_counter()
            found = self.detector.detect(np.stack([w.data for w in group]))
            self.timing["detector_s"] += time.perf_counter() - t0
            self.windows_run += len(group)
            t0 = time.perf_counter()
            for window, detections in zip(group, found, strict=True):
                for det in detections:
                    cand = self._localise(window, det)
                    if cand is not None:
                        out.append(cand)
            self.timing["localisation_s"] += time.perf_counter() - t0
        return out

    def line_velocity(self) -> float | None:
        """The line's velocity (m/ns, see :data:`LINE_VELOCITY_FITS`), None while unknown."""
        if len(self.fitted_velocities) < LINE_VELOCITY_MIN_FITS:
            return None
        return round(float(np.median(self.fitted_velocities)), 4)

    def _snippet(self, cavity: Cavity, ident: str) -> str | None:
        """Write the snippet unless the disk is out of space (then the message has none)."""
        assert self.snippet_dir is not None
        if self.disk is not None and not self.disk.allows(self.snippet_dir):
            return None
        try:
            return write_snippet(cavity, self.snippet_dir, ident)
        except OSError as exc:
            if exc.errno in NO_SPACE and self.disk is not None:
                self.disk.mark_full(self.snippet_dir)
            else:
                log.warning("snippet %s not written (%s)", ident, exc.strerror or exc)
            return None

    def _localise(self, window: BscanWindow, det: Detection) -> CavityCandidate | None:
        """Hyperbola fit inside the box, then along-track position; None for empty boxes
        and for boxes whose picks are no diffraction (a planar reflector)."""
        if det.trace1 - det.trace0 < 2 or det.sample1 - det.sample0 < 2:
            return None
        self.detections += 1
        box = box_to_profile(window, det.trace0, det.sample0, det.trace1, det.sample1)
        line_v = self.line_velocity()
        fit = fit_box(
            window.data,
            (det.trace0, det.sample0, det.trace1, det.sample1),
            window.dt_ns,
            self.spacing_m,
            self.gpr.velocity_m_per_ns if line_v is None else line_v,
            "configured" if line_v is None else "line",
        )
        why_not = not_a_diffraction(fit)
        if why_not is not None:
            self.not_diffractions += 1
            log.debug("%s: box at trace %d dropped: %s", self.source, box.trace0, why_not)
            return None
        refused = implausible(
            fit,
            (det.trace0, det.sample0, det.trace1, det.sample1),
            window.data.shape[0],
            window.dt_ns,
            self.gates,
        )
        if refused is not None:
            self.fits_refused[refused.kind] = self.fits_refused.get(refused.kind, 0) + 1
            log.debug("%s: box at trace %d refused: %s", self.source, box.trace0, refused.message)
            return None
        if fit.velocity_source != "fit":
            self.fits_fallback += 1
        elif fit.picks >= LINE_VELOCITY_MIN_PICKS:
            self.fitted_velocities.append(fit.velocity_m_per_ns)
        apex = window.first_trace + fit.apex_trace
        where = self.positioner.locate(apex)
        distance = float(self.positioner.distance_m(np.array([apex]))[0])
        d0, d1 = self.positioner.distance_m(np.array([box.trace0, box.trace1]))
        radius = fit.radius_m
        antenna = self.geometry.antenna_mhz
        fresnel = fresnel_radius_m(fit.depth_m, fit.velocity_m_per_ns, antenna) if antenna else 0.0
        if radius is not None:
            width, width_source = 2.0 * radius, "radius"
        elif fresnel > 0:
            width, width_source = 2.0 * fresnel, "fresnel"
        else:
            width, width_source = float(abs(d1 - d0)), "box"
        return CavityCandidate(
            cls=det.cls,
            confidence=float(det.score),
            channel=window.channel,
            apex_trace=float(apex),
            distance_m=distance,
            depth_top_m=float(fit.depth_m),
            width_m=width,
            height_m=None if radius is None else 2.0 * float(radius),
            velocity_m_per_ns=float(fit.velocity_m_per_ns),
            velocity_source=fit.velocity_source,
            t0_ns=float(fit.t0_ns),
            trace_range=(int(np.floor(box.trace0)), int(np.ceil(box.trace1)) - 1),
            time_range_ns=(box.time0_ns, box.time1_ns),
            x=where.x,
            y=where.y,
            lon=where.lon,
            lat=where.lat,
            radius_m=None if radius is None else float(radius),
            reported_distance_m=where.distance_m,
            distance_source=where.distance_source,
            position_note=where.reason,
            snippet=window.data,
            box=(det.trace0, det.sample0, det.trace1, det.sample1),
            window_first_trace=window.first_trace,
            window_traces=window.n_traces,
            width_source=width_source,
            fresnel_m=fresnel,
            radius_sd_m=fit.radius_sd_m,
        )

    def _report(self, cavities: list[Cavity]) -> list[dict[str, Any]]:
        out = []
        for cav in sorted(cavities, key=lambda c: (c.best.distance_m, c.best.channel)):
            snippet = None
            if self.snippet_dir is not None:
                b = cav.best
                ident = cavity_id(
                    self.station, self.source, b.channel, b.apex_trace, self.line_start
                )
                snippet = self._snippet(cav, ident)
            out.append(
                cavity_message(
                    cav,
                    self.station,
                    self.crs,
                    self.source,
                    snippet=snippet,
                    line_start=self.line_start,
                    time_zero_ns=self.calibration.time_zero_ns,
                )
            )
        return out


def detect_file(
    path: str | Path,
    config: StationConfig,
    detector: WindowDetector | None = None,
    snippet_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Cavity messages of one GPR file, fed through the pipeline in chunks of
    :data:`FILE_CHUNK_TRACES` traces (the same messages as one chunk, see
    :mod:`edge.gpr.processing`), then flushed: the processing's working memory stays that of
    one chunk however long the file; the file's own samples are held once, as read."""
    if config.gpr is None:
        raise ConfigError("no [gpr] section in the config")
    block = read_gpr(path)
    require_profile(block)
    detector = detector or build_detector(config.gpr)
    pipe = CavityPipeline(config, block, detector, snippet_dir)
    messages = []
    for start in range(0, block.n_traces, FILE_CHUNK_TRACES):
        messages += pipe.feed(block.slice(start, start + FILE_CHUNK_TRACES))
    return messages + pipe.flush()
