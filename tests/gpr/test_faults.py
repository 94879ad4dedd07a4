"""Fault injection on a running GPR unit: real daemon, trace stream and Mosquitto processes.

The bundled sample line (``edge/samples/gpr/line01.DZT``: 1,200 traces, two cavities
and two pipes, see its truth.json) is streamed over TCP into ``geoedge run``:

- the daemon is SIGKILLed mid-line and restarted, and the GPR unit replays the line:
  nothing the outbox stored before the kill is lost, and no cavity is published twice
  (the same line gives the same cavity ids, which the outbox refuses to send again);
- the stream carries garbage bytes and a trace cut short: the daemon resynchronises,
  counts them, and reports the same cavities as from the clean stream.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.gpr.formats.readers import read_gpr
from edge.gpr.live.framing import encode_frame
from edge.gpr.live.replay import ReplayServer
from edge.gpr.traces import TraceBlock
from edge.station.outbox import Outbox
from tests.helpers.broker import Broker, MessageCollector, free_port
from tests.helpers.data import SAMPLES
from tests.helpers.fault_station import DaemonProcess, results

SAMPLE = SAMPLES / "gpr"
STATION = "demo-gpr"
CAVITIES = f"geoedge/{STATION}/gpr/cavity"
#: Fixed UTC start of the replayed line: the same line has the same trace times.
LINE_START = 1_780_000_000.0

pytestmark = pytest.mark.broker


def _config(folder: Path, port: int, mqtt_toml: str) -> Path:
    """The sample station streaming from ``port``, with one window width: a cavity is then
    reported once the stream is 13.3 m past it, so the 60 m line's first cavities go out
    mid-line (with the default widths up to 1,024 traces, 51.7 m: all four at its end)."""
    text = (SAMPLE / "station.toml").read_text()
    text = text.replace(
        'source = "line01.DZT"', f'source = "tcp://127.0.0.1:{port}"\nantenna_mhz = 400.0'
    )
    config = folder / "gpr.toml"
    config.write_text(
        text
        + "\n[gpr.windows]\nscales = [1.0]\n"
        + '\n[outbox]\npath = "state/outbox.sqlite"\n'
        + mqtt_toml
    )
    return config


def _serve(port: int, pace: bool) -> threading.Thread:
    """Replay the line at 20 km/h (111 traces/s, ~11 s) or, unpaced, as fast as taken;
    the trace times are those of a 20 km/h survey from LINE_START either way."""
    server = ReplayServer(
        SAMPLE / "line01.DZT", port=port, speed_kmh=20.0, start_time=LINE_START, pace=pace
    )
    thread = threading.Thread(target=server.serve_once, daemon=True)
    thread.start()
    return thread


def test_sigkill_mid_line_then_a_replay_publishes_each_cavity_once(
    tmp_path, mosquitto_broker, mqtt_subscriber
):
    sub = mqtt_subscriber(mosquitto_broker, CAVITIES)
    port = free_port()
    config = _config(tmp_path, port, mosquitto_broker.mqtt_toml(stats_interval_s=1))
    _serve(port, pace=True)
    first = DaemonProcess(config)
    try:
        sub.wait_count(1, 60)
        first.kill()  # mid-line: the first cavity is out, the rest not yet
    finally:
        first.close()
    with sqlite3.connect(tmp_path / "state" / "outbox.sqlite") as db:
        stored = [k for (k,) in db.execute("SELECT key FROM messages") if k]
    before = len(results(sub.messages))

    replay = _serve(port, pace=False)  # the unit sends the line again
    second = DaemonProcess(config)
    try:
        replay.join(timeout=60)
        second.wait_stats(
            lambda s: s["site"]["lines"] >= 1 and s["queue_depth"] <= 1, 60, "the line done"
        )
        assert second.terminate() == 0
    finally:
        second.close()
    time.sleep(0.5)
    by_id = results(sub.messages)
    missing = [k for k in stored if k.rsplit("|", 1)[1] not in by_id]
    assert not missing, f"cavities stored before the SIGKILL never arrived: {missing}"
    for key, payloads in by_id.items():  # only a message in flight at the kill comes twice
        assert all(p == payloads[0] for p in payloads), f"cavity {key} published twice"
    truth = json.loads((SAMPLE / "truth.json").read_text())["targets"]
    found = {round(p[0]["distance_m"]) for p in by_id.values()}
    for target in truth:
        assert any(abs(d - target["distance_m"]) <= 1.0 for d in found), (target, found)
    assert len(by_id) > before, "the restarted daemon published the rest of the line"
    box = Outbox(tmp_path / "state" / "outbox.sqlite")
    try:
        assert box.duplicates() >= before, "the replayed line's first cavities were refused"
    finally:
        box.close()


def _serve_line(port: int, trace_bytes: Callable[[TraceBlock, int], bytes]) -> threading.Thread:
    """Serve the sample line once over TCP: ``trace_bytes(block, i)`` is what goes on the wire
    for trace ``i`` (its frame, and whatever a fault adds)."""
    block = read_gpr(SAMPLE / "line01.DZT")
    listener = socket.create_server(("127.0.0.1", port))

    def serve() -> None:
        conn, _ = listener.accept()
        listener.close()
        with conn:
            for i in range(block.n_traces):
                conn.sendall(trace_bytes(block, i))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def _dirty_stream(port: int, seed: int) -> threading.Thread:
    """The sample line with garbage between frames and one trace cut short."""
    rng = np.random.default_rng(seed)

    def trace_bytes(block: TraceBlock, i: int) -> bytes:
        frame = encode_frame(0, i, block.samples[0, :, i], block.dt_ns, LINE_START + i / 100)
        out = b""
        if i == 500:
            out += frame[: len(frame) // 2]  # a trace cut short...
            frame = encode_frame(0, i, block.samples[0, :, i], block.dt_ns, LINE_START + 5)
        if i % 97 == 13:
            out += rng.integers(0, 256, int(rng.integers(1, 400)), np.uint8).tobytes()
        return out + frame

    return _serve_line(port, trace_bytes)


def _run_line(
    tmp_path: Path,
    broker: Broker,
    mqtt_subscriber: Callable[..., MessageCollector],
    stream: Callable[..., threading.Thread],
    *stream_args: object,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A GPR unit daemon fed one line by ``stream(port, *stream_args)``: it must finish the
    line and still be running. The site's stats and the cavities published."""
    sub = mqtt_subscriber(broker, CAVITIES)
    port = free_port()
    config = _config(tmp_path, port, broker.mqtt_toml(stats_interval_s=1))
    serving = stream(port, *stream_args)
    daemon = DaemonProcess(config)
    try:
        serving.join(timeout=60)
        stats = daemon.wait_stats(
            lambda s: s["site"]["lines"] >= 1 and s["queue_depth"] <= 1, 60, "the line done"
        )
        assert daemon.process.poll() is None, "the daemon is still running"
        assert daemon.terminate() == 0
    finally:
        daemon.close()
    time.sleep(0.5)
    return stats["site"], sub.payloads()


