"""``geoedge demo [beach|gpr]``: the main job on the bundled sample data.

Runs the real daemon (``geoedge run``) on each bundled sample station
(``edge/samples/<kind>/station.toml``): the beach station replays a rendered camera
video as one collection and runs products -> waterline -> shoreline; the GPR unit
reads a rendered survey line and reports its cavities. No camera, antenna or broker
is needed: messages go to the MQTT broker named in the sample config when one
answers, and otherwise stay queued in the outbox. Outputs (products, overlays,
snippets, the outbox) go under ``--out``. The samples come with their ground truth
(``truth.json``), and the summary compares the results against it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from edge.config import StationConfig, load_config
from edge.daemon import SITES, Daemon, load_site_factory

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
KINDS = ("beach", "gpr")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the main job on the bundled sample data (no hardware, no broker)"
    )
    parser.add_argument("site", nargs="?", choices=(*KINDS, "all"), default="all")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("geoedge-demo"),
        help="output folder (default ./geoedge-demo)",
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    kinds = KINDS if args.site == "all" else (args.site,)
    worst = 0
    for kind in kinds:
        config = _sample_config(kind, args.out.resolve() / kind)
        site = _RecordingSite(load_site_factory(SITES[kind]))
        logging.getLogger(__name__).info("demo %s: %s", kind, config.source_path)
        worst = max(worst, Daemon(config, site_factory=site).run())
        print(_summary(kind, config, site.messages, args.out / kind))
    return worst


class _RecordingSite:
    """A site factory that builds the real site and keeps a copy of what it emits."""

    def __init__(self, factory) -> None:
        self.factory = factory
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, config: StationConfig, emit, subscribe):
        def record(kind: str, message: dict[str, Any]) -> None:
            emit(kind, message)
            self.messages.append((kind, message))

        return self.factory(config, record, subscribe)


def _sample_config(kind: str, out: Path) -> StationConfig:
    """The bundled sample config with every output redirected under ``out``."""
    config = load_config(SAMPLES / kind / "station.toml")
    out.mkdir(parents=True, exist_ok=True)
    config.collection.output_dir = out / "products"
    config.outbox.path = out / "outbox.sqlite"
    if config.gpr is not None:
        config.gpr.snippets = out / "snippets"
    if hasattr(config.shoreline, "store"):
        config.shoreline.store = out / "shoreline.sqlite"
    return config


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
    true_by_id = {t["id"]: t["still_water_distance_m"] for t in truth["transects"]}
    for wl in waterlines:
        lines.append(f"  waterline at water level {wl.get('water_level_m')} m:")
        for t in wl.get("transects", []):
            true = true_by_id.get(t["id"])
            got = t.get("distance_m")
            text = "no crossing" if got is None else f"{got:6.2f} m"
            ref = "" if true is None else f" (still-water line rendered at {true:.2f} m)"
            state = "" if t.get("valid") else f" [invalid: {t.get('reason')}]"
            lines.append(f"    {t['id']}: {text}{ref}{state}")
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
