"""Live input: the TCP trace stream (framing, back-pressure, gaps), file tailing, replay."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from edge.gpr.formats.readers import read_gpr
from edge.gpr.live.framing import FramingCounters, encode_frame, read_frames
from edge.gpr.live.replay import ReplayServer
from edge.gpr.live.sources import END, FileTailSource, TcpTraceSource, TraceQueue
from tests.helpers.data import GPRPY

DZT16 = GPRPY / "FILE____032.DZT"


def _drain(q: TraceQueue, stop: threading.Event, timeout_s: float = 20.0) -> list:
    blocks, t_end = [], time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        item = q.get(0.2)
        if item == END:
            return blocks
        if item is not None:
            blocks.append(item)
            q.done(item)
    pytest.fail("the stream did not end")


def test_frame_round_trip_all_sample_types():
    a, b = socket.socketpair()
    values = np.array([-3, 0, 5, 100], np.float32)
    with a, b:
        for code in (1, 2, 3, 4):
            a.sendall(encode_frame(2, 7, values, 0.125, 1.7e9, type_code=code))
        a.close()
        frames = list(read_frames(b, threading.Event()))
    assert len(frames) == 4
    for channel, trace, samples, dt_ns, stamp in frames:
        assert (channel, trace, dt_ns, stamp) == (2, 7, 0.125, 1.7e9)
        np.testing.assert_array_equal(samples, values)


def test_bad_magic_is_skipped_and_counted_not_fatal():
    """A frame whose magic is overwritten is garbage (28 + 16 bytes); the next one is read."""
    a, b = socket.socketpair()
    counters = FramingCounters()
    with a, b:
        a.sendall(b"XXXX" + encode_frame(0, 0, np.zeros(4), 1.0, 0.0)[4:])
        a.sendall(encode_frame(0, 1, np.ones(4), 1.0, 0.0))
        a.close()
        frames = list(read_frames(b, threading.Event(), counters))
    assert [f.trace for f in frames] == [1]
    assert (counters.garbage_bytes, counters.resyncs, counters.truncated_traces) == (44, 1, 0)


def test_replay_over_tcp_with_a_tiny_queue_loses_no_trace():
    """Replay FILE____032 flat out into a 2-chunk queue drained slowly: all 1040 traces arrive,
    in order, bit-identical, and the stats show the queue was full (falling behind)."""
    server = ReplayServer(DZT16, port=0, speed_kmh=0.0)
    sender = threading.Thread(target=server.serve_once, daemon=True)
    sender.start()
    q = TraceQueue(capacity=2)
    stop = threading.Event()
    source = TcpTraceSource("127.0.0.1", server.port, chunk=50)
    reader = threading.Thread(target=source.run, args=(q, stop), daemon=True)
    reader.start()
    time.sleep(0.5)  # let the reader fill the queue and block
    assert q.stats.as_dict()["falling_behind"] is True
    blocks = _drain(q, stop)
    stop.set()
    reader.join(5)
    got = np.concatenate([b.samples for b in blocks], axis=2)
    whole = read_gpr(DZT16)
    assert got.shape == whole.samples.shape
    np.testing.assert_array_equal(got, whole.samples)
    assert [b.first_trace for b in blocks][:3] == [0, 50, 100]
    stats = q.stats.as_dict()
    assert stats["traces_received"] == stats["traces_processed"] == 1040
    assert stats["missing_traces"] == 0 and stats["blocked_s"] > 0


def test_replay_speed_sets_the_trace_rate():
    """80 km/h at 2 cm spacing (FILE____032: 50 scans/m) is 1111 traces/s."""
    server = ReplayServer(DZT16, port=0, speed_kmh=80.0)
    assert server.rate == pytest.approx(80 / 3.6 / 0.02)


def test_gap_in_trace_numbers_is_counted_not_hidden():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        with conn:
            for k in (0, 1, 2, 5, 6):
                conn.sendall(encode_frame(0, k, np.full(8, k), 1.0, time.time()))
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    q, stop = TraceQueue(8), threading.Event()
    threading.Thread(
        target=TcpTraceSource("127.0.0.1", port, chunk=10).run, args=(q, stop), daemon=True
    ).start()
    blocks = _drain(q, stop)
    stop.set()
    assert q.stats.missing_traces == 2
    assert [(b.first_trace, b.n_traces) for b in blocks] == [(0, 3), (5, 2)]


def test_tail_a_growing_dzt(tmp_path):
    """The unit writes the header, then scans in bursts with a half scan pending: the tail
    yields each complete scan exactly once."""
    raw = DZT16.read_bytes()
    scan = 1024  # bytes: 512 samples x 16 bit
    target = tmp_path / "LIVE.DZT"
    target.write_bytes(raw[:1024])
    q, stop = TraceQueue(64), threading.Event()
    tail = FileTailSource(target, chunk=100, poll_s=0.02, idle_s=1.0)
    thread = threading.Thread(target=tail.run, args=(q, stop), daemon=True)
    thread.start()
    written = 1024
    with target.open("ab") as f:
        for n in (10.5, 200, 300.5, 529):  # ends exactly at 1040 scans
            end = min(written + int(n * scan), len(raw))
            f.write(raw[written:end])
            f.flush()
            written = end
            time.sleep(0.1)
    blocks = _drain(q, stop)
    stop.set()
    got = np.concatenate([b.samples for b in blocks], axis=2)
    np.testing.assert_array_equal(got, read_gpr(DZT16).samples)
