"""Model manifest: the description every exported model carries.

A model ``<name>.onnx`` has its manifest beside it as ``<name>.manifest.json``
(``unet.int8.onnx`` -> ``unet.int8.manifest.json``). The sidecar JSON is the
authority: it holds the sha256 of the ``.onnx`` file and the accuracy-gate result,
both of which are only known after the file is final. The same description,
minus those two, is embedded in the ONNX file as the ``metadata_props`` entry
:data:`METADATA_KEY`, so a model that lost its sidecar still says what it is.

Conventions recorded here, once:

- input layout is ``NCHW`` float32; ``input_shape`` has ``None`` for the dynamic
  batch axis, e.g. ``[None, 3, 256, 320]``; ``channel_order`` names the channels
  (``"RGB"``, ``"BGR"`` or ``"GRAY"``);
- normalisation maps a raw sample ``v`` (pixel 0..255 or B-scan amplitude) to
  ``(v * scale - mean[c]) / std[c]`` per channel ``c``;
- ``resize`` policy: ``"resize"`` scales the whole image to the input size,
  ``"tile"`` cuts windows of ``tile`` = ``[height, width]`` pixels overlapping by
  ``overlap`` pixels;
- latencies are milliseconds per batch of one at the input size.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edge.errors import ModelError

if TYPE_CHECKING:
    from onnx import ModelProto

#: Key of the manifest JSON in the ONNX file's ``metadata_props``.
METADATA_KEY = "geoedge.manifest"
MANIFEST_SCHEMA = "geoedge.manifest/1"

Task = Literal["segmentation", "detection"]
Precision = Literal["fp32", "int8", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "int8", "fp16")


@dataclass
class Normalisation:
    """``(v * scale - mean[c]) / std[c]`` per channel; ``note`` says anything more.

    ``window``: detectors only, the per-window normalisation applied before this one
    (:func:`edge.gpr.detector.normalise_window` mode; manifests without it: "standardise").
    """

    scale: float = 1.0 / 255.0
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])
    note: str = ""
    window: str = "standardise"

    def apply(self, chw: np.ndarray) -> np.ndarray:
        """Normalise a ``C x H x W`` (or ``N x C x H x W``) array; returns float32."""
        x = np.asarray(chw, dtype=np.float32) * np.float32(self.scale)
        shape = (-1, 1, 1)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.std, dtype=np.float32).reshape(shape)
        return (x - mean) / std


@dataclass
class ResizePolicy:
    """How an input larger than the model input is fed: whole-image resize or tiles (pixels)."""

    mode: Literal["resize", "tile"] = "resize"
    tile: list[int] | None = None
    overlap: int = 0


@dataclass
class OutputSpec:
    """One model output: its ONNX name and what it means (shape, units, activation)."""

    name: str
    meaning: str


@dataclass
class Quantisation:
    """How an INT8 model was made and what was measured to choose its variant.

    ``measurements`` maps a variant (``"qdq_u8s8"``, ``"qdq_s8s8"``, ``"qoperator_u8s8"``,
    ``"qdq_symmetric"``, ``"fp32"``) to its latency in ms on ``measured_on`` with ``threads``
    intra-op threads. ``symmetric``: activation and weight ranges symmetric about zero, so
    every zero point is 0 (what TensorRT needs, with signed INT8 and the QDQ format).
    """

    format: str = "QDQ"
    activation_type: str = "QUInt8"
    weight_type: str = "QInt8"
    per_channel: bool = True
    symmetric: bool = False
    calibration_method: str = "MinMax"
    calibration_samples: int = 0
    calibration_source: str = ""
    measurements: dict[str, float] = field(default_factory=dict)
    measured_on: str = ""
    threads: int = 2
    chosen: str = ""

    @property
    def tensorrt_ready(self) -> bool:
        """QDQ, signed INT8 activations and weights, symmetric (zero point 0): what TensorRT's
        explicit quantisation takes."""
        return (
            self.format == "QDQ"
            and self.activation_type == "QInt8"
            and self.weight_type == "QInt8"
            and self.symmetric
        )


@dataclass
class AccuracyGate:
    """Result of ``geoedge export verify``: this precision against FP32 on held-out data.

    ``device`` is the kind of device the comparison and the latencies were measured on
    (``"cpu"`` or ``"gpu"``); ``metrics`` / ``reference_metrics`` hold the task's metrics
    (``iou`` for segmentation, ``map50`` and ``recall`` for detection) of this model and of
    FP32; ``max_drop`` the allowed drop per metric. ``latency_ms`` and
    ``reference_latency_ms`` are measured in the same run, so their ratio is meaningful.
    """

    passed: bool
    device: str
    device_name: str
    reference: str
    dataset: str
    samples: int
    metrics: dict[str, float]
    reference_metrics: dict[str, float]
    max_drop: dict[str, float]
    latency_ms: float | None = None
    reference_latency_ms: float | None = None
    checked_utc: str = ""

    @property
    def speedup(self) -> float | None:
        """FP32 latency / this model's latency, or None when not measured."""
        if not self.latency_ms or not self.reference_latency_ms:
            return None
        return self.reference_latency_ms / self.latency_ms


