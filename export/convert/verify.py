"""Accuracy gate: each precision of a model against its FP32 original on held-out data.

Datasets (directories):

- segmentation: ``images/`` + ``masks/``, PNG (or JPEG images), same stem; mask 255 = water;
- detection: ``images/`` (``.npy`` float32 windows ``H x W`` or ``C x H x W`` in raw
  amplitude, or PNG) + ``labels/`` YOLO text ``class cx cy w h`` normalised to 0..1.

Metrics: segmentation ``iou`` = dataset-wide water IoU against the labels (intersection
and union summed over all windows); detection ``map50`` = mean over classes of the
all-point interpolated average precision at box IoU >= 0.5, and ``recall`` = share of
labelled boxes matched at IoU >= 0.5 by a detection scoring >= ``RECALL_SCORE``.
A precision passes when no metric drops below FP32 by more than its bound.

Outputs are decoded per task: segmentation models output water logits ``N x 1 x H x W``
(water where logit > 0) or class logits ``N x C x H x W`` (water where the argmax is the
class ``"water"``); detection outputs are decoded by the detector's own
``edge.gpr.detector.decode`` into, per window, an array ``K x 6`` of
``x1 y1 x2 y2 score class`` in input pixels, unless a ``decode`` function is given.
Detection windows get the detector's per-window standardisation
(``edge.gpr.detector.normalise_window``) before the manifest normalisation, as on the device.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from edge.errors import InputError, ModelError
from edge.models.manifest import AccuracyGate, Manifest, load_manifest, manifest_path
from edge.models.runtime import OnnxModel, device_kind
from edge.station.messages import utc_iso

log = logging.getLogger(__name__)

Decode = Callable[[list[np.ndarray], Manifest], list[np.ndarray]]

DEFAULT_MAX_DROP = {"iou": 0.01, "map50": 0.02, "recall": 0.02}
#: Detections below this score do not count for box recall.
RECALL_SCORE = 0.25
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy")


# ---------------------------------------------------------------- segmentation


def water_masks(outputs: list[np.ndarray], manifest: Manifest) -> np.ndarray:
    """``N x H x W`` boolean water masks from a segmentation model's first output."""
    out = outputs[0]
    if out.ndim != 4:
        raise ModelError(f"segmentation output has shape {list(out.shape)}, expected N x C x H x W")
    if out.shape[1] == 1:
        return out[:, 0] > 0.0
    if "water" not in manifest.classes:
        raise ModelError(f"multi-class segmentation model has no 'water' in {manifest.classes}")
    return out.argmax(axis=1) == manifest.classes.index("water")


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


