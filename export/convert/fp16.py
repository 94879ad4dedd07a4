"""FP32 ONNX -> FP16 ONNX for GPUs (TensorRT / CUDA execution providers).

Weights and internal tensors become float16 with onnxconverter-common's float16
converter; the model inputs and outputs stay float32 (``keep_io_types``), so callers
feed and read the same arrays as for FP32. On a CPU an FP16 model runs slower than
FP32 (ONNX Runtime inserts casts); its gate is meant to be run on the GPU device.
The output is ``<name>.fp16.onnx`` beside the FP32 model.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from edge.errors import ModelError
from edge.models.manifest import Manifest, load_manifest, write_model
from edge.models.runtime import variant_path
from edge.station.messages import utc_iso

log = logging.getLogger(__name__)


def convert_fp16(fp32_path: Path, out_path: Path | None = None) -> Manifest:
    """Write the FP16 variant of ``fp32_path`` with its manifest; returns the manifest."""
    import onnx

    try:
        from onnxconverter_common import float16
    except ImportError:
        raise ModelError(
            "onnxconverter-common is not installed: 'pip install onnxconverter-common' "
            "(part of the 'export' extras)"
        ) from None
    fp32_path = Path(fp32_path)
    source = load_manifest(fp32_path)
    if source.precision != "fp32":
        raise ModelError(f"{fp32_path} is {source.precision}: convert the FP32 model")
    out_path = Path(out_path) if out_path else variant_path(fp32_path, "fp16")
    model = float16.convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
    onnx.checker.check_model(model)
    manifest = Manifest.from_dict(source.to_dict())
    manifest.precision = "fp16"
    manifest.accuracy_gate = None
    manifest.created_utc = utc_iso(time.time())
    manifest.metrics = {"fp32_source": source.metrics, "fp32_sha256": source.sha256}
    import onnxconverter_common

    manifest.export_tools = {
        **source.export_tools,
        "onnxconverter_common": onnxconverter_common.__version__,
    }
    write_model(model, out_path, manifest)
    log.info("wrote %s (float16 weights, float32 inputs and outputs)", out_path)
    return manifest
