"""Trace stream faults: garbage bytes, bad headers, an absurd sample count, frames cut short
mid-stream and by a dropped connection, then a reconnect, over a real TCP socket.

The sender is a real TCP server playing a scripted two-channel stream; the receiver is
:class:`edge.gpr.live.sources.TcpTraceSource` into a
:class:`edge.gpr.live.sources.TraceQueue`. Every valid trace must arrive exactly once, in
order and bit-identical, the counters must say what was skipped, and nothing may raise.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import numpy as np
import pytest

from edge.gpr.live.framing import FRAME, MAGIC, FrameParser, encode_frame
from edge.gpr.live.sources import END, TcpTraceSource, TraceQueue
from edge.gpr.traces import TraceBlock

CHANNELS = 2
SAMPLES = 64


def _trace(k: int, c: int) -> np.ndarray:
    """Samples of trace ``k`` channel ``c``: a ramp unique to the pair (int16-exact)."""
    return (np.arange(SAMPLES) + 100 * k + 10_000 * c).astype(np.float32)


def _frames(k: int, stamp0: float = 1.7e9) -> bytes:
    return b"".join(
        encode_frame(c, k, _trace(k, c), 0.1, stamp0 + k * 0.01, type_code=1)
        for c in range(CHANNELS)
    )


def _garbage(rng: np.random.Generator, n: int) -> bytes:
    data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    assert MAGIC not in data
    return data


def _script() -> tuple[list[bytes], dict[str, int]]:
    """Two connections' bytes and the counts the receiver must report."""
    rng = np.random.default_rng(7)
    absurd = FRAME.pack(MAGIC, 1, 3, 0, 10, 10**9, 0.1, 1.7e9)  # 4 GB of samples: garbage
    bad_version = b"xx" + FRAME.pack(MAGIC, 9, 1, 0, 12, SAMPLES, 0.1, 1.7e9) + b"yyyyy"
    cut = _frames(11)[: FRAME.size + SAMPLES * 2 + FRAME.size + 40]  # ch0 whole, ch1 cut short
    first = b"".join(
        [
            *(_frames(k) for k in range(5)),
            _garbage(rng, 100),  # run 1
            *(_frames(k) for k in range(5, 10)),
            absurd,  # run 2
            _frames(10),
            cut,  # trace 11 channel 1 cut short: truncated, then sent again whole
            _frames(11),
            bad_version,  # run 3
            *(_frames(k) for k in range(12, 20)),
            _frames(20)[: FRAME.size + 10],  # the connection drops inside trace 20
        ]
    )
    second = _garbage(rng, 20) + b"".join(_frames(k) for k in range(20, 30))  # run 4
    counts = {
        "garbage_bytes": 100 + len(absurd) + len(bad_version) + 20,
        "resyncs": 4,
        "truncated_traces": 2,
        "missing_traces": 0,
    }
    return [first, second], counts


def _serve(listener: socket.socket, payloads: list[bytes]) -> None:
    """Serve each payload to one client in ragged pieces, then close that connection."""
    rng = np.random.default_rng(1)
    with listener:
        for payload in payloads:
            conn, _ = listener.accept()
            with conn:
                pos = 0
                while pos < len(payload):
                    step = int(rng.integers(1, 3000))
                    conn.sendall(payload[pos : pos + step])
                    pos += step


def _lines(q: TraceQueue, n_lines: int, timeout_s: float = 30.0) -> list[list]:
    lines: list[list] = [[]]
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        item = q.get(0.2)
        if item == END:
            if len(lines) == n_lines:
                return lines
            lines.append([])
        elif item is not None:
            lines[-1].append(item)
            q.done(item)
    pytest.fail(f"only {len(lines)} line(s) ended")


def test_garbage_cut_frames_and_a_reconnect_lose_no_valid_trace():
    payloads, counts = _script()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    threading.Thread(target=_serve, args=(listener, payloads), daemon=True).start()
    q, stop = TraceQueue(64), threading.Event()
    source = TcpTraceSource("127.0.0.1", port, chunk=7, retry_s=0.05)
    reader = threading.Thread(target=source.run, args=(q, stop), daemon=True)
    reader.start()
    lines = _lines(q, 2)
    stop.set()
    reader.join(5)
    assert not reader.is_alive()
    # One line per connection: traces 0-19, then 20-29, each once and in order.
    for line, traces in zip(lines, (range(20), range(20, 30)), strict=True):
        got = np.concatenate([b.samples for b in line], axis=2)
        numbers = np.concatenate([b.first_trace + np.arange(b.n_traces) for b in line])
        assert numbers.tolist() == list(traces)
        want = np.stack([np.stack([_trace(k, c) for c in range(CHANNELS)]) for k in traces], 2)
        np.testing.assert_array_equal(got, want)
        times = np.concatenate([b.trace_times for b in line])
        np.testing.assert_allclose(times, 1.7e9 + np.asarray(traces) * 0.01)
    stats = q.stats.as_dict()
    assert {k: stats[k] for k in counts} == counts
    assert stats["traces_received"] == 30