# ------------------------------------------------------------------- detection


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``x1 y1 x2 y2`` boxes, ``len(a) x len(b)``."""
    a = a[:, None, :4]
    b = b[None, :, :4]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def match_boxes(dets: np.ndarray, truths: np.ndarray, iou_min: float) -> np.ndarray:
    """Greedy match by descending score; True for each detection that hits a new truth."""
    hit = np.zeros(len(dets), dtype=bool)
    if not len(dets) or not len(truths):
        return hit
    ious = box_iou(dets, truths)
    taken = np.zeros(len(truths), dtype=bool)
    for i in np.argsort(-dets[:, 4], kind="stable"):
        candidates = np.where(~taken & (ious[i] >= iou_min))[0]
        if len(candidates):
            j = candidates[np.argmax(ious[i, candidates])]
            taken[j] = hit[i] = True
    return hit


def detection_metrics(
    detections: list[np.ndarray], truths: list[np.ndarray], iou_min: float = 0.5
) -> dict[str, float]:
    """``map50`` and ``recall`` over windows; each array is ``K x 6`` / ``M x 5``.

    Detections are ``x1 y1 x2 y2 score class``; truths ``x1 y1 x2 y2 class`` (pixels).
    AP is the all-point interpolated area under precision-recall, per class present
    in the truths, averaged over those classes.
    """
    classes = sorted({int(c) for t in truths for c in t[:, 4]})
    aps = []
    for c in classes:
        scores, hits, n_true = [], [], 0
        for det, tru in zip(detections, truths, strict=True):
            d = det[det[:, 5].astype(int) == c]
            t = tru[tru[:, 4].astype(int) == c]
            n_true += len(t)
            scores.append(d[:, 4])
            hits.append(match_boxes(d, np.c_[t[:, :4], np.zeros(len(t))], iou_min))
        s, h = np.concatenate(scores), np.concatenate(hits)
        order = np.argsort(-s, kind="stable")
        tp = np.cumsum(h[order])
        recall = tp / n_true
        precision = tp / np.arange(1, len(tp) + 1)
        r = np.concatenate([[0.0], recall])
        p = np.concatenate([[1.0], precision])
        p = np.maximum.accumulate(p[::-1])[::-1]
        aps.append(float(np.sum((r[1:] - r[:-1]) * p[1:])))
    found = total = 0
    for det, tru in zip(detections, truths, strict=True):
        strong = det[det[:, 4] >= RECALL_SCORE]
        for c in {int(c) for c in tru[:, 4]}:
            t = tru[tru[:, 4].astype(int) == c]
            d = strong[strong[:, 5].astype(int) == c]
            found += int(match_boxes(d, np.c_[t[:, :4], np.zeros(len(t))], iou_min).sum())
        total += len(tru)
    return {
        "map50": float(np.mean(aps)) if aps else 0.0,
        "recall": found / total if total else 1.0,
    }


def default_detection_decode(score_threshold: float = 0.01) -> Decode:
    """The detector's own decoder (:func:`edge.gpr.detector.decode`) as ``K x 6`` arrays.

    The low score threshold keeps the weak detections that the precision-recall curve of
    mAP needs; box recall counts only those scoring >= :data:`RECALL_SCORE`.
    """
    from edge.gpr.detector import decode

    def detections(outputs: list[np.ndarray], manifest: Manifest) -> list[np.ndarray]:
        h, w = manifest.sample_shape()[-2:]
        found = decode(outputs[0], manifest.classes, (h, w), score_threshold=score_threshold)
        return [
            np.array([[*box, score, c] for c, score, box in per], dtype=np.float64).reshape(-1, 6)
            for per in found
        ]

    return detections


# --------------------------------------------------------------------- datasets


@dataclass
class Sample:
    """One model input window (normalised ``C x H x W``) and its label."""

    name: str
    x: np.ndarray
    label: np.ndarray  # bool H x W mask, or M x 5 boxes x1 y1 x2 y2 class (pixels)


def read_raw(path: Path, manifest: Manifest) -> np.ndarray:
    """``C x H x W`` raw (unnormalised) float32 in the manifest's channel order."""
    if path.suffix == ".npy":
        raw = np.load(path).astype(np.float32)
        return raw[None] if raw.ndim == 2 else raw
    grey = manifest.channel_order == "GRAY"
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {path}")
    if grey:
        return img[None].astype(np.float32)
    if manifest.channel_order == "RGB":
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img.transpose(2, 0, 1).astype(np.float32)


def model_input(window: np.ndarray, manifest: Manifest) -> np.ndarray:
    """A raw ``C x H x W`` window at the input size -> the normalised model input.

    Detection windows first get the detector's per-window normalisation (the manifest's
    ``normalisation.window``), as on the device.
    """
    if manifest.task == "detection":
        from edge.gpr.detector import normalise_window

        window = np.stack(
            [normalise_window(plane, manifest.normalisation.window) for plane in window]
        )
    return manifest.normalisation.apply(window)


def _resize_chw(x: np.ndarray, h: int, w: int, interpolation: int) -> np.ndarray:
    if x.shape[1:] == (h, w):
        return x
    planes = [cv2.resize(p, (w, h), interpolation=interpolation) for p in x]
    return np.stack(planes)


