"""PyTorch -> ONNX: export, check, simplify, parity against PyTorch, manifest.

The export uses ``torch.onnx.export`` with ``dynamo=True`` (the torch.export based
exporter, which needs ``onnxscript``) by default; ``dynamo=False`` selects the
TorchScript exporter for models the new one cannot trace. The batch axis is dynamic.

A checkpoint for the command line is a ``torch.save``'d dict::

    {"arch": "export.nets.unet:UNet",          # module:callable building the network
     "arch_kwargs": {...},                 # keyword arguments of that callable
     "state_dict": {...},                  # the trained weights
     "manifest": {...}}                    # Manifest fields known at training time
                                           # (name, task, input_name, input_shape,
                                           #  outputs, classes, normalisation, ...)
"""

from __future__ import annotations

import importlib
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from edge.errors import InputError, ModelError
from edge.gpr.detector import normalise_window
from edge.models.manifest import Manifest, manifest_path, write_model
from edge.models.runtime import OnnxModel
from edge.station.messages import utc_iso
from export.convert.verify import (
    Decode,
    default_detection_decode,
    mask_iou,
    match_boxes,
    water_masks,
)

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

OPSET = 18
#: Parity bounds between PyTorch and ONNX Runtime FP32 outputs.
MAX_ABS_DIFF = 1e-3
MIN_MASK_IOU = 0.99
MIN_BOX_MATCH = 0.99


def require_torch() -> ModuleType:
    """Import torch, or fail with one line (edge devices have no PyTorch)."""
    try:
        import torch
    except ImportError:
        raise ModelError(
            "PyTorch is not installed here: the training side needs it "
            "('pip install torch==2.13.0' and 'pip install .[export]')"
        ) from None
    return torch


def tool_versions(dynamo: bool) -> dict[str, str]:
    """Versions of the tools that made an export (recorded in the manifest)."""
    import onnx
    import onnxruntime
    import onnxslim

    torch = require_torch()
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxslim": onnxslim.__version__,
        "exporter": "dynamo" if dynamo else "torchscript",
    }
    if dynamo:
        import onnxscript

        versions["onnxscript"] = onnxscript.__version__
    return versions


@dataclass
class Parity:
    """PyTorch vs ONNX Runtime on the same inputs: max |difference| of raw outputs and
    the task-level agreement (mask IoU, or share of PyTorch boxes matched at IoU >= 0.9)."""

    max_abs_diff: float
    agreement: float
    measure: str

    @property
    def ok(self) -> bool:
        floor = MIN_MASK_IOU if self.measure == "mask_iou" else MIN_BOX_MATCH
        return self.max_abs_diff <= MAX_ABS_DIFF and self.agreement >= floor


def parity_inputs(manifest: Manifest, count: int = 2, seed: int = 0) -> np.ndarray:
    """Random inputs spanning the raw range (0..255 pixels), normalised as the model expects.

    Detection windows first get the detector's per-window normalisation (as on the device),
    so the parity check runs on inputs of the model's own range.
    """
    shape = [count, *manifest.sample_shape()]
    raw = np.random.default_rng(seed).uniform(0, 255, size=shape).astype(np.float32)
    if manifest.task == "detection":
        mode = manifest.normalisation.window
        raw = np.stack([[normalise_window(p, mode) for p in img] for img in raw])
    return manifest.normalisation.apply(raw)


def check_parity(
    net: nn.Module, model_path: Path, x: np.ndarray, decode: Decode | None = None
) -> Parity:
    """Compare ``net`` (PyTorch, eval mode) with the exported ``model_path`` on ``x``."""
    torch = require_torch()
    model = OnnxModel(model_path, ["CPUExecutionProvider"], threads=2)
    with torch.no_grad():
        ref = net(torch.from_numpy(x))
    ref = [t.numpy() for t in (ref if isinstance(ref, list | tuple) else [ref])]
    got = model.run(x)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ref, got, strict=True))
    if model.manifest.task == "segmentation":
        agreement = mask_iou(water_masks(ref, model.manifest), water_masks(got, model.manifest))
        return Parity(diff, agreement, "mask_iou")
    decode = decode or default_detection_decode()
    matched = total = 0
    for r, g in zip(decode(ref, model.manifest), decode(got, model.manifest), strict=True):
        total += len(r)
        matched += int(match_boxes(g, np.c_[r[:, :4], r[:, 5]], 0.9).sum()) if len(r) else 0
    return Parity(diff, matched / total if total else 1.0, "box_match")


