"""The on-device loader: verified models, provider fallback, precision choice.

Situation: a station starts with ``[segmentation] model = ...``. The model file is a
real ONNX export (a 1x1 convolution summing the RGB channels: water logit = R + G + B
of the normalised input, so outputs can be checked by hand) with its manifest beside it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from edge.errors import InputError, ModelError  # noqa: E402
from edge.models.manifest import AccuracyGate, Manifest, OutputSpec, load_manifest, manifest_path  # noqa: E402
from edge.models.runtime import OnnxModel, resolve_model, variant_path  # noqa: E402
from export.convert.onnx_export import export_onnx  # noqa: E402


class ChannelSum(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1, bias=False)
        torch.nn.init.ones_(self.conv.weight)

    def forward(self, x):
        return self.conv(x)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    manifest = Manifest(
        name="channel-sum",
        task="segmentation",
        input_name="image",
        input_shape=[None, 3, 16, 20],
        outputs=[OutputSpec("logits", "water logit")],
        classes=["land", "water"],
    )
    export_onnx(ChannelSum().eval(), root / "unet.onnx", manifest, dynamo=False)
    return root


def copy_model(src: Path, dst: Path, precision: str = "fp32") -> Path:
    """Copy the FP32 model as the ``precision`` variant at ``dst`` (same bytes, own manifest)."""
    path = variant_path(dst, precision)
    shutil.copy(src, path)
    manifest = load_manifest(src)
    manifest.precision = precision
    manifest.save(manifest_path(path))
    return path


def gate(passed: bool, latency_ms: float, device: str = "cpu") -> AccuracyGate:
    return AccuracyGate(
        passed=passed, device=device, device_name="test", reference="unet.onnx",
        dataset="held-out", samples=10, metrics={"iou": 0.95}, reference_metrics={"iou": 0.951},
        max_drop={"iou": 0.01}, latency_ms=latency_ms, reference_latency_ms=10.0,
    )  # fmt: skip


def test_runs_on_cpu_and_skips_missing_providers_with_one_line_each(model_dir, caplog):
    with caplog.at_level(logging.INFO, logger="edge.models.runtime"):
        model = OnnxModel(
            model_dir / "unet.onnx",
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        )
    assert model.providers == ["CPUExecutionProvider"]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2
    assert "TensorrtExecutionProvider" in skipped[0] and "CUDAExecutionProvider" in skipped[1]
    x = np.zeros((2, 3, 16, 20), np.float32)
    x[:, 0], x[:, 1], x[:, 2] = 0.5, -0.25, 1.0
    (logits,) = model.run(x)
    assert logits.shape == (2, 1, 16, 20)
    np.testing.assert_allclose(logits, 1.25, atol=1e-6)  # 0.5 - 0.25 + 1.0
    assert model.input_size == (16, 20)


def test_refuses_a_model_whose_bytes_differ_from_its_manifest(model_dir, tmp_path):
    path = tmp_path / "unet.onnx"
    data = bytearray((model_dir / "unet.onnx").read_bytes())
    data[-1] ^= 0x01  # one flipped bit, e.g. a corrupted copy to the device
    path.write_bytes(bytes(data))
    manifest_path(path).write_text(manifest_path(model_dir / "unet.onnx").read_text())
    with pytest.raises(ModelError) as err:
        OnnxModel(path)
    message = str(err.value)
    assert "does not match its manifest" in message and "unet.manifest.json" in message
    assert "\n" not in message


def test_refuses_a_model_without_manifest(model_dir, tmp_path):
    path = tmp_path / "unet.onnx"
    shutil.copy(model_dir / "unet.onnx", path)
    with pytest.raises(ModelError, match=r"has no manifest unet\.manifest\.json"):
        OnnxModel(path)


def test_unknown_provider_and_wrong_input_shape_are_one_line_errors(model_dir):
    with pytest.raises(ModelError, match="unknown ONNX Runtime provider 'GpuProvider'"):
        OnnxModel(model_dir / "unet.onnx", ["GpuProvider"])
    model = OnnxModel(model_dir / "unet.onnx", ["CPUExecutionProvider"])
    with pytest.raises(InputError, match=r"expects input shape \[None, 3, 16, 20\]"):
        model.run(np.zeros((1, 3, 32, 20), np.float32))


def test_auto_precision_takes_the_fastest_variant_that_passed_on_this_device(model_dir, tmp_path):
    base = copy_model(model_dir / "unet.onnx", tmp_path / "unet.onnx")
    cpu = ["CPUExecutionProvider"]
    assert resolve_model(str(base), "unet", "auto", cpu) == base  # no variants: FP32
    int8 = copy_model(base, base, "int8")
    assert resolve_model(str(base), "unet", "auto", cpu) == base  # not verified: FP32
    m = load_manifest(int8)
    m.accuracy_gate = gate(passed=True, latency_ms=5.0)  # 2x faster, passed on a CPU
    m.save(manifest_path(int8))
    assert resolve_model(str(base), "unet", "auto", cpu) == int8
    fp16 = copy_model(base, base, "fp16")
    m = load_manifest(fp16)
    m.accuracy_gate = gate(passed=True, latency_ms=2.0, device="gpu")  # passed on a GPU only
    m.save(manifest_path(fp16))
    assert resolve_model(str(base), "unet", "auto", cpu) == int8
    m = load_manifest(int8)
    m.accuracy_gate = gate(passed=True, latency_ms=12.0)  # passed but slower than FP32
    m.save(manifest_path(int8))
    assert resolve_model(str(base), "unet", "auto", cpu) == base
    m.accuracy_gate = gate(passed=False, latency_ms=5.0)  # faster but failed its gate
    m.save(manifest_path(int8))
    assert resolve_model(str(base), "unet", "auto", cpu) == base
    assert resolve_model(str(base), "unet", "int8", cpu) == int8  # explicit: as asked


def test_resolve_model_names_what_is_missing(tmp_path):
    with pytest.raises(ModelError, match=r"unet model not found: .*nothing\.int8\.onnx"):
        resolve_model(str(tmp_path / "nothing.onnx"), "unet", "int8")
    with pytest.raises(ModelError, match=r"neither 'default' nor a path to an \.onnx"):
        resolve_model("unet.pt", "unet")
    with pytest.raises(ModelError, match="unknown model kind 'radar'"):
        resolve_model("default", "radar")
