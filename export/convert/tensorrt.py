"""FP16 or QDQ-INT8 ONNX -> TensorRT engine, cached per model, TensorRT version, device
and precision (engines do not move between TensorRT versions or GPUs).

The engine is built with the TensorRT Python API when ``tensorrt`` imports, else with
``trtexec`` when it is on PATH; where neither exists the build fails with one line
(the daemon then runs the ONNX model on ONNX Runtime's providers instead). The batch
axis gets an optimisation profile of 1 (min, opt) to ``max_batch``.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

from edge.errors import ModelError
from edge.models.manifest import Manifest, load_manifest
from edge.models.runtime import trt_cache_dir

log = logging.getLogger(__name__)

ABSENT = (
    "TensorRT is not available on this machine (no 'tensorrt' Python module, no trtexec "
    "on PATH): build the engine on the target device, or run the ONNX model with "
    "ONNX Runtime providers"
)


def engine_cache_key(sha256: str, trt_version: str, device: str, precision: str) -> str:
    """File-name-safe key, e.g. ``3f2a..-trt10.3.0-nvidia-jetson-orin-nano-fp16``.

    All four parts matter: a different model, TensorRT release, GPU or precision needs
    its own engine.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ModelError(f"model sha256 {sha256!r} is not 64 hex digits")
    slug = re.sub(r"[^a-z0-9.]+", "-", device.lower()).strip("-") or "unknown-gpu"
    return f"{sha256[:16]}-trt{trt_version}-{slug}-{precision}"


def engine_path(manifest: Manifest, trt_version: str, device: str, cache_dir: Path) -> Path:
    """Where the engine for this model, TensorRT version and device is cached."""
    key = engine_cache_key(manifest.sha256, trt_version, device, manifest.precision)
    return Path(cache_dir) / f"{manifest.name}-{key}.engine"


def gpu_name() -> str:
    """The GPU's name: the Jetson board model, or the first ``nvidia-smi`` GPU."""
    board = Path("/proc/device-tree/model")
    if board.is_file():
        return board.read_text(errors="replace").strip("\x00\n ")
    if shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    return "unknown-gpu"


def _shape(manifest: Manifest, batch: int) -> tuple[int, ...]:
    return (batch, *manifest.sample_shape())


def build_engine(
    onnx_path: Path,
    cache_dir: Path | None = None,
    max_batch: int = 8,
    workspace_mb: int = 1024,
) -> Path:
    """The cached engine for ``onnx_path`` (an ``fp16`` or QDQ ``int8`` model), built if absent.

    Raises :class:`ModelError` when TensorRT is absent or the build fails.
    """
    try:
        import tensorrt as trt
    except ImportError:
        trt = None
    trtexec = shutil.which("trtexec") or ""
    if trt is None and not trtexec:
        raise ModelError(ABSENT)
    onnx_path = Path(onnx_path)
    manifest = load_manifest(onnx_path)
    if manifest.precision not in ("fp16", "int8"):
        raise ModelError(
            f"{onnx_path.name} is {manifest.precision}: build engines from the .fp16.onnx or "
            "the QDQ .int8.onnx variant"
        )
    cache_dir = Path(cache_dir) if cache_dir else trt_cache_dir()
    version = trt.__version__ if trt is not None else _trtexec_version(trtexec)
    target = engine_path(manifest, version, gpu_name(), cache_dir)
    if target.is_file():
        log.info("engine cached: %s", target)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    if trt is not None:
        _build_python(trt, onnx_path, manifest, partial, max_batch, workspace_mb)
    else:
        _build_trtexec(trtexec, onnx_path, manifest, partial, max_batch, workspace_mb)
    partial.replace(target)
    log.info("engine built: %s", target)
    return target


def _trtexec_version(trtexec: str) -> str:
    out = subprocess.run([trtexec, "--help"], capture_output=True, text=True, check=False)
    found = re.search(r"TensorRT version:?\s*v?(\d+(?:\.\d+)*)", out.stdout + out.stderr)
    found = found or re.search(r"\[TensorRT v(\d+)\]", out.stdout + out.stderr)
    return found.group(1) if found else "unknown"


def _build_python(
    trt: ModuleType,
    onnx_path: Path,
    manifest: Manifest,
    out: Path,
    max_batch: int,
    workspace_mb: int,
) -> None:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    config.set_flag(trt.BuilderFlag.FP16)
    if manifest.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # explicit (QDQ) quantisation
    profile = builder.create_optimization_profile()
    one = _shape(manifest, 1)
    profile.set_shape(manifest.input_name, one, one, _shape(manifest, max_batch))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise ModelError(f"TensorRT failed to build an engine from {onnx_path.name}")
    out.write_bytes(bytes(engine))


def _build_trtexec(
    trtexec: str, onnx_path: Path, manifest: Manifest, out: Path, max_batch: int, workspace_mb: int
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
        "--fp16",
    ]
    if manifest.precision == "int8":
        cmd.append("--int8")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not out.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelError(f"trtexec failed for {onnx_path.name}: {tail[0]}")
