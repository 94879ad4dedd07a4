"""``geoedge demo [beach|gpr]``: the main job on the bundled sample data.

Runs the real daemon (``geoedge run``) on each bundled sample station
(``edge/samples/<kind>/station.toml``): the beach station replays a rendered camera
video as one collection and runs products -> waterline -> shoreline; the GPR unit
reads a rendered survey line and reports its cavities. No camera, antenna or broker
is needed: without ``--broker`` every message stays in the outbox under ``--out`` (no
broker is contacted, not even one on this machine); with ``--broker mqtt://HOST[:PORT]``
they are published there (a control room's hub can watch), with the images the results name
(TimeX, overlays, snippets: ``[mqtt] publish_images``). Outputs (products, overlays,
snippets, the outbox) go under ``--out``. The samples come with their ground truth
(``truth.json``), and the summary compares the results against it and names the overlay
files. The beach's truth is the wet/dry edge its TimeX shows, at the top of the rendered
swash (tide + setup + half the swash, the elevation the station assigns from its tide
and wave tables), not the still-water line the swash runs about (see
:func:`export.data.samples.timex_edge_level`). The bundled configs are not changed: the
demo runs a copy with its outputs moved.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from edge.beach.geometry.grid import Grid
from edge.beach.waterline.overlay import mark_reference
from edge.beach.waterline.transects import load_transects
from edge.config import StationConfig, load_config, with_changes
from edge.errors import InputError
from edge.station.daemon import SITES, Daemon, load_site_factory
from edge.station.site import Emit, Site, SiteFactory, Subscribe

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
KINDS = ("beach", "gpr")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the main job on the bundled sample data (no hardware, no broker)",
        description="Run the daemon on the bundled sample station(s) and compare the results "
        "with the rendered ground truth. Without --broker nothing is published: every "
        "message stays in the outbox under --out.",
    )
    parser.add_argument(
        "site",
        nargs="?",
        choices=(*KINDS, "all"),
        default="all",
        help="which sample: beach (camera station), gpr (GPR unit) or all (both; default)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("geoedge-demo"),
        help="output folder for products, overlays, snippets and the outbox "
        "(default ./geoedge-demo)",
    )
    parser.add_argument(
        "--broker",
        metavar="URL",
        help="publish to this MQTT broker, mqtt://HOST[:PORT] (default: publish nothing)",
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    kinds = KINDS if args.site == "all" else (args.site,)
    broker = _broker(args.broker) if args.broker else None
    worst = 0
    for kind in kinds:
        config = _sample_config(kind, args.out.resolve() / kind, broker)
        site = _RecordingSite(load_site_factory(SITES[kind]))
        logging.getLogger(__name__).info("demo %s: %s", kind, config.source_path)
        worst = max(worst, Daemon(config, site_factory=site).run())
        if kind == "beach":
            _draw_truth(config, site.messages)
        print(_summary(kind, config, site.messages, args.out / kind))
    return worst


class _RecordingSite:
    """A site factory that builds the real site and keeps a copy of what it emits."""

    def __init__(self, factory: SiteFactory) -> None:
        self.factory = factory
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, config: StationConfig, emit: Emit, subscribe: Subscribe) -> Site:
        def record(kind: str, message: dict[str, Any]) -> None:
            emit(kind, message)
            self.messages.append((kind, message))

        return self.factory(config, record, subscribe)


def _broker(url: str) -> dict[str, Any]:
    """``[mqtt]`` keys for ``mqtt://HOST[:PORT]``, images on (a hub's dashboard shows them)."""
    parts = urlsplit(url)
    try:
        port = parts.port or 1883
    except ValueError:
        port = 0
    if parts.scheme != "mqtt" or not parts.hostname or port == 0:
        raise InputError(f"--broker {url!r}: expected mqtt://HOST[:PORT]")
    return {"enabled": True, "host": parts.hostname, "port": port, "publish_images": True}


def _sample_config(kind: str, out: Path, broker: dict[str, Any] | None) -> StationConfig:
    """A copy of the bundled sample config with every output under ``out`` and the broker
    (none: MQTT disabled, messages stay in the outbox)."""
    config = load_config(SAMPLES / kind / "station.toml")
    out.mkdir(parents=True, exist_ok=True)
    changes: dict[str, dict[str, Any]] = {
        "collection": {"output_dir": out / "products"},
        "outbox": {"path": out / "outbox.sqlite"},
        "shoreline": {"store": out / "shoreline.sqlite"},
        "mqtt": broker or {"enabled": False},
    }
    if config.gpr is not None:
        changes["gpr"] = {"snippets": out / "snippets"}
    return with_changes(config, **changes)


