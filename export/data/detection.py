"""Detection windows and datasets for the cavity detector.

A detector window is a processed B-scan resampled to ``WINDOW`` = (samples, traces) and
normalised with :func:`edge.gpr.detector.normalise_window`. Boxes are YOLO rows
``(class, cx, cy, w, h)`` normalised to the window: x along traces, y along two-way time,
pixel ``(i, j)`` covering ``[j/W, (j+1)/W) x [i/H, (i+1)/H)``.

Synthetic raw scans are processed by the GPR unit's own chain (:mod:`edge.gpr.processing`,
the default steps of ``[gpr.processing]``: time-zero, dewow, band-pass, background removal,
SEC gain), so training sees what deployment sees. The antenna frequency the chain is told
is jittered around the true one (a station config often states it only roughly).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.config.gpr import default_processing
from edge.errors import InputError
from edge.gpr.detector import WINDOW, normalise_window
from edge.gpr.processing import ProcessingChain, TraceGeometry
from export.data.synth_bscan import CLASSES, BScan, synthesize


def process_scan(scan: BScan, antenna_mhz: float | None = None) -> np.ndarray:
    """The deployment chain over a raw scan; ``(samples, traces)`` from time zero on.

    Rows after time zero only: the rows the chain zero-fills at the end are dropped.
    """
    geometry = TraceGeometry(
        scan.dt_ns, scan.data.shape[0], scan.t0_index, antenna_mhz or scan.frequency_ghz * 1e3
    )
    out = ProcessingChain(default_processing(), geometry).process(scan.data)[0]
    return out[: scan.data.shape[0] - scan.t0_index]


def to_window(processed: np.ndarray) -> np.ndarray:
    """Resample a processed ``(samples, traces)`` B-scan to the window size and normalise."""
    h, w = WINDOW
    resized = cv2.resize(processed.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    return normalise_window(resized)


def window_sample(
    scan: BScan, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """Processed, normalised window of a synthetic scan and its YOLO boxes."""
    rng = rng or np.random.default_rng(0)
    antenna_mhz = scan.frequency_ghz * 1e3 * float(np.exp(rng.uniform(-0.5, 0.5)))
    processed = process_scan(scan, antenna_mhz)
    nsamp, ntr = processed.shape
    boxes = []
    for t in scan.truths:
        x0, x1 = t.box_traces[0] / ntr, (t.box_traces[1] + 1.0) / ntr
        y0, y1 = t.box_time_ns[0] / scan.dt_ns / nsamp, t.box_time_ns[1] / scan.dt_ns / nsamp
        x0, x1, y0, y1 = (float(np.clip(v, 0.0, 1.0)) for v in (x0, x1, y0, y1))
        boxes.append((CLASSES.index(t.cls), (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0))
    return to_window(processed), boxes


def read_dataset(root: Path) -> tuple[list[Path], list[np.ndarray], tuple[str, ...]]:
    """Image paths, label arrays ``(n, 5)`` and class names of a YOLO-style dataset.

    ``root/images/*.npy`` (float32 ``(samples, traces)`` processed windows) or ``*.png``
    (grey), ``root/labels/<stem>.txt`` (``class cx cy w h`` normalised; missing = no object),
    optional ``root/classes.txt`` (one name a line; default ``cavity``, ``pipe``).
    """
    images = sorted(p for p in (root / "images").glob("*") if p.suffix in (".npy", ".png"))
    labels = []
    for p in images:
        lp = root / "labels" / f"{p.stem}.txt"
        rows = np.loadtxt(lp, ndmin=2) if lp.is_file() and lp.stat().st_size else np.zeros((0, 5))
        labels.append(rows.reshape(-1, 5).astype(np.float32))
    names = root / "classes.txt"
    classes = tuple(names.read_text().split()) if names.is_file() else CLASSES
    return images, labels, classes


def load_window(path: Path) -> np.ndarray:
    """A dataset image as a normalised detector window (resampled when its size differs)."""
    if path.suffix == ".npy":
        image = np.load(path).astype(np.float32)
    else:
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if grey is None:
            raise InputError(f"cannot read image {path}")
        image = grey.astype(np.float32)
    if image.shape != WINDOW:
        image = cv2.resize(image, WINDOW[::-1], interpolation=cv2.INTER_AREA)
    return normalise_window(image)


def write_dataset(out: Path, count: int, seed: int = 0) -> None:
    """Write ``count`` processed windows with YOLO labels and JSON ground truth under ``out``."""
    for sub in ("images", "labels", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    rng = np.random.default_rng(seed)
    for i in tqdm(range(count), desc="synthetic B-scans", unit="scan"):
        scan = synthesize(rng, n_traces=int(rng.integers(128, 385)))
        window, boxes = window_sample(scan, rng)
        name = f"bscan_{i:06d}"
        np.save(out / "images" / f"{name}.npy", window)
        lines = [f"{int(c)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}" for c, cx, cy, w, h in boxes]
        (out / "labels" / f"{name}.txt").write_text("".join(s + "\n" for s in lines))
        meta = {
            "dt_ns": scan.dt_ns,
            "dx_m": scan.dx_m,
            "frequency_ghz": scan.frequency_ghz,
            "truths": [asdict(t) for t in scan.truths],
        }
        (out / "truth" / f"{name}.json").write_text(json.dumps(meta))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic GPR detection dataset.")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--count", type=int, required=True, help="number of B-scan windows")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_dataset(args.out, args.count, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
