"""``geoedge shoreline trend (--config FILE | --state DIR) [--since ISO] [--until ISO] [--json]``.

Per-transect advance (+) / retreat (-) rate of the tide-datum shoreline in m/yr: an
ordinary least-squares line through the stored shorelines (chainage positive seaward
against time in years), with the rate's standard error.
"""

from __future__ import annotations

import argparse
import json

from edge.beach.shoreline.store import ShorelineStore
from edge.beach.shoreline.trend import shoreline_trend
from edge.commands.arguments import config_or_state, utc_time
from edge.config import load_config
from edge.errors import InputError
from edge.station.messages import utc_iso


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("shoreline", help="shoreline time series")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    trend = sub.add_parser("trend", help="per-transect advance/retreat rates (m/yr)")
    config_or_state(trend, "shoreline.sqlite")
    trend.add_argument("--since", type=utc_time, help="UTC ISO start of the period")
    trend.add_argument("--until", type=utc_time, help="UTC ISO end of the period")
    trend.add_argument("--json", action="store_true", help="print JSON instead of a table")
    trend.set_defaults(handler=_trend)


def trend_rows(series: dict) -> list[dict]:
    """Rate (m/yr) and its standard error per transect; None where fewer than 3 points."""
    rows = []
    for transect, points in sorted(series.items()):
        trend = shoreline_trend([p.time for p in points], [p.distance_m for p in points])
        rows.append(
            {
                "id": transect,
                "n": trend.n,
                "rate_m_per_yr": trend.rate_m_per_yr,
                "stderr_m_per_yr": trend.stderr_m_per_yr,
                "first": utc_iso(points[0].time),
                "last": utc_iso(points[-1].time),
            }
        )
    return rows


def _trend(args: argparse.Namespace) -> int:
    if args.config:
        config = load_config(args.config)
        path, station = config.shoreline.store, config.station.id
    else:
        path, station = args.state / "shoreline.sqlite", None
    if not path.is_file():
        raise InputError(f"no shoreline store yet at {path}")
    store = ShorelineStore(path)
    try:
        rows = trend_rows(store.shorelines(args.since, args.until))
    finally:
        store.close()
    if args.json:
        print(json.dumps({"station": station, "transects": rows}))
        return 0
    print(f"{'transect':10s} {'n':>5s} {'rate m/yr':>10s} {'+-':>7s}  period")
    for r in rows:
        rate = "   -" if r["rate_m_per_yr"] is None else f"{r['rate_m_per_yr']:+10.3f}"
        err = "" if r["stderr_m_per_yr"] is None else f"{r['stderr_m_per_yr']:7.3f}"
        print(f"{r['id']:10s} {r['n']:5d} {rate:>10s} {err:>7s}  {r['first']} .. {r['last']}")
    return 0
