"""The manifest: file naming, JSON round trip, strict keys, normalisation arithmetic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.errors import ModelError
from edge.models.manifest import (
    AccuracyGate,
    Manifest,
    Normalisation,
    OutputSpec,
    Quantisation,
    ResizePolicy,
    manifest_path,
)


def example() -> Manifest:
    return Manifest(
        name="unet-small",
        task="segmentation",
        input_name="image",
        input_shape=[None, 3, 256, 320],
        outputs=[OutputSpec("logits", "water logit")],
        classes=["land", "water"],
        precision="int8",
        sha256="0" * 64,
        normalisation=Normalisation(
            scale=1 / 255, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]
        ),
        resize=ResizePolicy(mode="tile", tile=[512, 640], overlap=64),
        quantisation=Quantisation(measurements={"fp32": 10.0, "qdq_u8s8": 4.0}, chosen="qdq_u8s8"),
        accuracy_gate=AccuracyGate(
            passed=True,
            device="cpu",
            device_name="x86",
            reference="unet.onnx",
            dataset="d",
            samples=20,
            metrics={"iou": 0.95},
            reference_metrics={"iou": 0.955},
            max_drop={"iou": 0.01},
            latency_ms=4.0,
            reference_latency_ms=10.0,
        ),
    )


def test_manifest_sits_beside_the_model_with_the_precision_in_its_name(tmp_path):
    assert manifest_path(tmp_path / "unet.onnx") == tmp_path / "unet.manifest.json"
    assert manifest_path(tmp_path / "unet.int8.onnx") == tmp_path / "unet.int8.manifest.json"


def test_round_trip_keeps_every_field_and_dynamic_batch_is_null_in_json(tmp_path):
    path = tmp_path / "unet.int8.manifest.json"
    example().save(path)
    raw = json.loads(path.read_text())
    assert raw["input_shape"] == [None, 3, 256, 320]
    assert raw["schema"] == "geoedge.manifest/1"
    loaded = Manifest.load(path)
    assert loaded == example()
    assert loaded.accuracy_gate.speedup == pytest.approx(2.5)  # 10 ms / 4 ms
    assert loaded.published


def test_unknown_key_and_bad_json_are_refused(tmp_path):
    data = example().to_dict() | {"presicion": "fp32"}
    path = tmp_path / "m.manifest.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"malformed: unknown manifest keys \['presicion'\]"):
        Manifest.load(path)
    path.write_text("{not json")
    with pytest.raises(ModelError, match="malformed"):
        Manifest.load(path)


def test_int8_without_a_passed_gate_is_not_published():
    m = example()
    m.accuracy_gate.passed = False
    assert not m.published
    m.accuracy_gate = None
    assert not m.published
    m.precision = "fp32"
    assert m.published


def test_normalisation_is_scale_then_mean_and_std_per_channel():
    norm = example().normalisation
    pixel = np.full((3, 2, 2), 255.0)
    out = norm.apply(pixel)
    # 255 * (1/255) = 1.0; red: (1 - 0.485) / 0.229 = 2.2489
    assert out.dtype == np.float32
    assert out[0, 0, 0] == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)
    assert out[2, 1, 1] == pytest.approx((1 - 0.406) / 0.225, rel=1e-5)
