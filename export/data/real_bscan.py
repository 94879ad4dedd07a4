"""Real labelled GPR images -> detector windows with boxes (the real-data training pool).

Sources (``gpr-labelled/`` of the data folder, :func:`export.data.paths.data_root`; see its
README; never copied into the repo):

- ``morocco``: Morocco GPR_Data, 224x224 grey exports. ``augmented_cavities`` -> class
  ``cavity``, ``augmented_utilities`` -> ``pipe`` (both YOLO id 0: the folder gives the
  class); ``augmented_intact_subset`` -> negatives. Split by original id
  (``<originalID>_aug_<k>``): ~20 % of the originals of each folder held out.
- ``sns``: Sensors & Software hyperbola set (irenexychen), VOC ``hyperbola`` -> ``pipe``
  (point diffractors). Screenshots with axes and a blue-grey colour map: grey amplitude is
  recovered as the channel mean (the map is one monotone curve in RGB: its first principal
  component holds > 99 % of the colour variance) and the plot area is cropped
  (:func:`plot_region`). Held out by family: numeric screenshots in blocks of 20 numbers,
  ``hyperbolaN`` in blocks of 10, each ``lineN`` its own group, ``line2888`` crops one group.
- ``concretenet``: GSSI rebar screenshots, YOLO ``rebar`` -> ``pipe``; its own train/val
  folders. Boxes centred on the left depth-axis strip (spurious) are dropped.

Every image becomes a float32 grey amplitude array (``(g - 127.5) / 127.5`` of the 8-bit
render, axes cropped) and boxes ``(class, x0, y0, x1, y1)`` in its pixels; rows are time.
Windows for the model go through :func:`edge.gpr.detector.normalise_window` (``robust``),
the same function the device applies to its processed windows.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.errors import InputError
from export.data.paths import data_root

ROOT = data_root() / "gpr-labelled"
CLASSES = ("cavity", "pipe")
CAVITY, PIPE = 0, 1
#: Share of originals / groups held out.
HOLDOUT = 0.2
SPLIT_SEED = 0


@dataclass
class Record:
    """One labelled image: grey amplitude ``image`` (H, W), boxes ``(n, 5)`` cls x0 y0 x1 y1."""

    source: str
    name: str
    group: str
    split: str  # "train" or "val"
    image: np.ndarray
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))


def _imread(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """``cv2.imread`` that raises :class:`InputError` naming the file instead of returning None."""
    im = cv2.imread(str(path), flags)
    if im is None:
        raise InputError(f"cannot read image {path}")
    return im


def grey_amplitude(bgr: np.ndarray) -> np.ndarray:
    """8-bit grey or monotone colour-mapped render -> amplitude in about [-1, 1]."""
    g = bgr.astype(np.float32)
    if g.ndim == 3:
        g = g.mean(axis=2)
    return (g - 127.5) / 127.5


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    best, start, run0 = (0, len(mask)), None, 0
    best_len = 0
    for i, v in enumerate(np.append(mask, False)):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if i - start > best_len:
                best_len, best = i - start, (start, i)
            start = None
    del run0
    return best


def _close_gaps(mask: np.ndarray, gap: int) -> np.ndarray:
    """Fill runs of False no longer than ``gap`` between True values."""
    m = mask.copy()
    idx = np.flatnonzero(m)
    for a, b in itertools.pairwise(idx):
        if 1 < b - a <= gap + 1:
            m[a:b] = True
    return m


def plot_region(bgr: np.ndarray, margin: int = 2) -> tuple[int, int, int, int]:
    """``(r0, r1, c0, c1)`` of the radargram in a screenshot (axes, text, bars cut off).

    Columns count as plot when >= 90 % of their (middle-half) pixels are not near-white
    (axes background) and they are not flat (frame lines). Rows inside those columns count
    when they are colour-mapped (blue-grey maps: blue > red by 6+ levels in >= 30 % of
    the row) or, for grey renders, under 50 % near-white, under 90 % near-black and not
    flat. Gaps up to 6 % of the height are closed (saturated reflector bands); the
    longest run wins.
    """
    b = bgr.astype(np.float32)
    g = b.mean(axis=2) if b.ndim == 3 else b
    h, w = g.shape
    white = g > 235
    mid_r = slice(h // 4, 3 * h // 4)
    col_ok = (1 - white[mid_r].mean(axis=0) >= 0.9) & (g[mid_r].std(axis=0) > 2.0)
    c0, c1 = _longest_run(_close_gaps(col_ok, int(0.06 * w)))
    sub = g[:, c0:c1]
    grey_ok = (
        (white[:, c0:c1].mean(axis=1) < 0.5)
        & ((sub < 15).mean(axis=1) < 0.9)
        & (sub.std(axis=1) > 0.8)
    )
    if b.ndim == 3:
        bluish = (b[:, c0:c1, 0] - b[:, c0:c1, 2]) > 6
        colour = bluish[mid_r].mean() > 0.3
    else:
        colour = False
    row_ok = (bluish.mean(axis=1) >= 0.3) if colour else grey_ok
    r0, r1 = _longest_run(_close_gaps(row_ok, int(0.06 * h)))
    return r0 + margin, r1 - margin, c0 + margin, c1 - margin


def _crop_boxes(boxes: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Shift boxes into a crop; clip; drop boxes with < 50 % of their area inside."""
    if not len(boxes):
        return boxes.reshape(0, 5).astype(np.float32)
    b = boxes.astype(np.float32).copy()
    area = (b[:, 3] - b[:, 1]) * (b[:, 4] - b[:, 2])
    b[:, [1, 3]] = np.clip(b[:, [1, 3]] - c0, 0, c1 - c0)
    b[:, [2, 4]] = np.clip(b[:, [2, 4]] - r0, 0, r1 - r0)
    inside = (b[:, 3] - b[:, 1]) * (b[:, 4] - b[:, 2])
    return b[inside >= 0.5 * np.maximum(area, 1e-6)]


