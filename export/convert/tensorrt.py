"""ONNX -> TensorRT engine with the TensorRT Python API (or ``trtexec``), on the target.

The station itself runs TensorRT through ONNX Runtime's TensorRT execution provider, which
builds and caches its own engines (:mod:`edge.models.runtime`). This command builds the same
model at the same precision, under the same :class:`~edge.models.engine_cache.EngineKey`
(without the ONNX Runtime part) and in the same cache root, to check on the device that
TensorRT takes the model (parser, QDQ INT8) and for tools outside GeoEdge (``trtexec
--loadEngine``, DeepStream). Precision as the station's (:func:`tensorrt_precision`): an
FP32 model is built with FP16 on a fast-FP16 GPU unless ``precision = "fp32"``; an INT8
model must pass :func:`~export.convert.quantize.check_tensorrt_int8`.

Builder calls, per TensorRT release (JetPack 5 / 6.0 ship 8.5 / 8.6, JetPack 6.1+ 10.x):

- TensorRT 8.x: ``create_network`` with the ``EXPLICIT_BATCH`` flag (ONNX networks need
  it); ``FP16`` / ``INT8`` builder flags (``INT8`` with a QDQ model: explicit quantisation,
  no calibrator).
- TensorRT 10: explicit batch is implied (no flag). INT8 is built as a strongly typed
  network (``STRONGLY_TYPED``): the QDQ nodes set the INT8 tensors and every other tensor
  keeps the ONNX's type; such a network takes no ``FP16``/``INT8`` builder flags. FP16 is
  built weakly typed with the ``FP16`` flag (from the FP32 or the FP16 ONNX), as ONNX
  Runtime's provider builds it.
- Both: a timing cache read from and written back to ``timing.cache`` in the machine's
  timing folder (:meth:`~edge.models.engine_cache.EngineKey.timing_folder`); a workspace
  pool limit; one optimisation profile, batch 1 (min, opt) to
  ``max_batch``.

Where neither ``tensorrt`` imports nor ``trtexec`` is on PATH the build fails with one line.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from edge.errors import ModelError
from edge.models.engine_cache import (
    TIMING_CACHE_FILE,
    EngineKey,
    Gpu,
    cuda_gpu,
    decode_infer_lib_version,
)
from edge.models.manifest import Manifest, load_manifest
from edge.models.runtime import TRT_MAX_BATCH, tensorrt_precision
from export.convert.quantize import check_tensorrt_int8

log = logging.getLogger(__name__)

ABSENT = (
    "TensorRT is not available on this machine (no 'tensorrt' Python module, no trtexec "
    "on PATH): build the engine on the target device (JetPack installs both)"
)
NO_GPU = "no CUDA GPU found (libcuda): TensorRT engines are built on the target device"
#: The engine file in its key's folder.
ENGINE_FILE = "model.engine"


@dataclass(frozen=True)
class BuildPlan:
    """How one engine is built: the precision, the network flags and the builder flags.

    ``strongly_typed`` networks (TensorRT 10 INT8) take no precision flags.
    """

    precision: str
    explicit_batch_flag: bool
    strongly_typed: bool
    fp16_flag: bool
    int8_flag: bool


def build_plan(trt_major: int, precision: str, fast_fp16: bool) -> BuildPlan:
    """The network and builder flags for TensorRT ``trt_major`` building at ``precision``
    (``fp32``, ``fp16``, ``int8``; see the module docstring)."""
    if trt_major >= 10 and precision == "int8":
        return BuildPlan(precision, False, True, False, False)
    return BuildPlan(
        precision,
        explicit_batch_flag=trt_major < 10,
        strongly_typed=False,
        fp16_flag=precision == "fp16" or (precision == "int8" and fast_fp16),
        int8_flag=precision == "int8",
    )


def major_version(version: str) -> int:
    """``"8.6.1"`` -> 8; ModelError for a version that does not start with a number."""
    found = re.match(r"\d+", version)
    if found is None:
        raise ModelError(f"cannot read the TensorRT version {version!r}")
    return int(found.group())


def _shape(manifest: Manifest, batch: int) -> tuple[int, ...]:
    return (batch, *manifest.sample_shape())


def build_engine(
    onnx_path: Path,
    cache_dir: Path | None = None,
    max_batch: int = TRT_MAX_BATCH,
    workspace_mb: int = 1024,
    precision: str = "auto",
    gpu: Gpu | None = None,
) -> Path:
    """The engine for ``onnx_path`` on this GPU (``gpu``, default the CUDA driver's first),
    built if its key's folder has none; ``precision`` is the configured one (``auto``,
    ``fp32``, ``fp16``, ``int8``). Raises :class:`ModelError` (one line) when TensorRT or
    the GPU is absent, the model is INT8 but not TensorRT's, or the build fails.
    """
    onnx_path = Path(onnx_path)
    manifest = load_manifest(onnx_path)
    if manifest.precision == "int8":  # checked first: this needs no TensorRT
        check_tensorrt_int8(onnx_path)
    try:
        import tensorrt as trt
    except ImportError:
        trt = None
    trtexec = shutil.which("trtexec") or ""
    if trt is None and not trtexec:
        raise ModelError(ABSENT)
    gpu = gpu or cuda_gpu()
    if gpu is None:
        raise ModelError(NO_GPU)
    version = str(trt.__version__) if trt is not None else _trtexec_version(trtexec)
    built = tensorrt_precision(manifest, precision, gpu)
    plan = build_plan(major_version(version), built, gpu.fast_fp16)
    key = EngineKey(manifest.sha256, version, None, gpu.name, gpu.sm, built)
    root = Path(cache_dir) if cache_dir else None
    folder = key.folder(onnx_path.name, root)
    target = folder / ENGINE_FILE
    if target.is_file():
        log.info("engine cached: %s", target)
        return target
    key.write(folder)
    partial = target.with_name(target.name + ".partial")
    timing = key.timing_folder(root) / TIMING_CACHE_FILE
    timing.parent.mkdir(parents=True, exist_ok=True)
    if trt is not None:
        _build_python(trt, onnx_path, manifest, plan, partial, timing, max_batch, workspace_mb)
    else:
        _build_trtexec(trtexec, onnx_path, manifest, plan, partial, timing, max_batch, workspace_mb)
    partial.replace(target)
    log.info("engine built (%s): %s", built, target)
    return target


def _trtexec_version(trtexec: str) -> str:
    out = subprocess.run([trtexec, "--help"], capture_output=True, text=True, check=False)
    found = re.search(r"TensorRT version:?\s*v?(\d+(?:\.\d+)*)", out.stdout + out.stderr)
    found = found or re.search(r"\[TensorRT v(\d+)\]", out.stdout + out.stderr)
    if found is None:
        raise ModelError(f"cannot tell the TensorRT version of {trtexec}")
    text = found.group(1)
    return text if "." in text else decode_infer_lib_version(int(text))


def _build_python(
    trt: ModuleType,
    onnx_path: Path,
    manifest: Manifest,
    plan: BuildPlan,
    out: Path,
    timing: Path,
    max_batch: int,
    workspace_mb: int,
) -> None:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if plan.explicit_batch_flag:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if plan.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if plan.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if plan.int8_flag:
        config.set_flag(trt.BuilderFlag.INT8)  # explicit (QDQ) quantisation: no calibrator
    cache = config.create_timing_cache(timing.read_bytes() if timing.is_file() else b"")
    config.set_timing_cache(cache, False)
    profile = builder.create_optimization_profile()
    one = _shape(manifest, 1)
    profile.set_shape(manifest.input_name, one, one, _shape(manifest, max_batch))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise ModelError(f"TensorRT failed to build an engine from {onnx_path.name}")
    out.write_bytes(bytes(engine))
    timing.write_bytes(bytes(config.get_timing_cache().serialize()))


def _build_trtexec(
    trtexec: str,
    onnx_path: Path,
    manifest: Manifest,
    plan: BuildPlan,
    out: Path,
    timing: Path,
    max_batch: int,
    workspace_mb: int,
) -> None:
    def dims(batch: int) -> str:
        return f"{manifest.input_name}:" + "x".join(str(d) for d in _shape(manifest, batch))

    cmd = [
        trtexec,
        f"--onnx={onnx_path}",
        f"--saveEngine={out}",
        f"--minShapes={dims(1)}",
        f"--optShapes={dims(1)}",
        f"--maxShapes={dims(max_batch)}",
        f"--memPoolSize=workspace:{workspace_mb}M",
        f"--timingCacheFile={timing}",
    ]
    cmd += ["--stronglyTyped"] if plan.strongly_typed else []
    cmd += ["--fp16"] if plan.fp16_flag else []
    cmd += ["--int8"] if plan.int8_flag else []
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not out.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelError(f"trtexec failed for {onnx_path.name}: {tail[0]}")
