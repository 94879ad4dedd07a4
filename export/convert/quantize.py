"""FP32 ONNX -> static INT8 ONNX (ONNX Runtime quantisation), variant chosen by measurement.

Weights are quantised per channel to int8. Activations are calibrated (MinMax by
default) on real-looking windows: a directory of images (PNG/JPEG, cut to the model
input by its resize policy) or of ``.npy`` windows. The model is pre-processed with
``quant_pre_process`` (ONNX shape inference, graph optimisation) first.

Variants, each built and timed here on this machine's CPU with the same input and
thread count as the FP32 original:

- ``qdq_u8s8``: QDQ format, activations uint8, weights int8;
- ``qdq_s8s8``: QDQ format, activations int8, weights int8 (ONNX Runtime's default);
- ``qoperator_u8s8``: QOperator format (QLinearConv, ...), activations uint8;
- ``qdq_symmetric``: QDQ format, activations and weights int8 with ranges symmetric about
  zero, so every zero point is 0, biases left in float: what TensorRT's explicit
  quantisation takes.

Formats (``geoedge export quantize --format``): ``qdq`` builds ``qdq_symmetric`` only and
checks the result with :func:`check_tensorrt_int8` (for a GPU with TensorRT); ``cpu`` builds
the first three and keeps the fastest on this CPU. The kept variant is the fastest one whose
accuracy passes against FP32 on the held-out set when one is given
(``export.convert.verify``), else the fastest; every measurement is recorded in the
manifest. The output is ``<name>.int8.onnx`` beside the FP32 model.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.errors import InputError, ModelError
from edge.models.manifest import Manifest, Quantisation, load_manifest, write_model
from edge.models.runtime import variant_path
from edge.station.messages import utc_iso
from export.convert.verify import (
    IMAGE_SUFFIXES,
    device_name,
    input_windows,
    latency_ms,
    model_input,
    read_raw,
    verify,
)

if TYPE_CHECKING:
    from onnxruntime.quantization import CalibrationDataReader

log = logging.getLogger(__name__)

#: Fewer calibration windows than this give unreliable activation ranges.
MIN_CALIBRATION = 50
MAX_CALIBRATION = 300


@dataclass(frozen=True)
class Variant:
    """One INT8 recipe: ONNX Runtime quantisation format, activation type and whether the
    activation ranges are symmetric (zero point 0; weights are symmetric in every recipe)."""

    name: str
    quant_format: str  # "QDQ" | "QOperator"
    activation: str  # "QUInt8" | "QInt8"
    symmetric: bool = False


VARIANTS = {
    v.name: v
    for v in (
        Variant("qdq_u8s8", "QDQ", "QUInt8"),
        Variant("qdq_s8s8", "QDQ", "QInt8"),
        Variant("qoperator_u8s8", "QOperator", "QUInt8"),
        Variant("qdq_symmetric", "QDQ", "QInt8", symmetric=True),
    )
}
#: ``--format``: the variants each builds.
FORMATS: dict[str, tuple[str, ...]] = {
    "qdq": ("qdq_symmetric",),
    "cpu": ("qdq_u8s8", "qdq_s8s8", "qoperator_u8s8"),
}
#: Operators of ONNX Runtime's QOperator format, which TensorRT does not parse.
QOPERATOR_OPS = frozenset({"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"})


def calibration_windows(
    source: Path, manifest: Manifest, limit: int = MAX_CALIBRATION
) -> list[np.ndarray]:
    """Normalised ``C x H x W`` windows from a directory of images or ``.npy`` windows
    (or from the ``images/`` folder of a labelled data set).

    Logs a warning below :data:`MIN_CALIBRATION` windows; raises InputError when none.
    """
    source = Path(source)
    if not source.is_dir():
        raise InputError(f"calibration directory not found: {source}")
    if (source / "images").is_dir():  # a labelled data set: its images only, not its masks
        source = source / "images"
    files = sorted(p for p in source.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    windows: list[np.ndarray] = []
    for path in files:
        raw = read_raw(path, manifest)
        for _, win in input_windows(raw, manifest):
            windows.append(model_input(win, manifest))
        if len(windows) >= limit:
            break
    if not windows:
        raise InputError(f"no calibration images (PNG/JPEG/.npy) in {source}")
    if len(windows) < MIN_CALIBRATION:
        log.warning(
            "only %d calibration windows in %s (want >= %d): INT8 ranges may be poor",
            len(windows),
            source,
            MIN_CALIBRATION,
        )
    return windows[:limit]


def _reader(input_name: str, windows: list[np.ndarray]) -> CalibrationDataReader:
    from onnxruntime.quantization import CalibrationDataReader

    class WindowReader(CalibrationDataReader):
        """Feeds one window at a time to the calibrator."""

        def __init__(self) -> None:
            self._it = iter(windows)

        def get_next(self) -> dict[str, np.ndarray] | None:
            win = next(self._it, None)
            return None if win is None else {input_name: win[None].astype(np.float32)}

    return WindowReader()


def quantize_variant(
    pre_path: Path, out_path: Path, variant: Variant, input_name: str, windows: list[np.ndarray]
) -> None:
    """Static INT8 quantisation of the pre-processed model ``pre_path`` into ``out_path``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    # TensorRT: zero points 0 (symmetric ranges) and biases left in float (its parser takes
    # no int32 DequantizeLinear; it fuses the float bias into the INT8 convolution).
    symmetric = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False}
    quantize_static(
        str(pre_path),
        str(out_path),
        _reader(input_name, windows),
        quant_format=getattr(QuantFormat, variant.quant_format),
        per_channel=True,
        activation_type=getattr(QuantType, variant.activation),
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options=symmetric if variant.symmetric else None,
    )


