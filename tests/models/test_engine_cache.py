"""The TensorRT engine cache and the provider options the station opens a model with.

Situation: a Jetson runs the station's models through ONNX Runtime's TensorRT provider.
An engine is only valid for the model bytes, the TensorRT and ONNX Runtime releases, the
GPU and the precision it was built for; after a JetPack upgrade (TensorRT 8.6 -> 10.3) or
on another board the station must build a new one, never load the old. No GPU exists
here: the GPUs below are named, as the CUDA driver would report them.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.commands.doctor import engine_cache_finding
from edge.errors import ModelError
from edge.models.engine_cache import (
    EngineKey,
    Gpu,
    cache_entries,
    cuda_gpu,
    decode_infer_lib_version,
    tensorrt_version,
)
from edge.models.manifest import Manifest, OutputSpec, Quantisation
from edge.models.runtime import MODELS_DIR, OnnxModel, _tensorrt_entry, tensorrt_options
from tests.helpers.fake_gpu_libs import build

ORIN = Gpu("NVIDIA Jetson AGX Orin", (8, 7))
XAVIER = Gpu("NVIDIA Jetson AGX Xavier", (7, 2))
PASCAL = Gpu("NVIDIA GeForce GTX 1080", (6, 1))
SHA = "ab" * 32


def manifest(precision: str = "fp32", quantisation: Quantisation | None = None) -> Manifest:
    return Manifest(
        name="unet", task="segmentation", input_name="image", input_shape=[None, 3, 16, 20],
        outputs=[OutputSpec("logits", "water logit")], classes=["land", "water"],
        precision=precision, sha256=SHA, quantisation=quantisation,  # type: ignore[arg-type]
    )  # fmt: skip


def test_every_part_of_the_key_gives_its_own_folder():
    key = EngineKey(SHA, "10.3.0", "1.20.1", ORIN.name, ORIN.sm, "fp16")
    machine = "trt10.3.0-ort1.20.1-nvidia-jetson-agx-orin-sm87"
    assert key.folder_name == f"abababababababab-{machine}-fp16"
    others = [
        EngineKey("cd" * 32, "10.3.0", "1.20.1", ORIN.name, ORIN.sm, "fp16"),
        EngineKey(SHA, "8.6.2", "1.20.1", ORIN.name, ORIN.sm, "fp16"),  # JetPack 6.0
        EngineKey(SHA, "10.3.0", "1.19.0", ORIN.name, ORIN.sm, "fp16"),
        EngineKey(SHA, "10.3.0", "1.20.1", XAVIER.name, XAVIER.sm, "fp16"),
        EngineKey(SHA, "10.3.0", "1.20.1", ORIN.name, "sm86", "fp16"),
        EngineKey(SHA, "10.3.0", "1.20.1", ORIN.name, ORIN.sm, "int8"),
        EngineKey(SHA, "10.3.0", None, ORIN.name, ORIN.sm, "fp16"),  # export tensorrt's
    ]
    names = {k.folder_name for k in others}
    assert key.folder_name not in names and len(names) == len(others)


def test_fast_fp16_follows_the_compute_capability():
    # Nano 5.3, TX2 6.2, Xavier 7.2, Orin 8.7 have it; consumer Pascal 6.1 and Maxwell 5.2 not.
    fast = [Gpu("", cc).fast_fp16 for cc in ((5, 3), (6, 2), (7, 2), (8, 7), (6, 1), (5, 2))]
    assert fast == [True, True, True, True, False, False]


def test_tensorrt_release_numbers_decode_for_8_and_10():
    assert decode_infer_lib_version(8602) == "8.6.2"
    assert decode_infer_lib_version(8503) == "8.5.3"
    assert decode_infer_lib_version(100300) == "10.3.0"
    assert decode_infer_lib_version(101100) == "10.11.0"


def test_fp32_model_gets_fp16_on_a_fast_fp16_gpu_unless_fp32_is_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOEDGE_TRT_CACHE", str(tmp_path))
    model = Path("unet.onnx")
    key, opts = tensorrt_options(model, manifest(), "auto", ORIN, "10.3.0", "1.20.1")
    assert key.precision == "fp16" and opts["trt_fp16_enable"] and not opts["trt_int8_enable"]
    assert opts["trt_engine_cache_enable"] and opts["trt_timing_cache_enable"]
    assert opts["trt_engine_cache_path"] == str(tmp_path / "unet.onnx" / key.folder_name)
    # The timing cache is the machine's, shared by its models.
    machine = "trt10.3.0-ort1.20.1-nvidia-jetson-agx-orin-sm87"
    assert opts["trt_timing_cache_path"] == str(tmp_path / "timing" / machine)
    # Dynamic batch: one fixed profile, so a larger batch never triggers a rebuild.
    assert (opts["trt_profile_min_shapes"], opts["trt_profile_max_shapes"]) == (
        "image:1x3x16x20",
        "image:8x3x16x20",
    )
    key32, opts = tensorrt_options(model, manifest(), "fp32", ORIN, "10.3.0", "1.20.1")
    assert key32.precision == "fp32" and not opts["trt_fp16_enable"]
    assert key32.folder_name != key.folder_name
    key_p, opts = tensorrt_options(model, manifest(), "auto", PASCAL, "10.3.0", "1.20.1")
    assert key_p.precision == "fp32" and not opts["trt_fp16_enable"]
    key16, opts = tensorrt_options(model, manifest("fp16"), "fp32", ORIN, "10.3.0", "1.20.1")
    assert key16.precision == "fp16" and opts["trt_fp16_enable"]  # the file is FP16
    # ONNX Runtime 1.16 (JetPack 5's wheels) refuses trt_timing_cache_path; it then keeps
    # the timing cache with the engines.
    _, opts = tensorrt_options(model, manifest(), "auto", ORIN, "8.5.2", "1.16.3")
    assert "trt_timing_cache_path" not in opts and opts["trt_timing_cache_enable"]


def test_int8_goes_to_tensorrt_only_as_symmetric_signed_qdq(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOEDGE_TRT_CACHE", str(tmp_path))
    model = Path("unet.int8.onnx")
    tensorrt = Quantisation(format="QDQ", activation_type="QInt8", symmetric=True)
    key, opts = tensorrt_options(model, manifest("int8", tensorrt), "int8", ORIN, "8.6.2", "1.17")
    assert key.precision == "int8" and opts["trt_int8_enable"] and opts["trt_fp16_enable"]
    for recipe, words in [
        (Quantisation(format="QDQ", activation_type="QUInt8"), "QDQ QUInt8/QInt8 asymmetric"),
        (Quantisation(format="QOperator", activation_type="QUInt8"), "QOperator QUInt8"),
        (Quantisation(format="QDQ", activation_type="QInt8"), "QDQ QInt8/QInt8 asymmetric"),
        (None, "no quantisation record"),
    ]:
        with pytest.raises(ModelError, match=f"not symmetric signed-INT8 QDQ \\({words}"):
            tensorrt_options(model, manifest("int8", recipe), "int8", ORIN, "8.6.2", "1.17")


def test_without_a_gpu_tensorrt_is_skipped_with_one_line(caplog):
    if cuda_gpu() is not None and tensorrt_version() is not None:
        pytest.skip("a GPU with TensorRT is present")
    with caplog.at_level(logging.INFO, logger="edge.models.runtime"):
        assert _tensorrt_entry(Path("unet.onnx"), manifest(), "auto") is None
    assert [r.message for r in caplog.records if "TensorRT skipped" in r.message] == [
        "TensorRT skipped for unet.onnx: no CUDA GPU (libcuda)"
        if cuda_gpu() is None
        else "TensorRT skipped for unet.onnx: no TensorRT library (libnvinfer)"
    ]


def test_cache_entries_and_doctor_tell_this_machines_engines_from_stale_ones(tmp_path):
    current = EngineKey(SHA, "10.3.0", "1.20.1", ORIN.name, ORIN.sm, "fp16")
    before_upgrade = EngineKey(SHA, "8.6.2", "1.17.0", ORIN.name, ORIN.sm, "fp16")
    exported = EngineKey(SHA, "10.3.0", None, ORIN.name, ORIN.sm, "int8")
    for key, engine in [(current, "a.engine"), (before_upgrade, "b.engine"), (exported, "")]:
        folder = key.folder("unet.onnx", tmp_path)
        key.write(folder)
        if engine:
            (folder / engine).write_bytes(b"engine")
    (tmp_path / "timing" / current.machine).mkdir(parents=True)  # not an engine folder
    entries = {e.key: e for e in cache_entries("10.3.0", "1.20.1", ORIN, tmp_path)}
    assert set(entries) == {current, before_upgrade, exported}
    assert entries[current].matches and entries[current].engines == 1
    assert entries[exported].matches and entries[exported].engines == 0
    assert not entries[before_upgrade].matches
    # On another board nothing matches.
    assert not any(e.matches for e in cache_entries("10.3.0", "1.20.1", XAVIER, tmp_path))

    found = engine_cache_finding(tmp_path, "10.3.0", "1.20.1", ORIN)
    assert found.state == "note"
    assert "key trt10.3.0-ort1.20.1-nvidia-jetson-agx-orin-sm87" in found.found
    assert "1 model(s) with an engine for this machine, 1 stale folder(s)" in found.found
    assert str(before_upgrade.folder("unet.onnx", tmp_path)) in found.fix
    absent = engine_cache_finding(tmp_path, None, "1.20.1", None)
    assert absent.state == "note" and "no TensorRT here" in absent.found


@pytest.mark.parametrize(
    ("nvinfer", "expected"),
    [
        (("libnvinfer.so.8", 8602), "8.6.2"),
        (("libnvinfer.so.10", 100300), "10.3.0"),
        (None, "None"),
    ],
)
def test_gpu_and_tensorrt_release_are_read_from_the_driver_and_libnvinfer(
    tmp_path, nvinfer, expected
):
    # A Jetson AGX Orin's driver and JetPack 6.0's / 6.1's TensorRT, as compiled stand-ins.
    libs = build(tmp_path / "lib", "Orin (nvgpu)", (8, 7), nvinfer)
    probe = (
        "from edge.models.engine_cache import cuda_gpu, tensorrt_version\n"
        "print(cuda_gpu()); print(tensorrt_version())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
        env={**os.environ, "LD_LIBRARY_PATH": str(libs)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    gpu, version = run.stdout.splitlines()
    assert gpu == "Gpu(name='Orin (nvgpu)', compute_capability=(8, 7))"
    assert version == expected


def test_on_a_jetson_the_model_gets_its_keyed_folder_and_doctor_sees_it(tmp_path):
    # The station's start on JetPack 6.1 (TensorRT 10.3, stand-in libraries): the U-Net's
    # TensorRT entry is FP16 in its key's folder, and doctor finds that folder current.
    libs = build(tmp_path / "lib", "Orin (nvgpu)", (8, 7), ("libnvinfer.so.10", 100300))
    probe = (
        "import json, onnxruntime\n"
        "from pathlib import Path\n"
        "from edge.commands.doctor import _engine_cache\n"
        "from edge.models.runtime import MODELS_DIR, _tensorrt_entry\n"
        "from edge.models.manifest import load_manifest\n"
        "path = MODELS_DIR / 'unet.onnx'\n"
        "folder, (name, options) = _tensorrt_entry(path, load_manifest(path), 'auto')\n"
        "print(json.dumps([str(folder), name, options, onnxruntime.__version__]))\n"
        "print(_engine_cache())\n"
    )
    cache = tmp_path / "cache"
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
        env={**os.environ, "LD_LIBRARY_PATH": str(libs), "GEOEDGE_TRT_CACHE": str(cache)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    entry, finding = run.stdout.splitlines()
    folder, name, options, ort_version = json.loads(entry)
    key = EngineKey.read(Path(folder))
    assert key is not None and Path(folder) == key.folder("unet.onnx", cache)
    assert (key.tensorrt, key.onnxruntime, key.sm, key.precision) == (
        "10.3.0",
        ort_version,
        "sm87",
        "fp16",
    )
    assert name == "TensorrtExecutionProvider" and options["trt_fp16_enable"] is True
    assert options["trt_timing_cache_path"] == str(key.timing_folder(cache))
    assert "state='ok'" in finding and f"key {key.machine}: 0 model(s)" in finding


def test_a_batch_larger_than_the_engine_profile_runs_in_pieces_with_the_same_outputs():
    # The shipped U-Net on the CPU, told it runs on a TensorRT engine of at most 2 per batch.
    whole = OnnxModel(MODELS_DIR / "unet.onnx", ["CPUExecutionProvider"])
    assert whole.max_batch is None  # no TensorRT: any batch
    pieces = OnnxModel(MODELS_DIR / "unet.onnx", ["CPUExecutionProvider"])
    pieces.max_batch = 2
    x = np.random.default_rng(3).normal(0, 1, (5, 3, 256, 320)).astype(np.float32)
    expected, got = whole.run(x), pieces.run(x)
    assert [o.shape for o in got] == [o.shape for o in expected] and got[0].shape[0] == 5
    assert all(np.allclose(g, e, atol=1e-4) for g, e in zip(got, expected, strict=True))