def test_parser_result_does_not_depend_on_how_the_bytes_are_split():
    """The same byte stream fed whole, byte by byte, and in random pieces gives the same
    frames and the same counters (a resync or a look-ahead never straddles a read badly)."""
    payload = _script()[0][0]

    def parse(pieces: list[bytes]) -> tuple[list[tuple[int, int]], tuple[int, int, int]]:
        parser = FrameParser()
        out = []
        for piece in pieces:
            parser.feed(piece)
            out += parser.frames()
        out += parser.frames(final=True)
        parser.close()
        c = parser.counters
        return [(f.trace, f.channel) for f in out], (c.garbage_bytes, c.resyncs, c.truncated_traces)

    rng = np.random.default_rng(3)
    cuts = np.sort(rng.choice(len(payload), 400, replace=False))
    whole = parse([payload])
    assert whole == parse([payload[i : i + 1] for i in range(len(payload))])
    assert whole == parse(
        [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
    )
    frames, counters = whole
    # Trace 11 channel 0 came whole twice (before the cut channel 1, and in the resend).
    want = [(k, c) for k in range(20) for c in range(CHANNELS)]
    assert frames == [*want[:22], (11, 0), *want[22:]]
    assert counters == (100 + 28 + 35, 3, 2)


def test_absurd_sample_count_is_never_allocated():
    """A header claiming 2^32-1 samples is garbage: skipped without reading or allocating."""
    head = struct.pack("<4sBBHIIfd", MAGIC, 1, 2, 0, 0, 0xFFFFFFFF, 0.1, 1.7e9)
    parser = FrameParser()
    parser.feed(head + encode_frame(0, 0, np.ones(8), 0.1, 1.7e9))
    frames = parser.frames(final=True)
    assert [f.trace for f in frames] == [0] and parser.counters.garbage_bytes == FRAME.size


def test_a_peer_announcing_thousands_of_channels_cannot_grow_memory():
    """Valid frames for channels 0..3999 (each trace 4,000 x 512 floats = 8 MB) used to fill
    the per-trace channel map and the queue without bound (3 GB in 6 s). With max_channels = 4
    the rest are refused and counted; what reaches the queue is 4 channels a trace."""
    samples = np.zeros(512, np.float32)
    payload = b"".join(
        encode_frame(ch, k, samples, 0.1, 1.7e9 + k / 100) for k in range(6) for ch in range(4000)
    )
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    threading.Thread(target=_serve, args=(listener, [payload]), daemon=True).start()
    q, stop = TraceQueue(64), threading.Event()
    source = TcpTraceSource("127.0.0.1", port, chunk=2, retry_s=0.05, max_channels=4)
    reader = threading.Thread(target=source.run, args=(q, stop), daemon=True)
    reader.start()
    lines = _lines(q, 1)
    stop.set()
    reader.join(5)
    assert [b.n_channels for b in lines[0]] == [4, 4, 4]
    assert q.stats.frames_refused == 6 * 3996


def test_the_queue_is_bounded_by_bytes_and_lets_one_chunk_in_whatever_its_size():
    q, stop = TraceQueue(capacity=100, max_bytes=100_000), threading.Event()
    big = TraceBlock(np.zeros((1, 256, 64), np.float32), 0.1)  # 65,536 bytes
    assert q.put(big, stop)  # the first always fits
    second = threading.Thread(target=q.put, args=(big, stop), daemon=True)
    second.start()
    second.join(0.6)
    assert second.is_alive() and q.stats.queue_bytes == 65_536  # waits for room
    item = q.get(1.0)
    assert isinstance(item, TraceBlock)
    q.done(item)
    second.join(2.0)
    assert not second.is_alive() and q.stats.queue_bytes == 65_536
    huge = TraceBlock(np.zeros((1, 1024, 256), np.float32), 0.1)  # 1 MiB > max_bytes
    q.done(q.get(1.0))  # empty again: one chunk is let in, however large
    assert q.put(huge, stop)
