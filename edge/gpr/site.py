"""The GPR unit site of the daemon: live traces in, ``gpr/cavity`` messages out.

``[gpr] source`` is ``tcp://HOST:PORT`` (the trace stream of :mod:`edge.gpr.live.sources`,
reconnecting), or a file path relative to the config: read once (the site then
returns and the daemon stops) or, with ``follow = true``, tailed while the GPR
unit writes it. A source thread fills a bounded queue; :meth:`GprUnit.run`
processes it. One connection or one file is one line: at its end the pipeline is
flushed (every open cavity reported) and the next line starts afresh.

Live GNSS (``[gpr.positioning] gnss`` with a live source: ``tcp://`` or ``follow``):
a second thread reads the receiver's NMEA (a tailed log or ``tcp://HOST:PORT``)
into a time-indexed track that outlives lines; every line positions its traces
by their UTC times in it (:class:`~edge.gpr.positioning.LivePositioner`).
``stats()`` carries the GNSS input's counters under ``gnss``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from edge.config import StationConfig
from edge.config.base import TcpAddress
from edge.errors import ConfigError, GeoEdgeError, InputError
from edge.gpr.formats.readers import read_gpr
from edge.gpr.live.gnss import GnssInput
from edge.gpr.live.sources import FileTailSource, TcpTraceSource, TraceQueue
from edge.gpr.positioning import LivePositioner
from edge.gpr.repair import RepairStats, repair_block
from edge.gpr.stream import CavityPipeline, build_detector
from edge.gpr.traces import TraceBlock
from edge.station.disk_space import DiskSpace
from edge.station.messages import utc_iso
from edge.station.site import Emit, Subscribe

log = logging.getLogger(__name__)


class TraceSource(Protocol):
    """A thread body that fills the queue with a line's blocks, each line closed by END."""

    def run(self, out: TraceQueue, stop: threading.Event) -> None:
        """Put blocks (and END) into ``out`` until the source ends or ``stop`` is set."""


class _WholeFileSource:
    """A finished file, put into the queue in chunks, then END."""

    def __init__(self, path: Path, chunk: int) -> None:
        self.path, self.chunk = path, chunk

    def run(self, out: TraceQueue, stop: threading.Event) -> None:
        block = read_gpr(self.path)
        for start in range(0, block.n_traces, self.chunk):
            if not out.put(block.slice(start, start + self.chunk), stop):
                return
        out.end_of_line(stop)


