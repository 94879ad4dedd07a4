"""The per-site accuracy gate: a fine-tuned U-Net must not be worse than the shipped one on
the station's own held-out labels.

Both models run through the station's inference path
(:func:`edge.beach.waterline.segmentation.unet_probability`, FP32 on ONNX Runtime's CPU
provider) on every image of the held-out ``geoedge label`` folders, at full resolution; the
scores are :mod:`export.train.eval_unet`'s: IoU of water over the non-ignore pixels (sky and
land are not-water) and the boundary distance (median px between the label's and the
prediction's water boundaries), both at ``width`` px image width. Per model: the mean IoU and
the median of the per-image boundary distances.

The candidate passes when its mean IoU is at least the reference's minus ``max_iou_drop`` and
its median boundary distance at most the reference's plus ``max_boundary_rise_px``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge.errors import InputError
from export.data.real_labels import LabelledImage, load_label_dir
from export.train.eval_unet import OnnxPath, read_labelled, score

#: Image width (px) the metrics are measured at: the project's reporting width.
WIDTH = 1280


@dataclass(frozen=True)
class SiteScore:
    """A model's scores on the held-out labels: mean IoU (0..1), median boundary distance (px
    at :data:`WIDTH`), and per image ``{"image", "iou", "bd"}``."""

    model: str
    iou: float
    boundary_px: float
    per_image: list[dict[str, float | str]]


@dataclass(frozen=True)
class SiteGate:
    """The verdict, both models' scores and the bounds it was judged with."""

    passed: bool
    labels: list[str]
    images: int
    width: int
    candidate: SiteScore
    reference: SiteScore
    max_iou_drop: float
    max_boundary_rise_px: float

    def summary(self) -> str:
        """One line: verdict, both models' figures, the number of images."""
        c, r = self.candidate, self.reference
        verdict = "passed" if self.passed else "REFUSED (worse than the reference)"
        return (
            f"site gate {verdict} on {self.images} held-out images: IoU {c.iou:.4f} vs "
            f"{r.iou:.4f} ({r.model}), boundary {c.boundary_px:.1f} px vs {r.boundary_px:.1f} px "
            f"at {self.width} px width (allowed: IoU -{self.max_iou_drop}, "
            f"boundary +{self.max_boundary_rise_px} px)"
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def model_score(model: Path, name: str, items: list[LabelledImage], width: int) -> SiteScore:
    """Scores of one ONNX model (with its manifest) on ``items``."""
    segment = OnnxPath(model)
    per_image: list[dict[str, float | str]] = []
    for item in items:
        bgr, mask = read_labelled(item)
        s = score(segment(bgr), mask, width)
        per_image.append({"image": Path(item.key).name, "iou": s["iou"], "bd": s["bd"]})
    return SiteScore(
        name,
        round(float(np.mean([p["iou"] for p in per_image])), 4),
        round(float(np.median([p["bd"] for p in per_image])), 2),
        per_image,
    )


def site_gate(
    candidate: Path,
    reference: Path,
    reference_name: str,
    label_dirs: list[Path],
    max_iou_drop: float = 0.0,
    max_boundary_rise_px: float = 1.0,
    width: int = WIDTH,
) -> SiteGate:
    """Judge ``candidate`` against ``reference`` on the labels of ``label_dirs``."""
    items = [item for folder in label_dirs for item in load_label_dir(folder)]
    if not items:
        raise InputError(f"--site-labels {label_dirs}: no labels")
    cand = model_score(candidate, "candidate", items, width)
    ref = model_score(reference, reference_name, items, width)
    passed = (
        cand.iou >= ref.iou - max_iou_drop
        and cand.boundary_px <= ref.boundary_px + max_boundary_rise_px
    )
    return SiteGate(
        passed,
        [str(f) for f in label_dirs],
        len(items),
        width,
        cand,
        ref,
        max_iou_drop,
        max_boundary_rise_px,
    )
