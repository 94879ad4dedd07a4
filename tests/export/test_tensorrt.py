"""INT8 that TensorRT accepts, and the TensorRT engine builder, up to the ``tensorrt`` import.

Situation: a model engineer quantises a model for a Jetson (``geoedge export quantize
--format qdq``) and builds its engine there (``geoedge export tensorrt``). The model is a
real ONNX graph made here with ``onnx.helper`` (3x3 convolution, ReLU, 1x1 convolution:
a segmenter's shape, 3 x 16 x 20 input), quantised by the real ONNX Runtime. TensorRT and
the GPU are absent here: the builder runs against ``tests/helpers/fake_tensorrt`` (8.6 and
10.3 behaviours, every call recorded) with a named GPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.cli import main
from edge.errors import ModelError
from edge.models.engine_cache import TIMING_CACHE_FILE, EngineKey, Gpu
from edge.models.manifest import Manifest, Normalisation, OutputSpec, load_manifest, write_model
from edge.models.runtime import variant_path
from export.convert.quantize import check_tensorrt_int8, quantize
from export.convert.tensorrt import ENGINE_FILE, NO_GPU, build_engine
from tests.helpers import fake_tensorrt

ORIN = Gpu("NVIDIA Jetson AGX Orin", (8, 7))
PASCAL = Gpu("NVIDIA GeForce GTX 1080", (6, 1))  # no fast FP16
EXPLICIT_BATCH, STRONGLY_TYPED = 1 << 0, 1 << 1


def tiny_model(path: Path) -> Path:
    """Conv 3x3 (3 -> 8) + ReLU + Conv 1x1 (8 -> 1), with manifest: a water detector by hand.

    Feature 0 is blue minus red at the centre tap, feature 1 red minus blue; the logit is
    2 x (feature 0 - feature 1), plus small random weights everywhere (so every weight
    matters to the quantiser): water where blue exceeds red.
    """
    rng = np.random.default_rng(7)
    k1 = rng.normal(0, 0.05, (8, 3, 3, 3)).astype(np.float32)
    k1[0, :, 1, 1] += [-1, 0, 1]  # RGB: blue - red
    k1[1, :, 1, 1] += [1, 0, -1]
    k2 = rng.normal(0, 0.05, (1, 8, 1, 1)).astype(np.float32)
    k2[0, :2, 0, 0] += [2, -2]
    w1 = numpy_helper.from_array(k1, "w1")
    b1 = numpy_helper.from_array(rng.normal(0, 0.05, 8).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(k2, "w2")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c1"], ["r1"]),
            helper.make_node("Conv", ["r1", "w2"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 16, 20])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1, 16, 20])],
        [w1, b1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    manifest = Manifest(
        name="tiny",
        task="segmentation",
        input_name="image",
        input_shape=[None, 3, 16, 20],
        outputs=[OutputSpec("logits", "water logit")],
        classes=["land", "water"],
        normalisation=Normalisation(scale=1 / 255, mean=[0.5] * 3, std=[0.25] * 3),
    )
    write_model(model, path, manifest)
    return path


@pytest.fixture(scope="module")
def fp32(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    calib = root / "calib"
    calib.mkdir()
    rng = np.random.default_rng(1)
    for i in range(60):  # raw 0..255 pixels, as the images would be
        np.save(calib / f"w{i:02d}.npy", rng.uniform(0, 255, (3, 16, 20)).astype(np.float32))
    model = tiny_model(root / "tiny.onnx")
    # Held-out set for the accuracy gate: sea left of a shoreline, sand right of it, the
    # "truth" being what the FP32 model calls water (so FP32 scores IoU 1 and the gate
    # measures what quantisation changes).
    heldout = root / "heldout"
    (heldout / "images").mkdir(parents=True)
    (heldout / "masks").mkdir()
    session = ort.InferenceSession(str(model))
    norm = load_manifest(model).normalisation
    for i in range(6):
        shore = rng.integers(5, 15)
        raw = np.empty((3, 16, 20), np.float32)
        raw[:, :, :shore] = np.array([40, 90, 120])[:, None, None]  # RGB sea
        raw[:, :, shore:] = np.array([190, 170, 130])[:, None, None]  # RGB sand
        raw += rng.normal(0, 10, raw.shape).astype(np.float32)
        np.save(heldout / "images" / f"h{i}.npy", raw)
        logits = session.run(None, {"image": norm.apply(raw)[None]})[0][0, 0]
        cv2.imwrite(str(heldout / "masks" / f"h{i}.png"), (logits > 0).astype(np.uint8) * 255)
    return model


def quantised(fp32: Path, tmp_path: Path, variant: str) -> Path:
    """``tiny.int8.onnx`` (with its INT8 manifest) made by one INT8 recipe."""
    out = tmp_path / variant / "tiny.int8.onnx"
    out.parent.mkdir()
    quantize(fp32, fp32.parent / "calib", out, variants=(variant,), repeats=3)
    return out


def zero_points(path: Path) -> list[onnx.TensorProto]:
    graph = onnx.load(str(path)).graph
    inits = {t.name: t for t in graph.initializer}
    return [
        inits[n.input[2]] for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
    ]


def test_qdq_format_writes_signed_int8_with_every_zero_point_zero(fp32, capsys):
    rc = main(["export", "quantize", str(fp32), "--calibration", str(fp32.parent / "calib"),
               "--format", "qdq", "--data", str(fp32.parent / "heldout")])  # fmt: skip
    assert rc == 0, capsys.readouterr()
    int8 = variant_path(fp32, "int8")
    zps = zero_points(int8)
    # Input, ReLU output and both weights (and bias) at least: each one int8 and 0.
    assert len(zps) >= 4
    assert all(z.data_type == TensorProto.INT8 for z in zps)
    assert all(not numpy_helper.to_array(z).any() for z in zps)
    assert check_tensorrt_int8(int8) == len(zps)
    q = load_manifest(int8).quantisation
    assert q is not None and q.chosen == "qdq_symmetric" and q.tensorrt_ready
    # The accuracy gate ran on this QDQ file against FP32, on the 6 held-out windows.
    gate = load_manifest(int8).accuracy_gate
    assert gate is not None and gate.reference == "tiny.onnx" and gate.samples == 6
    # FP32 is the truth here (IoU 1); INT8 keeps it within the default 0.01 IoU.
    assert gate.reference_metrics["iou"] == 1.0 and gate.passed
    # Symmetric INT8 still computes the same function: on fresh inputs the INT8 logits
    # follow FP32's to within a few percent of their spread (8-bit steps on 2 layers).
    x = np.random.default_rng(9).uniform(-2, 2, (4, 3, 16, 20)).astype(np.float32)
    ref, got = (ort.InferenceSession(str(p)).run(None, {"image": x})[0] for p in (fp32, int8))
    assert np.abs(got - ref).max() < 0.05 * (ref.max() - ref.min())


def ort_quantised(fp32: Path, tmp_path: Path, activation: str) -> Path:
    """ONNX Runtime's QDQ with ``activation`` (``QUInt8``/``QInt8``) activations, asymmetric
    ranges and float biases: the CPU recipes without their int32 biases."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from export.convert.quantize import _reader, calibration_windows

    windows = calibration_windows(fp32.parent / "calib", load_manifest(fp32))
    out = tmp_path / f"{activation}.onnx"
    quantize_static(
        str(fp32), str(out), _reader("image", windows), quant_format=QuantFormat.QDQ,
        per_channel=True, activation_type=getattr(QuantType, activation),
        weight_type=QuantType.QInt8, extra_options={"QuantizeBias": False},
    )  # fmt: skip
    return out


