"""Rectification time (``python3 bench/rectify.py``).

The real CACO-01 case: two 2448x2048 colour TimeX images onto the 501x701 grid at
1 m (z = 0). Prints, measured in the same run, as RATIOS to a plain ``cv2.remap``
of one colour image with ready-made maps of the same 501x701 size (camera c1's own
maps, so the memory access pattern is the real one; the least any rectifier must do
per camera):

- the full :func:`edge.beach.geometry.rectify.rectify` (projection of every node into both cameras,
  sampling, blending);
- the per-collection part alone when the maps are cached (sampling both cameras and
  blending), i.e. what a fixed camera costs once its maps are known.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2

from edge.beach.geometry.camera import Camera
from edge.beach.geometry.grid import Grid
from edge.beach.geometry.rectify import camera_map, merge, rectify, sample

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "coastcam-caco01"
GRID = Grid((410935.0, 4655890.0), 55.0, (0.0, 500.0), (0.0, 700.0), 1.0)


def best_seconds(run, repeats: int) -> float:
    """Best-of-``repeats`` wall time of ``run()`` in seconds."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    cameras = [
        Camera.from_files(DATA / f"CACO01_C{i}_IOBest.json", DATA / f"CACO01_C{i}_EOBest.json")
        for i in (1, 2)
    ]
    images = [cv2.imread(str(DATA / f"1581508801.c{i}.timex.jpg")) for i in (1, 2)]
    pairs = list(zip(cameras, images, strict=True))
    maps = [camera_map(c, GRID, 0.0) for c in cameras]

    rows, cols = GRID.shape

    def plain_remap() -> None:
        cv2.remap(images[0], maps[0].map_u, maps[0].map_v, cv2.INTER_LINEAR)

    def full() -> None:
        rectify(pairs, GRID, 0.0)

    def cached() -> None:
        merge([sample(im, m) for im, m in zip(images, maps, strict=True)],
              [m.weight for m in maps])  # fmt: skip

    base = best_seconds(plain_remap, args.repeats)
    t_full = best_seconds(full, args.repeats)
    t_cached = best_seconds(cached, args.repeats)
    print(f"grid {cols}x{rows}, 2 cameras 2448x2048 colour, best of {args.repeats}")
    print(f"baseline: one cv2.remap of the same size, uint8 colour: {base * 1e3:.2f} ms")
    print(f"rectify (project + sample + blend), 2 cameras: {t_full / base:.1f}x baseline")
    print(f"cached maps (sample + blend), 2 cameras:       {t_cached / base:.1f}x baseline")


if __name__ == "__main__":
    main()
