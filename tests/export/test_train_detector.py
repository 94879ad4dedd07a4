"""`geoedge export train-detector`: a few real training steps on generated B-scan windows."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs PyTorch (the export extra)")

from edge.gpr.detector import STRIDE, WINDOW  # noqa: E402
from export.data.detection import write_dataset  # noqa: E402
from export.train.detector import (  # noqa: E402
    TrainConfig,
    augment,
    build_net,
    load_windows,
    loss_fn,
    targets,
    train,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bscans")
    write_dataset(root, 16, seed=5)
    return root


def test_fine_tuning_from_the_shipped_weights_writes_an_exportable_checkpoint(data, tmp_path):
    from export.convert.onnx_export import load_checkpoint

    torch.set_num_threads(2)
    out = tmp_path / "tuned.pt"
    cfg = TrainConfig(epochs=1, batch=4, holdout=0.25, init="default", progress=False)
    result = train(data, out, cfg)
    # 12 training windows at batch 4: 3 steps; 4 held-out windows scored.
    assert result["steps"] == 3 and result["heldout_windows"] == 4
    assert 0.0 <= result["heldout"]["map50"] <= 1.0
    net, manifest = load_checkpoint(out)
    assert manifest.task == "detection" and manifest.classes == ["cavity", "pipe"]
    assert manifest.input_shape == [None, 1, *WINDOW]
    assert "map50" in manifest.metrics["heldout_synthetic"]
    with torch.no_grad():
        maps = net(torch.zeros(2, 1, *WINDOW))
    assert tuple(maps.shape) == (2, 6, WINDOW[0] // STRIDE, WINDOW[1] // STRIDE)


def test_training_steps_reduce_the_loss_on_a_fixed_batch(data):
    # From scratch, 25 Adam steps on the same 8 windows: the loss must fall by a third.
    torch.manual_seed(0)
    torch.set_num_threads(2)
    windows, labels, classes = load_windows(data)
    net, _ = build_net(len(classes), 8, "none")
    grid = (WINDOW[0] // STRIDE, WINDOW[1] // STRIDE)
    x = torch.from_numpy(windows[:8].astype(np.float32)[:, None])
    tg = [targets(lab, len(classes), grid) for lab in labels[:8]]
    heat = torch.from_numpy(np.stack([t[0] for t in tg]))
    reg = torch.from_numpy(np.stack([t[1] for t in tg]))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = loss_fn(net(x), heat, reg, len(classes))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.67 * losses[0]


def test_augmentation_moves_boxes_with_the_window():
    # A mirrored window mirrors its box; polarity is never flipped (it tells a void from
    # a pipe), so the brightest sample stays positive.
    h, w = WINDOW
    rng = np.random.default_rng(0)
    window = rng.normal(0, 0.01, WINDOW).astype(np.float32)
    window[40:44, 20:30] = 5.0
    box = np.array([[0, 25 / w, 42 / h, 10 / w, 4 / h]], np.float32)
    kept = 0
    for _ in range(30):
        out, boxes = augment(window, box, rng)
        assert out.shape == WINDOW
        kept += len(boxes)
        for _, cx, cy, bw, bh in boxes:
            assert out.max() > -out.min()
            c0, r0 = int((cx - bw / 2) * w), int((cy - bh / 2) * h)
            c1, r1 = int(np.ceil((cx + bw / 2) * w)), int(np.ceil((cy + bh / 2) * h))
            inside = out[max(r0 - 1, 0) : r1 + 1, max(c0 - 1, 0) : c1 + 1].max()
            assert inside == pytest.approx(out.max(), rel=0.2)
    assert kept >= 15  # a crop drops the box only when it cuts off most of it


def test_command_refuses_a_directory_without_images(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "edge", "export", "train-detector", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "images" in lines[0] and str(tmp_path) in lines[0]
