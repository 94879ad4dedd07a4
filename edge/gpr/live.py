"""Live trace input: a TCP trace stream, or a file the GPR unit is still writing.

TCP framing (GeoEdge trace stream, version 1). Every trace of every channel is one
frame: a fixed 28-byte little-endian header, then the samples::

    offset size type     field
    0      4    bytes    magic b"GPRT"
    4      1    uint8    version (1)
    5      1    uint8    sample type code: 1 int16, 2 int32, 3 float32, 4 uint16 (centred by
                         subtracting 32768), 5 uint8 (centred by subtracting 128)
    6      2    uint16   channel (0-based)
    8      4    uint32   trace number (0-based, per channel, increasing by 1)
    12     4    uint32   sample count n
    16     4    float32  dt, ns per sample
    20     8    float64  timestamp, UTC epoch seconds of the trace
    28     n*w  samples  n little-endian words of the type's width w

The frames of one trace number come channel after channel; a trace is complete
when the frame of a later trace number arrives (or all the channels seen so far
have sent it). A gap in trace numbers is counted as ``missing_traces`` and
logged; a bad magic, version or type code ends the connection with InputError.

Back-pressure: the reader thread puts complete chunks into a bounded queue and
BLOCKS when it is full, so TCP flow control slows the sender; no trace is
dropped. :class:`StreamStats` tells how far behind processing is (queue depth,
lag = wall clock minus the newest processed trace's timestamp, and its maximum).
"""

from __future__ import annotations

import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import InputError
from edge.gpr import dt1, dzt, rd3
from edge.gpr.traces import TraceBlock, sibling_file

log = logging.getLogger(__name__)

#: Queue marker: the line ended (connection closed, file complete).
END = "end-of-line"
MAGIC = b"GPRT"
VERSION = 1
FRAME = struct.Struct("<4sBBHIIfd")
#: sample type code -> (numpy dtype, offset subtracted to centre)
SAMPLE_TYPES: dict[int, tuple[str, float]] = {
    1: ("<i2", 0.0),
    2: ("<i4", 0.0),
    3: ("<f4", 0.0),
    4: ("<u2", 32768.0),
    5: ("<u1", 128.0),
}


def encode_frame(
    channel: int,
    trace: int,
    samples: np.ndarray,
    dt_ns: float,
    timestamp: float,
    type_code: int = 3,
) -> bytes:
    """One frame (header + samples) of the trace stream."""
    dtype, offset = SAMPLE_TYPES[type_code]
    words = (np.asarray(samples, np.float64) + offset).astype(dtype)
    head = FRAME.pack(MAGIC, VERSION, type_code, channel, trace, words.size, dt_ns, timestamp)
    return head + words.tobytes()


@dataclass
class StreamStats:
    """Counters of a live source; ``lag_s`` is wall clock minus the newest processed trace."""

    traces_received: int = 0
    traces_processed: int = 0
    missing_traces: int = 0
    queue_depth: int = 0
    queue_capacity: int = 0
    lag_s: float = 0.0
    max_lag_s: float = 0.0
    blocked_s: float = 0.0
    connected: bool = False
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "traces_received": self.traces_received,
            "traces_processed": self.traces_processed,
            "missing_traces": self.missing_traces,
            "queue_depth": self.queue_depth,
            "queue_capacity": self.queue_capacity,
            "lag_s": round(self.lag_s, 3),
            "max_lag_s": round(self.max_lag_s, 3),
            "blocked_s": round(self.blocked_s, 3),
            "falling_behind": self.queue_depth >= max(self.queue_capacity - 1, 1),
            "connected": self.connected,
            "last_error": self.errors[-1] if self.errors else None,
        }


def _read_exact(sock: socket.socket, n: int, stop: threading.Event) -> bytes | None:
    """Exactly ``n`` bytes, or None when the peer closed at a frame boundary or stop is set."""
    buf = bytearray()
    while len(buf) < n:
        if stop.is_set():
            return None
        try:
            part = sock.recv(n - len(buf))
        except TimeoutError:
            continue
        if not part:
            if buf:
                raise InputError(f"trace stream closed inside a frame ({len(buf)} of {n} bytes)")
            return None
        buf.extend(part)
    return bytes(buf)


def read_frames(
    sock: socket.socket, stop: threading.Event
) -> Iterator[tuple[int, int, np.ndarray, float, float]]:
    """(channel, trace, samples float32, dt_ns, timestamp) per frame until the peer closes."""
    while True:
        head = _read_exact(sock, FRAME.size, stop)
        if head is None:
            return
        magic, version, code, channel, trace, n, dt_ns, stamp = FRAME.unpack(head)
        if magic != MAGIC or version != VERSION:
            raise InputError(f"trace stream: bad frame (magic {magic!r}, version {version})")
        if code not in SAMPLE_TYPES:
            raise InputError(f"trace stream: unknown sample type code {code} (expected 1-5)")
        dtype, offset = SAMPLE_TYPES[code]
        body = _read_exact(sock, n * np.dtype(dtype).itemsize, stop)
        if body is None:
            raise InputError(f"trace stream closed inside trace {trace} channel {channel}")
        samples = np.frombuffer(body, dtype=dtype).astype(np.float32)
        if offset:
            samples -= np.float32(offset)
        yield channel, trace, samples, float(dt_ns), float(stamp)


