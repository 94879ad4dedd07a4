"""Per-station evaluation of water segmentation on real labelled images.

::

    python -m export.train.eval_unet --labels A.json B.json ... \
        --method shipped=edge/models/unet.onnx --method colour \
        --method cv=A:fold_A.pt,B:fold_B.pt,... [--width 1280] [--json OUT] [--groups g1,g2]

``--labels`` takes label JSON files and ``geoedge label`` folders alike
(:func:`export.data.real_labels.load`).

Methods:
- ``NAME=PATH.onnx``: the edge inference path
  (:func:`edge.beach.waterline.segmentation.unet_probability`, the manifest's resize/tile
  policy) on the full-resolution image;
- ``NAME=PATH.pt``: a training checkpoint, the same resize path in torch;
- ``NAME=F1:CKPT1,F2:CKPT2,...``: cross-validation, each image segmented by the model of
  the fold that held its station group out; a fold is a name of
  :data:`export.data.real_labels.FOLDS` or its groups joined by ``+``
  (``apulia+ulises+webcoos:fold.pt``);
- ``colour``: :func:`edge.beach.waterline.colour.colour_water_probability` with the ground
  (labelled land + water, i.e. not sky and not ignore) as its statistics mask, as the
  runtime passes its geometric ground mask; labelled sky counts as not-water for it
  (an oracle horizon: the runtime has one from the camera geometry).

Metrics at ``--width`` px image width (label masks rasterised at full resolution, then
resized with nearest neighbour): IoU of water over the non-ignore pixels (sky and land are
not-water), and the boundary distance: the median, over the water/not-water boundary pixels
of the label and of the prediction (both directions pooled), of the distance in px to the
other's boundary, inside the non-ignore region. Per station: mean IoU and the median of the
per-image boundary medians. Prints a markdown table; ``--json`` writes every number.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import InputError
from export.data.real_labels import FOLDS, LabelledImage, load

#: The model input width the guided refinement's radius is scaled to (the shipped U-Net's).
REFINE_MODEL_WIDTH = 320
#: A segmenter: BGR image -> water probability at the image's resolution.
Probability = Callable[[np.ndarray], np.ndarray]
#: An evaluated method: (full-resolution BGR, station group, ground mask) -> water
#: probability, or None when the method does not cover the group.
Method = Callable[[np.ndarray, str, np.ndarray], np.ndarray | None]


@dataclass(frozen=True)
class ImageResult:
    """One image's scores: method name -> {"iou", "bd" (px), "s" (seconds)}."""

    key: str
    station: str
    group: str
    kind: str
    scores: dict[str, dict[str, float]]

    def to_json(self) -> dict[str, object]:
        """The ``--json`` row: the image's fields, then one entry per method."""
        return {
            "key": self.key,
            "station": self.station,
            "group": self.group,
            "kind": self.kind,
            **self.scores,
        }