def _yolo(path: Path, w: int, h: int, cls: int) -> np.ndarray:
    rows = []
    if path.is_file():
        for line in path.read_text().split("\n"):
            if line.strip():
                _, cx, cy, bw, bh = map(float, line.split()[:5])
                rows.append(
                    [
                        cls,
                        (cx - bw / 2) * w,
                        (cy - bh / 2) * h,
                        (cx + bw / 2) * w,
                        (cy + bh / 2) * h,
                    ]
                )
    return np.array(rows, np.float32).reshape(-1, 5)


def _held_groups(groups: list[str], share: float, seed: int) -> set[str]:
    """``share`` of the distinct groups, chosen at random with a fixed seed."""
    uniq = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(uniq))
    k = max(1, round(share * len(uniq)))
    return {uniq[i] for i in order[:k]}


def load_morocco(root: Path = ROOT) -> list[Record]:
    """Morocco cavities (cavity), utilities (pipe) and intact images (negatives)."""
    base = root / "morocco-gpr-data"
    out: list[Record] = []
    for folder, labels, cls in (
        ("augmented_cavities", "annotations/Yolo_format", CAVITY),
        ("augmented_utilities", "annotations/YOLO_format", PIPE),
        ("augmented_intact_subset", None, None),
    ):
        files = sorted((base / folder).glob("*.jpg"))
        groups = [f"{folder}:{f.stem.split('_aug_')[0]}" for f in files]
        held = _held_groups(groups, HOLDOUT, SPLIT_SEED)
        for f, g in zip(files, groups, strict=True):
            im = _imread(f, cv2.IMREAD_GRAYSCALE)
            h, w = im.shape
            boxes = (
                _yolo(base / folder / labels / f"{f.stem}.txt", w, h, cls)
                if labels and cls is not None
                else np.zeros((0, 5), np.float32)
            )
            out.append(
                Record(
                    "morocco", f.name, g, "val" if g in held else "train", grey_amplitude(im), boxes
                )
            )
    return out


def _voc_boxes(xml: Path, cls: int) -> np.ndarray:
    """Boxes ``(n, 5)`` cls x0 y0 x1 y1 of a Pascal VOC annotation, every object as ``cls``."""
    rows = []
    for o in ET.parse(xml).getroot().iter("object"):
        b = o.find("bndbox")
        if b is None:
            raise ValueError(f"{xml}: <object> without <bndbox>")
        coords = []
        for k in ("xmin", "ymin", "xmax", "ymax"):
            e = b.find(k)
            if e is None or e.text is None:
                raise ValueError(f"{xml}: <bndbox> without <{k}>")
            coords.append(float(e.text))
        rows.append([cls, *coords])
    return np.array(rows, np.float32).reshape(-1, 5)


def sns_group(stem: str) -> str:
    """Screenshot family / source line of an S&S image name."""
    if stem.isdigit():
        return f"shot{int(stem) // 20}"
    m = re.fullmatch(r"hyperbola(\d+)", stem)
    if m:
        return f"hyp{int(m.group(1)) // 10}"
    m = re.fullmatch(r"line(\d+)_.*", stem)
    return f"line{m.group(1)}" if m else stem