def _draw_truth(config: StationConfig, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """The rendered TimeX wet/dry edge (the truth) on each plan-view overlay the demo wrote."""
    if config.grid is None or config.transects is None:
        return
    lines = {t.id: t.line for t in load_transects(config.transects.file)}
    truth = _truth("beach")["transects"]
    points = np.array(
        [lines[t["id"]].interpolate(t["waterline_distance_m"]).coords[0][:2] for t in truth]
    )
    grid = Grid.from_section(config.grid)
    for kind, message in messages:
        plan = message.get("overlays", {}).get("plan") if kind == "waterline" else None
        if plan:
            mark_reference(Path(plan), grid, points, "rendered TimeX wet/dry edge (truth)")


def _truth(kind: str) -> dict[str, Any]:
    return json.loads((SAMPLES / kind / "truth.json").read_text())


def _summary(kind: str, config: StationConfig, messages: list, out: Path) -> str:
    counts: dict[str, int] = {}
    for k, _ in messages:
        counts[k] = counts.get(k, 0) + 1
    lines = [
        f"demo {kind}: station {config.station.id}, "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        + f" message(s); outputs in {out}/"
    ]
    if kind == "gpr":
        lines += _gpr_lines([m for k, m in messages if k == "cavity"], _truth("gpr"))
    else:
        lines += _beach_lines(messages, _truth("beach"))
    return "\n".join(lines)


def _gpr_lines(cavities: list[dict[str, Any]], truth: dict[str, Any]) -> list[str]:
    lines = []
    for target in truth["targets"]:
        near = [c for c in cavities if abs(c["distance_m"] - target["distance_m"]) < 1.0]
        if not near:
            lines.append(f"  {target['class']:6s} at {target['distance_m']:5.1f} m: not found")
            continue
        c = max(near, key=lambda c: c["confidence"])
        lines.append(
            f"  {target['class']:6s} at {target['distance_m']:5.1f} m, top "
            f"{target['depth_top_m']:.2f} m: reported {c['class']} at {c['distance_m']:.2f} m, "
            f"top {c['depth_top_m']:.2f} m, v {c['velocity_m_per_ns']:.3f} m/ns "
            f"({c['velocity_source']}), confidence {c['confidence']:.2f}"
        )
    extra = [
        c
        for c in cavities
        if all(abs(c["distance_m"] - t["distance_m"]) >= 1.0 for t in truth["targets"])
    ]
    if extra:
        lines.append(f"  {len(extra)} report(s) away from the rendered targets")
    return lines


def _beach_lines(messages: list, truth: dict[str, Any]) -> list[str]:
    lines = []
    waterlines = [m for k, m in messages if k == "waterline"]
    true_by_id = {t["id"]: t["waterline_distance_m"] for t in truth["transects"]}
    for wl in waterlines:
        lines.append(f"  waterline at water level {wl.get('water_level_m')} m:")
        for t in wl.get("transects", []):
            true = true_by_id.get(t["id"])
            got = t.get("distance_m")
            text = "no crossing" if got is None else f"{got:6.2f} m"
            ref = "" if true is None else f" (TimeX wet/dry edge rendered at {true:.2f} m)"
            state = "" if t.get("valid") else f" [invalid: {t.get('reason')}]"
            lines.append(f"    {t['id']}: {text}{ref}{state}")
        for view, path in sorted(wl.get("overlays", {}).items()):
            lines.append(f"  overlay ({view}): {path}")
    datum_by_id = {t["id"]: t.get("datum_distance_m") for t in truth["transects"]}
    for kind, m in messages:
        if kind != "shoreline":
            continue
        lines.append(f"  shoreline (datum {m.get('datum_m')} m):")
        for t in m.get("transects", []):
            if not t.get("available"):
                lines.append(f"    {t['id']}: unavailable ({t.get('reason')})")
                continue
            true = datum_by_id.get(t["id"])
            ref = "" if true is None else f" (rendered at {true:.2f} m)"
            lines.append(
                f"    {t['id']}: {t['distance_m']:6.2f} m +- {t['sigma_m']:.2f}{ref}, "
                f"tan(beta) {t['tan_beta']:.3f} ({t['slope_source']})"
            )
    return lines
