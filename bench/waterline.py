"""Benchmark: segmentation + waterline per collection vs the station's time budget.

Renders a 2448 x 2048 painted TimeX of the bundled demo geometry, then times, in one run:

- one collection's analysis (segmentation, waterline, 5 transects) per method that is
  available (colour; U-Net FP32 and INT8 when ``edge/models/unet*.onnx`` exist), as a
  ratio to the budget of one collection every 60 minutes; then the last of them with
  the overlays written (TimeX and plan view), as the daemon runs it;
- segmentation alone, U-Net INT8 vs FP32 (ONNX Runtime CPU, 2 threads);
- the colour analysis with the region test as it was before issue 17 (a shapely ``Point``
  per coarse-grid ground point, computed twice per camera), as the ratio of today's time to
  that one, checking that both give the same waterline.

    python3 bench/waterline.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from shapely.geometry import Point, Polygon
from shapely.prepared import prep

from edge.beach.geometry.camera import Camera, Intrinsics
from edge.beach.waterline import analysis, extraction
from edge.beach.waterline.analysis import BeachAnalyser
from edge.beach.waterline.segmentation import unet_probability
from edge.config import load_config, with_changes
from edge.models.runtime import OnnxModel, variant_path
from export.data.samples import SAMPLES, demo_beach
from export.data.scene import BeachScene
from export.data.synth_timex import paint

BUDGET_S = 3600.0
MODELS = Path(__file__).resolve().parents[1] / "edge" / "models"


def _timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def pointwise_validity(
    camera: Camera, shape: tuple[int, int], level: float, roi: Polygon | None, max_range_m: float
) -> np.ndarray:
    """``extraction.ground_validity`` before issue 17: the region test one ``Point`` at a time."""
    step = extraction._GRID_STEP
    h, w = shape
    gy, gx = np.mgrid[0 : h + step : step, 0 : w + step : step]
    uv = np.column_stack([np.clip(gx.ravel(), 0, w - 1), np.clip(gy.ravel(), 0, h - 1)])
    xyz, ok = camera.image_to_world(uv.astype(float), level)
    ok &= np.hypot(*(xyz[:, :2] - camera.position[:2]).T) <= max_range_m
    if roi is not None:
        inside = prep(roi)
        ok[ok] = [inside.contains(Point(p)) for p in xyz[ok, :2]]
    coarse = ok.reshape(gy.shape).astype(np.uint8)
    size = (gx.shape[1] * step, gy.shape[0] * step)
    return cv2.resize(coarse, size, interpolation=cv2.INTER_NEAREST)[:h, :w].astype(bool)


def old_region_test(*args: Any) -> np.ndarray:
    """The old cost: the analysis and ``camera_waterline`` each computed the validity."""
    pointwise_validity(*args)
    return pointwise_validity(*args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sample = demo_beach()
    cam0 = sample.scene.camera
    k = 2448 / cam0.intrinsics.NU
    ic = cam0.intrinsics
    big = Intrinsics(2448, 2048, ic.c0U * k, ic.c0V * k, ic.fx * k, ic.fy * k, ic.d1, ic.d2)
    scene = BeachScene(Camera(big, cam0.extrinsics, "c1"), sample.scene.profile,
                       sample.scene.shore_origin, sample.scene.seaward_azimuth_deg)  # fmt: skip
    image = paint(np.random.default_rng(1), scene, 0.32).image
    config = load_config(SAMPLES / "beach" / "station.toml")
    keys = ("NU", "NV", "c0U", "c0V", "fx", "fy", "d1", "d2", "d3", "t1", "t2")
    calib = Path(tempfile.mkdtemp()) / "c1_IO.json"
    calib.write_text(json.dumps({key: float(getattr(big, key)) for key in keys}))
    camera = {**config.cameras[0].model_dump(), "intrinsics": calib}
    config = with_changes(config, cameras=[camera])
    methods = [("colour", "fp32")]
    if (MODELS / "unet.onnx").is_file():
        methods.append(("unet", "fp32"))
    if (MODELS / "unet.int8.onnx").is_file():
        methods.append(("unet", "int8"))
    print(f"collection analysis, 1 camera 2448x2048, budget {BUDGET_S:.0f} s per collection:")
    for method, precision in methods:
        config = with_changes(
            config,
            segmentation={
                "method": method,
                "precision": precision,
                "providers": ["CPUExecutionProvider"],
            },
        )
        analyser = BeachAnalyser(config)
        seconds = _timed(lambda a=analyser: a.analyse(0.0, 0.32, images={"c1": image}), args.repeat)
        label = method if method == "colour" else f"unet {precision}"
        print(f"  {label:22s} {seconds:7.2f} s  = {seconds / BUDGET_S:.5f} of the budget "
              f"({BUDGET_S / seconds:,.0f}x headroom)")  # fmt: skip
    # As the daemon runs it: the last method plus the overlays (TimeX and plan view) on disk.
    with tempfile.TemporaryDirectory() as out:
        seconds = _timed(
            lambda: analyser.analyse(0.0, 0.32, images={"c1": image}, out_dir=Path(out)),
            args.repeat,
        )
    label = f"{label} + overlays"
    print(f"  {label:22s} {seconds:7.2f} s  = {seconds / BUDGET_S:.5f} of the budget "
          f"({BUDGET_S / seconds:,.0f}x headroom)")  # fmt: skip
    # The region test before issue 17, in this run, on the colour method.
    colour = BeachAnalyser(with_changes(config, segmentation={"method": "colour"}))
    assert colour.roi is not None, "the demo station has a region of interest"
    today = _timed(lambda: colour.analyse(0.0, 0.32, images={"c1": image}), args.repeat)
    new_message = colour.analyse(0.0, 0.32, images={"c1": image}).to_message("b", "EPSG:5187")
    analysis.ground_validity = old_region_test
    try:
        before = _timed(lambda: colour.analyse(0.0, 0.32, images={"c1": image}), args.repeat)
        old = colour.analyse(0.0, 0.32, images={"c1": image}).to_message("b", "EPSG:5187")
    finally:
        analysis.ground_validity = extraction.ground_validity
    print(f"colour analysis {today:.2f} s vs {before:.2f} s with the point-by-point region test "
          f"(twice per camera): {today / before:.2f}x the time ({before / today:.1f}x faster); "
          f"same message: {new_message == old}")  # fmt: skip
    fp32, int8 = MODELS / "unet.onnx", variant_path(MODELS / "unet.onnx", "int8")
    if fp32.is_file() and int8.is_file():
        m32 = OnnxModel(fp32, ["CPUExecutionProvider"], 2)
        m8 = OnnxModel(int8, ["CPUExecutionProvider"], 2)
        t32 = _timed(lambda: unet_probability(m32, image), args.repeat)
        t8 = _timed(lambda: unet_probability(m8, image), args.repeat)
        print(f"segmentation alone: FP32 {t32 * 1000:.0f} ms, INT8 {t8 * 1000:.0f} ms, "
              f"INT8 speed-up {t32 / t8:.2f}x")  # fmt: skip
    else:
        print("segmentation FP32 vs INT8: skipped (no edge/models/unet.onnx and unet.int8.onnx)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
