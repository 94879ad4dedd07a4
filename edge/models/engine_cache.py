"""Where TensorRT engines are cached, and the key that says which machine built them.

A TensorRT engine is only valid for the model bytes, the TensorRT release, the GPU (its
compute capability) and the precision it was built for; an engine built by ONNX Runtime's
TensorRT execution provider also depends on the ONNX Runtime release that partitioned the
graph. :class:`EngineKey` holds all of them and names one folder per key::

    <cache root>/<model file name>/<sha256[:16]>-trt<ver>[-ort<ver>]-<gpu>-sm<XY>-<precision>/

so a JetPack upgrade, another GPU or another precision finds an empty folder and builds a
new engine instead of loading a stale one. Each folder holds a ``key.json`` (the key's
fields, read back by ``geoedge doctor``) and the engine(s). TensorRT's timing cache (the
kernel timings a build measured) is kept per machine, not per model, so that the build
after a model update reuses it::

    <cache root>/timing/trt<ver>[-ort<ver>]-<gpu>-sm<XY>/

The GPU is asked through the CUDA driver (``libcuda``, present on every Jetson and NVIDIA
machine) and the TensorRT release through ``libnvinfer`` (what ONNX Runtime loads) or the
``tensorrt`` Python module; no GPU library is imported where none is installed.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

#: The file in each engine folder that records its key.
KEY_FILE = "key.json"
#: The timing cache file of ``geoedge export tensorrt`` builds in the machine's timing folder
#: (ONNX Runtime names its own there, ``TensorrtExecutionProvider_cache_sm<XY>.timing``).
TIMING_CACHE_FILE = "timing.cache"
#: The folder under the cache root that holds the timing caches.
TIMING_FOLDER = "timing"
#: ``CUdevice_attribute`` values of the CUDA driver API.
_CC_MAJOR, _CC_MINOR = 75, 76


def cache_root() -> Path:
    """TensorRT engine cache: ``$GEOEDGE_TRT_CACHE`` or ``~/.cache/geoedge/tensorrt``."""
    env = os.environ.get("GEOEDGE_TRT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "geoedge" / "tensorrt"


@dataclass(frozen=True)
class Gpu:
    """A CUDA GPU: its name and compute capability ``(major, minor)``."""

    name: str
    compute_capability: tuple[int, int]

    @property
    def sm(self) -> str:
        """``"sm87"`` for compute capability 8.7 (Orin)."""
        return "sm{}{}".format(*self.compute_capability)

    @property
    def fast_fp16(self) -> bool:
        """Whether the GPU runs FP16 at least twice as fast as FP32 (TensorRT's
        ``platform_has_fast_fp16``): compute capability 5.3 (Nano), 6.0, 6.2 (TX2) and every
        one from 7.0 on (Xavier 7.2, Orin 8.7); not 6.1 (consumer Pascal) nor other 5.x."""
        cc = self.compute_capability
        return cc in ((5, 3), (6, 0), (6, 2)) or cc >= (7, 0)


def cuda_gpu(index: int = 0) -> Gpu | None:
    """GPU ``index`` as the CUDA driver reports it, or None without a driver or a GPU."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    device = ctypes.c_int()
    name = ctypes.create_string_buffer(256)
    major, minor = ctypes.c_int(), ctypes.c_int()
    try:
        found = (
            cuda.cuInit(0) == 0
            and cuda.cuDeviceGet(ctypes.byref(device), index) == 0
            and cuda.cuDeviceGetName(name, len(name), device) == 0
            and cuda.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, device) == 0
            and cuda.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, device) == 0
        )
    except AttributeError:  # a library without the driver API
        return None
    if not found:
        return None
    return Gpu(name.value.decode(errors="replace").strip(), (major.value, minor.value))


