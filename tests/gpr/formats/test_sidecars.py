"""Reader gaps of issue 13 on real files: Sensors & Software ``.GPS`` sidecars and DT1 trace
times (XLINE00, pulseEKKO PRO), CMP/WARR gathers refused by ``gpr detect``, a garbage DZG, a
DZT header claiming 64 channels and a huge ``rhf_position`` (FILE____032, SIR-3000)."""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.config import StationConfig
from edge.errors import InputError
from edge.gpr.formats.nmea import read_sns_gps
from edge.gpr.formats.readers import read_gpr
from edge.gpr.stream import CavityPipeline, build_detector, build_positioner
from tests.helpers.data import GPRPY
from tests.helpers.gpr_lines import gpr_config

DZT16 = GPRPY / "FILE____032.DZT"


def _copy(tmp_path: Path, *names: str) -> None:
    for name in names:
        (tmp_path / name).write_bytes((GPRPY / name).read_bytes())


def _gga(seconds_of_day: float, lat: float, lon: float, quality: int = 4) -> str:
    """A GGA sentence with its checksum (lat/lon in degrees, north/west)."""
    hh, rem = divmod(seconds_of_day, 3600)
    mm, ss = divmod(rem, 60)
    lat_txt = f"{int(lat):02d}{(lat % 1) * 60:010.7f}"
    lon_txt = f"{int(lon):03d}{(lon % 1) * 60:010.7f}"
    body = (
        f"GPGGA,{int(hh):02d}{int(mm):02d}{ss:05.2f},{lat_txt},N,{lon_txt},W,{quality},09,1.1,"
        "1206.5,M,-23.1,M,1.0,0031"
    )
    check = 0
    for ch in body:
        check ^= ord(ch)
    return f"${body}*{check:02X}"


def test_a_sns_gps_sidecar_gives_positions_and_times_per_trace(tmp_path):
    """XLINE00 with a ``.GPS`` sidecar in the pulseEKKO layout (``Trace #N at position X``
    then the receiver's GGA; N 1-based): one fix per tagged trace, at 0-based trace N - 1,
    timed on the HD's survey date (2017-04-10), and the file's positioner uses them."""
    _copy(tmp_path, "XLINE00.DT1", "XLINE00.HD")
    lines = []
    for n in range(1, 532, 10):
        lines.append(f"Trace #{n} at position {(n - 1) * 2.0:.6f}")
        lines.append(_gga(38177.0 + n, 37.75 + n * 1e-6, 105.2 - n * 1e-6))
    (tmp_path / "XLINE00.GPS").write_text("\n".join(lines) + "\n")
    block = read_gpr(tmp_path / "XLINE00.DT1")
    assert len(block.gps) == 54
    first, last = block.gps[0], block.gps[-1]
    assert (first.trace, last.trace) == (0.0, 530.0)
    assert first.lat == pytest.approx(37.75 + 1e-6, abs=1e-8)
    assert first.lon == pytest.approx(-(105.2 - 1e-6), abs=1e-8)
    assert first.quality == 4 and first.alt_m == pytest.approx(1206.5)
    midnight = calendar.timegm(dt.date(2017, 4, 10).timetuple())
    assert first.time == pytest.approx(midnight + 38178.0)
    cfg = StationConfig.model_validate(
        {
            "station": {"id": "sns", "kind": "gpr", "crs": "EPSG:32613"},
            "gpr": {"source": str(tmp_path / "XLINE00.DT1")},
        }
    )
    where = build_positioner(cfg.gpr, cfg.station.crs, block).locate(100.0)
    assert where.lat == pytest.approx(37.75 + 101e-6, abs=1e-7) and where.x is not None


def test_dt1_trace_times_come_from_the_trace_headers_and_the_survey_date():
    """XLINE00: trace header float 23 is the time of day, 38177.2 s (10:36:17) at the first
    trace to 46973.8 s at the last, on 2017-04-10 (HD): UTC epoch times, increasing."""
    block = read_gpr(GPRPY / "XLINE00.DT1")
    midnight = calendar.timegm(dt.date(2017, 4, 10).timetuple())
    assert block.trace_times is not None and len(block.trace_times) == 531
    assert block.trace_times[0] - midnight == pytest.approx(38177.227, abs=0.01)
    assert block.trace_times[-1] - midnight == pytest.approx(46973.82, abs=0.01)
    assert np.all(np.diff(block.trace_times) > 0)