def load_sns(root: Path = ROOT) -> list[Record]:
    """The Sensors & Software hyperbola images, axes cropped, boxes -> pipe."""
    base = root / "irenexychen-hyperbola"
    files = sorted((base / "images").glob("*.jpg"))
    groups = [sns_group(f.stem) for f in files]
    # Hold out ~20 % of the groups of each kind (screenshots, hyperbolaN, line crops).
    held: set[str] = set()
    for kind in ("shot", "hyp", "line"):
        held |= _held_groups([g for g in groups if g.startswith(kind)], HOLDOUT, SPLIT_SEED)
    out = []
    for f, g in zip(files, groups, strict=True):
        bgr = _imread(f)
        boxes = _voc_boxes(base / "annotations" / "xmls" / f"{f.stem}.xml", PIPE)
        if f.stem.startswith("line"):
            r0, r1, c0, c1 = 0, bgr.shape[0], 0, bgr.shape[1]
        else:
            r0, r1, c0, c1 = plot_region(bgr)
        out.append(
            Record(
                "sns",
                f.name,
                g,
                "val" if g in held else "train",
                grey_amplitude(bgr[r0:r1, c0:c1]),
                _crop_boxes(boxes, r0, r1, c0, c1),
            )
        )
    return out


def load_concretenet(root: Path = ROOT) -> list[Record]:
    """ConcreteNet GSSI rebar screenshots (own train/val), axes cropped, boxes -> pipe."""
    base = root / "concretenet-gssi"
    out = []
    for split in ("train", "val"):
        for f in sorted((base / "images" / split).glob("*.png")):
            bgr = _imread(f)
            h, w = bgr.shape[:2]
            boxes = _yolo(base / "labels" / split / f"{f.stem}.txt", w, h, PIPE)
            # GSSI layout: depth-axis strip (white, text) on the left, data from the top row,
            # scroll bar + status bar (55 px) below, a thin frame on the right. Saturated
            # white rebar limbs defeat plot_region's column test here.
            g = bgr.astype(np.float32).mean(axis=2)
            strip = (g[h // 4 : 3 * h // 4] > 235).mean(axis=0) > 0.5
            c0 = int(np.flatnonzero(strip[: w // 3]).max()) + 3
            r0, r1, c1 = 0, h - 55, w - 6
            centre_x = (boxes[:, 1] + boxes[:, 3]) / 2
            boxes = boxes[centre_x >= c0]  # the spurious boxes on the depth-axis strip
            out.append(
                Record(
                    "concretenet",
                    f.name,
                    f.stem,
                    split,
                    grey_amplitude(bgr[r0:r1, c0:c1]),
                    _crop_boxes(boxes, r0, r1, c0, c1),
                )
            )
    return out


def load_all(root: Path = ROOT) -> list[Record]:
    return load_morocco(root) + load_sns(root) + load_concretenet(root)


# ------------------------------------------------------------------------ windows


def crop_window(
    image: np.ndarray,
    boxes: np.ndarray,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
    hw: tuple[int, int],
    min_visible: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``image[r0:r1, c0:c1]``, resize to ``hw`` (INTER_AREA), boxes -> YOLO rows."""
    h, w = hw
    win = cv2.resize(
        np.ascontiguousarray(image[r0:r1, c0:c1]), (w, h), interpolation=cv2.INTER_AREA
    )
    b = _crop_boxes(boxes, r0, r1, c0, c1) if min_visible == 0.5 else boxes
    ch, cw = r1 - r0, c1 - c0
    b = b[((b[:, 3] - b[:, 1]) > 1) & ((b[:, 4] - b[:, 2]) > 1)]
    yolo = np.c_[
        b[:, 0],
        (b[:, 1] + b[:, 3]) / 2 / cw,
        (b[:, 2] + b[:, 4]) / 2 / ch,
        (b[:, 3] - b[:, 1]) / cw,
        (b[:, 4] - b[:, 2]) / ch,
    ].astype(np.float32)
    return win.astype(np.float32), yolo.reshape(-1, 5)


def eval_tiles(
    shape: tuple[int, int], hw: tuple[int, int], mode: str, scale: float = 1.0
) -> list[tuple[int, int, int, int]]:
    """Deterministic evaluation windows ``(r0, r1, c0, c1)`` over an image.

    ``"whole"``: the image as one window (resampled to the model size, as the device does
    with any window). ``"tiles"``: full-height windows ``scale`` times as wide as the model's
    aspect ratio (width = scale * height * W / H; scale 1 is isotropic resampling, as
    ``[gpr.windows] scales``), 50 % overlap, the last one flush right.
    """
    H, W = shape
    if mode == "whole":
        return [(0, H, 0, W)]
    tw = max(1, min(W, round(H * hw[1] / hw[0] * scale)))
    stride = max(1, tw // 2)
    starts = list(range(0, max(W - tw, 0) + 1, stride))
    if starts[-1] + tw < W:
        starts.append(W - tw)
    return [(0, H, c, c + tw) for c in starts]


#: How each source is scored: Morocco images are one window, the wide screenshots tiles.
EVAL_MODE = {"morocco": "whole", "sns": "tiles", "concretenet": "tiles"}


def sample_window(
    rec: Record, hw: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random training window of a record: a crop of random height share and aspect.

    The crop keeps 50-100 % of the image height (all of it half the time) and a width
    whose aspect after resampling to ``hw`` is stretched by x0.5-2 (log-uniform) against
    isotropic; screenshots are usually wider than one window, so the crop slides along.
    """
    H, W = rec.image.shape
    h, w = hw
    ch = H if rng.random() < 0.5 else int(H * rng.uniform(0.5, 1.0))
    stretch = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    cw = round(ch * w / h * stretch)
    if rec.source == "morocco" and rng.random() < 0.5:
        ch, cw = H, W  # the evaluation's view as well
    cw = int(np.clip(cw, 8, W))
    ch = int(np.clip(ch, 8, H))
    r0 = int(rng.integers(0, H - ch + 1))
    c0 = int(rng.integers(0, W - cw + 1))
    return crop_window(rec.image, rec.boxes, r0, r0 + ch, c0, c0 + cw, hw)


def summary(records: list[Record]) -> dict[str, dict[str, dict[str, int]]]:
    """Counts of images, boxes per class and negatives by source and split."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for r in records:
        s = out.setdefault(r.source, {}).setdefault(
            r.split, {"images": 0, "negatives": 0, "cavity": 0, "pipe": 0, "groups": 0}
        )
        s["images"] += 1
        s["negatives"] += int(len(r.boxes) == 0)
        for c in r.boxes[:, 0].astype(int):
            s[CLASSES[c]] += 1
    for src, splits in out.items():
        for sp in splits:
            splits[sp]["groups"] = len(
                {r.group for r in records if r.source == src and r.split == sp}
            )
    return out


def write_windows(
    records: list[Record], out: Path, hw: tuple[int, int], per_record: int = 0, seed: int = 0
) -> int:
    """``out/images/*.npy`` (grey amplitude windows at ``hw``) + ``out/labels/*.txt`` (YOLO).

    ``per_record`` 0: the deterministic evaluation windows (:func:`eval_tiles`, boxes at
    least half inside a tile); > 0: that many random training windows per record
    (:func:`sample_window`), e.g. INT8 calibration data from the train split.
    The format ``export.convert.verify`` / ``export.convert.quantize`` /
    ``export.train.detector`` read.
    """
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    n = 0
    for r in records:
        if per_record:
            wins = [sample_window(r, hw, rng) for _ in range(per_record)]
        else:
            wins = [
                crop_window(r.image, r.boxes, *t, hw)
                for t in eval_tiles(r.image.shape, hw, EVAL_MODE[r.source])
            ]
        for k, (win, yolo) in enumerate(wins):
            stem = f"{r.source}_{Path(r.name).stem.replace(' ', '_')}_{k}"
            np.save(out / "images" / f"{stem}.npy", win.astype(np.float32))
            (out / "labels" / f"{stem}.txt").write_text(
                "".join(f"{int(c)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, cx, cy, w, h in yolo)
            )
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(
        description="Summarise the real labelled GPR sets; draw overlays or write windows."
    )
    p.add_argument(
        "overlays", nargs="?", type=Path, help="draw some crops with their boxes into this folder"
    )
    p.add_argument(
        "--write-windows",
        nargs=2,
        metavar=("OUT", "KIND"),
        help="write detector windows of the val split (KIND val) or every 8th train image "
        "(KIND calibration) under OUT",
    )
    args = p.parse_args(argv)
    if args.write_windows and args.write_windows[1] not in ("val", "calibration"):
        p.error(f"--write-windows KIND is val or calibration, not {args.write_windows[1]!r}")
    recs = load_all()
    if args.write_windows:
        from edge.gpr.detector import WINDOW

        out, kind = args.write_windows
        pick = [r for r in recs if r.split == ("val" if kind == "val" else "train")]
        if kind == "calibration":
            pick = pick[::8]
        print(write_windows(pick, Path(out), WINDOW, 0 if kind == "val" else 1), "windows")
        return 0
    print(json.dumps(summary(recs), indent=1))
    if args.overlays is not None:  # draw the crops with boxes for a visual check
        args.overlays.mkdir(parents=True, exist_ok=True)
        for r in recs[:: max(1, len(recs) // 40)] + [r for r in recs if r.source != "morocco"][::7]:
            im = cv2.cvtColor(
                ((r.image + 1) * 127.5).clip(0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR
            )
            for c, x0, y0, x1, y1 in r.boxes:
                cv2.rectangle(
                    im,
                    (int(x0), int(y0)),
                    (int(x1), int(y1)),
                    (0, 0, 255) if c == PIPE else (0, 255, 0),
                    2,
                )
            cv2.imwrite(str(args.overlays / f"{r.source}_{Path(r.name).stem}.png"), im)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