@dataclass
class Manifest:
    """Everything a runtime needs to feed a model and trust its output."""

    name: str
    task: Task
    input_name: str
    input_shape: list[int | None]
    outputs: list[OutputSpec]
    classes: list[str]
    precision: Precision = "fp32"
    sha256: str = ""
    layout: str = "NCHW"
    channel_order: str = "RGB"
    normalisation: Normalisation = field(default_factory=Normalisation)
    resize: ResizePolicy = field(default_factory=ResizePolicy)
    quantisation: Quantisation | None = None
    training_data: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    export_tools: dict[str, str] = field(default_factory=dict)
    created_utc: str = ""
    accuracy_gate: AccuracyGate | None = None
    schema: str = MANIFEST_SCHEMA

    @property
    def published(self) -> bool:
        """FP32 is always published; another precision only once its accuracy gate passed."""
        return self.precision == "fp32" or bool(self.accuracy_gate and self.accuracy_gate.passed)

    def sample_shape(self) -> tuple[int, ...]:
        """``input_shape`` without the batch axis, e.g. ``(3, 256, 320)``.

        Raises :class:`ModelError` when an axis other than the batch axis is dynamic.
        """
        shape = self.input_shape[1:]
        fixed = tuple(int(v) for v in shape if v is not None)
        if len(fixed) != len(shape):
            raise ModelError(
                f"model {self.name}: input_shape {self.input_shape} has a dynamic axis "
                "after the batch axis"
            )
        return fixed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Build from parsed JSON; unknown keys are refused (a typo must not pass silently)."""
        data = dict(data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown manifest keys {unknown}")
        data["outputs"] = [OutputSpec(**o) for o in data.get("outputs", [])]
        data["normalisation"] = Normalisation(**data.get("normalisation", {}))
        data["resize"] = ResizePolicy(**data.get("resize", {}))
        if data.get("quantisation") is not None:
            data["quantisation"] = Quantisation(**data["quantisation"])
        if data.get("accuracy_gate") is not None:
            data["accuracy_gate"] = AccuracyGate(**data["accuracy_gate"])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def save(self, path: Path) -> None:
        """Write the JSON to ``path`` (write-then-rename, so a reader never sees half a file)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read a manifest JSON file; a malformed file raises :class:`ModelError`."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ModelError(f"manifest not found: {path}") from None
        except (ValueError, TypeError) as exc:
            raise ModelError(f"manifest {path} is malformed: {exc}") from None


def manifest_path(model_path: Path) -> Path:
    """``dir/<name>.onnx`` -> ``dir/<name>.manifest.json``."""
    model_path = Path(model_path)
    stem = (
        model_path.name[: -len(".onnx")] if model_path.name.endswith(".onnx") else model_path.stem
    )
    return model_path.with_name(f"{stem}.manifest.json")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(model_path: Path, verify: bool = True) -> Manifest:
    """The manifest beside ``model_path``; with ``verify`` the file's sha256 must match it.

    Raises :class:`ModelError` (one line) when the model or its manifest is missing,
    the manifest is malformed, or the hash differs.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError(f"model not found: {model_path}")
    sidecar = manifest_path(model_path)
    if not sidecar.is_file():
        raise ModelError(
            f"model {model_path} has no manifest {sidecar.name}: "
            "export it with 'geoedge export onnx' or restore the manifest"
        )
    manifest = Manifest.load(sidecar)
    if verify:
        actual = file_sha256(model_path)
        if actual != manifest.sha256:
            raise ModelError(
                f"model {model_path} sha256 {actual[:12]}... does not match its manifest "
                f"{sidecar.name} ({manifest.sha256[:12] or 'empty'}...): the file was changed "
                "or replaced; re-export it or restore the matching pair"
            )
    return manifest


def embedded_manifest(model_path: Path) -> Manifest | None:
    """The manifest embedded in the ONNX ``metadata_props``, or None (needs ``onnx``)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return Manifest.from_dict(json.loads(prop.value))
    return None


def embed_manifest(model: ModelProto, manifest: Manifest) -> None:
    """Put ``manifest`` (without hash and gate, unknown until the file is final) into an
    ``onnx.ModelProto``'s ``metadata_props``, replacing an earlier copy."""
    data = manifest.to_dict()
    data["sha256"] = ""
    data["accuracy_gate"] = None
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    prop = model.metadata_props.add()
    prop.key = METADATA_KEY
    prop.value = json.dumps(data)


def write_model(model: ModelProto, model_path: Path, manifest: Manifest) -> Manifest:
    """Save an ``onnx.ModelProto`` with the manifest embedded, then the sidecar with its hash.

    Returns the manifest with ``sha256`` filled in.
    """
    import onnx

    model_path = Path(model_path)
    embed_manifest(model, manifest)
    onnx.save(model, str(model_path))
    manifest.sha256 = file_sha256(model_path)
    manifest.save(manifest_path(model_path))
    return manifest
