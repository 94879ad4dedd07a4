"""Real labelled beach images for the sea/land U-Net: polygons -> masks, a station table.

Label files are JSON (the labelling helpers' format)::

    {"note": "...", "images": {"<path under the data root>": {
        "station": "<camera position id>", "size": [W, H], "kind": "timex|snapshot|...",
        "water": [[[x, y], ...], ...], "land": [...], "sky": [...], "ignore": [...]}}}

Polygons are in full-resolution pixels (x = column, y = row). Rasterised in the labelling
convention: start 0 (land), fill water = 1, then land = 0 (piers, bars over water), then
sky = 2, then ignore = 255. The U-Net target is water vs not-water (land and sky are 0);
ignore pixels are left out of the loss and of the metrics.

Older label files (``export/labels/real_timex.json``) have no ``station`` field: it is
derived from the key (:func:`station_of`). When a key is in several files, the later file
in the list wins (list the newer, fuller label sets last).

Stations are grouped for validation (:data:`GROUPS`): frames of one camera, and cameras of
one site and survey, are strongly correlated, so a fold holds out whole groups.

A label folder written by ``geoedge label`` (:mod:`edge.beach.labelling.record`: ``<stem>.png``
class masks + ``<stem>.json`` records) may stand wherever a label file does: its images keep
their own paths, its station is the record's ``station`` (else the folder's name).

``python -m export.data.real_labels --labels A.json B.json DIR ... --out DIR [--long-side 1024]``
writes ``DIR/<n>.npz`` (``image`` BGR uint8, ``mask`` uint8 0/1/2/255, resized so the
long side is ``--long-side``) and ``DIR/table.json`` (one row per image: key, station,
group, kind, size, source file, class fractions). No images are written anywhere else.

``python -m export.data.real_labels --labels A.json --stations duck-c6 --label-dir DIR
[--split K]`` writes the chosen stations' labels in the ``geoedge label`` layout instead (the
images stay where they are): with ``--split K`` every K-th image in key order (the first, the
K+1-th, ...) goes to ``DIR/heldout`` and the others to ``DIR/train``.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edge import __version__
from edge.beach.labelling.record import read_label_dir, save_label
from export.data.paths import data_root

#: Where the labelled images are (the keys of the label files are paths under it).
DATA_ROOT = data_root()
IGNORE = 255
WATER, LAND, SKY = 1, 0, 2

#: Validation groups: station-id prefix -> group. First match wins.
GROUPS: tuple[tuple[str, str], ...] = (
    ("duck-argus3", "duck-argus3-snap"),
    ("duck-c", "duck-2015"),
    ("apulia-", "apulia"),
    ("webcoos-", "webcoos"),
    ("ulises-", "ulises"),
    ("caco", "caco01"),
)

#: Folds: each holds out the groups listed (about a quarter of the stations each).
FOLDS: dict[str, tuple[str, ...]] = {
    "A": ("duck-2015",),
    "B": ("duck-argus3-snap", "caco01"),
    "C": ("apulia", "ulises"),
    "D": ("webcoos",),
}


@dataclass(frozen=True)
class LabelledImage:
    """One labelled image: ``key`` is its path under :data:`DATA_ROOT` (absolute for a
    ``geoedge label`` folder); ``entry`` the polygons of a label file, or ``mask_file`` the
    class mask PNG of a label folder."""

    key: str
    station: str
    group: str
    kind: str
    size: tuple[int, int]
    source: str
    entry: dict
    mask_file: str | None = None

    @property
    def image_path(self) -> Path:
        return DATA_ROOT / self.key

    def class_mask(self) -> np.ndarray:
        """Full-resolution uint8 mask: 0 land, 1 water, 2 sky, 255 ignore."""
        if self.mask_file is None:
            return rasterise(self.entry)
        mask = cv2.imread(self.mask_file, cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise FileNotFoundError(self.mask_file)
        return mask


def station_of(key: str, entry: dict) -> str:
    """The entry's ``station``, or one derived from the key for the old label file."""
    if entry.get("station"):
        return str(entry["station"])
    m = re.match(r"coastcam-caco01/\d+\.(c\d)\.", key)
    if m:
        return f"caco01-{m.group(1)}"
    m = re.match(r"duck-argus02b/(c\d)/", key)
    if m:
        return f"duck-{m.group(1)}"
    raise ValueError(f"{key}: no station and none can be derived from the key")


def group_of(station: str) -> str:
    for prefix, group in GROUPS:
        if station.startswith(prefix):
            return group
    return station


def load_label_dir(label_dir: Path) -> list[LabelledImage]:
    """The labels of a ``geoedge label`` folder (images and masks checked against their records)."""
    items = []
    for label in read_label_dir(label_dir):
        label.read_mask()
        station = label.record.station or Path(label_dir).resolve().name
        items.append(
            LabelledImage(
                str(label.image), station, group_of(station), "timex", label.record.size,
                Path(label_dir).name, {}, str(label.mask),
            )
        )  # fmt: skip
    return items


def load(paths: list[Path]) -> list[LabelledImage]:
    """All labelled images of ``paths`` (label files or ``geoedge label`` folders; later ones
    win on duplicate keys), sorted by key."""
    found: dict[str, LabelledImage] = {}
    for path in paths:
        if Path(path).is_dir():
            found.update((item.key, item) for item in load_label_dir(Path(path)))
            continue
        doc = json.loads(Path(path).read_text())
        images = doc.get("images", doc)
        for key, entry in images.items():
            if not isinstance(entry, dict) or "size" not in entry:
                continue
            if not any(entry.get(k) for k in ("water", "land", "sky", "ignore")):
                continue  # not labelled yet
            station = station_of(key, entry)
            kind = entry.get("kind") or ("timex" if "timex" in key else "unknown")
            w, h = entry["size"]
            found[key] = LabelledImage(
                key, station, group_of(station), kind, (int(w), int(h)), Path(path).name, entry
            )
    return [found[k] for k in sorted(found)]


