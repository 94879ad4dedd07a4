"""Synthetic survey lines for detector training (export.data.synth_lines): rendered like the
demo line with other targets, processed by the device pipeline, cropped at device widths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.gpr.detector import WINDOW
from export.data.synth_lines import (
    CROP_TRACES,
    DEMO_SEED,
    Line,
    LineBox,
    crop,
    load,
    render,
    write_lines,
)
from export.train.real_detector import Sampler


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[Line]:
    root = tmp_path_factory.mktemp("lines")
    write_lines(root, 3, seed=4)
    return load(root)


def test_the_demo_line_is_never_rendered_for_training(tmp_path: Path):
    with pytest.raises(ValueError, match="demo"):
        render(DEMO_SEED, tmp_path)


def test_lines_are_the_device_pipelines_output_with_their_targets_boxes(lines: list[Line]):
    """Each line is 1,200 processed traces from time zero, finite, scaled to unit 99.9th
    percentile; every box lies in the line and its hyperbola is visible: the box is brighter
    (mean |amplitude|) than as many traces on either side in the same rows by over 1.2x
    (1.28-7.3 measured; targets too weak to see are not drawn: a 1.9 m deep pipe labelled
    with the synthetic scans' SNR floor measured 0.83)."""
    assert len(lines) == 3 and sum(len(line.boxes) for line in lines) >= 3
    for line in lines:
        data = line.data.astype(np.float32)
        assert data.shape == (512, 1200) and np.isfinite(data).all()
        assert np.percentile(np.abs(data), 99.9) == pytest.approx(1.0, rel=0.01)
        for b in line.boxes:
            assert 0 <= b.trace0 <= b.apex_trace <= b.trace1 < 1200
            assert 0 <= b.time0_ns < b.time1_ns <= 512 * line.dt_ns
            r0, r1 = int(b.time0_ns / line.dt_ns), int(b.time1_ns / line.dt_ns)
            t0, t1 = int(b.trace0), int(b.trace1) + 1
            rows = np.abs(data[r0:r1])
            flanks = np.hstack([rows[:, max(0, 2 * t0 - t1) : t0], rows[:, t1 : 2 * t1 - t0]])
            assert rows[:, t0:t1].mean() > 1.2 * flanks.mean()


def test_crops_have_device_widths_and_label_every_target_they_hold():
    """A line with one target at traces 500-560 (apex 530): crops are window-sized, the
    target is labelled wherever the crop holds its apex and half its box, and no crop cuts it
    ambiguously (apex outside but more than 15 % of the box inside)."""
    rng = np.random.default_rng(0)
    data = rng.normal(size=(512, 1200)).astype(np.float16)
    box = LineBox("pipe", 500.0, 560.0, 530.0, 10.0, 20.0)
    line = Line(data, 0.1171875, [box])
    labelled = 0
    for _ in range(200):
        window, boxes = crop(line, rng, WINDOW)
        assert window.shape == WINDOW and boxes.shape[1] == 5
        assert ((boxes[:, 1:] >= 0) & (boxes[:, 1:] <= 1)).all()
        if len(boxes):
            labelled += 1
            assert boxes[0, 0] == 1  # pipe
            assert boxes[0, 2] == pytest.approx(15.0 / 0.1171875 / 512, rel=0.01)
    assert 0 < labelled < 200
    assert min(CROP_TRACES) * 0.85 < 1200  # every width fits the 1,200-trace line


def test_the_trainer_draws_line_windows_when_given_lines(lines: list[Line]):
    """With only the lines source, every training sample is a normalised line window."""
    sampler = Sampler([], None, [], np.random.default_rng(1), {"lines": 1.0}, lines)
    assert sampler.names == ["lines"]
    for _ in range(10):
        x, b, src = sampler.one()
        assert src == "lines" and x.shape == WINDOW
        assert np.abs(x).max() <= 1.0 and b.shape[1] == 5