def check_tensorrt_int8(path: Path) -> int:
    """Check that ``path`` is INT8 as TensorRT takes it: QDQ (no QOperator nodes), every
    Quantize/DequantizeLinear with a constant int8 zero point of 0. Returns the number of
    QDQ nodes; raises :class:`ModelError` naming the first offending node or tensor.
    """
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = node.attribute[0].t
    fix = "re-quantise with 'geoedge export quantize --format qdq'"
    for node in graph.node:
        if node.op_type.startswith("QLinear") or node.op_type in QOPERATOR_OPS:
            raise ModelError(
                f"{path.name} is QOperator INT8 (node {node.name!r} is {node.op_type}): "
                f"TensorRT takes QDQ only; {fix}"
            )
    count = 0
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        tensor = node.input[0]
        zero_name = node.input[2] if len(node.input) > 2 else ""
        zero = constants.get(zero_name)
        if zero is None:
            why = f"zero point {zero_name!r} is not a constant" if zero_name else "no zero point"
            raise ModelError(f"{path.name}: tensor {tensor!r} has {why} (uint8 by default); {fix}")
        if zero.data_type != onnx.TensorProto.INT8:
            kind = onnx.TensorProto.DataType.Name(zero.data_type).lower()
            raise ModelError(
                f"{path.name}: tensor {tensor!r} is quantised to {kind} (zero point "
                f"{zero_name!r}); TensorRT needs signed int8 with zero point 0; {fix}"
            )
        values = numpy_helper.to_array(zero)
        if np.any(values != 0):
            first = int(values.flat[int(np.argmax(values != 0))])
            raise ModelError(
                f"{path.name}: tensor {tensor!r} has zero point {first} ({zero_name!r}), "
                f"not 0: TensorRT needs symmetric int8; {fix}"
            )
        count += 1
    if count == 0:
        raise ModelError(
            f"{path.name} has no QuantizeLinear/DequantizeLinear: not a QDQ INT8 model"
        )
    return count


