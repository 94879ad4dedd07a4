"""The full-resolution guided refinement moves a coarse boundary onto the image's edge."""

from __future__ import annotations

import cv2
import numpy as np

from edge.beach.waterline.refine import guided_refine, model_radius


def _edge_scene(width: int = 1600, height: int = 600, edge_col: int = 803) -> np.ndarray:
    """Dark sea on the left of ``edge_col``, bright sand on the right, with camera noise."""
    rng = np.random.default_rng(3)
    img = np.full((height, width, 3), (170, 190, 200), np.float32)
    img[:, :edge_col] = (120, 80, 40)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _coarse_probability(width: int, height: int, boundary_col: int, model_width: int) -> np.ndarray:
    """What a resize-path model gives: a step at ``boundary_col`` seen at ``model_width``."""
    small_w = model_width
    col = np.arange(small_w) * width / small_w
    row = (col < boundary_col).astype(np.float32)
    small = np.repeat(row[None], max(2, height * small_w // width), axis=0)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _boundary_columns(prob: np.ndarray) -> np.ndarray:
    """Per row, the first column where water (>= 0.5) ends."""
    return np.argmin(prob >= 0.5, axis=1)


def test_a_coarse_boundary_snaps_to_the_image_edge() -> None:
    """A boundary a model pixel and a half (8 px at 5 px per model pixel) off the sea/sand edge
    ends on it."""
    img = _edge_scene(edge_col=803)
    coarse = _coarse_probability(1600, 600, boundary_col=795, model_width=320)
    before = np.abs(_boundary_columns(coarse) - 803).mean()
    refined = guided_refine(img, coarse, model_radius(1600, 320))
    after = np.abs(_boundary_columns(refined) - 803).mean()
    assert before >= 5
    assert after <= 1.5, (before, after)
    assert refined.dtype == np.float32 and refined.shape == coarse.shape
    assert refined.min() >= 0.0 and refined.max() <= 1.0


def test_a_flat_image_leaves_the_decision_where_it_was() -> None:
    """No edge to follow: the boundary stays within a model pixel of the model's."""
    img = np.full((600, 1600, 3), 128, np.uint8)
    coarse = _coarse_probability(1600, 600, boundary_col=790, model_width=320)
    refined = guided_refine(img, coarse, model_radius(1600, 320))
    moved = np.abs(_boundary_columns(refined) - _boundary_columns(coarse))
    assert moved.max() <= 1600 / 320


def test_the_radius_scales_with_the_upsampling_factor() -> None:
    assert model_radius(2448, 320) > model_radius(1280, 320) > model_radius(320, 320)
    assert model_radius(100, 320) == model_radius(320, 320)