def test_a_garbage_gps_sidecar_is_one_warning_and_the_radar_data_is_read(tmp_path, caplog):
    """A ``.GPS`` and a DZG of garbage (binary noise and text that is no NMEA): one warning
    each naming the file, no fixes, and the radar file is read whole."""
    _copy(tmp_path, "XLINE00.DT1", "XLINE00.HD", "FILE____032.DZT")
    noise = np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    (tmp_path / "XLINE00.GPS").write_bytes(noise)
    (tmp_path / "FILE____032.DZG").write_text("hello\nthis is not\n$GPGGA,12,x*00\n")
    with caplog.at_level(logging.WARNING):
        dt1 = read_gpr(tmp_path / "XLINE00.DT1")
        dzt = read_gpr(tmp_path / "FILE____032.DZT")
    assert (dt1.n_traces, len(dt1.gps), dzt.n_traces, len(dzt.gps)) == (531, 0, 1040, 0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "XLINE00.GPS: no usable GPS record" in warnings[0]
    assert "FILE____032.DZG: no usable GPS record" in warnings[1]
    assert read_sns_gps(tmp_path / "missing.GPS") == []  # unreadable: a warning, no fixes


@pytest.mark.parametrize("mode", ["CMP", "WARR"])
def test_gpr_detect_refuses_a_cmp_or_warr_gather_with_one_line(tmp_path, mode):
    """An HD with ``SURVEY MODE = CMP`` (or WARR) is a gather, not a profile: ``geoedge gpr
    detect`` exits 2 with one line naming the file and the mode, and no traceback."""
    _copy(tmp_path, "XLINE00.DT1", "XLINE00.HD")
    hd = tmp_path / "XLINE00.HD"
    text = hd.read_text(encoding="latin-1")
    hd.write_text(re.sub(r"SURVEY MODE\s*=\s*\S+", f"SURVEY MODE        = {mode}", text))
    assert read_gpr(tmp_path / "XLINE00.DT1").survey_mode == mode.lower()
    cfg = gpr_config(tmp_path, "XLINE00.DT1")
    run = subprocess.run(
        [sys.executable, "-m", "edge", "gpr", "detect", str(tmp_path / "XLINE00.DT1"),
         "--config", str(cfg), "--out", str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and f"a {mode} gather" in lines[0] and "XLINE00.DT1" in lines[0]
    assert "Traceback" not in run.stderr


def test_a_dzt_header_claiming_64_channels_is_a_clear_error(tmp_path):
    """FILE____032 with rh_nchan set to 64: one error naming the field and what is missing
    (the 63 further channel headers), not a "truncated" warning with 15 scans of garbage."""
    raw = bytearray(DZT16.read_bytes())
    struct.pack_into("<H", raw, 52, 64)
    (tmp_path / "c64.DZT").write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"rh_nchan 64 but no channel header at byte 1024"):
        read_gpr(tmp_path / "c64.DZT")


def test_a_huge_rhf_position_is_blamed_on_the_file_and_the_data_sets_time_zero(tmp_path, caplog):
    """FILE____032 with rhf_position -1e9 ns (time zero 1e10 samples into a 512-sample trace):
    one warning naming the field and the file, and the line is processed with the direct
    wave's time zero (~6.6 ns), not refused as a config error."""
    raw = bytearray(DZT16.read_bytes())
    struct.pack_into("<f", raw, 22, -1e9)
    (tmp_path / "pos.DZT").write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        block = read_gpr(tmp_path / "pos.DZT")
    assert "pos.DZT: rhf_position -1e+09 ns" in caplog.text
    assert block.time_zero_sample == 0.0
    cfg = StationConfig.model_validate(
        {
            "station": {"id": "pos", "kind": "gpr", "crs": "EPSG:5186"},
            "gpr": {"source": str(tmp_path / "pos.DZT")},
        }
    )
    pipe = CavityPipeline(cfg, block, build_detector(cfg.gpr))
    pipe.feed(block)
    assert 6.0 <= pipe.calibration.time_zero_ns <= 7.0
    assert json.dumps(pipe.stats())  # the line's stats stay JSON
