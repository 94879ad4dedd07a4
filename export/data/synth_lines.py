"""Synthetic survey lines processed by the GPR unit's own pipeline, for detector training.

:mod:`export.data.detection` renders short scans and processes them with the processing
chain alone; the device instead reads a whole line (a DZT file or a stream), processes it
in chunks and cuts windows of ``width_traces x scale`` traces across it. This module renders
lines like the demo's (:func:`export.data.samples.gpr_line`: a 60 m, 400 MHz GSSI line with
direct wave, antenna ringing, undulating layers and stones) with random targets, layers and
noise seeds, writes each as a DZT and runs the device pipeline over it
(:func:`export.data.device_lines.device_processed`), so training sees exactly the
processed line the detector sees. The demo line itself (seed 11, :data:`GPR_TARGETS`) is
never written here: it stays a check.

``python -m export.data.synth_lines --out DIR --count N --seed S`` writes
``DIR/line_NNNN.npy`` (float16 processed line, ``(samples, traces)``, rows from time zero)
and ``DIR/line_NNNN.json`` (``dt_ns`` of the rows and the targets' visible boxes: class,
first and last trace, earliest and latest two-way time in ns). :func:`crop` cuts a
training window with its YOLO boxes from such a line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.config.gpr import WindowsSection
from edge.gpr.stream import DEFAULT_WIDTH_TRACES
from export.data.device_lines import device_processed
from export.data.samples import (
    GPR_DX_M,
    GPR_F_GHZ,
    GPR_RANGE_NS,
    GPR_SAMPLES,
    GPR_T0_INDEX,
    GPR_TRACES,
    gpr_line,
    line_reflectors,
    write_dzt,
)
from export.data.synth_bscan import CLASSES, Reflector, _beam_half_angle, _truth, apex_snr

#: The demo line's seed: never used for a training line.
DEMO_SEED = 11
#: Window widths the device cuts by default (``[gpr.windows] scales`` of its 256-trace window).
CROP_TRACES = tuple(round(s * DEFAULT_WIDTH_TRACES) for s in WindowsSection().scales)
#: A target's box must lie at least this much inside a crop to be labelled; a target cut
#: more than that with its box overlapping the crop by more than ``AMBIGUOUS`` rejects it.
KEEP_INSIDE, AMBIGUOUS = 0.5, 0.15
#: Targets whose apex echo is under this many noise std are left out of a line. The
#: synthetic scans' 2 (``MIN_SNR``) leaves targets under 1.8 m of this ground invisible once
#: stones, layers and the gain's noise are there (box no brighter than its flanks); the
#: demo's weakest target (a 0.1 m pipe 1.3 m deep) has 7.5.
MIN_LINE_SNR = 5.0


@dataclass(frozen=True)
class LineBox:
    """A target's visible hyperbola in a line: traces (0-based) and two-way time (ns)."""

    cls: str
    trace0: float
    trace1: float
    apex_trace: float
    time0_ns: float
    time1_ns: float


@dataclass
class Line:
    """A processed survey line ``(samples, traces)`` (rows every ``dt_ns`` from time zero)."""

    data: np.ndarray
    dt_ns: float
    boxes: list[LineBox]


def random_targets(rng: np.random.Generator) -> list[tuple[str, float, float, float]]:
    """1-5 targets ``(class, position m, depth of the top m, radius m)`` at least 5 m apart."""
    span = (GPR_TRACES - 1) * GPR_DX_M
    out: list[tuple[str, float, float, float]] = []
    for _ in range(int(rng.integers(1, 6))):
        x0 = float(rng.uniform(3.0, span - 3.0))
        if any(abs(x0 - o[1]) < 5.0 for o in out):
            continue
        cls = CLASSES[int(rng.integers(0, 2))]
        radius = float(rng.uniform(0.1, 0.5) if cls == "cavity" else rng.uniform(0.02, 0.15))
        out.append((cls, x0, float(rng.uniform(0.35, 2.0)), radius))
    return out


def random_layers(rng: np.random.Generator) -> list[tuple[float, float]]:
    """0-3 ground layers ``(two-way time ns, amplitude)``, either polarity."""
    return [
        (float(rng.uniform(8.0, 52.0)), float(rng.choice([-1, 1]) * rng.uniform(0.08, 0.35)))
        for _ in range(int(rng.integers(0, 4)))
    ]


def raw_line(seed: int, path: Path) -> list[Reflector]:
    """Write the random line of ``seed`` as a DZT at ``path``; its (visible) targets."""
    if seed == DEMO_SEED:
        raise ValueError(f"seed {DEMO_SEED} is the demo line's; it is kept out of training")
    rng = np.random.default_rng(seed)
    targets, layers = random_targets(rng), random_layers(rng)
    # Targets too weak to see are neither drawn nor labelled (a label on noise teaches the
    # detector to see targets in noise).
    drawn = line_reflectors(targets)
    visible = [t for t, ref in zip(targets, drawn, strict=True) if _snr(ref) >= MIN_LINE_SNR]
    data, reflectors = gpr_line(seed, visible, layers)
    write_dzt(path, data)
    return reflectors