def _boundary(water: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Water pixels with a valid not-water 4-neighbour, and vice versa (both sides)."""
    w = water & valid
    n = (~water) & valid
    k = np.ones((3, 3), np.uint8)
    k[0, 0] = k[0, 2] = k[2, 0] = k[2, 2] = 0
    near_n = cv2.dilate(n.astype(np.uint8), k) > 0
    near_w = cv2.dilate(w.astype(np.uint8), k) > 0
    return (w & near_n) | (n & near_w)


def boundary_distance(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    bt, bp = _boundary(truth, valid), _boundary(pred, valid)
    if not bt.any() and not bp.any():
        return 0.0
    if not bt.any() or not bp.any():
        return float(max(pred.shape))
    dt_p = cv2.distanceTransform((~bp).astype(np.uint8), cv2.DIST_L2, 5)
    dt_t = cv2.distanceTransform((~bt).astype(np.uint8), cv2.DIST_L2, 5)
    return float(np.median(np.concatenate([dt_p[bt], dt_t[bp]])))


def iou(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    p, t = pred & valid, truth & valid
    union = (p | t).sum()
    return 1.0 if union == 0 else float((p & t).sum() / union)


class TorchModel:
    def __init__(self, path: Path) -> None:
        import torch

        from export.nets.unet import build

        torch.set_num_threads(2)
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        self.net = build(**ckpt["arch_kwargs"]).eval()
        self.net.load_state_dict(ckpt["state_dict"])
        self.size = tuple(ckpt["manifest"]["input_shape"][2:])

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        import torch

        from export.data.segmentation import to_input

        h, w = bgr.shape[:2]
        mh, mw = self.size
        small = cv2.resize(bgr, (mw, mh), interpolation=cv2.INTER_AREA)
        with torch.no_grad():
            logits = self.net(torch.from_numpy(to_input(small)[None]))[0, 0].numpy()
        prob = 1 / (1 + np.exp(-np.clip(logits, -30, 30)))
        return cv2.resize(prob.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


class OnnxPath:
    def __init__(self, path: Path) -> None:
        from edge.models.runtime import OnnxModel

        self.model = OnnxModel(path, ["CPUExecutionProvider"], 2)

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        from edge.beach.waterline.segmentation import unet_probability

        return unet_probability(self.model, bgr)


def _loader(spec: str, flip: bool = False) -> Probability:
    path = Path(spec)
    model: Probability = OnnxPath(path) if path.suffix == ".onnx" else TorchModel(path)
    if not flip:
        return model
    from edge.beach.waterline.segmentation import flip_average

    return lambda bgr: flip_average(model, bgr)


def make_method(spec: str, flip: bool = False) -> tuple[str, Method]:
    """-> (name, fn(bgr_full, group, ground_full) -> prob or None).

    ``SPEC+guided[@EPS]`` refines the probability of SPEC with the edge path's full-resolution
    guided filter (:func:`edge.beach.waterline.refine.guided_refine`, radius for a model
    ``REFINE_MODEL_WIDTH`` px wide); ``SPEC+flip`` averages SPEC over the image and its mirror
    image (:func:`edge.beach.waterline.segmentation.flip_average`); ``SPEC+flip+guided`` is
    the station's default path."""
    base, sep, tail = spec.partition("+guided")
    if sep:
        from edge.beach.waterline.refine import EPS, guided_refine, model_radius

        eps = float(tail[1:]) if tail.startswith("@") else EPS
        name, method = make_method(base, flip)

        def refined(bgr: np.ndarray, group: str, ground: np.ndarray) -> np.ndarray | None:
            prob = method(bgr, group, ground)
            if prob is None:
                return None
            radius = model_radius(bgr.shape[1], REFINE_MODEL_WIDTH)
            return guided_refine(bgr, prob, radius, eps)

        return f"{name}+guided{tail}", refined
    if spec.endswith("+flip"):
        name, method = make_method(spec.removesuffix("+flip"), flip=True)
        return f"{name}+flip", method
    if spec == "colour":
        from edge.beach.waterline.colour import colour_water_probability

        def colour(bgr: np.ndarray, group: str, ground: np.ndarray) -> np.ndarray:
            if ground.sum() < 2:
                return np.zeros(ground.shape, np.float32)
            prob = colour_water_probability(bgr, ground)
            return np.where(ground, prob, 0.0)

        return "colour", colour
    name, _, rest = spec.partition("=")
    if ":" in rest and not Path(rest).exists():
        models: dict[str, Probability] = {}
        fold_of: dict[str, str] = {}
        for part in rest.split(","):
            fold, _, ckpt = part.partition(":")
            models[fold] = _loader(ckpt, flip)
            for group in FOLDS.get(fold, tuple(fold.split("+"))):
                if group in fold_of:
                    raise InputError(f"--method {spec}: group {group} is in two folds")
                fold_of[group] = fold

        def cv(bgr: np.ndarray, group: str, ground: np.ndarray) -> np.ndarray | None:
            m = models.get(fold_of.get(group, ""))
            return None if m is None else m(bgr)

        return name, cv
    model = _loader(rest, flip)

    def single(bgr: np.ndarray, group: str, ground: np.ndarray) -> np.ndarray:
        return model(bgr)

    return name, single


def read_labelled(item: LabelledImage) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution BGR image and class mask (the mask resized to the image if needed)."""
    bgr = cv2.imread(str(item.image_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{item.image_path}: cannot read the image")
    mask = item.class_mask()
    if mask.shape != bgr.shape[:2]:
        mask = cv2.resize(mask, (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_NEAREST)
    return bgr, mask


def score(prob: np.ndarray, mask: np.ndarray, width: int) -> dict[str, float]:
    """``{"iou", "bd"}`` of a water probability (>= 0.5 is water) against a class mask, both at
    full resolution, measured at ``width`` px image width (IoU over non-ignore pixels; ``bd``
    the boundary distance in px at that width)."""
    s = width / mask.shape[1]
    size = (width, max(1, round(mask.shape[0] * s)))
    m_small = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    truth, valid = m_small == 1, m_small != 255
    pred = cv2.resize(prob.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) >= 0.5
    return {
        "iou": round(iou(pred, truth, valid), 4),
        "bd": round(boundary_distance(pred, truth, valid), 2),
    }


def evaluate(
    label_paths: list[Path],
    methods: list[tuple[str, Method]],
    width: int,
    groups: set[str] | None = None,
) -> list[ImageResult]:
    items = load(label_paths)
    if groups:
        items = [i for i in items if i.group in groups]
    rows: list[ImageResult] = []
    for item in items:
        bgr, mask = read_labelled(item)
        ground = (mask == 0) | (mask == 1)
        scores: dict[str, dict[str, float]] = {}
        for name, fn in methods:
            t = time.time()
            prob = fn(bgr, item.group, ground)
            if prob is None:
                continue
            scores[name] = {**score(prob, mask, width), "s": round(time.time() - t, 3)}
        rows.append(ImageResult(item.key, item.station, item.group, item.kind, scores))
        print(
            item.station,
            Path(item.key).name[:40],
            " ".join(
                f"{n}={scores[n]['iou']:.3f}/{scores[n]['bd']:.0f}px"
                for n, _ in methods
                if n in scores
            ),
            flush=True,
        )
    return rows


def table(rows: list[ImageResult], names: list[str]) -> str:
    stations = sorted(
        {r.station for r in rows},
        key=lambda s: (next(r.group for r in rows if r.station == s), s),
    )
    head = "| station | group | n | " + " | ".join(f"{n} IoU | {n} bd px" for n in names) + " |"
    lines = [head, "|" + "---|" * (3 + 2 * len(names))]
    per_station: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for s in stations:
        rs = [r for r in rows if r.station == s]
        cells: list[str] = []
        for n in names:
            v = [r.scores[n] for r in rs if n in r.scores]
            if not v:
                cells += ["-", "-"]
                continue
            mi, mb = float(np.mean([x["iou"] for x in v])), float(np.median([x["bd"] for x in v]))
            per_station[n].append((mi, mb))
            cells += [f"{mi:.3f}", f"{mb:.1f}"]
        lines.append(f"| {s} | {rs[0].group} | {len(rs)} | " + " | ".join(cells) + " |")
    cells = []
    for n in names:
        station_means = per_station[n]
        cells += [
            f"**{np.mean([a for a, _ in station_means]):.3f}**" if station_means else "-",
            f"**{np.median([b for _, b in station_means]):.1f}**" if station_means else "-",
        ]
    lines.append(f"| mean over stations | | {len(stations)} | " + " | ".join(cells) + " |")
    cells = []
    for n in names:
        v = [r.scores[n] for r in rows if n in r.scores]
        cells += [
            f"{np.mean([x['iou'] for x in v]):.3f}" if v else "-",
            f"{np.median([x['bd'] for x in v]):.1f}" if v else "-",
        ]
    lines.append(f"| all images | | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--labels", type=Path, nargs="+", required=True)
    p.add_argument("--method", action="append", required=True)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--groups", default="")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    methods = [make_method(s) for s in args.method]
    groups = {g for g in args.groups.split(",") if g} or None
    rows = evaluate(args.labels, methods, args.width, groups)
    names = [n for n, _ in methods]
    print(table(rows, names))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "methods": args.method,
                    "width": args.width,
                    "rows": [r.to_json() for r in rows],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