def test_tensorrt_check_names_the_first_tensor_that_is_not_symmetric_int8(fp32, tmp_path):
    with pytest.raises(ModelError, match=r"is QOperator INT8 \(node .* is QLinearConv\)"):
        check_tensorrt_int8(quantised(fp32, tmp_path, "qoperator_u8s8"))
    # The CPU recipe: its first DequantizeLinear is the int32 bias of the first convolution.
    with pytest.raises(ModelError, match=r"tensor 'b1_quantized' is quantised to int32"):
        check_tensorrt_int8(quantised(fp32, tmp_path, "qdq_u8s8"))
    # Unsigned activations: the network input is the first tensor quantised.
    with pytest.raises(ModelError, match=r"tensor 'image' is quantised to uint8 .*zero point 0"):
        check_tensorrt_int8(ort_quantised(fp32, tmp_path, "QUInt8"))
    # Signed but asymmetric: the normalised input spans [-2.00, 1.99], a hair off symmetric,
    # and already gets the zero point -1 (the ReLU output after it would get -128).
    with pytest.raises(ModelError, match=r"tensor 'image' has zero point -1 .*not 0"):
        check_tensorrt_int8(ort_quantised(fp32, tmp_path, "QInt8"))
    with pytest.raises(ModelError, match="no QuantizeLinear/DequantizeLinear"):
        check_tensorrt_int8(fp32)


def test_export_tensorrt_refuses_a_cpu_int8_model_in_one_line(fp32, tmp_path, monkeypatch, capsys):
    int8 = quantised(fp32, tmp_path, "qdq_u8s8")
    # On a workstation without TensorRT (no module, no trtexec) the model is checked all
    # the same; on a Jetson (the fake TensorRT 10.3) TensorRT is never asked.
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    for tensorrt in (None, "10.3.0"):
        fake = fake_tensorrt.install(monkeypatch, tensorrt) if tensorrt else None
        capsys.readouterr()
        rc = main(["export", "tensorrt", str(int8), "--cache", str(tmp_path / "engines")])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1
        assert "tensor 'b1_quantized' is quantised to int32" in err and "--format qdq" in err
        assert fake is None or fake.calls == []