def decode_infer_lib_version(number: int) -> str:
    """``getInferLibVersion()`` -> ``"8.6.2"`` (8602) or ``"10.3.0"`` (100300).

    TensorRT 8 encodes ``major * 1000 + minor * 100 + patch``; TensorRT 10 changed it to
    ``major * 10000 + minor * 100 + patch``.
    """
    if number >= 100000:
        return f"{number // 10000}.{number // 100 % 100}.{number % 100}"
    return f"{number // 1000}.{number // 100 % 10}.{number % 100}"


def tensorrt_version() -> str | None:
    """The TensorRT release here: ``libnvinfer`` (the library ONNX Runtime's TensorRT
    provider loads), else the ``tensorrt`` Python module; None when neither exists."""
    for soname in ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so"):
        try:
            version = ctypes.CDLL(soname).getInferLibVersion
        except (OSError, AttributeError):
            continue
        version.restype = ctypes.c_int32
        return decode_infer_lib_version(int(version()))
    try:
        module = importlib.import_module("tensorrt")
    except ImportError:
        return None
    return str(module.__version__)


def slug(text: str) -> str:
    """File-name-safe lower-case text: ``"NVIDIA Jetson Orin NX"`` -> ``nvidia-jetson-orin-nx``."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "unknown"


def machine_key(tensorrt: str, onnxruntime: str | None, gpu: str, sm: str) -> str:
    """``trt10.3.0-ort1.20.1-nvidia-jetson-agx-orin-sm87`` (no ``ort`` part for engines
    built through the TensorRT API)."""
    ort = f"-ort{onnxruntime}" if onnxruntime else ""
    return f"trt{tensorrt}{ort}-{slug(gpu)}-{sm}"


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on. ``onnxruntime`` is the ONNX Runtime release for
    engines its TensorRT provider builds, None for engines built by ``geoedge export
    tensorrt`` through the TensorRT API; ``precision`` is what TensorRT builds at
    (``fp32``, ``fp16`` or ``int8``), not the ONNX file's precision."""

    model_sha256: str
    tensorrt: str
    onnxruntime: str | None
    gpu: str
    sm: str
    precision: str

    @property
    def machine(self) -> str:
        """The part that changes with the machine (:func:`machine_key`)."""
        return machine_key(self.tensorrt, self.onnxruntime, self.gpu, self.sm)

    @property
    def folder_name(self) -> str:
        return f"{self.model_sha256[:16]}-{self.machine}-{self.precision}"

    def folder(self, model_name: str, root: Path | None = None) -> Path:
        """This key's folder for the model file ``model_name`` under ``root`` (default
        :func:`cache_root`)."""
        return (root or cache_root()) / model_name / self.folder_name

    def timing_folder(self, root: Path | None = None) -> Path:
        """This machine's timing-cache folder under ``root`` (default :func:`cache_root`)."""
        return (root or cache_root()) / TIMING_FOLDER / self.machine

    def write(self, folder: Path) -> None:
        """Create ``folder`` and record this key in its ``key.json``."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / KEY_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, folder: Path) -> EngineKey | None:
        """The key recorded in ``folder``, or None when it has none or it is unreadable."""
        try:
            return cls(**json.loads((folder / KEY_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None


@dataclass(frozen=True)
class CacheEntry:
    """One engine folder of the cache and whether this machine can use it."""

    folder: Path
    key: EngineKey | None
    engines: int
    matches: bool


def cache_entries(
    tensorrt: str | None, onnxruntime: str | None, gpu: Gpu | None, root: Path | None = None
) -> list[CacheEntry]:
    """Every engine folder under ``root``; ``matches`` when its key's TensorRT, ONNX Runtime
    (for provider-built engines), GPU and compute capability are this machine's."""
    root = root or cache_root()
    entries = []
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        if folder.parent.name == TIMING_FOLDER:
            continue
        key = EngineKey.read(folder)
        matches = (
            key is not None
            and gpu is not None
            and key.tensorrt == tensorrt
            and key.onnxruntime in (None, onnxruntime)
            and key.gpu == gpu.name
            and key.sm == gpu.sm
        )
        engines = sum(1 for _ in folder.glob("*.engine"))
        entries.append(CacheEntry(folder, key, engines, matches))
    return entries
