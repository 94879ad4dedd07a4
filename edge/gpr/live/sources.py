"""Live trace input: a TCP trace stream, or a file the GPR unit is still writing.

The TCP framing (one frame per trace per channel, with a UTC timestamp) and how
the reader survives garbage bytes and frames cut short are in
:mod:`edge.gpr.live.framing`. The frames of one trace number come channel after
channel; a trace is complete when all the line's channels have sent it (or a
later trace number arrives). A gap in trace numbers is counted as
``missing_traces`` and logged, and so is a trace that lacks a channel (it is
dropped). One connection is one line; within a connection, trace numbers going
back, or a change of sample count, dt or channel set, also start a new line.
A connection that drops ends the line; the source reconnects with back-off.

Back-pressure: the reader thread puts complete chunks into a bounded queue and
BLOCKS when it is full, so TCP flow control slows the sender; no trace is
dropped. :class:`StreamStats` tells how far behind processing is (queue depth,
lag = wall clock minus the newest processed trace's timestamp, and its maximum)
and what the framing skipped (``garbage_bytes``, ``resyncs``, ``truncated_traces``).
"""

from __future__ import annotations

import calendar
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import InputError
from edge.gpr.formats import dt1, dzt, rd3
from edge.gpr.live.framing import Frame, FramingCounters, read_frames
from edge.gpr.traces import TraceBlock, sibling_file
from edge.station.backoff import Backoff

log = logging.getLogger(__name__)

#: Queue marker: the line ended (connection closed, file complete).
END = "end-of-line"


@dataclass
class StreamStats(FramingCounters):
    """Counters of a live source; ``lag_s`` is wall clock minus the newest processed trace.

    ``garbage_bytes``, ``resyncs`` and ``truncated_traces`` are the framing's
    (:class:`edge.gpr.live.framing.FramingCounters`): bytes skipped, runs of garbage
    resynchronised, frames cut short and discarded.
    """

    traces_received: int = 0
    traces_processed: int = 0
    missing_traces: int = 0
    queue_depth: int = 0
    queue_capacity: int = 0
    queue_bytes: int = 0
    #: Frames of a channel at or above ``[gpr.live] max_channels``: refused.
    frames_refused: int = 0
    lag_s: float = 0.0
    max_lag_s: float = 0.0
    blocked_s: float = 0.0
    connected: bool = False
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """The counters (times rounded to ms), ``falling_behind`` and the last error."""
        out: dict[str, object] = {k: v for k, v in asdict(self).items() if k != "errors"}
        for key in ("lag_s", "max_lag_s", "blocked_s"):
            out[key] = round(getattr(self, key), 3)
        out["falling_behind"] = self.queue_depth >= max(self.queue_capacity - 1, 1)
        out["last_error"] = self.errors[-1] if self.errors else None
        return out


