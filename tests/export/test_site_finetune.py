"""Per-site fine-tuning end to end on a real station held out of the generic training.

Station ``duck-c6`` (Duck Argus c6, 16 TimeX of 2015-10-08 labelled in
``export/labels/duck-b.json``) stands for an operator's beach: its labels are written in the
``geoedge label`` layout, 10 frames for fine-tuning and every third frame (6) held out for the
gate. The tests run the commands of the README walkthrough and compare against whatever
``default`` model is shipped.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge.beach.labelling.record import read_label_dir, save_label
from edge.cli import main
from edge.models.manifest import load_manifest
from edge.models.runtime import resolve_model
from export.convert.site_gate import site_gate
from export.data.real_labels import load, write_label_dirs
from tests.helpers.data import REPO, needs_duck

DUCK_B = REPO / "export" / "labels" / "duck-b.json"
STATION = "duck-c6"


@pytest.fixture(scope="module")
def station_labels(tmp_path_factory):
    root = tmp_path_factory.mktemp("duck-c6")
    counts = write_label_dirs([DUCK_B], root, {STATION}, split=3)
    assert counts == {str(root / "heldout"): 6, str(root / "train"): 10}
    return root / "train", root / "heldout"


@needs_duck
def test_label_folders_read_back_as_the_polygons_they_came_from(station_labels):
    """The label-tool layout is lossless: masks read through export.data.real_labels equal the
    rasterised polygons, with the station and the image path of the label file."""
    train, heldout = station_labels
    from_polygons = {i.image_path.resolve(): i for i in load([DUCK_B]) if i.station == STATION}
    from_folders = load([train, heldout])
    assert len(from_folders) == 16
    for item in from_folders:
        original = from_polygons[item.image_path.resolve()]
        assert item.station == STATION
        np.testing.assert_array_equal(item.class_mask(), original.class_mask())
    records = [label.record for label in read_label_dir(heldout)]
    assert {r.station for r in records} == {STATION}
    assert all(r.labeller.startswith("helper agent") for r in records)


@needs_duck
def test_the_gate_passes_a_model_equal_to_the_reference(station_labels):
    """The shipped model against itself: identical figures, so it passes with no tolerance."""
    _, heldout = station_labels
    shipped = resolve_model("default", "unet", "fp32")
    gate = site_gate(shipped, shipped, "default", [heldout], 0.0, 0.0)
    assert gate.passed and gate.images == 6
    assert gate.candidate.iou == gate.reference.iou
    assert gate.candidate.boundary_px == gate.reference.boundary_px


@needs_duck
@pytest.mark.slow
def test_fine_tune_then_gate_exports_a_site_model_no_worse_than_the_shipped_one(
    station_labels, tmp_path, capsys
):
    """20 steps of 4 whole model inputs from the shipped weights on the 10 frames, then the
    gated export against ``default`` on the 6 held-out frames. Measured 2026-12-01: IoU 0.944
    vs 0.927, boundary 3.8 vs 5.1 px, against a shipped model that had trained on all 16
    frames (held-out ones included): a short fine-tune passes even that reference, so the
    test holds for a shipped model that never saw the station too. The site model keeps the
    shipped input size."""
    train, heldout = station_labels
    ckpt, model = tmp_path / "site.pt", tmp_path / "site.onnx"
    rc = main(
        ["export", "train-unet", "--real", str(train), "--init", "default", "--out", str(ckpt),
         "--steps", "20", "--batch", "4", "--lr", "5e-4"]
    )  # fmt: skip
    assert rc == 0
    rc = main(
        ["export", "onnx", str(ckpt), "--out", str(model), "--exporter", "torchscript",
         "--site-labels", str(heldout)]
    )  # fmt: skip
    out = capsys.readouterr()
    assert rc == 0, out.err
    manifest = load_manifest(model)
    assert manifest.input_shape == load_manifest(resolve_model("default", "unet")).input_shape
    gate = manifest.metrics["site_gate"]
    assert gate["passed"] and gate["images"] == 6
    assert gate["candidate"]["iou"] >= gate["reference"]["iou"]
    assert gate["candidate"]["boundary_px"] <= gate["reference"]["boundary_px"] + 1.0
    assert manifest.metrics["site_finetune"]["images"] == {STATION: 10}
    # judged again later (what an operator runs after the shipped model changes): same verdict
    capsys.readouterr()
    assert main(["export", "site-gate", str(model), "--labels", str(heldout)]) == 0
    assert f"IoU {gate['candidate']['iou']:.4f}" in capsys.readouterr().out


@needs_duck
@pytest.mark.slow
def test_the_gate_refuses_a_model_worse_than_the_shipped_one(station_labels, tmp_path, capsys):
    """Three steps from random weights: far worse than any shipped model. The export says so in
    one line, exits 1 and writes no model file."""
    train, heldout = station_labels
    ckpt, model = tmp_path / "bad.pt", tmp_path / "bad.onnx"
    rc = main(
        ["export", "train-unet", "--real", str(train), "--init", "none", "--out", str(ckpt),
         "--steps", "3", "--batch", "2"]
    )  # fmt: skip
    assert rc == 0
    capsys.readouterr()
    rc = main(
        ["export", "onnx", str(ckpt), "--out", str(model), "--exporter", "torchscript",
         "--site-labels", str(heldout)]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 1 and "REFUSED" in err[0] and "not written" in err[0], err
    assert not model.exists()
    assert list(tmp_path.iterdir()) == [ckpt], "no temporary export left behind"


def test_a_checkpoint_of_another_input_size_is_refused_for_site_fine_tuning(tmp_path, capsys):
    """A per-site model keeps the shipped input size: asking for another one is a one-line error."""
    folder = tmp_path / "labels"
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((32, 40, 3), np.uint8))
    save_label(folder, image, np.zeros((32, 40), np.uint8), "tester", "colour")
    rc = main(
        ["export", "train-unet", "--real", str(folder), "--init", "default", "--size", "128x160",
         "--out", str(tmp_path / "x.pt"), "--steps", "1"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "keeps the shipped input size" in err
    assert json.loads((folder / "a.json").read_text())["labeller"] == "tester"
