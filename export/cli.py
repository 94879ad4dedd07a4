"""``geoedge export ...``: the training-side sub-commands.

Importing this module is cheap (argparse only): torch, onnx and the quantisation tools
are imported inside the handlers, so ``geoedge export --help`` works on a device without
PyTorch, and a command that needs torch there says so in one line.

- ``onnx CHECKPOINT --out MODEL.onnx``: export, check, simplify, parity, manifest;
- ``quantize MODEL.onnx --calibration DIR [--data HELDOUT] [--format qdq|cpu]``: static INT8;
  ``qdq`` symmetric signed QDQ for TensorRT, ``cpu`` (default) the fastest recipe on this CPU;
- ``fp16 MODEL.onnx``: FP16 weights, FP32 inputs/outputs;
- ``tensorrt MODEL.onnx``: TensorRT engine on the target, keyed and cached like the station's
  (needs TensorRT and a GPU);
- ``verify MODEL.onnx --data HELDOUT``: accuracy gate of each precision against FP32;
- ``onnx ... --site-labels DIR`` / ``site-gate MODEL.onnx --labels DIR``: the per-site gate
  (:mod:`export.convert.site_gate`) at export, or again later (e.g. after the shipped model
  changed);
- ``train-unet`` / ``train-detector``: added by ``export.train.unet_command`` /
  ``export.train.detector`` through their ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import InputError, ModelError

if TYPE_CHECKING:
    from torch import nn

    from edge.models.manifest import Manifest

log = logging.getLogger(__name__)

#: Modules that add their own sub-command through ``register(subparsers)``.
TRAINING_COMMANDS = ("export.train.unet_command", "export.train.detector")


def register_subcommands(parser: argparse.ArgumentParser) -> None:
    """Add the export sub-commands to the ``geoedge export`` parser."""
    sub = parser.add_subparsers(dest="export_command", metavar="STEP", required=True)

    p = sub.add_parser("onnx", help="PyTorch checkpoint -> ONNX with manifest and parity check")
    p.add_argument("checkpoint", type=Path, help="checkpoint .pt (arch, state_dict, manifest)")
    p.add_argument("--out", type=Path, required=True, help="output .onnx (manifest beside it)")
    p.add_argument(
        "--exporter",
        choices=("dynamo", "torchscript"),
        default="dynamo",
        help="torch.onnx exporter (default dynamo)",
    )
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 17, default 18)")
    p.add_argument(
        "--site-labels",
        type=Path,
        nargs="+",
        metavar="LABEL_DIR",
        help="per-site gate: held-out geoedge label folders; the model is written only when "
        "it is not worse than --reference on them (see export.convert.site_gate)",
    )
    p.add_argument("--reference", default="default", help="with --site-labels: default or an .onnx")
    p.add_argument(
        "--max-iou-drop", type=float, default=0.0, help="with --site-labels: IoU loss allowed"
    )
    p.add_argument(
        "--max-boundary-rise",
        type=float,
        default=1.0,
        help="with --site-labels: boundary distance rise allowed, px at 1280 px width",
    )
    p.set_defaults(handler=_onnx)

    p = sub.add_parser(
        "site-gate", help="is an exported site model still no worse than the reference?"
    )
    p.add_argument("model", type=Path, help="the site model .onnx (manifest beside it)")
    p.add_argument(
        "--labels", type=Path, nargs="+", required=True, metavar="LABEL_DIR",
        help="the station's held-out geoedge label folders",
    )  # fmt: skip
    p.add_argument("--reference", default="default", help="default or an .onnx")
    p.add_argument("--max-iou-drop", type=float, default=0.0, help="IoU loss allowed")
    p.add_argument(
        "--max-boundary-rise", type=float, default=1.0, help="px at 1280 px width allowed"
    )
    p.set_defaults(handler=_site_gate)

    p = sub.add_parser("quantize", help="static INT8 from calibration images")
    p.add_argument("model", type=Path, help="the FP32 .onnx")
    p.add_argument("--calibration", type=Path, required=True, help="images or .npy windows")
    p.add_argument("--data", type=Path, help="held-out set: only passing variants are kept")
    p.add_argument("--out", type=Path, help="default <name>.int8.onnx")
    p.add_argument(
        "--format",
        choices=("qdq", "cpu"),
        default="cpu",
        help="qdq: symmetric signed-INT8 QDQ, zero points 0 (what TensorRT takes); "
        "cpu (default): the fastest of the CPU recipes qdq_u8s8, qdq_s8s8, qoperator_u8s8",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        help="INT8 recipes to build and time (default: those of --format)",
    )
    p.add_argument("--threads", type=int, default=2, help="intra-op threads for timing")
    p.set_defaults(handler=_quantize)

    p = sub.add_parser("fp16", help="FP16 ONNX for GPUs (inputs/outputs stay float32)")
    p.add_argument("model", type=Path, help="the FP32 .onnx")
    p.add_argument("--out", type=Path, help="default <name>.fp16.onnx")
    p.set_defaults(handler=_fp16)

    p = sub.add_parser(
        "tensorrt", help="TensorRT engine on this GPU (checks the model; keyed like the station's)"
    )
    p.add_argument("model", type=Path, help="<name>.onnx, .fp16.onnx or symmetric-QDQ .int8.onnx")
    p.add_argument("--cache", type=Path, help="engine cache dir (default $GEOEDGE_TRT_CACHE)")
    p.add_argument("--max-batch", type=int, default=8, help="largest batch of the engine profile")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "fp16"),
        default="auto",
        help="for an FP32 model: auto/fp16 build with FP16 on a fast-FP16 GPU, fp32 does not",
    )
    p.set_defaults(handler=_tensorrt)

    p = sub.add_parser("verify", help="accuracy gate: each precision against FP32")
    p.add_argument("model", type=Path, help="the FP32 .onnx; variants are found beside it")
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="held-out set (see export.convert.verify)",
    )
    p.add_argument("--precision", nargs="+", choices=("int8", "fp16"), help="default: present")
    p.add_argument(
        "--max-iou-drop", type=float, default=0.01, help="segmentation: largest IoU loss allowed"
    )
    p.add_argument(
        "--max-map-drop", type=float, default=0.02, help="detection: largest mAP@0.5 loss allowed"
    )
    p.add_argument(
        "--max-recall-drop", type=float, default=0.02, help="detection: largest recall loss"
    )
    p.add_argument("--providers", nargs="+", help="ONNX Runtime providers (default CPU)")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads for the gate")
    p.set_defaults(handler=_verify)

    for name in TRAINING_COMMANDS:
        register = getattr(importlib.import_module(name), "register", None)
        if register is not None:
            register(sub)


def _onnx(args: argparse.Namespace) -> int:
    from export.convert.onnx_export import export_onnx, load_checkpoint

    net, manifest = load_checkpoint(args.checkpoint)
    if args.site_labels:
        return _onnx_site_gated(args, net, manifest)
    manifest, parity = export_onnx(
        net, args.out, manifest, dynamo=args.exporter == "dynamo", opset=args.opset
    )
    print(
        f"{args.out}: sha256 {manifest.sha256[:12]}, parity max |diff| "
        f"{parity.max_abs_diff:.2e}, {parity.measure} {parity.agreement:.4f}"
    )
    return 0


def _site_gate(args: argparse.Namespace) -> int:
    """Judge an exported model again (e.g. after the shipped model changed); writes nothing."""
    from edge.models.manifest import load_manifest
    from export.convert.site_gate import site_gate

    load_manifest(args.model)  # present and unchanged (sha256)
    reference, name = _reference(args.reference)
    gate = site_gate(
        args.model, reference, name, args.labels, args.max_iou_drop, args.max_boundary_rise
    )
    print(f"{args.model}: {gate.summary()}", file=sys.stdout if gate.passed else sys.stderr)
    return 0 if gate.passed else 1


def _reference(spec: str) -> tuple[Path, str]:
    """The FP32 reference model of ``--reference`` and how the gate names it."""
    from edge.models.manifest import file_sha256
    from edge.models.runtime import resolve_model

    reference = resolve_model(spec, "unet", "fp32", ["CPUExecutionProvider"])
    return reference, f"{spec} ({reference.name} sha256 {file_sha256(reference)[:12]})"


def _onnx_site_gated(args: argparse.Namespace, net: nn.Module, manifest: Manifest) -> int:
    """Export to a temporary file, gate it against ``--reference`` on ``--site-labels``, and
    write ``--out`` (with the comparison in its manifest's ``metrics.site_gate``) only when it
    passes; otherwise one line on stderr, nothing written, exit status 1."""
    import onnx

    from edge.models.manifest import write_model
    from export.convert.onnx_export import export_onnx
    from export.convert.site_gate import site_gate

    if manifest.task != "segmentation":
        raise InputError(f"--site-labels: {args.checkpoint} is a {manifest.task} model")
    reference, name = _reference(args.reference)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out.parent, prefix=".site-gate-") as tmp:
        candidate = Path(tmp) / args.out.name
        manifest, _ = export_onnx(
            net, candidate, manifest, dynamo=args.exporter == "dynamo", opset=args.opset
        )
        gate = site_gate(
            candidate, reference, name, args.site_labels, args.max_iou_drop, args.max_boundary_rise
        )
        if not gate.passed:
            print(f"{args.prog}: {gate.summary()}; {args.out} not written", file=sys.stderr)
            return 1
        manifest.metrics = {**manifest.metrics, "site_gate": gate.to_dict()}
        write_model(onnx.load(str(candidate)), args.out, manifest)
    print(f"{args.out}: sha256 {manifest.sha256[:12]}; {gate.summary()}")
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from export.convert.quantize import FORMATS, quantize

    manifest = quantize(
        args.model,
        args.calibration,
        out_path=args.out,
        variants=tuple(args.variants or FORMATS[args.format]),
        heldout_dir=args.data,
        threads=args.threads,
    )
    q = manifest.quantisation
    if q is None:
        raise ModelError(f"INT8 manifest of {manifest.name} has no quantisation record")
    print(f"kept {q.chosen}; latency ms ({q.threads} threads): {json.dumps(q.measurements)}")
    gate = manifest.accuracy_gate
    if gate is not None:
        print(f"accuracy gate {'passed' if gate.passed else 'FAILED'}: {gate.metrics}")
    return 0


def _fp16(args: argparse.Namespace) -> int:
    from export.convert.fp16 import convert_fp16

    manifest = convert_fp16(args.model, args.out)
    print(f"wrote FP16 model, sha256 {manifest.sha256[:12]}")
    return 0


def _tensorrt(args: argparse.Namespace) -> int:
    from export.convert.tensorrt import build_engine

    print(build_engine(args.model, args.cache, args.max_batch, precision=args.precision))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from edge.models.runtime import variant_path
    from export.convert.verify import verify

    if not args.model.is_file():
        raise InputError(f"model not found: {args.model}")
    precisions = args.precision or [
        p for p in ("int8", "fp16") if variant_path(args.model, p).is_file()
    ]
    if not precisions:
        raise ModelError(f"no .int8.onnx or .fp16.onnx variant beside {args.model}")
    bounds = {"iou": args.max_iou_drop, "map50": args.max_map_drop, "recall": args.max_recall_drop}
    failed = []
    for precision in precisions:
        gate = verify(
            args.model,
            variant_path(args.model, precision),
            args.data,
            max_drop=bounds,
            providers=args.providers or ["CPUExecutionProvider"],
            threads=args.threads,
        )
        figures = ", ".join(
            f"{k} {gate.reference_metrics[k]:.4f} -> {gate.metrics[k]:.4f}" for k in gate.metrics
        )
        verdict = "passed" if gate.passed else "FAILED"
        print(f"{precision}: {verdict} on {gate.samples} windows ({figures}); "
              f"{gate.latency_ms:.2f} ms vs FP32 {gate.reference_latency_ms:.2f} ms")  # fmt: skip
        if not gate.passed:
            failed.append(precision)
    return 1 if failed else 0
