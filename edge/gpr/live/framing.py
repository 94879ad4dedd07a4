"""The GeoEdge trace stream framing (version 1), and a parser that survives bad bytes.

Every trace of every channel is one frame: a fixed 28-byte little-endian header,
then the samples::

    offset size type     field
    0      4    bytes    magic b"GPRT"
    4      1    uint8    version (1)
    5      1    uint8    sample type code: 1 int16, 2 int32, 3 float32, 4 uint16 (centred by
                         subtracting 32768), 5 uint8 (centred by subtracting 128)
    6      2    uint16   channel (0-based)
    8      4    uint32   trace number (0-based, per channel, increasing by 1)
    12     4    uint32   sample count n (1 .. 65536)
    16     4    float32  dt, ns per sample (finite, > 0)
    20     8    float64  timestamp, UTC epoch seconds of the trace (finite, >= 0)
    28     n*w  samples  n little-endian words of the type's width w

Resynchronisation. A header that breaks any of the rules above (wrong magic,
version or type code, an absurd sample count, a non-finite dt or time) is
garbage: the parser skips to the next ``b"GPRT"`` that starts a valid header,
counting ``garbage_bytes`` and one ``resyncs`` per run of garbage, and logs one
line per run (not per byte). Nothing is allocated from an invalid header.

Truncated frames. A frame whose sample block is followed by neither the next
magic nor the end of the stream is checked for a valid header inside its own
sample block: if there is one, the frame was cut short (the sender dropped it
mid-frame) and is discarded (``truncated_traces``), and parsing resumes at that
header. A frame cut off by the end of the connection is counted the same way.
The framing has no checksum, so a frame cut short and followed by more garbage
than its missing part cannot be told from a whole one.
"""

from __future__ import annotations

import logging
import math
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

log = logging.getLogger(__name__)

MAGIC = b"GPRT"
VERSION = 1
FRAME = struct.Struct("<4sBBHIIfd")
#: Largest sample count of a valid frame; a bigger one is garbage, never allocated.
MAX_SAMPLES = 65536
#: sample type code -> (numpy dtype, offset subtracted to centre)
SAMPLE_TYPES: dict[int, tuple[str, float]] = {
    1: ("<i2", 0.0),
    2: ("<i4", 0.0),
    3: ("<f4", 0.0),
    4: ("<u2", 32768.0),
    5: ("<u1", 128.0),
}


class Frame(NamedTuple):
    """One decoded frame: samples float32 (centred), dt in ns, timestamp UTC epoch s."""

    channel: int
    trace: int
    samples: np.ndarray
    dt_ns: float
    timestamp: float


@dataclass
class FramingCounters:
    """What the parser skipped: garbage bytes, runs of garbage, frames cut short."""

    garbage_bytes: int = 0
    resyncs: int = 0
    truncated_traces: int = 0


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


def _header(buf: bytearray, pos: int) -> tuple[int, int, int, int, float, float] | None:
    """(code, channel, trace, n, dt_ns, timestamp) of a valid header at ``pos``, else None."""
    magic, version, code, channel, trace, n, dt_ns, stamp = FRAME.unpack_from(buf, pos)
    if magic != MAGIC or version != VERSION or code not in SAMPLE_TYPES:
        return None
    if not 0 < n <= MAX_SAMPLES or not (math.isfinite(dt_ns) and dt_ns > 0):
        return None
    if not (math.isfinite(stamp) and stamp >= 0):
        return None
    return code, channel, trace, n, float(dt_ns), float(stamp)


