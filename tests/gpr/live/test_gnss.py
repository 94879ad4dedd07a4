"""Live GNSS for a live trace stream, matched by time, over real sockets and real files.

The physical situation: a van drives a 200 m radius curve at 40 km/h (11.1 m/s) with a
400 MHz antenna, one trace every 5 cm (222 traces/s), over two air-filled voids and two
pipes at known places (export.data.synth_bscan.cylinder_scene). The acquisition PC streams the
traces over TCP with their UTC times (ReplayServer, fixed start time); the GNSS receiver
streams NMEA (RMC + GGA at 10 Hz) over TCP from the same drive, with garbage lines and bad
checksums mixed in, and drops its connection half-way (the unit reconnects). The
GprUnit must place every cavity at the truth within 0.3 m: the hyperbola fit finds the
apex within about 2 traces (0.1 m), linear interpolation between fixes 1.1 m apart on a
200 m radius is off by under 1 mm, and the NMEA minutes carry 7 decimals (0.2 mm).
"""

from __future__ import annotations

import datetime as dt
import math
import socket
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer

from edge.config import load_config
from edge.errors import ConfigError
from edge.gpr.live.gnss import GnssStats, GnssTrack, NmeaFileTail, NmeaIngest
from edge.gpr.live.replay import ReplayServer
from edge.gpr.live.sources import record_layout
from edge.gpr.site import GprUnit
from tests.helpers.data import GPRPY
from tests.helpers.gpr_lines import synthetic_line, write_segy

CRS = "EPSG:5186"
T0 = 1_750_000_000.0  # UTC epoch s of the line's first trace
SPEED = 40.0 / 3.6  # m/s
SPACING = 0.05  # m per trace
CENTRE = np.array([200_000.0, 550_000.0])  # centre of the curve, EPSG:5186 (m)
RADIUS = 200.0
A0 = -math.pi / 2  # the van starts due south of the centre, heading east (counter-clockwise)
TO_LONLAT = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)


def truth_xy(t: float) -> tuple[float, float]:
    """Where the antenna is at UTC time ``t`` (m, EPSG:5186)."""
    a = A0 + SPEED * (t - T0) / RADIUS
    return float(CENTRE[0] + RADIUS * math.cos(a)), float(CENTRE[1] + RADIUS * math.sin(a))


def sentence(body: str) -> str:
    check = 0
    for ch in body:
        check ^= ord(ch)
    return f"${body}*{check:02X}"


def _angle(value: float, degree_digits: int) -> str:
    deg = int(abs(value))
    return f"{deg:0{degree_digits}d}{(abs(value) - deg) * 60:010.7f}"


def fix_sentences(t: float) -> list[str]:
    """RMC then GGA of the epoch ``t`` (the GGA repeats the epoch: kept once)."""
    lon, lat = TO_LONLAT.transform(*truth_xy(t))
    when = dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)
    hms = when.strftime("%H%M%S") + f".{when.microsecond // 10000:02d}"
    la, lo = f"{_angle(lat, 2)},N", f"{_angle(lon, 3)},E"
    return [
        sentence(f"GPRMC,{hms},A,{la},{lo},21.6,45.0,{when.strftime('%d%m%y')},,,A"),
        sentence(f"GPGGA,{hms},{la},{lo},1,12,0.8,35.0,M,20.0,M,,"),
    ]


#: What a receiver link also carries: garbage and broken sentences (counted, skipped).
GARBAGE = ["\x00\xff\xfe binary noise", "hello", "$GPGGA,broken", "GPRMC,no,dollar"]
BAD_CHECKSUM = sentence("GPGGA,120000.00,3730.0,N,12700.0,E,1,08,1.0,30.0,M,20.0,M,,")[:-2] + "00"
OTHER = sentence("GPGSV,1,1,01,05,40,083,46")


def nmea_script(times: np.ndarray) -> tuple[list[str], dict[str, int]]:
    """Sentences for fixes at ``times`` with faults mixed in every 7 epochs, and their counts."""
    lines: list[str] = []
    counts = {"garbage_lines": 0, "bad_checksum": 0, "other_sentences": 0}
    for i, t in enumerate(times):
        lines += fix_sentences(float(t))
        if i % 7 == 3:
            lines += [GARBAGE[i % len(GARBAGE)], BAD_CHECKSUM, OTHER]
            counts["garbage_lines"] += 1
            counts["bad_checksum"] += 1
            counts["other_sentences"] += 1
    return lines, counts


def serve_nmea(listener: socket.socket, parts: list[list[str]]) -> None:
    """One connection per part: send its sentences, then drop the connection."""
    with listener:
        for part in parts:
            conn, _ = listener.accept()
            with conn:
                conn.sendall("".join(f"{s}\r\n" for s in part).encode("latin-1"))


