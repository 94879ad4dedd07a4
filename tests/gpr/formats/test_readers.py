"""GPR readers against real files (tests/data/gprpy; the ImpDAR files from the shared data)
and the facts in the shared data's README."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import numpy as np
import pytest

from edge.errors import InputError
from edge.gpr.formats.nmea import parse_sentence, read_dzg
from edge.gpr.formats.rd3 import read_cor
from edge.gpr.formats.readers import read_gpr
from tests.helpers.data import GPRPY, IMPDAR, needs_impdar

DZT16 = GPRPY / "FILE____032.DZT"
DZT32 = IMPDAR / "test_gssi.DZT"
DT1 = GPRPY / "XLINE00.DT1"
RD3 = IMPDAR / "ten_col.rd3"


def test_dzt_16bit_sir3000_facts():
    """SIR-3000, 400 MHz: 1040 traces x 512 samples, range 48 ns -> dt = 48/512 ns."""
    b = read_gpr(DZT16)
    assert (b.n_channels, b.n_samples, b.n_traces, b.bits) == (1, 512, 1040, 16)
    assert b.dt_ns == pytest.approx(48.0 / 512)
    assert b.header["header_bytes"] == 1024 and b.header["rh_tag"] == "0x0700"
    assert b.antenna_mhz == 400.0
    # 50 scans/m -> 2 cm spacing; 11 user marks, every 100th scan (sample 1 non-zero)
    assert b.trace_spacing_m == pytest.approx(0.02)
    assert b.marks.tolist() == list(range(0, 1001, 100))
    # unsigned 16-bit centred on 32768: the quiet early samples sit near 0, not near 32768
    assert abs(float(np.median(b.samples[0, 2:20, :]))) < 5
    # header words (counter, mark) do not leak into the samples
    assert np.all(b.samples[0, 0] == b.samples[0, 2])


@needs_impdar
def test_dzt_32bit_sir4000_facts():
    """SIR-4000: 32-bit signed, 2048 samples, 345 traces, range 2300 ns, 131072-byte header."""
    b = read_gpr(DZT32)
    assert (b.n_samples, b.n_traces, b.bits) == (2048, 345, 32)
    assert b.dt_ns == pytest.approx(2300.0 / 2048)
    assert b.header["header_bytes"] == 128 * 1024
    assert b.samples.min() < 0 < b.samples.max()  # signed
    # DZX waypoints: scan 0 at 0 m, scan 341 at 10 m
    assert b.distance_m[341] == pytest.approx(10.0, abs=1e-6)


@needs_impdar
def test_dzg_gps_with_empty_altitude_and_no_fix():
    """Every GGA of test_gssi.DZG has quality 0 and an empty altitude: parsed, not fatal."""
    b = read_gpr(DZT32)
    assert len(b.gps) == 14
    first = b.gps[0]
    assert first.trace == 23 and first.quality == 0 and np.isnan(first.alt_m)
    assert first.lat == pytest.approx(47 + 39.2552 / 60, abs=1e-9)
    assert first.lon == pytest.approx(-(122 + 18.5815 / 60), abs=1e-9)
    # GGA times are one second apart (00:03:20 ...), dated from the DZT header
    assert first.time is not None and b.gps[1].time - first.time == pytest.approx(1.0)


@needs_impdar
def test_partial_gps_keeps_the_fixes_it_has():
    """test_gssi_partialgps.DZG lacks the fix for scan 143: 13 fixes, no crash."""
    fixes = read_dzg(IMPDAR / "test_gssi_partialgps.DZG")
    assert len(fixes) == 13
    assert 143 not in [f.trace for f in fixes]


def test_nmea_sentences():
    gga = parse_sentence("$GPGGA,000320,4739.2552,N,12218.5815,W,0,00,,,M,,M,,*46")
    assert gga is not None and gga.quality == 0 and np.isnan(gga.alt_m)
    assert parse_sentence("$GPGGA,000320,4739.2552,N,12218.5815,W,0,00,,,M,,M,,*47") is None
    rmc = parse_sentence("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A")
    assert rmc is not None and rmc.date.isoformat() == "1994-03-23"
    assert rmc.lat == pytest.approx(48.1173) and rmc.seconds_of_day == 12 * 3600 + 35 * 60 + 19


def test_dt1_int16_feet():
    """pulseEKKO XLINE00: 531 x 1500 int16, 1200 ns, 2 ft step = 0.6096 m."""
    b = read_gpr(DT1)
    assert (b.n_samples, b.n_traces, b.bits) == (1500, 531, 16)
    assert b.dt_ns == pytest.approx(0.8)
    assert b.trace_spacing_m == pytest.approx(0.6096)
    assert b.distance_m[-1] == pytest.approx(530 * 0.6096)
    assert b.antenna_mhz == 50.0


def test_dt1_float32_traces(tmp_path):
    """A DT1 with 4 bytes per point is read as float32, values intact."""
    n, traces = 16, 3
    values = np.arange(n * traces, dtype="<f4").reshape(traces, n) * 0.5
    with (tmp_path / "F.DT1").open("wb") as f:
        for k in range(traces):
            head = np.zeros(32, "<f4")
            head[0], head[1], head[2], head[5] = k + 1, k * 0.1, n, 4
            f.write(head.tobytes() + values[k].tobytes())
    (tmp_path / "F.HD").write_text(
        f"NUMBER OF TRACES = {traces}\nNUMBER OF PTS/TRC = {n}\nTOTAL TIME WINDOW = 32\n"
        "POSITION UNITS = m\nSTEP SIZE USED = 0.1\n"
    )
    b = read_gpr(tmp_path / "F.DT1")
    assert b.bits == 32 and b.dt_ns == 2.0
    np.testing.assert_array_equal(b.samples[0], values.T)


@needs_impdar
def test_rd3_time_step_and_cor():
    """MALA ten_col: 10 traces x 512; dt = TIMEWINDOW/SAMPLES = 422.06/512 = 0.824 ns."""
    b = read_gpr(RD3)
    assert (b.n_samples, b.n_traces, b.bits) == (512, 10, 16)
    assert b.dt_ns == pytest.approx(0.8243, abs=1e-4)
    assert b.header["sampling_dt_ns"] == pytest.approx(0.412, abs=1e-3)
    cor = read_cor(IMPDAR / "ten_col.cor", n_traces=100)
    assert [f.trace for f in cor] == [6, 17, 26]  # 1-based trace numbers 7, 18, 27
    assert cor[0].lat == pytest.approx(75.63203) and cor[0].lon == pytest.approx(-35.98767333333)
    assert [f.trace for f in b.gps] == [6]  # only trace 7 falls inside the 10 traces


def test_segy_round_trip(tmp_path):
    """A SEG-Y written by segyio with a 100 ps interval reads back with dt 0.1 ns."""
    import segyio

    data = np.random.default_rng(1).normal(size=(5, 64)).astype(np.float32)
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 5, list(range(64)), 5
    with segyio.create(str(tmp_path / "p.sgy"), spec) as f:
        for i in range(5):
            f.header[i] = {segyio.TraceField.SourceX: 10 * i, segyio.TraceField.SourceY: 0}
            f.trace[i] = data[i]
        f.bin.update(hdt=100, format=5)
    b = read_gpr(tmp_path / "p.sgy")
    assert b.dt_ns == pytest.approx(0.1) and b.n_traces == 5
    np.testing.assert_allclose(b.samples[0], data.T)
    assert b.distance_m.tolist() == [0, 10, 20, 30, 40]


def test_truncated_dzt_returns_complete_scans_with_warning(tmp_path, caplog):
    """A DZT cut 1.5 scans before its end: the 1038 complete scans come back, with a warning."""
    raw = DZT16.read_bytes()
    (tmp_path / "cut.DZT").write_bytes(raw[: len(raw) - 1024 - 512])
    with caplog.at_level(logging.WARNING):
        b = read_gpr(tmp_path / "cut.DZT")
    assert b.n_traces == 1038
    assert "truncated" in caplog.text
    whole = read_gpr(DZT16)
    np.testing.assert_array_equal(b.samples, whole.samples[:, :, :1038])


@needs_impdar
def test_truncated_dt1_and_rd3(tmp_path):
    for src, cut in ((DT1, 3128 * 2 + 100), (RD3, 1024 * 3 + 7)):
        for sib in src.parent.glob(src.stem + ".*"):
            if sib.suffix.lower() in (".hd", ".rad"):
                (tmp_path / sib.name).write_bytes(sib.read_bytes())
        raw = src.read_bytes()
        (tmp_path / src.name).write_bytes(raw[: len(raw) - cut])
        whole, part = read_gpr(src), read_gpr(tmp_path / src.name)
        assert part.n_traces == whole.n_traces - (3 if src == DT1 else 4)
        np.testing.assert_array_equal(part.samples, whole.samples[:, :, : part.n_traces])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:500], "not a DZT file"),
        (lambda b: b"\x12\x34" + b[2:], "rh_tag"),
        (lambda b: b[:6] + (12).to_bytes(2, "little") + b[8:], "rh_bits 12"),
        (lambda b: b[: 1024 + 100], "no complete scan"),
    ],
)
def test_bad_dzt_gives_one_clear_error(tmp_path, mutate, message):
    (tmp_path / "bad.DZT").write_bytes(mutate(DZT16.read_bytes()))
    with pytest.raises(InputError, match=message) as err:
        read_gpr(tmp_path / "bad.DZT")
    assert "\n" not in str(err.value) and "bad.DZT" in str(err.value)


def test_missing_sidecar_and_unknown_type(tmp_path):
    (tmp_path / "x.rd3").write_bytes(b"\0" * 2048)
    with pytest.raises(InputError, match="no RAD header"):
        read_gpr(tmp_path / "x.rd3")
    (tmp_path / "x.abc").write_bytes(b"\0")
    with pytest.raises(InputError, match="unknown GPR file type"):
        read_gpr(tmp_path / "x.abc")


@needs_impdar
def test_gpr_info_cli_json():
    out = subprocess.run(
        [sys.executable, "-m", "edge", "gpr", "info", str(DZT32), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(out.stdout)
    assert info["format"] == "dzt" and info["channels"] == 1
    assert (info["samples"], info["traces"], info["bits"]) == (2048, 345, 32)
    assert info["dt_ns"] == pytest.approx(2300 / 2048) and info["range_ns"] == 2300.0
    text = subprocess.run(
        [sys.executable, "-m", "edge", "gpr", "info", str(DZT16)], capture_output=True, text=True
    )
    assert "dt = range / nsamp" in text.stdout and "1040" in text.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "edge", "gpr", "info", "/nonexistent.DZT"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["0", "nan", "abc"])
def test_a_bad_hd_time_window_is_one_line_naming_the_key(tmp_path, value):
    for sibling in ("XLINE00.DT1", "XLINE00.HD"):
        (tmp_path / sibling).write_bytes((GPRPY / sibling).read_bytes())
    hd = tmp_path / "XLINE00.HD"
    text = hd.read_text(encoding="latin-1")
    hd.write_text(re.sub(r"TOTAL TIME WINDOW\s*=\s*\S+", f"TOTAL TIME WINDOW  = {value}", text))
    with pytest.raises(InputError, match=rf"header key 'TOTAL TIME WINDOW' = '{value}'"):
        read_gpr(tmp_path / "XLINE00.DT1")


@needs_impdar
def test_a_non_numeric_rad_value_is_one_line_naming_the_key(tmp_path):
    for sibling in ("ten_col.rd3", "ten_col.rad"):
        (tmp_path / sibling).write_bytes((IMPDAR / sibling).read_bytes())
    rad = tmp_path / "ten_col.rad"
    text = rad.read_text(encoding="latin-1")
    rad.write_text(re.sub(r"DISTANCE INTERVAL:\s*\S+", "DISTANCE INTERVAL:twelve", text))
    with pytest.raises(InputError, match=r"header key 'DISTANCE INTERVAL' = 'twelve'"):
        read_gpr(tmp_path / "ten_col.rd3")


@needs_impdar
def test_a_bad_dzx_sidecar_is_a_warning_and_the_radar_data_is_read(tmp_path, caplog):
    for sibling in ("test_gssi.DZT", "test_gssi.DZX"):
        (tmp_path / sibling).write_bytes((IMPDAR / sibling).read_bytes())
    dzx = tmp_path / "test_gssi.DZX"
    bad = re.sub(r"<localCoords>[^<]*<", "<localCoords>abc,def<", dzx.read_text(), count=1)
    dzx.write_text(bad)
    with caplog.at_level(logging.WARNING):
        block = read_gpr(tmp_path / "test_gssi.DZT")
    assert block.n_traces == 345
    assert "coordinates 'abc,def' (not numbers)" in caplog.text