@pytest.mark.parametrize(
    ("version", "precision", "gpu", "network_flags", "builder_flags", "built"),
    [
        # TensorRT 8.6 (JetPack 6.0): ONNX networks need the explicit-batch flag.
        ("8.6.2", "auto", ORIN, EXPLICIT_BATCH, ["FP16"], "fp16"),
        ("8.6.2", "fp32", ORIN, EXPLICIT_BATCH, [], "fp32"),
        ("8.6.2", "auto", PASCAL, EXPLICIT_BATCH, [], "fp32"),
        # TensorRT 10 (JetPack 6.1+): explicit batch implied; FP16 weakly typed.
        ("10.3.0", "auto", ORIN, 0, ["FP16"], "fp16"),
        ("10.3.0", "fp32", ORIN, 0, [], "fp32"),
    ],
)
def test_fp32_model_builder_calls_per_release(
    fp32, tmp_path, monkeypatch, version, precision, gpu, network_flags, builder_flags, built
):
    fake = fake_tensorrt.install(monkeypatch, version)
    cache = tmp_path / "engines"
    engine = build_engine(fp32, cache, max_batch=4, precision=precision, gpu=gpu)
    assert fake.called("create_network") == [network_flags]
    assert fake.called("set_flag") == builder_flags
    assert fake.called("add_optimization_profile") == [
        {"image": ((1, 3, 16, 20), (1, 3, 16, 20), (4, 3, 16, 20))}
    ]
    assert engine.read_bytes().startswith(b"engine")
    key = EngineKey.read(engine.parent)
    assert key == EngineKey(load_manifest(fp32).sha256, version, None, gpu.name, gpu.sm, built)
    assert engine == key.folder(fp32.name, cache) / ENGINE_FILE


def test_int8_is_strongly_typed_on_tensorrt_10_and_flagged_on_8(fp32, tmp_path, monkeypatch):
    int8 = quantised(fp32, tmp_path, "qdq_symmetric")
    fake = fake_tensorrt.install(monkeypatch, "10.3.0")
    build_engine(int8, tmp_path / "engines", gpu=ORIN)
    # Strongly typed from QDQ: the graph's types decide, no precision flags (TensorRT 10
    # refuses them on such a network; the fake fails the build as TensorRT does).
    assert fake.called("create_network") == [STRONGLY_TYPED]
    assert fake.called("set_flag") == [] and fake.called("build_error") == []
    fake = fake_tensorrt.install(monkeypatch, "8.6.2")
    build_engine(int8, tmp_path / "engines", gpu=ORIN)
    assert fake.called("create_network") == [EXPLICIT_BATCH]
    assert fake.called("set_flag") == ["FP16", "INT8"]  # explicit quantisation, no calibrator


def test_timing_cache_is_read_and_written_back_per_machine(fp32, tmp_path, monkeypatch):
    cache = tmp_path / "engines"
    fake = fake_tensorrt.install(monkeypatch, "10.3.0")
    first = build_engine(fp32, cache, gpu=ORIN)
    key = EngineKey.read(first.parent)
    assert key is not None
    timing = key.timing_folder(cache) / TIMING_CACHE_FILE
    assert fake.called("create_timing_cache") == [b""]
    assert fake.called("set_timing_cache") == [False]  # a mismatched cache is not ignored
    assert timing.read_bytes() == b"tactics measured\n"
    # Same machine, other precision: a new engine, built with the measured timings.
    second = build_engine(fp32, cache, precision="fp32", gpu=ORIN)
    assert second.parent != first.parent
    assert fake.called("create_timing_cache") == [b"", b"tactics measured\n"]
    # Same key again: the cached engine, TensorRT not asked.
    calls = len(fake.calls)
    assert build_engine(fp32, cache, precision="fp32", gpu=ORIN) == second
    assert len(fake.calls) == calls
    # A JetPack upgrade (TensorRT 8.6 -> 10.3 is the other way round here): new folder,
    # new timing cache.
    fake = fake_tensorrt.install(monkeypatch, "8.6.2")
    third = build_engine(fp32, cache, precision="fp32", gpu=ORIN)
    assert third.parent not in (first.parent, second.parent)
    assert fake.called("create_timing_cache") == [b""]


def test_a_parser_failure_and_a_missing_gpu_are_one_line(fp32, tmp_path, monkeypatch, capsys):
    fake = fake_tensorrt.install(monkeypatch, "8.6.2")
    if build_engine.__globals__["cuda_gpu"]() is not None:
        pytest.skip("a CUDA GPU is present: the missing-GPU path cannot be exercised")
    rc = main(["export", "tensorrt", str(fp32), "--cache", str(tmp_path / "engines")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and NO_GPU in err
    assert fake.calls == []
    # A builder that forgets the explicit-batch flag on 8.6 fails as TensorRT 8 does: the
    # fake refuses it, so the flag test above can fail.
    parser = fake.module.OnnxParser(fake.module.Builder(None).create_network(0), None)
    assert not parser.parse(b"onnx") and "explicit batch" in parser.get_error(0)