def unit_config(tmp_path: Path, source: str, gnss: str, max_wait_s: float) -> Path:
    path = tmp_path / "gpr.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [station]
            id = "gpr-gnss"
            kind = "gpr"
            crs = "{CRS}"

            [gpr]
            source = "{source}"
            antenna_mhz = 400.0

            [gpr.positioning]
            trace_spacing_m = {SPACING}
            gnss = "{gnss}"
            max_gap_s = 0.5
            max_wait_s = {max_wait_s}
            reconnect_s = 0.05

            [outbox]
            path = "state/outbox.sqlite"
            """
        )
    )
    return path


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    """The synthetic drive as a SEG-Y file, and the targets' apex times (UTC epoch s)."""
    scan, data, truths = synthetic_line()
    path = tmp_path_factory.mktemp("line") / "line.sgy"
    write_segy(path, data[scan.t0_index :], round(scan.dt_ns * 1000), scan.dx_m)
    rate = SPEED / SPACING
    apex_times = [T0 + t.apex_trace / rate for t, _ in truths]
    return path, apex_times


def run_unit(
    tmp_path: Path, line_path: Path, parts: list[list[str]], max_wait_s: float
) -> tuple[list, dict]:
    """Replay the line and the NMEA parts into a GprUnit; the messages and the unit's stats."""
    gps = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve_nmea, args=(gps, parts), daemon=True).start()
    server = ReplayServer(line_path, port=0, speed_kmh=40.0, start_time=T0, pace=False)
    threading.Thread(target=server.serve_once, daemon=True).start()
    cfg = load_config(
        unit_config(
            tmp_path,
            f"tcp://127.0.0.1:{server.port}",
            f"tcp://127.0.0.1:{gps.getsockname()[1]}",
            max_wait_s,
        )
    )
    messages: list[dict] = []
    unit = GprUnit(cfg, lambda kind, msg: messages.append(msg))
    stop = threading.Event()
    runner = threading.Thread(target=unit.run, args=(stop,), daemon=True)
    runner.start()
    t_end = time.monotonic() + 90
    while unit.lines < 1 and time.monotonic() < t_end:
        time.sleep(0.05)
    stats = unit.stats()
    stop.set()
    runner.join(10)
    assert unit.lines == 1, "the line did not end"
    return messages, stats


def nearest(msg: dict, apex_times: list[float]) -> float:
    """The apex time of the target a message stands for (the nearest along track)."""
    d = [abs(msg["trace"] - (t - T0) * SPEED / SPACING) for t in apex_times]
    return apex_times[int(np.argmin(d))]


def test_stream_and_nmea_stream_place_cavities_at_the_truth(tmp_path, line):
    path, apex_times = line
    times = T0 - 2.0 + np.arange(0, 80) * 0.1  # 10 Hz from 2 s before the line to its end
    sentences, counts = nmea_script(times)
    half = len(sentences) // 2
    # A generous wait: the reconnect after the drop takes ~0.05 s, a busy machine longer.
    messages, stats = run_unit(tmp_path, path, [sentences[:half], sentences[half:]], 10.0)
    assert len(messages) >= 3
    for msg in messages:
        t = nearest(msg, apex_times)
        x, y = truth_xy(t)
        assert msg["position"] is not None, msg["position_note"]
        assert msg["position_note"] is None and msg["distance_source"] == "gnss"
        assert math.hypot(msg["position"]["x"] - x, msg["position"]["y"] - y) < 0.3
        lon, lat = TO_LONLAT.transform(x, y)
        assert abs(msg["lon"] - lon) < 4e-6 and abs(msg["lat"] - lat) < 3e-6  # ~0.3 m
        # Along-track distance: the path length along the curve from the line's start.
        assert msg["distance_m"] == pytest.approx(SPEED * (t - T0), abs=0.3)
    gnss = stats["gnss"]
    assert {k: gnss[k] for k in counts} == counts
    assert gnss["fixes"] == len(times)
    assert gnss["out_of_order"] == len(times)  # each GGA repeats its RMC's epoch
    assert stats["last_line"]["unpositioned"] == 0


def test_gnss_outage_gives_null_positions_that_say_why(tmp_path, line):
    """No fix from 0.8 s to 1.7 s into the line (a bridge: the pipe at 1.26 s falls in the
    0.9 s gap, over max_gap_s 0.5 s) and none after 2.5 s (the receiver dies: the pipe at
    2.88 s is after the last fix, so the stream waits for one at most max_wait_s, once, and
    goes on). Those two are null, with the reason; the others are placed at the truth."""
    path, apex_times = line
    times = T0 - 2.0 + np.arange(0, 80) * 0.1
    times = times[((times < T0 + 0.85) | (times > T0 + 1.65)) & (times < T0 + 2.55)]
    sentences, _ = nmea_script(times)
    messages, stats = run_unit(tmp_path, path, [sentences], 1.0)
    by_time = {nearest(m, apex_times): m for m in messages}
    gap, dead = by_time.get(apex_times[1]), by_time.get(apex_times[3])
    assert gap is not None and dead is not None, "both pipes must be detected"
    assert gap["position"] is None and gap["lon"] is None
    assert gap["position_note"] == "GNSS gap of 0.9 s at the trace (max 0.5 s)"
    assert dead["position"] is None and dead["position_note"].startswith("no GNSS fix since")
    assert gap["distance_source"] == dead["distance_source"] == "odometer"
    for t, msg in by_time.items():
        if msg["position"] is not None:
            x, y = truth_xy(t)
            assert math.hypot(msg["position"]["x"] - x, msg["position"]["y"] - y) < 0.3
    assert sum(m["position"] is not None for m in messages) >= 2
    assert stats["last_line"]["gnss_wait_timeouts"] == 1