class GprUnit:
    """``GprUnit(config, emit)``: ``run(stop)`` until stop (or the end of a one-shot file)."""

    def __init__(self, config: StationConfig, emit: Emit) -> None:
        if config.gpr is None:
            raise ConfigError("a GPR unit needs a [gpr] section")
        self.config, self.emit, self.gpr = config, emit, config.gpr
        self.detector = build_detector(self.gpr)
        live = self.gpr.live
        self.queue = TraceQueue(live.queue_chunks, round(live.queue_mb * (1 << 20)))
        self.one_shot = False
        src = self.gpr.source
        self.source: TraceSource
        if isinstance(src, TcpAddress):
            self.source = TcpTraceSource(
                src.host, src.port, live.chunk_traces, max_channels=live.max_channels
            )
        elif self.gpr.follow:
            self.source = FileTailSource(src, self.gpr.live.chunk_traces, self.gpr.live.poll_s)
        else:
            self.source = _WholeFileSource(src, self.gpr.live.chunk_traces)
            self.one_shot = True
        self.gnss: GnssInput | None = None
        if self.gpr.positioning.gnss is not None and not self.one_shot:
            self.gnss = GnssInput(
                self.gpr.positioning.gnss,
                config.station.crs,
                self.gpr.positioning,
                self.gpr.live.poll_s,
            )
        self.snippet_dir = self.gpr.snippets
        self.disk = DiskSpace(config.storage.min_free_bytes)
        self._progress = time.monotonic()
        self.pipeline: CavityPipeline | None = None
        #: The current line could not be processed: its chunks are skipped until it ends.
        self.failed_line = False
        self.repairs = RepairStats()
        self.last_line: dict[str, Any] | None = None
        self.cavities = 0
        self.lines = 0
        self.last_cavity: float | None = None

    def run(self, stop: threading.Event) -> None:
        gnss = None if self.gnss is None else self.gnss.start(stop)
        thread = threading.Thread(target=self._source, args=(stop,), name="gpr-source", daemon=True)
        thread.start()
        while not stop.is_set():
            self._progress = time.monotonic()
            item = self.queue.get(timeout=0.2)
            if item is None:
                if self.one_shot and not thread.is_alive() and self.queue.queue.empty():
                    break
                continue
            if isinstance(item, str):  # sources.END, the only string the queue carries
                self._end_line()
                if self.one_shot:
                    break
                continue
            self._process(item)
            self.queue.done(item)
        self._end_line()
        thread.join(timeout=2.0)
        if gnss is not None:
            gnss.join(timeout=2.0)

    def progress(self) -> float:
        """``time.monotonic()`` of the last turn of the processing loop (it turns every
        0.2 s while waiting for traces): the daemon's watchdog pings while it moves."""
        return self._progress

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": str(self.gpr.source),
            "lines": self.lines,
            "collections": self.lines,
            "cavities": self.cavities,
            "last_collection": None if self.last_cavity is None else utc_iso(self.last_cavity),
            **self.queue.stats.as_dict(),
            **self.repairs.as_dict(),
            **self.disk.stats(),
        }
        if self.pipeline is not None:
            out["pipeline"] = self.pipeline.stats()
        if self.last_line is not None:
            out["last_line"] = self.last_line
        if self.gnss is not None:
            out["gnss"] = {"source": str(self.gnss.source), **self.gnss.stats.as_dict()}
        return out

    def _live_positioner(self, first: TraceBlock) -> LivePositioner | None:
        """A line's positioner on the live GNSS track; None without live GNSS or a spacing
        (the pipeline then says what is missing)."""
        spacing = first.trace_spacing_m or self.gpr.positioning.trace_spacing_m
        if self.gnss is None or spacing is None:
            return None
        if first.trace_times is None:
            log.warning("%s: no trace times; GNSS cannot place this line", first.source)
        pos = self.gpr.positioning
        return LivePositioner(
            self.gnss.track,
            spacing,
            time_offset_s=pos.trace_time_offset_s,
            max_wait_s=pos.max_wait_s,
        )

    def _source(self, stop: threading.Event) -> None:
        try:
            self.source.run(self.queue, stop)
        except InputError as exc:
            self.queue.stats.errors.append(str(exc))
            log.error("%s", exc)
            self.queue.end_of_line(stop)

    def _process(self, item: TraceBlock) -> None:
        """One chunk through the line's pipeline. A chunk that cannot be repaired is dropped;
        a new trace geometry starts a new line; an error in the line's processing ends that
        line (one log line, counted) and the unit goes on with the next one."""
        block = repair_block(item, self.repairs)
        if block is None:
            return
        if self.pipeline is not None and not self.pipeline.accepts(block):
            log.warning("%s: trace geometry changed: a new line starts", block.source)
            self._end_line()
        if self.failed_line:
            return
        try:
            if self.pipeline is None:
                self.pipeline = CavityPipeline(
                    self.config,
                    block,
                    self.detector,
                    self.snippet_dir,
                    self._live_positioner(block),
                    self.disk,
                )
            self._send(self.pipeline.feed(block))
        except (GeoEdgeError, ValueError, ArithmeticError) as exc:
            self.repairs.lines_failed += 1
            log.error(
                "%s: line abandoned at trace %d (%s: %s); the unit goes on with the next line",
                block.source, block.first_trace, type(exc).__name__, exc,
            )  # fmt: skip
            self.pipeline, self.failed_line = None, True

    def _end_line(self) -> None:
        self.repairs.new_line()
        self.failed_line = False
        if self.pipeline is None:
            return
        try:
            self._send(self.pipeline.flush())
        except (GeoEdgeError, ValueError, ArithmeticError) as exc:
            self.repairs.lines_failed += 1
            log.error(
                "%s: end of line failed (%s: %s)", self.pipeline.source, type(exc).__name__, exc
            )
        self.last_line = self.pipeline.stats()
        self.lines += 1
        log.info("line %d done: %s", self.lines, self.last_line)
        self.pipeline = None

    def _send(self, messages: list[dict[str, Any]]) -> None:
        for msg in messages:
            self.emit("cavity", msg)
            self.cavities += 1
            self.last_cavity = time.time()


def gpr_site(config: StationConfig, emit: Emit, subscribe: Subscribe) -> GprUnit:
    """The daemon's factory for a GPR unit (it takes no MQTT inputs: ``subscribe`` unused)."""
    del subscribe
    return GprUnit(config, emit)
