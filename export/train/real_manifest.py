"""Write the real-image figures into an exported U-Net's manifests (FP32 and INT8 sidecars).

::

    python -m export.train.real_manifest edge/models/unet.onnx --table DIR/table.json \
        --cv-eval cv.json [--cv-method cv] [--synthetic N --synthetic-note TEXT] \
        [--training TEXT] [--int8-eval int8.json]

``--table`` is the training set's station table (:mod:`export.data.real_labels`); ``--cv-eval``
an :mod:`export.train.eval_unet` JSON with the fold-wise held-out method (``--cv-method``), the
shipped model and ``colour``. Only ``training_data`` and ``metrics`` change: the sha256 of
the .onnx files stays valid. Both ``unet.manifest.json`` and ``unet.int8.manifest.json``
(when present) are updated.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np


def per_station(rows: list[dict], method: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for s in sorted({r["station"] for r in rows}):
        v = [r[method] for r in rows if r["station"] == s and method in r]
        if v:
            out[s] = {
                "images": len(v),
                "iou": round(float(np.mean([x["iou"] for x in v])), 3),
                "boundary_px": round(float(np.median([x["bd"] for x in v])), 1),
            }
    return out


def summary(st: dict[str, dict], rows: list[dict], method: str) -> dict:
    v = [r[method] for r in rows if method in r]
    return {
        "stations": len(st),
        "mean_iou_over_stations": round(float(np.mean([x["iou"] for x in st.values()])), 3),
        "median_boundary_px_over_stations": round(
            float(np.median([x["boundary_px"] for x in st.values()])), 1
        ),
        "images": len(v),
        "mean_iou_over_images": round(float(np.mean([x["iou"] for x in v])), 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--table", type=Path, required=True)
    p.add_argument("--cv-eval", type=Path, required=True)
    p.add_argument("--cv-method", default="cv")
    p.add_argument("--baselines", nargs="+", default=["shipped", "colour"])
    p.add_argument("--synthetic", type=int, default=0)
    p.add_argument("--synthetic-note", default="")
    p.add_argument("--training", default="")
    p.add_argument("--extra", type=Path, default=None, help="JSON merged into metrics")
    args = p.parse_args(argv)

    table = json.loads(args.table.read_text())
    ev = json.loads(args.cv_eval.read_text())
    rows = [r for r in ev["rows"] if args.cv_method in r]  # compare on the same images
    by_group = Counter(r["group"] for r in table)
    by_station = Counter(r["station"] for r in table)
    by_kind = Counter(r["kind"] for r in table)
    text = (
        f"{len(table)} real hand-labelled images from {len(by_station)} stations "
        f"(groups: {dict(sorted(by_group.items()))}; kinds: {dict(sorted(by_kind.items()))}; "
        f"stations: {dict(sorted(by_station.items()))}) + {args.synthetic} synthetic TimeX "
        f"{args.synthetic_note}. {args.training}"
    ).strip()
    heldout = {
        "protocol": "whole station groups held out (folds: "
        + "; ".join(sorted({f"{r['group']}" for r in rows}))
        + "), each image segmented by the model "
        "of the fold that did not train on its group; IoU over non-ignore pixels, "
        f"boundary distance = median px at {ev['width']} px width (label and prediction "
        "boundaries, both directions); colour method given the labelled ground as its "
        "statistics mask and labelled sky as not-water (oracle horizon)",
        "eval_methods": ev["methods"],
        "per_station": {},
    }
    cv = per_station(rows, args.cv_method)
    base = {b: per_station(rows, b) for b in args.baselines}
    for s, v in cv.items():
        heldout["per_station"][s] = {"heldout": v, **{b: base[b].get(s) for b in args.baselines}}
    heldout["summary"] = {
        "heldout": summary(cv, rows, args.cv_method),
        **{b: summary(base[b], rows, b) for b in args.baselines},
    }
    for path in (
        args.model.with_suffix(".manifest.json"),
        args.model.with_name(args.model.stem + ".int8.manifest.json"),
    ):
        if not path.is_file():
            continue
        m = json.loads(path.read_text())
        m["training_data"] = text
        metrics = m.get("metrics", {})
        metrics.pop("heldout_iou", None)
        metrics.pop("heldout_count", None)
        metrics["real_heldout_by_station"] = heldout
        if args.extra:
            metrics.update(json.loads(args.extra.read_text()))
        m["metrics"] = metrics
        path.write_text(json.dumps(m, indent=2) + "\n")
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