def test_tailed_nmea_log_with_a_half_written_line(tmp_path):
    """The receiver appends to its log; a sentence is half written at one read. Every fix
    arrives once, the garbage is counted, and the track interpolates the truth."""
    times = T0 + np.arange(0, 30) * 0.1
    sentences, counts = nmea_script(times)
    text = "".join(f"{s}\r\n" for s in sentences).encode("latin-1")
    log = tmp_path / "track.nmea"
    log.write_bytes(text[: len(text) // 3 + 5])  # ends inside a sentence
    track, stats = GnssTrack(CRS, max_gap_s=0.5), GnssStats()
    tail = NmeaFileTail(log, NmeaIngest(track, stats, str(log)), poll_s=0.02)
    stop = threading.Event()
    threading.Thread(target=tail.run, args=(stop,), daemon=True).start()
    with log.open("ab") as f:
        for part in (text[len(text) // 3 + 5 : 2 * len(text) // 3], text[2 * len(text) // 3 :]):
            f.write(part)
            f.flush()
    try:
        assert track.wait_for(times[-1], 10.0)
        deadline = time.monotonic() + 10
        while stats.lines < len(sentences) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
    assert stats.fixes == len(times)
    assert {k: getattr(stats, k) for k in counts} == counts
    for t in (T0 + 0.05, T0 + 1.234, T0 + 2.9):
        p = track.at(t)
        assert math.hypot(p.x - truth_xy(t)[0], p.y - truth_xy(t)[1]) < 0.01
        assert p.s == pytest.approx(SPEED * (t - T0), abs=0.01)
    assert track.at(T0 + 3.5).reason.startswith("no GNSS fix since")


def test_track_memory_is_bounded_and_path_length_survives_trimming():
    """An hour at 10 Hz into a track that holds 60 s: 600 fixes held, and the path length
    keeps counting from the first fix (the drive's distance, not the window's)."""
    track = GnssTrack(CRS, max_gap_s=0.5, track_s=60.0)
    for t in T0 + np.arange(0, 36000) * 0.1:
        lon, lat = TO_LONLAT.transform(*truth_xy(float(t)))
        track.add(float(t), lat, lon)
    assert len(track) <= 601
    end = T0 + 3599.85
    assert track.at(end).s == pytest.approx(SPEED * 3599.85, rel=1e-4)
    assert track.at(T0 + 100).reason.startswith("trace")  # aged out: said, not guessed


def test_tailed_files_carry_their_own_trace_times():
    """DT1: each trace header's time of day on the HD's date (XLINE00: 2017-04-10, first
    trace 10:36:17.2); DZT: header creation time + scan / scans per second (100 /s)."""
    dt1 = GPRPY / "XLINE00.DT1"
    layout = record_layout(dt1)
    raw = dt1.read_bytes()[: 3 * layout.record_bytes]
    times = layout.times(raw, 0)
    first = dt.datetime.fromtimestamp(times[0], tz=dt.timezone.utc)
    assert first.date() == dt.date(2017, 4, 10) and (first.hour, first.minute) == (10, 36)
    assert np.all(np.diff(times) > 0)
    dzt = GPRPY / "FILE____032.DZT"
    layout = record_layout(dzt)
    raw = dzt.read_bytes()[layout.offset : layout.offset + 5 * layout.record_bytes]
    np.testing.assert_allclose(np.diff(layout.times(raw, 10)), 0.01, atol=1e-6)


def test_gnss_config_takes_a_tcp_address_or_a_path_relative_to_the_config(tmp_path):
    cfg = load_config(unit_config(tmp_path, "tcp://127.0.0.1:5600", "gnss/track.nmea", 2.0))
    assert cfg.gpr.positioning.gnss == tmp_path / "gnss" / "track.nmea"
    assert not cfg.gpr.positioning.gnss_is_stream
    with pytest.raises(ConfigError, match=r"gpr\.positioning\.gnss: expected tcp://HOST:PORT"):
        load_config(unit_config(tmp_path, "tcp://127.0.0.1:5600", "tcp://receiver", 2.0))
