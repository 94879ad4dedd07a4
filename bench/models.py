"""Latency of each precision of the shipped models, as ratios to FP32 measured in the same run.

ONNX Runtime on the CPU with 2 intra-op threads (the deployment setting), batch 1 at each
model's input size from its manifest; FP16 only where a GPU provider exists. Accuracy
deltas come from each variant's accuracy gate in its manifest (``geoedge export verify``).

    python3 bench/models.py                    # edge/models/unet*.onnx, detector*.onnx
    python3 bench/models.py --model a.onnx     # any FP32 model with its variants beside it
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge.errors import GeoEdgeError
from edge.models.manifest import load_manifest
from edge.models.runtime import GPU_PROVIDERS, KINDS, MODELS_DIR, variant_path
from export.convert.verify import device_name, latency_ms


def bench_model(fp32: Path, threads: int, repeats: int) -> None:
    manifest = load_manifest(fp32)
    shape = [1, *(int(v) for v in manifest.input_shape[1:])]
    raw = np.random.default_rng(0).uniform(0, 255, size=shape).astype(np.float32)
    x = manifest.normalisation.apply(raw)
    gpu = [p for p in ort.get_available_providers() if p in GPU_PROVIDERS]
    runs = [("fp32", fp32, ["CPUExecutionProvider"]), ("int8", variant_path(fp32, "int8"), None)]
    if gpu:
        runs += [("fp32-gpu", fp32, gpu), ("fp16-gpu", variant_path(fp32, "fp16"), gpu)]
    print(f"{fp32.name}: {manifest.task}, input {shape}, {threads} threads, {device_name()}")
    base: dict[str, float] = {}
    for label, path, providers in runs:
        if not path.is_file():
            print(f"  {label:9s} absent ({path.name})")
            continue
        ms = latency_ms(path, x, threads, providers or ["CPUExecutionProvider"], repeats)
        ref = base.setdefault("gpu" if "gpu" in label else "cpu", ms)
        gate = load_manifest(path).accuracy_gate
        delta = (
            ", ".join(
                f"{k} {gate.metrics[k] - gate.reference_metrics[k]:+.4f}" for k in gate.metrics
            )
            + (" (gate passed)" if gate.passed else " (gate FAILED)")
            if gate
            else "no gate"
        )
        print(f"  {label:9s} {ms:8.3f} ms  {ref / ms:5.2f}x FP32 speed  accuracy: {delta}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, nargs="+", help="FP32 .onnx files")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    models = args.model or [MODELS_DIR / f"{kind}.onnx" for kind in KINDS]
    for path in models:
        if not path.is_file():
            print(f"{path}: absent (the shipped models are produced by 'geoedge export'); skipped")
            continue
        try:
            bench_model(path, args.threads, args.repeats)
        except GeoEdgeError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
