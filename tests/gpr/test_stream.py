"""End to end: synthetic B-scans with known cavities -> pipeline -> cavity messages, by file,
by stream, and replayed over TCP into ``geoedge run`` with a real Mosquitto broker.

The synthetic lines, their SEG-Y writer and the test config come from
:mod:`tests.helpers.gpr_lines`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers.data import GPRPY, IMPDAR, needs_impdar
from tests.helpers.gpr_lines import gpr_config, synthetic_line, write_segy


def test_detect_file_finds_the_synthetic_cavities(tmp_path):
    """`geoedge gpr detect` on a SEG-Y of synthetic scans: messages in schema, near the truth."""
    scan, data, truths = synthetic_line()
    dt_ps = round(scan.dt_ns * 1000)
    write_segy(tmp_path / "line.sgy", data[scan.t0_index :], dt_ps, scan.dx_m)
    cfg = gpr_config(tmp_path, "line.sgy")
    out = tmp_path / "cav.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "gpr",
            "detect",
            str(tmp_path / "line.sgy"),
            "--config",
            str(cfg),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    cavities = json.loads(out.read_text())["cavities"]
    for c in cavities:
        assert c["schema"] == "geoedge.cavity/1" and c["station"] == "gpr-test"
        assert c["time"].endswith("Z") and c["velocity_source"] in ("fit", "line", "configured")
        assert c["position"] is None and c["lon"] is None  # no GNSS in a SEG-Y line
        assert Path(c["snippet"]).is_file()
    wanted = [(t, off) for t, off in truths if t.cls == "cavity"]
    found = 0
    for t, off in wanted:
        x = (t.apex_trace + off) * scan.dx_m
        near = [c for c in cavities if abs(c["distance_m"] - x) < 0.5 and c["class"] == "cavity"]
        found += any(abs(c["depth_top_m"] - t.depth_top_m) <= 0.15 * t.depth_top_m for c in near)
    assert not wanted or found / len(wanted) >= 0.7


def test_replay_over_tcp_into_the_daemon_publishes_cavities(
    tmp_path, mosquitto_broker, mqtt_subscriber
):
    """Replay a synthetic line over TCP into `geoedge run`; cavity messages reach the broker."""
    from edge.gpr.live.replay import ReplayServer

    scan, data, _ = synthetic_line()
    write_segy(tmp_path / "line.sgy", data[scan.t0_index :], round(scan.dt_ns * 1000), scan.dx_m)
    server = ReplayServer(tmp_path / "line.sgy", port=0, speed_kmh=40.0)
    threading.Thread(target=server.serve_once, daemon=True).start()
    cfg = gpr_config(tmp_path, f"tcp://127.0.0.1:{server.port}", mosquitto_broker.mqtt_toml())
    sub = mqtt_subscriber(mosquitto_broker, "geoedge/gpr-test/gpr/cavity")
    with open(tmp_path / "daemon.log", "wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        msgs = sub.wait_count(1, timeout_s=60)
        payload = msgs[0].json()
        assert payload["schema"] == "geoedge.cavity/1" and payload["source"].startswith("tcp://")
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 0, (tmp_path / "daemon.log").read_text()[-2000:]


@pytest.mark.parametrize(
    "path",
    [GPRPY / "FILE____032.DZT", pytest.param(IMPDAR / "test_gssi.DZT", marks=needs_impdar)],
    ids=["FILE____032", "test_gssi"],
)
def test_planar_reflectors_in_real_files_are_not_reported(path):
    """FILE____032 has kinked dipping reflectors, test_gssi flat layering: neither holds a
    diffraction, and nothing may be reported on them. (Whether the detector boxes them at all
    depends on the model; a box there is dropped when a straight line fits its picks as well as
    the hyperbola, as tests/gpr/test_hyperbola.py shows on synthetic picks.)"""
    from edge.config import StationConfig
    from edge.gpr.formats.readers import read_gpr
    from edge.gpr.stream import CavityPipeline, build_detector

    cfg = StationConfig.model_validate(
        {
            "station": {"id": "real", "kind": "gpr", "crs": "EPSG:5186"},
            "gpr": {"source": str(path), "antenna_mhz": 400.0},
        }
    )
    block = read_gpr(path)
    pipe = CavityPipeline(cfg, block, build_detector(cfg.gpr))
    assert pipe.feed(block) + pipe.flush() == []
    assert pipe.stats()["traces"] == block.n_traces  # the whole line went through
