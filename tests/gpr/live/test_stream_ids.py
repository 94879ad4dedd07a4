"""Cavity ids of a TCP stream are idempotent: the same line replayed into a restarted GPR
unit gives the same ids, and another line (another start time) gives other ids.

A stream's trace numbers restart with every line, so the id keys on the line's first
trace time (from its frame) rather than on the address. Real sockets: a ReplayServer
plays a synthetic SEG-Y line with fixed trace times into :class:`edge.gpr.site.GprUnit`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from edge.config import load_config
from edge.gpr.live.replay import ReplayServer
from edge.gpr.site import GprUnit
from tests.helpers.gpr_lines import gpr_config, synthetic_line, write_segy

START = 1_750_000_000.0  # 2025-06-15T15:06:40Z


def run_line(tmp_path: Path, line: Path, start_time: float) -> tuple[list[dict], dict]:
    """Replay ``line`` (trace k stamped start_time + k / rate) into a fresh GprUnit; the
    messages of that one line and the unit's stats."""
    server = ReplayServer(line, port=0, speed_kmh=40.0, start_time=start_time, pace=False)
    threading.Thread(target=server.serve_once, daemon=True).start()
    cfg = load_config(gpr_config(tmp_path, f"tcp://127.0.0.1:{server.port}"))
    messages: list[dict] = []
    unit = GprUnit(cfg, lambda kind, msg: messages.append(msg))
    stop = threading.Event()
    runner = threading.Thread(target=unit.run, args=(stop,), daemon=True)
    runner.start()
    t_end = time.monotonic() + 60
    while unit.lines < 1 and time.monotonic() < t_end:
        time.sleep(0.05)
    stop.set()
    runner.join(10)
    assert unit.lines == 1, "the line did not end"
    return messages, unit.stats()


def test_replayed_line_keeps_its_ids_and_another_line_does_not_share_them(tmp_path):
    scan, data, _ = synthetic_line()
    line = tmp_path / "line.sgy"
    write_segy(line, data[scan.t0_index :], round(scan.dt_ns * 1000), scan.dx_m)
    first, stats = run_line(tmp_path, line, START)
    again, _ = run_line(tmp_path, line, START)  # a daemon restart replays the same line
    other, _ = run_line(tmp_path, line, START + 3600.0)  # the same ground an hour later
    assert len(first) >= 2
    assert stats["traces_received"] == 768 and stats["garbage_bytes"] == 0
    ids = [m["id"] for m in first]
    assert len(set(ids)) == len(ids)
    assert [m["id"] for m in again] == ids
    assert not set(ids) & {m["id"] for m in other}
    assert {m["line_start"] for m in first} == {"2025-06-15T15:06:40Z"}
    # Same line, same detections: only the identity differs between the two lines.
    assert [m["trace"] for m in other] == [m["trace"] for m in first]
