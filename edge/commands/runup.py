"""``geoedge runup --hs H --tp T --slope B [--json]``: Stockdon (2006) runup."""

from __future__ import annotations

import argparse
import json

from edge.beach.shoreline.runup import stockdon2006


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("runup", help="wave runup, setup and swash (Stockdon 2006)")
    p.add_argument("--hs", type=float, required=True, help="deep-water significant height, m")
    p.add_argument("--tp", type=float, required=True, help="peak period, s")
    p.add_argument("--slope", type=float, required=True, help="foreshore slope tan(beta)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    r = stockdon2006(args.hs, args.tp, args.slope)
    if args.json:
        print(json.dumps(r.to_dict()))
        return 0
    regime = "dissipative (xi0 < 0.3)" if r.dissipative else "intermediate/reflective"
    print(f"L0        {r.L0_m:.2f} m (g T^2 / 2 pi)")
    print(f"iribarren {r.iribarren:.3f}  {regime}")
    print(f"setup     {r.setup_m:.3f} m")
    print(f"swash     {r.swash_m:.3f} m")
    print(f"R2        {r.R2_m:.3f} m above the still water level")
    return 0