def rasterise(entry: dict) -> np.ndarray:
    """Full-resolution uint8 mask: 0 land, 1 water, 2 sky, 255 ignore."""
    w, h = entry["size"]
    mask = np.zeros((int(h), int(w)), np.uint8)
    for kind, value in (("water", WATER), ("land", LAND), ("sky", SKY), ("ignore", IGNORE)):
        polys = [
            np.round(np.asarray(p, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
            for p in entry.get(kind, [])
            if len(p) >= 3
        ]
        if polys:
            cv2.fillPoly(mask, polys, int(value))
    return mask


def read_pair(item: LabelledImage, long_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """BGR uint8 image and class mask, resized so the long side is ``long_side`` (or full)."""
    img = cv2.imread(str(item.image_path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(item.image_path)
    mask = item.class_mask()
    if mask.shape != img.shape[:2]:
        # label size disagrees with the file (e.g. a re-saved image): scale the mask
        mask = cv2.resize(mask, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
    if long_side:
        s = long_side / max(img.shape[:2])
        if s < 1:
            size = (round(img.shape[1] * s), round(img.shape[0] * s))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    return img, mask


def target(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(water bool, valid bool) from a class mask: water = 1; valid = not ignore."""
    return mask == WATER, mask != IGNORE


def build(paths: list[Path], out: Path, long_side: int) -> list[dict]:
    """Write the npz pairs and ``table.json`` under ``out``; returns the table rows."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, item in enumerate(load(paths)):
        img, mask = read_pair(item, long_side)
        np.savez_compressed(out / f"{n:04d}.npz", image=img, mask=mask)
        frac = {
            name: round(float((mask == v).mean()), 4)
            for name, v in (("water", 1), ("land", 0), ("sky", 2), ("ignore", 255))
        }
        row = asdict(item)
        row.pop("entry")
        row.pop("mask_file")
        row.update(file=f"{n:04d}.npz", stored_size=[img.shape[1], img.shape[0]], fractions=frac)
        rows.append(row)
    (out / "table.json").write_text(json.dumps(rows, indent=1))
    return rows


def write_pairs(root: Path, out: Path, groups: set[str] | None = None) -> int:
    """``out/images`` + ``out/masks`` (PNG, 255 = water, 0 = not water; ignore as 0) from a
    built directory, for the project's ``export quantize``/``export verify`` tools (which
    know no ignore class). Outside the repository only."""
    rows = json.loads((root / "table.json").read_text())
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    n = 0
    for r in rows:
        if groups and r["group"] not in groups:
            continue
        z = np.load(root / r["file"])
        stem = Path(r["file"]).stem
        cv2.imwrite(str(out / "images" / f"{stem}.png"), z["image"])
        cv2.imwrite(
            str(out / "masks" / f"{stem}.png"),
            np.where(z["mask"] == WATER, 255, 0).astype(np.uint8),
        )
        n += 1
    return n


def write_label_dirs(
    paths: list[Path], out: Path, stations: set[str] | None, split: int | None
) -> dict[str, int]:
    """The labels of ``stations`` (all when None) in the ``geoedge label`` layout under ``out``
    (``out/train`` + ``out/heldout`` with ``split``); returns images per folder."""
    items = [i for i in load(paths) if stations is None or i.station in stations]
    counts: dict[str, int] = {}
    for n, item in enumerate(items):
        folder = out if split is None else out / ("heldout" if n % split == 0 else "train")
        labeller = item.entry.get("labeller", "unknown")
        save_label(
            folder, item.image_path, item.class_mask(), labeller, f"polygons of {item.source}",
            item.station, tool=f"export.data.real_labels {__version__}",
        )  # fmt: skip
        counts[str(folder)] = counts.get(str(folder), 0) + 1
    return counts


def summary(rows: list[dict]) -> str:
    """Counts per group / station / kind, as text."""
    from collections import Counter

    c = Counter((r["group"], r["station"], r["kind"]) for r in rows)
    lines = [f"{g:18s} {s:34s} {k:9s} {n:3d}" for (g, s, k), n in sorted(c.items())]
    return "\n".join(
        [*lines, f"total {len(rows)} images, {len({r['station'] for r in rows})} stations"]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--labels", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, help="folder for the npz pairs and table.json")
    p.add_argument("--label-dir", type=Path, help="write geoedge label folders here instead")
    p.add_argument("--stations", default="", help="with --label-dir: only these (comma-separated)")
    p.add_argument("--split", type=int, default=None, help="with --label-dir: every K-th held out")
    p.add_argument("--long-side", type=int, default=1024)
    p.add_argument(
        "--pairs",
        type=Path,
        default=None,
        help="also write images/ + masks/ PNG pairs here (for export verify)",
    )
    args = p.parse_args(argv)
    if args.label_dir is not None:
        stations = {s for s in args.stations.split(",") if s} or None
        for folder, n in write_label_dirs(
            args.labels, args.label_dir, stations, args.split
        ).items():
            print(f"{n} labels -> {folder}")
        return 0
    if args.out is None:
        p.error("--out or --label-dir is required")
    rows = build(args.labels, args.out, args.long_side)
    print(summary(rows))
    if args.pairs:
        print(f"{write_pairs(args.out, args.pairs)} pairs -> {args.pairs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
