"""`geoedge status (--config FILE | --state DIR) [--json]`: the station's health, read locally.

Reads what the daemon of that config wrote last (``status.json`` beside the
outbox: its STATUS line and its latest ``stats`` snapshot) and whether it is
running (it holds the outbox lock). With the daemon stopped, the outbox is read
directly so the queued messages are still counted. ``--state DIR`` names the folder
holding the outbox and ``status.json`` instead of a config (``geoedge demo``'s
``geoedge-demo/beach``, say).

Exit status: 0 running and making progress; 1 running but stalled, or its last
snapshot is older than three stats intervals; 3 not running (as ``systemctl
status``); 2 a bad config.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from edge.commands.arguments import config_or_state
from edge.errors import InputError

EXIT_RUNNING, EXIT_STALLED, EXIT_NOT_RUNNING = 0, 1, 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status", help="the station's health (what the stats message says), read locally"
    )
    config_or_state(parser, "the outbox and status.json")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=_handle)


def station_status(config_path: Path) -> dict[str, Any]:
    """Running state, last snapshot and outbox of the station configured in ``config_path``."""
    from edge.config import load_config

    config = load_config(config_path)
    return state_status(
        config.outbox.path, config.station.id, config.station.kind, config.mqtt.stats_interval_s
    )


def folder_status(state: Path) -> dict[str, Any]:
    """:func:`station_status` of the daemon whose state (outbox, status.json) is in ``state``;
    the station and its kind come from ``status.json``."""
    box = state / "outbox.sqlite"
    if not box.exists():
        raise InputError(f"--state {state}: no outbox.sqlite there (not a station's state folder)")
    doc = _status_doc(state / "status.json")
    station = doc.get("station") or (doc.get("stats") or {}).get("station") or "?"
    return state_status(box, station, doc.get("kind") or "?", doc.get("stats_interval_s", 60.0))


def _status_doc(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def state_status(box: Path, station: str, kind: str, stats_interval_s: float) -> dict[str, Any]:
    """Running state, last snapshot and outbox of the daemon whose outbox is ``box``."""
    from edge.station.messages import epoch_seconds
    from edge.station.outbox import Outbox

    running = Outbox.in_use(box)
    doc = _status_doc(box.parent / "status.json")
    stats = doc.get("stats") or {}
    age = None
    if stats.get("time"):
        age = round(time.time() - epoch_seconds(stats["time"]), 1)
    out: dict[str, Any] = {
        "station": station,
        "kind": kind,
        "running": running,
        "pid": doc.get("pid") if running else None,
        "status": doc.get("status"),
        "snapshot_age_s": age,
        "stale": running and (age is None or age > 3 * stats_interval_s),
        "stats": stats,
    }
    if not running and box.exists():
        out["outbox"] = Outbox.peek(box)
    return out


def _handle(args: argparse.Namespace) -> int:
    report = station_status(args.config) if args.config else folder_status(args.state)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    if not report["running"]:
        return EXIT_NOT_RUNNING
    stalled = report["stale"] or (report["stats"] or {}).get("stalled")
    return EXIT_STALLED if stalled else EXIT_RUNNING


def render(report: dict[str, Any]) -> str:
    """The human-readable form of :func:`station_status`."""
    s = report["stats"]
    state = f"running, pid {report['pid']}" if report["running"] else "NOT running"
    lines = [f"geoedge {report['kind']} station {report['station']}: {state}"]
    if report["status"]:
        lines.append(f"  status     {report['status']}")
    if not s:
        lines.append("  no stats snapshot yet")
    else:
        stale = "  (STALE)" if report["stale"] else ""
        lines += [
            f"  snapshot   {s['time']} ({report['snapshot_age_s']:.0f} s ago){stale}",
            f"  uptime     {_duration(s.get('uptime_s'))}",
            f"  work       {s.get('collections', 0)} done, {s.get('collections_failed', 0)} "
            f"failed, last {s.get('last_collection') or '-'}; "
            f"{_rate(s.get('frames_per_s'))} frames/s, {_rate(s.get('traces_per_s'))} traces/s",
            f"  outbox     {s.get('queue_depth')} queued ({s.get('queue_bytes')} bytes), oldest "
            f"{_duration(s.get('oldest_queued_s'))}, dropped {s.get('dropped')}, "
            f"held in memory {s.get('held_in_memory', 0)}",
            f"  broker     {'connected' if s.get('broker_connected') else 'NOT connected'}",
            f"  disk       {_disk(s.get('disk_free_bytes') or {})}"
            + ("; FULL: products not written" if s.get("disk_full") else ""),
            f"  temp       {_temperature(s.get('temperature_c'))}",
            f"  rejected   {_rejected(s.get('inputs_rejected') or {})}",
        ]
        if s.get("stalled"):
            lines.append(f"  STALLED    {s['stalled']}")
    if "outbox" in report:
        o = report["outbox"]
        lines.append(
            f"  outbox now {o['queue_depth']} queued ({o['queue_bytes']} bytes), oldest "
            f"{_duration(o['oldest_queued_s'])}"
        )
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _disk(free: dict[str, int | None]) -> str:
    return ", ".join(
        f"{name} {'-' if n is None else f'{n / 1024**3:.1f} GiB'} free" for name, n in free.items()
    )


def _temperature(value: float | None) -> str:
    return "not readable on this machine" if value is None else f"{value:.1f} C"


def _rejected(counts: dict[str, int]) -> str:
    return ", ".join(f"{t}: {n}" for t, n in counts.items()) or "none"