class TraceQueue:
    """The bounded queue between a source thread and processing, with its stats."""

    def __init__(self, capacity: int) -> None:
        self.queue: queue.Queue[TraceBlock | str] = queue.Queue(maxsize=capacity)
        self.stats = StreamStats(queue_capacity=capacity)
        self._lock = threading.Lock()

    def put(self, block: TraceBlock, stop: threading.Event) -> bool:
        """Block until there is room (never drop); False if stopped first."""
        t0 = time.monotonic()
        while not stop.is_set():
            try:
                self.queue.put(block, timeout=0.2)
            except queue.Full:
                continue
            with self._lock:
                self.stats.traces_received += block.n_traces
                self.stats.queue_depth = self.queue.qsize()
                self.stats.blocked_s += time.monotonic() - t0
            return True
        return False

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
        with self._lock:
            self.stats.traces_processed += block.n_traces
            self.stats.queue_depth = self.queue.qsize()
            if block.trace_times is not None and block.n_traces:
                self.stats.lag_s = max(time.time() - float(block.trace_times[-1]), 0.0)
                self.stats.max_lag_s = max(self.stats.max_lag_s, self.stats.lag_s)


class TcpTraceSource:
    """Connects to ``host:port`` and turns frames into TraceBlocks of ``chunk`` traces.

    Reconnects (every ``retry_s``) until ``stop`` is set; trace numbering continues
    from the stream's own trace numbers.
    """

    def __init__(
        self, host: str, port: int, chunk: int = 64, retry_s: float = 1.0, source: str = ""
    ) -> None:
        self.host, self.port, self.chunk, self.retry_s = host, port, chunk, retry_s
        self.source = source or f"tcp://{host}:{port}"

    def run(self, out: TraceQueue, stop: threading.Event) -> None:
        """Read until stop; every complete chunk goes into ``out`` (blocking when full)."""
        while not stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), timeout=2.0) as sock:
                    sock.settimeout(0.5)
                    out.stats.connected = True
                    log.info("connected to trace stream %s", self.source)
                    self._pump(sock, out, stop)
                    out.end_of_line(stop)
            except (OSError, InputError) as exc:
                if not stop.is_set():
                    out.stats.errors.append(f"{self.source}: {exc}")
                    log.warning(
                        "trace stream %s: %s; retrying in %.0f s", self.source, exc, self.retry_s
                    )
            out.stats.connected = False
            stop.wait(self.retry_s)

    def _pump(self, sock: socket.socket, out: TraceQueue, stop: threading.Event) -> None:
        channels: list[int] = []
        pending: dict[int, np.ndarray] = {}
        current, stamp, dt_ns = -1, 0.0, 0.0
        rows: list[np.ndarray] = []
        times: list[float] = []
        first = 0
        last_done = -1

        def complete() -> None:
            nonlocal last_done, first
            if not pending:
                return
            if not channels:
                channels.extend(sorted(pending))
            if sorted(pending) != channels:
                raise InputError(
                    f"trace {current}: channels {sorted(pending)}, expected {channels}"
                )
            if last_done >= 0 and current != last_done + 1:
                out.stats.missing_traces += current - last_done - 1
                log.warning("trace stream: traces %d-%d missing", last_done + 1, current - 1)
                flush()
                first = current
            if not rows:
                first = current
            rows.append(np.stack([pending[c] for c in channels]))
            times.append(stamp)
            pending.clear()
            last_done = current
            if len(rows) >= self.chunk:
                flush()

        def flush() -> None:
            if rows:
                block = TraceBlock(
                    samples=np.stack(rows, axis=2),
                    dt_ns=dt_ns,
                    first_trace=first,
                    trace_times=np.asarray(times),
                    format="stream",
                    source=self.source,
                    header={"channels": list(channels)},
                )
                rows.clear()
                times.clear()
                out.put(block, stop)

        for channel, trace, samples, frame_dt_ns, t in read_frames(sock, stop):
            dt_ns = frame_dt_ns
            if trace != current:
                complete()
                current, stamp = trace, t
            pending[channel] = samples
            if channels and len(pending) == len(channels):
                complete()
        complete()
        flush()


@dataclass(frozen=True)
class RecordLayout:
    """A fixed-record file: data offset, bytes per trace, and how to decode records."""

    offset: int
    record_bytes: int
    decode: Callable[[bytes], np.ndarray]
    template: TraceBlock


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
        return RecordLayout(
            h.data_offset,
            h.scan_bytes,
            lambda b: dzt.decode_scans(np.frombuffer(b, dtype), h)[0],
            template,
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

        return RecordLayout(0, rec, decode, template)
    raise InputError(
        f"{path}: cannot follow a growing {suffix or 'extension-less'} file "
        "(expected .dzt, .dt1, .rd3 or .rd7)"
    )


class FileTailSource:
    """Follows a file the GPR unit is still writing; yields new complete traces as blocks.

    Waits (polling every ``poll_s``) for the header, then for whole records; a
    partial record at the end is left until it is complete. The file ends when it
    has not grown for ``idle_s`` seconds (None: follow until stop).
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
        out.stats.connected = True
        done, last_growth = 0, time.monotonic()
        with self.path.open("rb") as f:
            while not stop.is_set():
                size = self.path.stat().st_size
                whole = max(size - layout.offset, 0) // layout.record_bytes
                if whole > done:
                    n = min(whole - done, self.chunk)
                    f.seek(layout.offset + done * layout.record_bytes)
                    samples = layout.decode(f.read(n * layout.record_bytes))
                    block = TraceBlock(
                        samples=samples,
                        dt_ns=layout.template.dt_ns,
                        time_zero_sample=layout.template.time_zero_sample,
                        first_trace=done,
                        trace_times=np.full(n, time.time()),
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