def quantize(
    fp32_path: Path,
    calibration_dir: Path,
    out_path: Path | None = None,
    variants: tuple[str, ...] = FORMATS["cpu"],
    heldout_dir: Path | None = None,
    threads: int = 2,
    repeats: int = 30,
) -> Manifest:
    """Build, time and choose the INT8 variants of ``fp32_path``; returns the INT8 manifest.

    With ``heldout_dir`` each variant is scored against FP32 first and only passing ones
    are eligible; the accuracy gate of the kept one is then written into its manifest.
    """
    import onnx
    import onnxruntime
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path = Path(fp32_path)
    source = load_manifest(fp32_path)
    if source.precision != "fp32":
        raise ModelError(f"{fp32_path} is {source.precision}: quantise the FP32 model")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise InputError(f"unknown INT8 variants {unknown} (known: {sorted(VARIANTS)})")
    out_path = Path(out_path) if out_path else variant_path(fp32_path, "int8")
    windows = calibration_windows(calibration_dir, source)
    x = windows[0][None]
    fp32_ms = latency_ms(fp32_path, x, threads, repeats=repeats)
    measurements = {"fp32": round(fp32_ms, 3)}
    passing: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="geoedge-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # ONNX shape inference and graph optimisation; ORT's symbolic shape inference (meant
        # for transformers) fails on the dynamic batch of a Resize and is not needed here.
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        built: dict[str, Path] = {}
        for name in variants:
            path = Path(tmp) / f"{name}.onnx"
            t0 = time.perf_counter()
            quantize_variant(pre, path, VARIANTS[name], source.input_name, windows)
            measurements[name] = round(latency_ms(path, x, threads, repeats=repeats), 3)
            log.info(
                "%s: built in %.1f s, %.3f ms (FP32 %.3f ms, %d threads)",
                name,
                time.perf_counter() - t0,
                measurements[name],
                fp32_ms,
                threads,
            )
            if VARIANTS[name].symmetric:
                check_tensorrt_int8(path)
            built[name] = path
            if heldout_dir is not None:
                trial = Path(tmp) / f"trial_{name}.onnx"
                write_model(onnx.load(str(path)), trial, _int8_manifest(source, None, []))
                gate = verify(fp32_path, trial, heldout_dir, threads=threads, write=False)
                passing[name] = gate.passed
        eligible = [n for n in variants if passing.get(n, heldout_dir is None)]
        if not eligible:
            raise ModelError(
                f"no INT8 variant of {fp32_path.name} passes the accuracy gate on {heldout_dir}"
            )
        chosen = min(eligible, key=lambda n: measurements[n])
        variant = VARIANTS[chosen]
        details = Quantisation(
            format=variant.quant_format,
            activation_type=variant.activation,
            weight_type="QInt8",
            per_channel=True,
            symmetric=variant.symmetric,
            calibration_method="MinMax",
            calibration_samples=len(windows),
            calibration_source=str(calibration_dir),
            measurements=measurements,
            measured_on=f"{device_name()} (ONNX Runtime {onnxruntime.__version__} CPU)",
            threads=threads,
            chosen=chosen,
        )
        manifest = _int8_manifest(source, details, list(passing.items()))
        write_model(onnx.load(str(built[chosen])), out_path, manifest)
    log.info("kept %s as %s (%.2fx FP32 speed)", chosen, out_path, fp32_ms / measurements[chosen])
    if heldout_dir is not None:
        manifest.accuracy_gate = verify(fp32_path, out_path, heldout_dir, threads=threads)
    return manifest


def _int8_manifest(
    source: Manifest, details: Quantisation | None, gates: list[tuple[str, bool]]
) -> Manifest:
    manifest = Manifest.from_dict(source.to_dict())
    manifest.precision = "int8"
    manifest.quantisation = details
    manifest.accuracy_gate = None
    manifest.created_utc = utc_iso(time.time())
    manifest.metrics = {"fp32_source": source.metrics, "fp32_sha256": source.sha256}
    if gates:
        manifest.metrics["variant_gate_passed"] = dict(gates)
    return manifest
