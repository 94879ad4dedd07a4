"""On-device model runtime: ONNX Runtime sessions on verified models.

A model is an ``.onnx`` file with its manifest beside it (:mod:`edge.models.manifest`);
:class:`OnnxModel` refuses a file whose sha256 differs from the manifest.
Execution providers are tried in the configured order (TensorRT EP, CUDA EP, CPU);
a provider this ONNX Runtime build lacks is skipped with one log line.

Precision variants of a model sit side by side: ``unet.onnx`` (FP32),
``unet.int8.onnx``, ``unet.fp16.onnx``, each with its own manifest.
:func:`resolve_model` picks one; ``"auto"`` takes the fastest variant whose
accuracy gate passed on this kind of device, else FP32.

On a GPU the station runs TensorRT through ONNX Runtime's TensorRT execution provider
(:func:`tensorrt_options`): engines cached per :class:`~edge.models.engine_cache.EngineKey`
(model sha256, TensorRT, ONNX Runtime, GPU and compute capability, precision), a timing
cache per machine; an FP32 model is built with FP16 enabled on a GPU with fast FP16
unless ``precision = "fp32"``; an INT8 model goes to TensorRT only when it is symmetric
signed QDQ (:attr:`~edge.models.manifest.Quantisation.tensorrt_ready`).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge.errors import InputError, ModelError
from edge.models.engine_cache import EngineKey, Gpu, cuda_gpu, tensorrt_version
from edge.models.manifest import PRECISIONS, Manifest, load_manifest
from edge.station.sd_notify import Notifier, extending_timeout

log = logging.getLogger(__name__)

#: Where the shipped default models live: ``edge/models/<kind>[.int8|.fp16].onnx``.
MODELS_DIR = Path(__file__).parent
#: Model kinds shipped with the package.
KINDS = ("unet", "detector")
DEFAULT_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CPUExecutionProvider",
)
GPU_PROVIDERS = frozenset({"TensorrtExecutionProvider", "CUDAExecutionProvider"})
TRT = "TensorrtExecutionProvider"
#: Largest batch of a TensorRT engine's optimisation profile (batch 1 to this); a larger
#: batch is run in pieces. Without a fixed profile ONNX Runtime would rebuild the engine
#: (minutes on a Jetson) each time a batch exceeded the largest seen so far.
TRT_MAX_BATCH = 8


def available_providers(wanted: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The providers of ``wanted`` (in that order) that this ONNX Runtime build has.

    Each missing one is logged once; an unknown name is a :class:`ModelError`.
    """
    wanted = list(wanted or DEFAULT_PROVIDERS)
    have = set(ort.get_available_providers())
    known = set(ort.get_all_providers())
    chosen = []
    for name in wanted:
        if name not in known:
            raise ModelError(f"unknown ONNX Runtime provider {name!r} (known: {sorted(known)})")
        if name in have:
            chosen.append(name)
        else:
            log.info("provider %s is not available in this ONNX Runtime build: skipped", name)
    if not chosen:
        raise ModelError(f"none of the providers {wanted} is available (have {sorted(have)})")
    return chosen


def device_kind(providers: list[str] | tuple[str, ...] | None = None) -> str:
    """``"gpu"`` when a GPU provider among ``providers`` is available here, else ``"cpu"``."""
    have = set(ort.get_available_providers())
    wanted = set(providers or DEFAULT_PROVIDERS)
    return "gpu" if have & wanted & GPU_PROVIDERS else "cpu"


#: How often the TensorRT engine build asks systemd for more time, s.
TRT_BUILD_EXTEND_STEP_S = 30.0