class TraceQueue:
    """The queue between a source thread and processing, bounded by chunks and by bytes of
    samples (``max_bytes``: a peer sending huge or many-channel traces cannot grow memory
    past it; one chunk is always let in so that any chunk fits), with its stats."""

    def __init__(self, capacity: int, max_bytes: int = 256 << 20) -> None:
        self.queue: queue.Queue[TraceBlock | str] = queue.Queue(maxsize=capacity)
        self.stats = StreamStats(queue_capacity=capacity)
        self.max_bytes = max_bytes
        self._bytes = 0
        self._room = threading.Condition()
        self._lock = threading.Lock()

    def put(self, block: TraceBlock, stop: threading.Event) -> bool:
        """Block until there is room (never drop); False if stopped first."""
        t0 = time.monotonic()
        size = block.samples.nbytes
        with self._room:
            while self._bytes and self._bytes + size > self.max_bytes:
                if stop.is_set():
                    return False
                self._room.wait(0.2)
            self._bytes += size
        while not stop.is_set():
            try:
                self.queue.put(block, timeout=0.2)
            except queue.Full:
                continue
            with self._lock:
                self.stats.traces_received += block.n_traces
                self.stats.queue_depth = self.queue.qsize()
                self.stats.queue_bytes = self._bytes
                self.stats.blocked_s += time.monotonic() - t0
            return True
        self._release(size)
        return False

    def _release(self, size: int) -> None:
        with self._room:
            self._bytes -= size
            self._room.notify_all()

    def end_of_line(self, stop: threading.Event) -> None:
        """Mark the end of a line (a closed connection, the end of a file) with :data:`END`."""
        while not stop.is_set():
            try:
                self.queue.put(END, timeout=0.2)
                return
            except queue.Full:
                continue

    def get(self, timeout: float) -> TraceBlock | str | None:
        """The next block, :data:`END` at the end of a line, or None after ``timeout`` s."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def done(self, block: TraceBlock) -> None:
        """Record that ``block`` has been processed (updates lag from its trace times)."""
        self._release(block.samples.nbytes)
        with self._lock:
            self.stats.queue_bytes = self._bytes
            self.stats.traces_processed += block.n_traces
            self.stats.queue_depth = self.queue.qsize()
            if block.trace_times is not None and block.n_traces:
                self.stats.lag_s = max(time.time() - float(block.trace_times[-1]), 0.0)
                self.stats.max_lag_s = max(self.stats.max_lag_s, self.stats.lag_s)


class TcpTraceSource:
    """Connects to ``host:port`` and turns frames into TraceBlocks of ``chunk`` traces.

    Reconnects until ``stop`` is set, after ``retry_s`` doubling per failed attempt
    up to ``max_retry_s`` (reset once connected); trace numbering comes from the
    stream's own trace numbers.
    """

    def __init__(
        self,
        host: str,
        port: int,
        chunk: int = 64,
        retry_s: float = 1.0,
        source: str = "",
        max_retry_s: float = 10.0,
        max_channels: int = 64,
    ) -> None:
        self.host, self.port, self.chunk = host, port, chunk
        self.max_channels = max_channels
        self.backoff = Backoff(retry_s, max_retry_s)
        self.source = source or f"tcp://{host}:{port}"

    def run(self, out: TraceQueue, stop: threading.Event) -> None:
        """Read until stop; every complete chunk goes into ``out`` (blocking when full)."""
        while not stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), timeout=2.0) as sock:
                    sock.settimeout(0.5)
                    out.stats.connected = True
                    self.backoff.succeeded()
                    log.info("connected to trace stream %s", self.source)
                    lines = _LineAssembler(self.chunk, self.source, out, stop, self.max_channels)
                    for frame in read_frames(sock, stop, out.stats, self.source):
                        lines.add(frame)
                    lines.end_line()
            except OSError as exc:
                if not stop.is_set():
                    out.stats.errors.append(f"{self.source}: {exc}")
                    log.warning("trace stream %s: %s", self.source, exc)
            out.stats.connected = False
            if not stop.is_set():
                delay = self.backoff.failed()
                log.info("trace stream %s: reconnecting in %.0f s", self.source, delay)
                stop.wait(delay)


class _LineAssembler:
    """Frames of one connection -> complete traces -> chunks of ``chunk`` traces -> queue."""

    def __init__(
        self,
        chunk: int,
        source: str,
        out: TraceQueue,
        stop: threading.Event,
        max_channels: int = 64,
    ) -> None:
        self.chunk, self.source, self.out, self.stop = chunk, source, out, stop
        self.max_channels = max_channels
        self._refusing = False
        self._reset()

    def _reset(self) -> None:
        self.channels: list[int] = []
        self.pending: dict[int, np.ndarray] = {}
        self.current, self.stamp = -1, 0.0
        self.geometry: tuple[int, float] | None = None
        self.rows: list[np.ndarray] = []
        self.times: list[float] = []
        self.first, self.last_done = 0, -1
        self.sent = 0

    def add(self, frame: Frame) -> None:
        if frame.channel >= self.max_channels:
            self.out.stats.frames_refused += 1
            if not self._refusing:
                self._refusing = True
                log.warning(
                    "%s: frames of channel %d refused (the unit takes channels 0..%d: "
                    "[gpr.live] max_channels); logged once per connection",
                    self.source, frame.channel, self.max_channels - 1,
                )  # fmt: skip
            return
        geometry = (frame.samples.size, frame.dt_ns)
        if self.geometry is not None and geometry != self.geometry:
            log.warning(
                "%s: trace %d has %d samples x %g ns (line had %d x %g): new line",
                self.source,
                frame.trace,
                *geometry,
                *self.geometry,
            )
            self.end_line()
        self.geometry = geometry
        if frame.trace != self.current:
            self._complete()
            if 0 <= frame.trace <= self.last_done:
                log.info("%s: trace numbers restart at %d: new line", self.source, frame.trace)
                self.end_line()
                self.geometry = geometry
            self.current, self.stamp = frame.trace, frame.timestamp
        self.pending[frame.channel] = frame.samples
        if self.channels and len(self.pending) == len(self.channels):
            self._complete()

    def end_line(self) -> None:
        """Flush what is complete and, if the line had traces, mark its end in the queue."""
        self._complete()
        self._flush()
        if self.sent:
            self.out.end_of_line(self.stop)
        self._reset()

    def _complete(self) -> None:
        if not self.pending:
            return
        have = sorted(self.pending)
        if not self.channels:
            self.channels = have
        elif have != self.channels and set(have) > set(self.channels):
            log.warning("%s: channels %s, line had %s: new line", self.source, have, self.channels)
            pending, current, stamp, geometry = (
                self.pending,
                self.current,
                self.stamp,
                self.geometry,
            )
            self.pending = {}
            self.end_line()
            self.pending, self.current, self.stamp = pending, current, stamp
            self.channels, self.geometry = have, geometry
        elif have != self.channels:
            log.warning(
                "%s: trace %d has channels %s of %s; dropped",
                self.source,
                self.current,
                have,
                self.channels,
            )
            self.pending.clear()
            return
        if self.last_done >= 0 and self.current != self.last_done + 1:
            self.out.stats.missing_traces += self.current - self.last_done - 1
            log.warning(
                "%s: traces %d-%d missing", self.source, self.last_done + 1, self.current - 1
            )
            self._flush()
        if not self.rows:
            self.first = self.current
        self.rows.append(np.stack([self.pending[c] for c in self.channels]))
        self.times.append(self.stamp)
        self.pending.clear()
        self.last_done = self.current
        if len(self.rows) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if not self.rows or self.geometry is None:
            return
        block = TraceBlock(
            samples=np.stack(self.rows, axis=2),
            dt_ns=self.geometry[1],
            first_trace=self.first,
            trace_times=np.asarray(self.times),
            format="stream",
            source=self.source,
            header={"channels": list(self.channels)},
        )
        self.rows, self.times = [], []
        if self.out.put(block, self.stop):
            self.sent += block.n_traces


@dataclass(frozen=True)
class RecordLayout:
    """A fixed-record file: data offset, bytes per trace, how to decode records and,
    where the format has them, the traces' UTC times (``times(records, first_index)``,
    epoch s; None: the format keeps no trace times)."""

    offset: int
    record_bytes: int
    decode: Callable[[bytes], np.ndarray]
    template: TraceBlock
    times: Callable[[bytes, int], np.ndarray] | None = None


def record_layout(path: Path) -> RecordLayout:
    """The record layout of a DZT, DT1 or RD3/RD7 file, from its header (InputError if not yet)."""
    suffix = path.suffix.lower()
    if suffix == ".dzt":
        head = path.read_bytes()[: dzt.HEADER_BYTES]
        h = dzt.read_header(path, head, path.stat().st_size)
        dtype = {8: "<u1", 16: "<u2", 32: "<i4"}[h.bits]
        template = TraceBlock(
            np.zeros((h.n_channels, h.n_samples, 0), np.float32),
            h.dt_ns,
            max(0.0, -h.position_ns / h.dt_ns),
            trace_spacing_m=1 / h.scans_per_m if h.scans_per_m > 0 else None,
            antenna_mhz=dzt.antenna_mhz(h.antenna),
            bits=h.bits,
            format="dzt",
            source=str(path),
            header=dzt.header_dict(h),
        )
        times = None
        if h.created is not None and h.scans_per_s > 0:
            t0, rate = h.created.timestamp(), h.scans_per_s
            n_rec = h.scan_bytes

            def times(b: bytes, first: int) -> np.ndarray:
                return t0 + (first + np.arange(len(b) // n_rec)) / rate

        return RecordLayout(
            h.data_offset,
            h.scan_bytes,
            lambda b: dzt.decode_scans(np.frombuffer(b, dtype), h)[0],
            template,
            times,
        )
    if suffix in (".rd3", ".rd7"):
        rad = sibling_file(path, ".rad")
        if rad is None:
            raise InputError(f"{path}: no RAD header next to it")
        info = rd3.read_rad(rad)
        n, window = int(info["SAMPLES"]), float(info["TIMEWINDOW"])
        dtype = "<i4" if suffix == ".rd7" else "<i2"
        template = TraceBlock(
            np.zeros((1, n, 0), np.float32), window / n, format=suffix[1:], source=str(path)
        )
        width = np.dtype(dtype).itemsize
        return RecordLayout(
            0,
            n * width,
            lambda b: np.frombuffer(b, dtype).reshape(-1, n).T[None].astype(np.float32),
            template,
        )
    if suffix == ".dt1":
        hd_path = sibling_file(path, ".hd")
        if hd_path is None:
            raise InputError(f"{path}: no HD header next to it")
        hd = dt1.read_hd(hd_path)
        n = int(float(hd["NUMBER OF PTS/TRC"]))
        window = float(hd["TOTAL TIME WINDOW"])
        rec = dt1.TRACE_HEADER_BYTES + 2 * n
        template = TraceBlock(
            np.zeros((1, n, 0), np.float32), window / n, format="dt1", source=str(path)
        )

        def decode(b: bytes) -> np.ndarray:
            r = np.frombuffer(b, np.uint8).reshape(-1, rec)[:, dt1.TRACE_HEADER_BYTES :]
            return r.copy().view("<i2").T[None].astype(np.float32)

        day = dt1.survey_date(hd_path)
        if day is None:
            return RecordLayout(0, rec, decode, template)
        midnight = calendar.timegm(day.timetuple())

        def times(b: bytes, first: int) -> np.ndarray:
            heads = np.frombuffer(b, np.uint8).reshape(-1, rec)[:, : dt1.TRACE_HEADER_BYTES]
            return midnight + dt1.time_of_day_s(heads)

        return RecordLayout(0, rec, decode, template, times)
    raise InputError(
        f"{path}: cannot follow a growing {suffix or 'extension-less'} file "
        "(expected .dzt, .dt1, .rd3 or .rd7)"
    )


class FileTailSource:
    """Follows a file the GPR unit is still writing; yields new complete traces as blocks.

    Waits (polling every ``poll_s``) for the header, then for whole records; a
    partial record at the end is left until it is complete. The file ends when it
    has not grown for ``idle_s`` seconds (None: follow until stop). Trace times are
    the format's own (DZT: header creation time + scan / scans per second; DT1: each
    trace header's time of day on the HD's date), else None and one log line says
    that only the trace spacing places the traces.
    """

    def __init__(
        self, path: str | Path, chunk: int = 64, poll_s: float = 0.2, idle_s: float | None = None
    ) -> None:
        self.path, self.chunk, self.poll_s, self.idle_s = Path(path), chunk, poll_s, idle_s

    def run(self, out: TraceQueue, stop: threading.Event) -> None:
        layout = None
        while layout is None and not stop.is_set():
            try:
                layout = record_layout(self.path)
            except (InputError, OSError, KeyError, ValueError):
                stop.wait(self.poll_s)
        if layout is None:
            return
        if layout.times is None:
            log.info(
                "%s: the format keeps no trace times here; only the trace spacing places "
                "the traces (no GNSS matching)",
                self.path,
            )
        out.stats.connected = True
        done, last_growth = 0, time.monotonic()
        with self.path.open("rb") as f:
            while not stop.is_set():
                size = self.path.stat().st_size
                whole = max(size - layout.offset, 0) // layout.record_bytes
                if whole > done:
                    n = min(whole - done, self.chunk)
                    f.seek(layout.offset + done * layout.record_bytes)
                    records = f.read(n * layout.record_bytes)
                    samples = layout.decode(records)
                    block = TraceBlock(
                        samples=samples,
                        dt_ns=layout.template.dt_ns,
                        time_zero_sample=layout.template.time_zero_sample,
                        first_trace=done,
                        trace_times=None if layout.times is None else layout.times(records, done),
                        trace_spacing_m=layout.template.trace_spacing_m,
                        antenna_mhz=layout.template.antenna_mhz,
                        bits=layout.template.bits,
                        format=layout.template.format,
                        source=str(self.path),
                    )
                    if not out.put(block, stop):
                        return
                    done += n
                    last_growth = time.monotonic()
                    continue
                if self.idle_s is not None and time.monotonic() - last_growth > self.idle_s:
                    out.end_of_line(stop)
                    return
                stop.wait(self.poll_s)