def _tile_origins(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    step = max(tile - overlap, 1)
    return [*range(0, size - tile, step), size - tile]


def input_windows(
    raw: np.ndarray, manifest: Manifest, interpolation: int = cv2.INTER_AREA
) -> Iterator[tuple[str, np.ndarray]]:
    """Raw ``C x H x W`` windows at the model input size, following the resize policy.

    ``"resize"`` scales the whole image; ``"tile"`` cuts ``tile``-sized windows overlapping
    by ``overlap`` pixels (the last ones flush with the far edges), each scaled to the input
    size if the tile differs from it. Yields (``"@row,col"`` or ``""``, window).
    """
    h, w = manifest.sample_shape()[-2:]
    if manifest.resize.mode != "tile" or raw.shape[1:] == (h, w):
        yield "", _resize_chw(raw, h, w, interpolation)
        return
    th, tw = manifest.resize.tile or [h, w]
    for y in _tile_origins(raw.shape[1], th, manifest.resize.overlap):
        for x in _tile_origins(raw.shape[2], tw, manifest.resize.overlap):
            crop = raw[:, y : y + th, x : x + tw]
            yield f"@{y},{x}", _resize_chw(crop, h, w, interpolation)


def segmentation_samples(data_dir: Path, manifest: Manifest) -> Iterator[Sample]:
    """Windows of ``images/`` + ``masks/`` at the model input size (resize or tile policy)."""
    for image_path in image_files(data_dir):
        mask_path = data_dir / "masks" / f"{image_path.stem}.png"
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise InputError(f"mask missing or unreadable for {image_path.name}: {mask_path}")
        raw = read_raw(image_path, manifest)
        if raw.shape[1:] != mask.shape:
            raise InputError(
                f"{mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image is "
                f"{raw.shape[2]}x{raw.shape[1]}"
            )
        water = (mask >= 128).astype(np.uint8)[None]
        images = input_windows(raw, manifest)
        masks = input_windows(water, manifest, cv2.INTER_NEAREST)
        for (suffix, win), (_, lab) in zip(images, masks, strict=True):
            yield Sample(f"{image_path.stem}{suffix}", model_input(win, manifest), lab[0] > 0)


def detection_samples(data_dir: Path, manifest: Manifest) -> Iterator[Sample]:
    """Windows of ``images/`` + ``labels/`` (YOLO text) at the model input size."""
    h, w = manifest.sample_shape()[-2:]
    for image_path in image_files(data_dir):
        raw = read_raw(image_path, manifest)
        if raw.shape[1:] != (h, w):
            if image_path.suffix == ".npy":
                raise InputError(
                    f"{image_path} is {raw.shape[2]}x{raw.shape[1]}, the model takes {w}x{h}"
                )
            raw = _resize_chw(raw, h, w, cv2.INTER_AREA)
        label_path = data_dir / "labels" / f"{image_path.stem}.txt"
        if not label_path.is_file():
            raise InputError(f"label file missing for {image_path.name}: {label_path}")
        rows = np.loadtxt(label_path, ndmin=2, dtype=np.float64).reshape(-1, 5)
        cls, cx, cy, bw, bh = rows.T
        boxes = np.c_[(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]
        yield Sample(image_path.stem, model_input(raw, manifest), np.c_[boxes, cls])


def image_files(data_dir: Path) -> list[Path]:
    images = sorted(
        p for p in (Path(data_dir) / "images").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not images:
        raise InputError(f"no images in {Path(data_dir) / 'images'} (expected PNG/JPEG/.npy)")
    return images


def load_samples(data_dir: Path, manifest: Manifest) -> list[Sample]:
    """All held-out windows of ``data_dir`` for the manifest's task."""
    reader = segmentation_samples if manifest.task == "segmentation" else detection_samples
    return list(reader(Path(data_dir), manifest))


# ---------------------------------------------------------------------- scoring


def score(
    model: OnnxModel, samples: list[Sample], decode: Decode | None = None
) -> tuple[dict[str, float], list[np.ndarray]]:
    """The task's metrics of ``model`` on ``samples``, and the decoded predictions."""
    manifest = model.manifest
    predictions = []
    if manifest.task == "segmentation":
        inter = union = 0
        for s in samples:
            pred = water_masks(model.run(s.x[None]), manifest)[0]
            predictions.append(pred)
            inter += int(np.logical_and(pred, s.label).sum())
            union += int(np.logical_or(pred, s.label).sum())
        return {"iou": inter / union if union else 1.0}, predictions
    decode = decode or default_detection_decode()
    for s in samples:
        predictions.append(decode(model.run(s.x[None]), manifest)[0])
    return detection_metrics(predictions, [s.label for s in samples]), predictions


def latency_ms(
    model_path: Path,
    x: np.ndarray,
    threads: int = 2,
    providers: list[str] | None = None,
    repeats: int = 20,
) -> float:
    """Median wall time (ms) of one run of ``x`` on a plain ONNX Runtime session."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(model_path), options, providers=providers or ["CPUExecutionProvider"]
    )
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)}
    for _ in range(3):
        session.run(None, feed)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0)


def device_name() -> str:
    """A short name of this machine's processor."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def verify(
    reference_path: Path,
    candidate_path: Path,
    data_dir: Path,
    max_drop: dict[str, float] | None = None,
    providers: list[str] | None = None,
    threads: int = 2,
    decode: Decode | None = None,
    write: bool = True,
) -> AccuracyGate:
    """Compare ``candidate_path`` with FP32 ``reference_path`` on ``data_dir``.

    With ``write`` the gate is stored in the candidate's manifest (the ``.onnx`` file, and
    so its hash, stay unchanged). The candidate passes when every task metric drops by at
    most ``max_drop[metric]`` (defaults :data:`DEFAULT_MAX_DROP`).
    """
    bounds = {**DEFAULT_MAX_DROP, **(max_drop or {})}
    # "fp32": with TensorRT the FP32 reference is built FP32, not with FP16 enabled (an INT8
    # or FP16 candidate is built at its own precision).
    reference = OnnxModel(reference_path, providers, threads, precision="fp32")
    candidate = OnnxModel(candidate_path, providers, threads, precision="fp32")
    if reference.manifest.task != candidate.manifest.task:
        raise ModelError(f"{candidate_path.name} and {reference_path.name} differ in task")
    samples = load_samples(data_dir, reference.manifest)
    ref_metrics, _ = score(reference, samples, decode)
    cand_metrics, _ = score(candidate, samples, decode)
    bounds = {k: bounds[k] for k in ref_metrics}
    passed = all(ref_metrics[k] - cand_metrics[k] <= bounds[k] for k in ref_metrics)
    gpu = device_kind(providers) == "gpu"
    timing_providers = reference.providers if gpu else ["CPUExecutionProvider"]
    x = samples[0].x[None]
    gate = AccuracyGate(
        passed=passed,
        device=device_kind(providers),
        device_name=device_name(),
        reference=reference_path.name,
        dataset=str(data_dir),
        samples=len(samples),
        metrics=cand_metrics,
        reference_metrics=ref_metrics,
        max_drop=bounds,
        latency_ms=latency_ms(candidate_path, x, threads, timing_providers),
        reference_latency_ms=latency_ms(reference_path, x, threads, timing_providers),
        checked_utc=utc_iso(time.time()),
    )
    drops = ", ".join(f"{k} {ref_metrics[k]:.4f} -> {cand_metrics[k]:.4f}" for k in ref_metrics)
    log.info(
        "gate %s for %s (%s; %d windows; %.2f ms vs FP32 %.2f ms)",
        "PASSED" if passed else "FAILED",
        candidate_path.name,
        drops,
        len(samples),
        gate.latency_ms,
        gate.reference_latency_ms,
    )
    if write:
        manifest = load_manifest(candidate_path)
        manifest.accuracy_gate = gate
        manifest.save(manifest_path(candidate_path))
    return gate