class FrameParser:
    """Bytes in (:meth:`feed`), whole frames out (:meth:`frames`); see the module docstring.

    ``counters`` receives the garbage/resync/truncation counts (a
    :class:`~edge.gpr.live.sources.StreamStats` has the same fields); ``source`` names
    the stream in log lines.
    """

    def __init__(self, counters: FramingCounters | None = None, source: str = "trace stream"):
        self.counters = counters if counters is not None else FramingCounters()
        self.source = source
        self._buf = bytearray()
        self._garbage_run = 0

    def feed(self, data: bytes) -> None:
        self._buf.extend(data)

    def frames(self, final: bool = False) -> list[Frame]:
        """Every whole frame in the buffer. A frame is held until a header's worth of
        bytes after it has arrived (to tell a frame cut short); ``final`` (the sender
        is idle or gone) releases it without them."""
        buf, out, pos = self._buf, [], 0
        while len(buf) - pos >= len(MAGIC):
            if buf[pos : pos + 4] != MAGIC:
                pos = self._skip_to_magic(pos)
                continue
            if len(buf) - pos < FRAME.size:
                break
            head = _header(buf, pos)
            if head is None:
                pos = self._skip_to_magic(pos + 1, skipped_from=pos)
                continue
            code, channel, trace, n, dt_ns, stamp = head
            dtype, offset = SAMPLE_TYPES[code]
            size = FRAME.size + n * np.dtype(dtype).itemsize
            if len(buf) - pos < (size if final else size + FRAME.size):
                break
            follows = bytes(buf[pos + size : pos + size + len(MAGIC)])
            if follows != MAGIC[: len(follows)]:
                cut = self._header_inside(pos + 1, pos + size)
                if cut is not None:
                    self._truncated(trace, channel, "a new frame starts inside it")
                    pos = cut
                    continue
            self._end_garbage_run(f"before trace {trace} channel {channel}")
            samples = np.frombuffer(buf, dtype, count=n, offset=pos + FRAME.size)
            samples = samples.astype(np.float32)
            if offset:
                samples -= np.float32(offset)
            out.append(Frame(channel, trace, samples, dt_ns, stamp))
            pos += size
        del buf[:pos]
        return out

    def close(self) -> None:
        """The stream ended: what is left is a frame cut off, or garbage."""
        buf = self._buf
        head = _header(buf, 0) if len(buf) >= FRAME.size else None
        if head is not None or (buf and MAGIC.startswith(bytes(buf[:4]))):
            where = f"trace {head[2]} channel {head[1]}" if head else "a frame header"
            self.counters.truncated_traces += 1
            log.warning("%s: stream ended inside %s; discarded", self.source, where)
        elif buf:
            self._garbage_run += len(buf)
            self.counters.garbage_bytes += len(buf)
        self._end_garbage_run("at the end of the stream", resynced=False)
        buf.clear()

    def _skip_to_magic(self, start: int, skipped_from: int | None = None) -> int:
        """Position of the next magic at or after ``start`` (or of the last 3 bytes,
        which may begin one); the bytes passed over count as garbage."""
        buf = self._buf
        found = buf.find(MAGIC, start)
        new = found if found >= 0 else max(len(buf) - (len(MAGIC) - 1), start)
        skipped = new - (start if skipped_from is None else skipped_from)
        self._garbage_run += skipped
        self.counters.garbage_bytes += skipped
        return new

    def _header_inside(self, start: int, stop: int) -> int | None:
        """Position of the first valid header beginning in ``[start, stop)``, else None."""
        buf = self._buf
        k = buf.find(MAGIC, start, stop + len(MAGIC) - 1)
        while 0 <= k < stop:
            if len(buf) - k >= FRAME.size and _header(buf, k) is not None:
                return k
            k = buf.find(MAGIC, k + 1, stop + len(MAGIC) - 1)
        return None

    def _truncated(self, trace: int, channel: int, why: str) -> None:
        self.counters.truncated_traces += 1
        log.warning(
            "%s: trace %d channel %d cut short (%s); discarded", self.source, trace, channel, why
        )

    def _end_garbage_run(self, where: str, resynced: bool = True) -> None:
        if not self._garbage_run:
            return
        if resynced:
            self.counters.resyncs += 1
        log.warning(
            "%s: skipped %d garbage byte(s) %s%s",
            self.source,
            self._garbage_run,
            where,
            "; resynchronised" if resynced else "",
        )
        self._garbage_run = 0


def read_frames(
    sock: socket.socket,
    stop: threading.Event,
    counters: FramingCounters | None = None,
    source: str = "trace stream",
) -> Iterator[Frame]:
    """Frames from ``sock`` until the peer closes (or drops) the connection or stop is set.

    A receive timeout on the socket (its ``settimeout``) counts as the sender being
    idle: a frame held for its look-ahead bytes is released. A connection error ends
    the stream like a close, after one log line.
    """
    parser = FrameParser(counters, source)
    while not stop.is_set():
        try:
            data = sock.recv(1 << 16)
        except TimeoutError:
            yield from parser.frames(final=True)
            continue
        except OSError as exc:
            log.warning("%s: connection lost (%s)", source, exc.strerror or exc)
            break
        if not data:
            break
        parser.feed(data)
        yield from parser.frames()
    if stop.is_set():
        return
    yield from parser.frames(final=True)
    parser.close()
