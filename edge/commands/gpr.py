"""`geoedge gpr info|detect|replay`: GPR file facts, cavity detection on a file, stream replay."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("gpr", help="GPR files: header facts, cavity detection, replay")
    sub = parser.add_subparsers(dest="gpr_command", metavar="ACTION", required=True)

    info = sub.add_parser("info", help="header facts of a GPR file (DZT, DT1, RD3/RD7, SEG-Y)")
    info.add_argument("file", type=Path, help="the GPR file (.DZT, .DT1, .rd3/.rd7, .sgy)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(handler=_info)

    detect = sub.add_parser(
        "detect",
        help="cavity messages from a GPR file",
        description="Cavity messages from a GPR file into --out. Side files: one snippet PNG "
        "per cavity in [gpr] snippets of the config, else in <out stem>_snippets/ beside --out.",
    )
    detect.add_argument("file", type=Path, help="the GPR file to search for cavities")
    detect.add_argument("--config", type=Path, required=True, help="station TOML with [gpr]")
    detect.add_argument(
        "--out",
        type=Path,
        required=True,
        help='JSON file {"cavities": [...]}; snippets go to <out stem>_snippets/ beside it',
    )
    detect.set_defaults(handler=_detect)

    replay = sub.add_parser("replay", help="serve a GPR file as a live TCP trace stream")
    replay.add_argument("file", type=Path, help="the GPR file to serve")
    replay.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    replay.add_argument("--host", default="127.0.0.1", help="address to listen on")
    replay.add_argument("--speed-kmh", type=float, default=0.0, help="survey speed (0: max)")
    replay.add_argument("--spacing-m", type=float, default=None, help="trace spacing if unknown")
    replay.add_argument("--wait-s", type=float, default=60.0, help="how long to wait for a client")
    replay.set_defaults(handler=_replay)


def _info(args: argparse.Namespace) -> int:
    from edge.gpr.formats.readers import read_gpr

    info = read_gpr(args.file).info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    lines = [
        f"file      {info['source']}",
        f"format    {info['format']}",
        f"channels  {info['channels']}",
        f"samples   {info['samples']} per trace, {info['bits']}-bit",
        f"traces    {info['traces']} per channel",
        f"range_ns  {info['range_ns']:g}",
        f"dt_ns     {info['dt_ns']:.6g}  (dt = range / nsamp)",
        f"time zero sample {info['time_zero_sample']:g}",
        f"antenna   {info['antenna_mhz']} MHz",
        f"spacing   {info['trace_spacing_m']} m, length {info['length_m']} m",
        f"marks     {len(info['marks'])}  GPS fixes {info['gps_fixes']} "
        f"({info['gps_fixes_valid']} with a fix)",
    ]
    print("\n".join(lines))
    return 0


def _detect(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.gpr.stream import detect_file

    cfg = load_config(args.config)
    if cfg.gpr is None:
        raise ConfigError(f"{args.config}: no [gpr] section")
    snippets = cfg.gpr.snippets or args.out.with_name(args.out.stem + "_snippets")
    cavities = detect_file(args.file, cfg, snippet_dir=snippets)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cavities": cavities}, indent=2))
    written = sum(1 for c in cavities if c.get("snippet"))
    print(f"{len(cavities)} cavities -> {args.out}; {written} snippet(s) in {snippets}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from edge.gpr.live.replay import ReplayServer

    server = ReplayServer(args.file, args.host, args.port, args.speed_kmh, args.spacing_m)
    print(f"replaying {args.file} on {args.host}:{server.port}", flush=True)
    sent = server.serve_once(timeout_s=args.wait_s)
    print(f"sent {sent} traces")
    return 0