def export_onnx(
    net: nn.Module,
    out_path: Path,
    manifest: Manifest,
    dynamo: bool = True,
    opset: int = OPSET,
    parity_x: np.ndarray | None = None,
    decode: Decode | None = None,
) -> tuple[Manifest, Parity]:
    """Export ``net`` to ``out_path`` with its manifest; raises ModelError on failed parity.

    ``manifest`` carries what training knows (name, task, input name/shape, outputs,
    classes, normalisation, training data, metrics); precision, tool versions, time and
    hash are filled in here.
    """
    torch = require_torch()
    import onnx
    import onnxslim

    if opset < 17:
        raise ModelError(f"opset {opset} is too old: use 17 or newer")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    net = net.eval()
    example = torch.from_numpy(parity_inputs(manifest, count=2, seed=1))
    names = {
        "input_names": [manifest.input_name],
        "output_names": [o.name for o in manifest.outputs],
    }
    raw_path = out_path.with_name(out_path.name + ".raw")
    t0 = time.perf_counter()
    with torch.no_grad():
        if dynamo:
            batch = torch.export.Dim("batch", min=1, max=1024)
            torch.onnx.export(
                net, (example,), str(raw_path), dynamo=True, opset_version=opset,
                dynamic_shapes=({0: batch},), external_data=False, verbose=False, **names,
            )  # fmt: skip
        else:
            axes = {n: {0: "batch"} for n in names["input_names"] + names["output_names"]}
            torch.onnx.export(
                net, (example,), str(raw_path), dynamo=False, opset_version=opset,
                dynamic_axes=axes, **names,
            )  # fmt: skip
    model = onnx.load(str(raw_path))
    raw_path.unlink()
    model = onnxslim.slim(model)
    onnx.checker.check_model(model, full_check=True)
    log.info(
        "exported %s in %.1f s (%s)",
        out_path.name,
        time.perf_counter() - t0,
        "dynamo" if dynamo else "torchscript",
    )
    manifest.precision = "fp32"
    manifest.quantisation = None
    manifest.accuracy_gate = None
    manifest.export_tools = tool_versions(dynamo)
    manifest.created_utc = utc_iso(time.time())
    write_model(model, out_path, manifest)
    parity = check_parity(
        net, out_path, parity_inputs(manifest) if parity_x is None else parity_x, decode
    )
    log.info(
        "parity %s: max |diff| %.2e, %s %.4f",
        out_path.name,
        parity.max_abs_diff,
        parity.measure,
        parity.agreement,
    )
    if not parity.ok:
        raise ModelError(
            f"ONNX export {out_path} differs from PyTorch: max |diff| {parity.max_abs_diff:.2e} "
            f"(bound {MAX_ABS_DIFF}), {parity.measure} {parity.agreement:.4f}"
        )
    manifest.metrics = {**manifest.metrics, "export_parity": parity.__dict__ | {"ok": True}}
    manifest.save(manifest_path(out_path))
    return manifest, parity


def load_checkpoint(path: Path) -> tuple[nn.Module, Manifest]:
    """Network (eval mode) and manifest template from a checkpoint (see module docstring)."""
    torch = require_torch()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        module_name, _, attr = ckpt["arch"].partition(":")
        build = getattr(importlib.import_module(module_name), attr)
        net = build(**ckpt.get("arch_kwargs", {}))
        net.load_state_dict(ckpt["state_dict"])
        manifest = Manifest.from_dict(ckpt["manifest"])
    except (KeyError, ValueError, TypeError, AttributeError, ImportError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"checkpoint {path} is not a GeoEdge checkpoint: {first}") from None
    return net.eval(), manifest