def render(seed: int, workdir: Path) -> Line:
    """One random line, written as a DZT and processed by the device pipeline."""
    path = workdir / f"line_{seed}.DZT"
    reflectors = raw_line(seed, path)
    processed = device_processed(str(path))
    path.unlink()
    dt = GPR_RANGE_NS / GPR_SAMPLES
    t_max = (GPR_SAMPLES - 1 - GPR_T0_INDEX) * dt
    x = np.arange(GPR_TRACES) * GPR_DX_M
    half_angle = _beam_half_angle(3.0)  # gpr_line's beam exponent
    boxes = []
    for ref in reflectors:
        t = _truth(ref, x, GPR_DX_M, half_angle, GPR_F_GHZ, t_max)
        boxes.append(
            LineBox(t.cls, *t.box_traces, t.apex_trace, t.box_time_ns[0], t.box_time_ns[1])
        )
    return Line(processed, dt, boxes)


def _snr(ref: Reflector) -> float:
    """Apex amplitude over noise in :func:`gpr_line` (amplitude 12, attenuation 0.02/ns,
    noise 0.01 growing by 1 per 20 ns)."""
    return apex_snr(ref, GPR_F_GHZ, 0.02, 12.0, 0.01 * (1 + ref.apex_time_ns / 20.0))


def crop(
    line: Line, rng: np.random.Generator, window_hw: tuple[int, int], tries: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """A random device-like window of ``line`` resized to ``window_hw`` and its YOLO boxes.

    The width is one of :data:`CROP_TRACES` (+-15 %), the whole trace in time, as the
    device's windows at scales 1, 2 and 4. Targets cut by the crop edge (apex outside, or
    less than half the box inside) make the crop ambiguous; another one is drawn. Boxes are
    ``(class, cx, cy, w, h)`` normalised to the window (float32 ``(n, 5)``); the window is
    not normalised.
    """
    rows, n = line.data.shape
    boxes: list[tuple[int, float, float, float, float]] = []
    c0, width = 0, n
    for _ in range(tries):
        width = CROP_TRACES[int(rng.integers(len(CROP_TRACES)))]
        width = min(n, round(width * rng.uniform(0.85, 1.15)))
        c0 = int(rng.integers(0, n - width + 1))
        boxes, ambiguous = [], False
        for b in line.boxes:
            inside = min(b.trace1, c0 + width) - max(b.trace0, c0)
            frac = max(0.0, inside) / max(b.trace1 - b.trace0, 1e-6)
            if c0 <= b.apex_trace < c0 + width and frac >= KEEP_INSIDE:
                x0 = (max(b.trace0, c0) - c0) / width
                x1 = (min(b.trace1 + 1.0, c0 + width) - c0) / width
                y0 = float(np.clip(b.time0_ns / line.dt_ns / rows, 0.0, 1.0))
                y1 = float(np.clip(b.time1_ns / line.dt_ns / rows, 0.0, 1.0))
                boxes.append((CLASSES.index(b.cls), (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0))
            elif frac > AMBIGUOUS:
                ambiguous = True
        if not ambiguous:
            break
    else:
        boxes = []  # every draw cut a target: fall back to a crop without labels...
        c0, width = _empty_span(line, n)  # ...where no target lies
    h, w = window_hw
    window = cv2.resize(
        np.ascontiguousarray(line.data[:, c0 : c0 + width], dtype=np.float32),
        (w, h),
        interpolation=cv2.INTER_AREA,
    )
    return window, np.array(boxes, np.float32).reshape(-1, 5)


def _empty_span(line: Line, n: int) -> tuple[int, int]:
    """The widest trace span of the line that no target box touches ``(first, width)``."""
    edges = sorted((max(0, int(b.trace0)), min(n, int(np.ceil(b.trace1)) + 1)) for b in line.boxes)
    best, start = (0, 0), 0
    for a, b in edges:
        if a - start > best[1]:
            best = (start, a - start)
        start = max(start, b)
    if n - start > best[1]:
        best = (start, n - start)
    return best if best[1] >= 16 else (0, n)


def save(line: Line, out: Path, name: str) -> None:
    """Write a line as float16, scaled to a unit 99.9th percentile of |amplitude| (the
    detector's normalisation does not depend on scale; float16 overflows at 65,504)."""
    scale = float(np.percentile(np.abs(line.data), 99.9)) or 1.0
    np.save(out / f"{name}.npy", (line.data / scale).astype(np.float16))
    meta = {"dt_ns": line.dt_ns, "boxes": [vars(b) for b in line.boxes]}
    (out / f"{name}.json").write_text(json.dumps(meta))


def load(root: Path) -> list[Line]:
    """Every line written under ``root`` by :func:`write_lines`."""
    lines = []
    for path in sorted(root.glob("line_*.npy")):
        meta = json.loads(path.with_suffix(".json").read_text())
        boxes = [LineBox(**b) for b in meta["boxes"]]
        lines.append(Line(np.load(path), float(meta["dt_ns"]), boxes))
    return lines


def write_lines(out: Path, count: int, seed: int = 0) -> None:
    """Render and process ``count`` lines (seeds ``seed * 1000 + i``, never the demo's)."""
    out.mkdir(parents=True, exist_ok=True)
    seeds = [s for s in range(seed * 1000, seed * 1000 + count + 1) if s != DEMO_SEED][:count]
    with tempfile.TemporaryDirectory() as tmp:
        for i, s in enumerate(tqdm(seeds, desc="survey lines", unit="line")):
            save(render(s, Path(tmp)), out, f"line_{i:04d}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True, help="number of 60 m lines")
    parser.add_argument("--seed", type=int, default=1, help="line seeds are seed*1000 + i")
    args = parser.parse_args(argv)
    write_lines(args.out, args.count, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