def test_a_stream_with_garbage_and_a_cut_trace_is_resynchronised_and_counted(
    tmp_path, mosquitto_broker, mqtt_subscriber
):
    site, cavities = _run_line(tmp_path, mosquitto_broker, mqtt_subscriber, _dirty_stream, 7)
    assert site["garbage_bytes"] > 0 and site["resyncs"] >= 5, site
    assert site["truncated_traces"] >= 1 or site["resyncs"] >= 6, site
    truth = json.loads((SAMPLE / "truth.json").read_text())["targets"]
    for target in truth:
        assert any(abs(c["distance_m"] - target["distance_m"]) <= 1.0 for c in cavities), target


def _poisoned_stream(port: int) -> threading.Thread:
    """The sample line with one NaN sample (trace 300, a corrupted exponent byte), a trace
    time of 1e15 s (trace 650, a broken clock) and five 4-sample traces (after trace 1100)."""

    def trace_bytes(block: TraceBlock, i: int) -> bytes:
        samples = block.samples[0, :, i].astype(np.float64)
        stamp = 1e15 if i == 650 else LINE_START + i / 100
        if i == 300:
            samples[200] = np.nan
        out = encode_frame(0, i, samples, block.dt_ns, stamp)
        if i == 1100:
            tiny = np.ones(4)
            out += b"".join(encode_frame(0, 10_000 + k, tiny, block.dt_ns, stamp) for k in range(5))
        return out

    return _serve_line(port, trace_bytes)


def test_a_nan_sample_a_broken_clock_and_tiny_traces_do_not_stop_the_unit(
    tmp_path, mosquitto_broker, mqtt_subscriber
):
    """Each used to end the site thread (the daemon exited 1; under systemd the restart limit
    was soon spent). Now the NaN is zeroed, the impossible time dropped, the 4-sample traces
    dropped, each counted and logged once, and the cavities after them are still reported."""
    site, cavities = _run_line(tmp_path, mosquitto_broker, mqtt_subscriber, _poisoned_stream)
    assert site["nonfinite_samples"] == 1 and site["bad_trace_times"] >= 1, site
    truth = json.loads((SAMPLE / "truth.json").read_text())["targets"]
    after_nan = [t for t in truth if t["distance_m"] > 300 * 0.05]
    assert after_nan, "the sample has targets after the NaN trace"
    for target in after_nan:
        assert any(abs(c["distance_m"] - target["distance_m"]) <= 1.0 for c in cavities), target
