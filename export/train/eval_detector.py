"""Held-out evaluation of the cavity/pipe detector on real labelled images and raw files.

Sets (:mod:`export.data.real_bscan`, split ``val``):

- Morocco: each 224x224 image is one window (resampled to the model input, as the device
  does with any window); mAP@0.5 over ``cavity`` and ``pipe`` (utility), per class AP too.
- S&S hyperbolas and ConcreteNet rebar: full-height isotropic tiles of the model's aspect,
  50 % overlap, and with ``--scales`` also tiles that many times as wide (as ``[gpr.windows]
  scales`` on the device), detections of all tiles mapped back to the image and merged
  as the device merges them (:func:`merge_tiles`: one target when a box covers half of a
  smaller one; IoU-NMS at 0.5 kept the tight box of a narrow tile and the whole-hyperbola
  box of a wide one as two, so one hyperbola counted once right and once false); class-agnostic
  (every box is a point diffractor = ``pipe``): AP@0.5, recall at precision >= 0.8, and
  recall / precision at the device threshold.
- Every set also: ``centre_recall`` / ``centre_precision`` at the device threshold, a
  detection counting for the labelled box its centre lies in (:func:`centre_matches`).
- Held-out synthetic survey lines (``--lines N``, :func:`score_lines`): recall, class
  accuracy, false reports per line and depth error through the real pipeline.
- Raw files through the real pipeline (:func:`edge.gpr.stream.detect_file` with
  ``firmware_config/gpr_unit.toml``, its ``[gpr.windows] scales`` replaced by ``--scales``
  when given): the boxes per file with their trace / time ranges.

A model is an ONNX file (``CavityDetector``, as on the device) or a training checkpoint
(:class:`TorchDetector`, the same prepare / decode in torch). Usage::

    PYTHONPATH=. python3 -m export.train.eval_detector MODEL [MODEL ...] [--scales 1 2]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import ValidationError

from edge.config import StationConfig
from edge.config.gpr import WindowsSection
from edge.gpr.detector import Detection, decode, nms, normalise_window, overlap_of_smaller
from export.convert.verify import detection_metrics, match_boxes
from export.data.paths import data_root
from export.data.real_bscan import EVAL_MODE, Record, eval_tiles

RAW_FILES = {
    "FILE____032": str(data_root() / "gpr/gprpy/FILE____032.DZT"),
    "XLINE00": str(data_root() / "gpr/gprpy/XLINE00.DT1"),
    "test_gssi": str(data_root() / "gpr/impdar/test_gssi.DZT"),
}
CONFIG = Path(__file__).resolve().parents[2] / "firmware_config" / "gpr_unit.toml"
#: Boxes of overlapping tiles are one target when their intersection covers at least this
#: share of the smaller box: one hyperbola boxed tightly in a narrow tile and whole in a wide
#: one (IoU well under 0.5). The device merges such boxes in its de-duplication
#: (:mod:`edge.gpr.dedup`: overlap >= 0.3 of the smaller box and apexes within the target's
#: extent); without fits here, half the smaller box is the stricter stand-in.
SAME_TARGET_SHARE = 0.5


class TorchDetector:
    """A training checkpoint with :class:`edge.gpr.detector.CavityDetector`'s interface."""

    def __init__(
        self,
        ckpt: str | Path,
        score_threshold: float = 0.3,
        threads: int = 2,
        iou_threshold: float = 0.5,
    ) -> None:
        import torch

        from export.nets.detector import build

        torch.set_num_threads(threads)
        data = torch.load(ckpt, map_location="cpu", weights_only=True)
        self.net = build(**data["arch_kwargs"]).eval()
        self.net.load_state_dict(data["state_dict"])
        m = data["manifest"]
        self.classes = tuple(m["classes"])
        self.input_hw = tuple(m["input_shape"][-2:])
        self.window_mode = m["normalisation"].get("window", "standardise")
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold

    def maps(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.net(torch.from_numpy(batch)).numpy()

    def prepare(self, windows: np.ndarray) -> np.ndarray:
        h, w = self.input_hw
        out = np.empty((len(windows), 1, h, w), np.float32)
        for k, win in enumerate(windows):
            win = np.asarray(win, np.float32)
            if win.shape != (h, w):
                win = cv2.resize(win, (w, h), interpolation=cv2.INTER_AREA)
            out[k, 0] = normalise_window(win, self.window_mode)
        return out

    def detect(self, windows: np.ndarray) -> list[list[Detection]]:
        windows = np.asarray(windows, np.float32)
        if windows.ndim == 2:
            windows = windows[None]
        h, w = self.input_hw
        maps = np.concatenate(
            [self.maps(self.prepare(windows[i : i + 32])) for i in range(0, len(windows), 32)]
        )
        sy, sx = windows.shape[1] / h, windows.shape[2] / w
        found = decode(maps, self.classes, (h, w), self.score_threshold, self.iou_threshold)
        return [
            [
                Detection(self.classes[c], s, b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy)
                for c, s, b in per
            ]
            for per in found
        ]


def load_detector(model: str, score_threshold: float = 0.3, precision: str = "fp32") -> Any:
    """ONNX model path or 'default' -> CavityDetector; ``.pt`` -> TorchDetector.

    ``precision`` as :func:`edge.models.runtime.resolve_model`: "fp32" by default, because "auto"
    silently picks a gated INT8 sibling; a path naming a variant (x.int8.onnx) is used as is.
    """
    if str(model).endswith(".pt"):
        return TorchDetector(model, score_threshold)
    from edge.gpr.detector import CavityDetector

    return CavityDetector(
        model,
        ["CPUExecutionProvider"],
        threads=2,
        score_threshold=score_threshold,
        precision=precision,
    )


def detect_record(det: Any, rec: Record, mode: str, scales: Sequence[float] = (1.0,)) -> np.ndarray:
    """Detections ``(K, 6)`` x0 y0 x1 y1 score class in the image's pixels (low threshold);
    ``scales``: tile widths as multiples of the isotropic tile (:func:`eval_tiles`)."""
    hw = det.input_hw
    tiles = sorted(
        {
            t
            for s in (scales if mode == "tiles" else (1.0,))
            for t in eval_tiles(rec.image.shape, hw, mode, s)
        }
    )
    windows = [
        cv2.resize(
            np.ascontiguousarray(rec.image[r0:r1, c0:c1]),
            (hw[1], hw[0]),
            interpolation=cv2.INTER_AREA,
        )
        for r0, r1, c0, c1 in tiles
    ]
    old = det.score_threshold
    det.score_threshold = 0.02
    try:
        found = det.detect(np.stack(windows))
    finally:
        det.score_threshold = old
    rows = []
    for (r0, r1, c0, c1), per in zip(tiles, found, strict=True):
        sy, sx = (r1 - r0) / hw[0], (c1 - c0) / hw[1]
        for d in per:
            rows.append(
                [
                    c0 + d.trace0 * sx,
                    r0 + d.sample0 * sy,
                    c0 + d.trace1 * sx,
                    r0 + d.sample1 * sy,
                    d.score,
                    det.classes.index(d.cls),
                ]
            )
    dets = np.array(rows, np.float64).reshape(-1, 6)
    return merge_tiles(dets) if len(tiles) > 1 else dets


def merge_tiles(dets: np.ndarray, share: float = SAME_TARGET_SHARE) -> np.ndarray:
    """Detections ``(K, 6)`` (x0 y0 x1 y1 score class) of overlapping tiles, one per target:
    greedily by score, a box whose intersection with a kept one covers more than ``share`` of
    the smaller of the two is the same target and dropped (class-agnostic)."""
    return dets[nms(dets[:, :4], dets[:, 4], share, overlap_of_smaller)]


def pr_curve(dets: list[np.ndarray], truths: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Class-agnostic (scores, precision, recall) over all images, IoU >= 0.5."""
    scores, hits, n_true = [], [], 0
    for d, t in zip(dets, truths, strict=True):
        n_true += len(t)
        scores.append(d[:, 4])
        hits.append(
            match_boxes(np.c_[d[:, :5], np.zeros(len(d))], np.c_[t[:, :4], np.zeros(len(t))], 0.5)
        )
    s, h = np.concatenate(scores), np.concatenate(hits).astype(float)
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(h[order])
    return s[order], tp / np.arange(1, len(tp) + 1), tp / max(n_true, 1)


def centre_matches(
    dets: list[np.ndarray], truths: list[np.ndarray], threshold: float
) -> tuple[int, int]:
    """(labelled boxes found, boxes reported) at ``threshold`` when a detection counts for a
    labelled box its centre lies in (one each, most confident first, class-agnostic): how
    the device uses a box, whose fit looks for the apex inside it. Narrow apex boxes (the
    ConcreteNet rebar, ~25 px wide) fail IoU 0.5 for a shift of a few pixels."""
    found = reported = 0
    for d, t in zip(dets, truths, strict=True):
        d = d[d[:, 4] >= threshold]
        reported += len(d)
        free = np.ones(len(t), bool)
        for b in d[np.argsort(-d[:, 4], kind="stable")]:
            cx, cy = (b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0
            inside = free & (t[:, 0] <= cx) & (cx <= t[:, 2]) & (t[:, 1] <= cy) & (cy <= t[:, 3])
            if inside.any():
                j = np.nonzero(inside)[0]
                free[j[np.argmin(np.abs((t[j, 0] + t[j, 2]) / 2.0 - cx))]] = False
                found += 1
    return found, reported


def score_set(
    det: Any, records: list[Record], threshold: float = 0.5, scales: Sequence[float] = (1.0,)
) -> dict[str, Any]:
    """Metrics of one held-out set (see the module docstring)."""
    if not records:
        return {}
    mode = EVAL_MODE[records[0].source]
    dets = [detect_record(det, r, mode, scales) for r in records]
    truths = [np.c_[r.boxes[:, 1:5], r.boxes[:, 0]].astype(np.float64) for r in records]
    out: dict[str, Any] = {
        "images": len(records),
        "boxes": int(sum(len(t) for t in truths)),
        "eval_mode": mode,
    }
    if mode == "tiles":
        out["scales"] = list(scales)
    m = detection_metrics(dets, truths)
    out["map50"] = round(m["map50"], 4)
    for c, name in enumerate(det.classes):
        tc = [t[t[:, 4] == c] for t in truths]
        if sum(len(t) for t in tc):
            out[f"ap50_{name}"] = round(
                detection_metrics([d[d[:, 5] == c] for d in dets], tc)["map50"], 4
            )
    agn_d = [np.c_[d[:, :5], np.zeros(len(d))] for d in dets]
    agn_t = [np.c_[t[:, :4], np.zeros(len(t))] for t in truths]
    out["ap50_any_class"] = round(detection_metrics(agn_d, agn_t)["map50"], 4)
    s, p, r = pr_curve(dets, truths)
    ok = p >= 0.8
    out["recall_at_p80"] = round(float(r[ok].max()) if ok.any() else 0.0, 4)
    out["score_at_p80"] = round(float(s[ok][np.argmax(r[ok])]) if ok.any() else 1.0, 4)
    for th in sorted({0.3, threshold}):
        k = int((s >= th).sum())
        out[f"recall@{th}"] = round(float(r[k - 1]) if k else 0.0, 4)
        out[f"precision@{th}"] = round(float(p[k - 1]) if k else 1.0, 4)
        out[f"boxes_reported@{th}"] = k
    found, reported = centre_matches(dets, truths, threshold)
    out[f"centre_recall@{threshold}"] = round(found / max(out["boxes"], 1), 4)
    out[f"centre_precision@{threshold}"] = round(found / reported, 4) if reported else 1.0
    negs = [d for d, t in zip(dets, truths, strict=True) if not len(t)]
    if negs:
        out["negative_images"] = len(negs)
        out[f"negatives_with_box@{threshold}"] = int(
            sum((d[:, 4] >= threshold).any() for d in negs)
        )
    return out


def with_scales(cfg: StationConfig, scales: Sequence[float]) -> StationConfig:
    """``cfg`` with its ``[gpr.windows] scales`` replaced (validated as in a config file)."""
    assert cfg.gpr is not None
    windows = WindowsSection.model_validate(
        {**cfg.gpr.windows.model_dump(exclude_unset=True), "scales": list(scales)}
    )
    return cfg.model_copy(update={"gpr": cfg.gpr.model_copy(update={"windows": windows})})


def station_config(config: Path, scales: Sequence[float] | None) -> StationConfig:
    """The station config the pipeline runs with: ``config``, its scales replaced by
    ``scales`` when given."""
    from edge.config import load_config

    cfg = load_config(config)
    return cfg if scales is None else with_scales(cfg, scales)


def raw_files(
    model: str,
    threshold: float = 0.5,
    config: Path = CONFIG,
    scales: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Boxes the real pipeline reports on each raw file (trace / time ranges, scores), with
    the config's window scales or ``scales``."""
    from edge.gpr.stream import detect_file

    cfg = station_config(config, scales)
    det = load_detector(model, threshold)
    out = {}
    for name, path in RAW_FILES.items():
        cav = detect_file(path, cfg, detector=det)
        out[name] = [
            {
                "class": c["class"],
                "confidence": c["confidence"],
                "trace_range": c["trace_range"],
                "time_range_ns": c["time_range_ns"],
                "apex_trace": c["trace"],
                "t0_ns": c["two_way_time_ns"],
            }
            for c in sorted(cav, key=lambda c: c["trace"])
        ]
    return out


def score_lines(
    model: str,
    count: int,
    threshold: float = 0.5,
    scales: Sequence[float] | None = None,
    seed: int = 2,
) -> dict[str, Any]:
    """Targets found on ``count`` held-out synthetic survey lines (:mod:`export.data.synth_lines`,
    seeds ``seed * 1000 + i``; training uses seed 1) through the real pipeline
    (:func:`edge.gpr.stream.detect_file`, ``firmware_config/gpr_unit.toml``, its scales or
    ``scales``). A target is found when a reported cavity's apex is within 0.5 m along track
    and its depth to top within 25 %; every other report is a false one."""
    import tempfile

    from edge.gpr.stream import detect_file
    from export.data.samples import GPR_DX_M
    from export.data.synth_lines import raw_line

    cfg = station_config(CONFIG, scales)
    det = load_detector(model, threshold)
    targets = found = same_class = false = 0
    depth_errors: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            path = Path(tmp) / f"line_{i}.DZT"
            truths = raw_line(seed * 1000 + i, path)
            reports = detect_file(str(path), cfg, detector=det)
            left = list(reports)
            for t in truths:
                near = [
                    m
                    for m in left
                    if abs(m["trace"] * GPR_DX_M - t.x0_m) <= 0.5
                    and abs(m["depth_top_m"] - t.depth_top_m) <= 0.25 * t.depth_top_m
                ]
                targets += 1
                if not near:
                    continue
                m = min(near, key=lambda m: abs(m["trace"] * GPR_DX_M - t.x0_m))
                left.remove(m)
                found += 1
                same_class += m["class"] == t.cls
                depth_errors.append(abs(m["depth_top_m"] - t.depth_top_m) / t.depth_top_m)
            false += len(left)
    return {
        "lines": count,
        "targets": targets,
        "recall": round(found / max(targets, 1), 4),
        "class_accuracy": round(same_class / max(found, 1), 4),
        "false_reports_per_line": round(false / max(count, 1), 3),
        "median_depth_error": round(float(np.median(depth_errors)), 4) if depth_errors else None,
        "protocol": "60 m, 400 MHz lines (export.data.synth_lines, seed "
        f"{seed}) through detect_file with firmware_config/gpr_unit.toml; found = apex within "
        "0.5 m and depth within 25 %",
    }


def score_synthetic(det: Any, root: Path) -> dict[str, Any]:
    """mAP@0.5 / recall on a synthetic window set (``python -m export.data.synth_bscan``)."""
    from export.data.detection import read_dataset
    from export.train.detector import evaluate

    paths, labels, classes = read_dataset(Path(root))
    windows = np.stack([np.load(p).astype(np.float32) for p in paths])
    batch = np.concatenate([det.prepare(windows[i : i + 64]) for i in range(0, len(windows), 64)])
    if hasattr(det, "maps"):
        maps = np.concatenate([det.maps(batch[i : i + 64]) for i in range(0, len(batch), 64)])
    else:
        maps = np.concatenate(
            [det.model.run(batch[i : i + 64])[0] for i in range(0, len(batch), 64)]
        )
    return {"windows": len(paths), **evaluate(maps, labels, classes)}


def evaluate_model(
    model: str,
    threshold: float = 0.5,
    raw: bool = True,
    synthetic: Path | None = None,
    configs: list[Path] | None = None,
    scales: Sequence[float] | None = None,
    lines: int = 0,
) -> dict[str, Any]:
    """Every held-out set (and the raw files) for one model; ``scales`` None: scale 1 for the
    tiles, the config's own scales for the raw files; ``lines`` held-out synthetic survey
    lines through the pipeline."""
    from export.data.real_bscan import load_concretenet, load_morocco, load_sns

    det = load_detector(model, threshold)
    res: dict[str, Any] = {
        "model": str(model),
        "threshold": threshold,
        "file": det.model.path.name if hasattr(det, "model") else str(model),
    }
    for name, loader in (
        ("morocco", load_morocco),
        ("sns", load_sns),
        ("concretenet", load_concretenet),
    ):
        res[name] = score_set(
            det, [r for r in loader() if r.split == "val"], threshold, scales or (1.0,)
        )
    if synthetic is not None:
        res["synthetic"] = score_synthetic(det, synthetic)
    if lines:
        res["synthetic_lines"] = score_lines(model, lines, threshold, scales)
    if raw:
        res["raw_files"] = raw_files(model, threshold, scales=scales)
        for extra in configs or []:
            res[f"raw_files[{Path(extra).name}]"] = raw_files(model, threshold, Path(extra), scales)
    return res


def write_manifest(model: Path, result: dict[str, Any], data: dict[str, Any] | None) -> None:
    """Put one model's real held-out scores (and the training pool) into its manifest."""
    from edge.models.manifest import Manifest, manifest_path

    path = manifest_path(Path(model))
    manifest = Manifest.load(path)
    metrics = dict(manifest.metrics or {})
    for key in ("history", "heldout_real"):
        metrics.pop(key, None)
    metrics["heldout_real"] = {k: v for k, v in result.items() if k not in ("model",)}
    metrics["heldout_real"]["protocol"] = (
        "python -m export.train.eval_detector (split by export.data.real_bscan: Morocco ~20 % of "
        "originals per folder, S&S ~20 % of screenshot families / lines, ConcreteNet its own "
        "6-image val); raw files through edge.gpr.stream.detect_file with "
        "firmware_config/gpr_unit.toml at the given threshold"
    )
    if "synthetic" in result:
        metrics["heldout_synthetic"] = result["synthetic"]
    manifest.metrics = metrics
    if data is not None:
        manifest.training_data = json.dumps(data)
    manifest.save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", help="'default', an .onnx or a training .pt")
    p.add_argument("--threshold", type=float, default=0.5, help="device score threshold")
    p.add_argument("--no-raw", action="store_true", help="skip the raw files")
    p.add_argument(
        "--raw-config",
        type=Path,
        action="append",
        help="also run the raw files with this station config",
    )
    p.add_argument(
        "--scales",
        type=float,
        nargs="+",
        help="window widths as multiples of the isotropic tile / [gpr.windows] width_traces "
        "(each >= 1; as [gpr.windows] scales): the tiles, and the raw files' config",
    )
    p.add_argument("--synthetic", type=Path, help="also a synthetic window set (seed 2)")
    p.add_argument(
        "--lines",
        type=int,
        default=0,
        help="also this many held-out synthetic survey lines through the pipeline",
    )
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--write-manifest",
        action="store_true",
        help="write the scores into each .onnx model's manifest",
    )
    p.add_argument("--training-data", type=Path, help="JSON for the manifest's training_data")
    args = p.parse_args(argv)
    if args.scales is not None:
        try:
            WindowsSection(scales=args.scales)
        except ValidationError as exc:
            p.error(f"--scales {args.scales}: {exc.errors()[0]['msg']}")
    results = [
        evaluate_model(
            m,
            args.threshold,
            not args.no_raw,
            args.synthetic,
            args.raw_config,
            args.scales,
            args.lines,
        )
        for m in args.models
    ]
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    if args.write_manifest:
        data = json.loads(args.training_data.read_text()) if args.training_data else None
        for m, r in zip(args.models, results, strict=True):
            if str(m).endswith(".onnx"):
                write_manifest(Path(m), r, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