def trt_engine_build(
    providers: list[str], engine_dir: Path, model_name: str | None = None
) -> AbstractContextManager[None]:
    """A block that may build a TensorRT engine: keeps systemd's start timeout and watchdog
    extended (``EXTEND_TIMEOUT_USEC`` every 30 s) while the TensorRT EP is among
    ``providers`` and ``engine_dir`` holds no engine yet; otherwise does nothing.
    With ``model_name``, says in one log line that the build is starting.
    """
    if "TensorrtExecutionProvider" not in providers or any(engine_dir.glob("*.engine")):
        return nullcontext()
    if model_name:
        log.info(
            "building the TensorRT engine for %s; this takes minutes on first start", model_name
        )
    return extending_timeout(Notifier.from_environment(), TRT_BUILD_EXTEND_STEP_S)


def tensorrt_precision(manifest: Manifest, precision: str, gpu: Gpu) -> str:
    """What TensorRT builds ``manifest``'s model at: ``int8`` for an INT8 (QDQ) file, ``fp16``
    for an FP16 file, and for an FP32 file ``fp16`` when ``precision`` (the configured one)
    is ``auto`` or ``fp16`` and the GPU has fast FP16, else ``fp32``."""
    if manifest.precision in ("int8", "fp16"):
        return manifest.precision
    return "fp16" if precision in ("auto", "fp16") and gpu.fast_fp16 else "fp32"


def tensorrt_options(
    model_path: Path,
    manifest: Manifest,
    precision: str,
    gpu: Gpu,
    trt_version: str,
    ort_version: str,
) -> tuple[EngineKey, dict[str, object]]:
    """The engine key and ONNX Runtime TensorRT provider options for one model.

    The engines live in the key's folder, so any change of model, TensorRT, ONNX Runtime,
    GPU or precision builds a new engine; the timing cache in the machine's timing folder
    (shared by the models, so a rebuild after a model update is faster; ONNX Runtime before
    1.17 has no ``trt_timing_cache_path`` and keeps it with the engines). A dynamic batch
    axis gets an explicit profile of 1 to :data:`TRT_MAX_BATCH` (the engine is then built
    when the session is created). INT8 (a QDQ model, explicit quantisation) also enables
    FP16 on a fast-FP16 GPU for the layers left in float. Raises :class:`ModelError` for an
    INT8 model that is not symmetric signed QDQ.
    """
    q = manifest.quantisation
    if manifest.precision == "int8" and not (q and q.tensorrt_ready):
        recipe = "no quantisation record"
        if q:
            kind = "symmetric" if q.symmetric else "asymmetric"
            recipe = f"{q.format} {q.activation_type}/{q.weight_type} {kind}"
        raise ModelError(
            f"{model_path.name} is not symmetric signed-INT8 QDQ ({recipe}): TensorRT cannot "
            "take it; re-quantise with 'geoedge export quantize --format qdq'"
        )
    built = tensorrt_precision(manifest, precision, gpu)
    key = EngineKey(manifest.sha256, trt_version, ort_version, gpu.name, gpu.sm, built)
    folder = key.folder(model_path.name)
    options: dict[str, object] = {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(folder),
        "trt_timing_cache_enable": True,
        "trt_fp16_enable": built == "fp16" or (built == "int8" and gpu.fast_fp16),
        "trt_int8_enable": built == "int8",
    }
    if _release(ort_version) >= (1, 17):
        options["trt_timing_cache_path"] = str(key.timing_folder())
    if manifest.input_shape[0] is None:  # dynamic batch: one profile, 1 .. TRT_MAX_BATCH
        one, most = (
            f"{manifest.input_name}:" + "x".join(str(d) for d in (batch, *manifest.sample_shape()))
            for batch in (1, TRT_MAX_BATCH)
        )
        options |= {
            "trt_profile_min_shapes": one,
            "trt_profile_opt_shapes": one,
            "trt_profile_max_shapes": most,
        }
    return key, options


def _release(version: str) -> tuple[int, ...]:
    """``"1.20.1"`` -> ``(1, 20, 1)``; stops at the first part that is not a number."""
    parts = []
    for part in version.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def _tensorrt_entry(
    model_path: Path, manifest: Manifest, precision: str
) -> tuple[Path, tuple[str, dict[str, object]]] | None:
    """The engine folder and the provider entry for TensorRT, or None (with one log line
    saying why) when this model cannot go to TensorRT here."""
    gpu = cuda_gpu()
    version = tensorrt_version()
    if gpu is None or version is None:
        missing = "no CUDA GPU (libcuda)" if gpu is None else "no TensorRT library (libnvinfer)"
        log.info("TensorRT skipped for %s: %s", model_path.name, missing)
        return None
    try:
        key, options = tensorrt_options(
            model_path, manifest, precision, gpu, version, ort.__version__
        )
    except ModelError as exc:
        log.warning("TensorRT skipped: %s", exc)
        return None
    folder = key.folder(model_path.name)
    key.write(folder)
    if "trt_timing_cache_path" in options:
        key.timing_folder().mkdir(parents=True, exist_ok=True)
    log.info("TensorRT engine cache for %s: %s", model_path.name, folder)
    return folder, (TRT, options)


class OnnxModel:
    """A verified model in an ONNX Runtime session.

    ``providers`` lists execution providers in order of preference (default TensorRT,
    CUDA, CPU); ``threads`` is the intra-op thread count; ``precision`` the configured
    precision (``auto``, ``fp32``, ``fp16``, ``int8``), which decides whether TensorRT builds
    an FP32 model with FP16 enabled (:func:`tensorrt_precision`). ``.providers`` holds the
    providers the session actually uses; ``.engine_dir`` the TensorRT engine folder, or None;
    ``.max_batch`` the largest batch one session run takes (:data:`TRT_MAX_BATCH` on
    TensorRT with a dynamic batch axis, else None: any).
    """

    def __init__(
        self,
        model_path: Path | str,
        providers: list[str] | None = None,
        threads: int = 2,
        precision: str = "auto",
    ) -> None:
        self.path = Path(model_path)
        self.manifest = load_manifest(self.path)
        chosen = available_providers(providers)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        entries: list[str | tuple[str, dict[str, object]]] = list(chosen)
        self.engine_dir: Path | None = None
        if TRT in chosen:
            trt = _tensorrt_entry(self.path, self.manifest, precision)
            if trt is None:
                chosen.remove(TRT)
                entries.remove(TRT)
                if not chosen:
                    raise ModelError(
                        f"cannot load model {self.path}: TensorRT was its only provider"
                    )
            else:
                self.engine_dir, entries[chosen.index(TRT)] = trt
        engine_dir = self.engine_dir or self.path.parent
        try:
            with trt_engine_build(chosen, engine_dir, self.path.name):
                self._session = ort.InferenceSession(
                    str(self.path), sess_options=options, providers=entries
                )
        except Exception as exc:  # ORT raises its own exception types per failure
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load model {self.path}: {first}") from None
        self.providers: list[str] = self._session.get_providers()
        # With a dynamic input shape the TensorRT EP builds its engine at the first run.
        self._first_run_engine_dir = self.engine_dir if TRT in self.providers else None
        dynamic = self.manifest.input_shape[0] is None
        self.max_batch = TRT_MAX_BATCH if TRT in self.providers and dynamic else None
        self.input_name = self._session.get_inputs()[0].name
        self.output_names = [o.name for o in self._session.get_outputs()]
        if self.input_name != self.manifest.input_name:
            raise ModelError(
                f"model {self.path} input {self.input_name!r} differs from its manifest "
                f"({self.manifest.input_name!r})"
            )
        log.info(
            "model %s (%s, %s) on %s",
            self.path.name,
            self.manifest.task,
            self.manifest.precision,
            ", ".join(self.providers),
        )

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input (height, width) in pixels."""
        h, w = self.manifest.input_shape[-2:]
        return int(h or 0), int(w or 0)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Run a float32 ``N x C x H x W`` batch, already normalised; returns all outputs.

        A batch larger than ``max_batch`` runs in pieces, its outputs joined along the batch.
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        expected = self.manifest.input_shape
        if x.ndim != len(expected) or any(
            e is not None and e != s for e, s in zip(expected, x.shape, strict=True)
        ):
            raise InputError(
                f"model {self.path.name} expects input shape {expected} (None = any), "
                f"got {list(x.shape)}"
            )
        if self.max_batch is not None and len(x) > self.max_batch:
            pieces = [self.run(x[i : i + self.max_batch]) for i in range(0, len(x), self.max_batch)]
            return [np.concatenate(outs) for outs in zip(*pieces, strict=True)]
        if self._first_run_engine_dir is None:
            return self._session.run(None, {self.input_name: x})
        with trt_engine_build(self.providers, self._first_run_engine_dir):
            outputs = self._session.run(None, {self.input_name: x})
        self._first_run_engine_dir = None
        return outputs


def variant_path(base: Path, precision: str) -> Path:
    """``dir/unet.onnx`` -> ``dir/unet.int8.onnx`` (FP32 is the base itself)."""
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r} (expected one of {list(PRECISIONS)})")
    if precision == "fp32":
        return base
    return base.with_name(f"{base.name[: -len('.onnx')]}.{precision}.onnx")


def _base_path(spec: str | Path, kind: str) -> Path:
    if spec == "default":
        if kind not in KINDS:
            raise ModelError(f"unknown model kind {kind!r} (expected one of {list(KINDS)})")
        return MODELS_DIR / f"{kind}.onnx"
    path = Path(spec).expanduser()
    if path.suffix != ".onnx":
        raise ModelError(f"model {spec!r} is neither 'default' nor a path to an .onnx file")
    return path


def resolve_model(
    spec: str | Path,
    kind: str,
    precision: str = "auto",
    providers: list[str] | None = None,
) -> Path:
    """The model file for ``spec`` (``"default"`` or a path to the FP32 ``.onnx``).

    ``precision`` ``"fp32"``/``"int8"``/``"fp16"`` names the variant; ``"auto"`` chooses,
    among the variants present, the one with the largest measured speed-up over FP32
    whose accuracy gate passed on this kind of device (``"cpu"`` or ``"gpu"``, from
    ``providers``); FP32 when none qualifies. With the TensorRT provider available, an INT8
    variant qualifies only when it is symmetric signed QDQ. A path that already names a variant
    (``x.int8.onnx``) is used as given. Raises :class:`ModelError` when the file is absent.
    """
    base = _base_path(spec, kind)
    named = base.name.split(".")
    if len(named) > 2 and named[-2] in PRECISIONS:
        chosen = base
    elif precision == "auto":
        trt = TRT in (providers or DEFAULT_PROVIDERS) and TRT in ort.get_available_providers()
        chosen = _fastest_passing(base, device_kind(providers), trt)
    else:
        chosen = variant_path(base, precision)
    if not chosen.is_file():
        hint = " (the shipped models are built by 'geoedge export')" if spec == "default" else ""
        raise ModelError(f"{kind} model not found: {chosen}{hint}")
    return chosen


def _fastest_passing(base: Path, device: str, tensorrt: bool) -> Path:
    best, best_speedup = base, 1.0
    for precision in PRECISIONS[1:]:
        path = variant_path(base, precision)
        if not path.is_file():
            continue
        try:
            manifest = load_manifest(path)
        except ModelError as exc:
            log.warning("skipping %s: %s", path.name, exc)
            continue
        q = manifest.quantisation
        if tensorrt and manifest.precision == "int8" and not (q and q.tensorrt_ready):
            log.info("skipping %s: not symmetric signed-INT8 QDQ (TensorRT)", path.name)
            continue
        gate = manifest.accuracy_gate
        if gate is None or not gate.passed or gate.device != device:
            log.info("skipping %s: no passed accuracy gate on %s", path.name, device)
            continue
        speedup = gate.speedup
        if speedup is not None and speedup > best_speedup:
            best, best_speedup = path, speedup
    if best != base:
        log.info(
            "auto precision: %s (%.2fx faster than FP32 on %s)", best.name, best_speedup, device
        )
    return best
