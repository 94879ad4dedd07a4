"""TimeX accumulation throughput and memory (``python3 bench/timex.py``).

Frames: 1920x1080 RGB (3 x uint8), random. Prints, measured in the same run:

- the throughput of :meth:`edge.beach.products.ProductAccumulator.add` (sums for mean and
  std, max, min, first frame) as a RATIO to a plain ``numpy`` copy of the same frames
  (``np.copyto`` into a preallocated frame), and for context the ratio of the
  straightforward numpy implementation (float64 ``+=`` of the frame and its square),
  and the one-off cost of finishing the products;
- the peak Python-heap memory (tracemalloc; numpy buffers are traced) over a
  600-frame collection, against the size of one frame and of 600 frames.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from edge.beach.products import ProductAccumulator

SHAPE = (1080, 1920, 3)


def best_per_frame(run, frames: list[np.ndarray], repeats: int) -> float:
    """Best-of-``repeats`` seconds per frame of ``run(frames)``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(frames)
        best = min(best, time.perf_counter() - t0)
    return best / len(frames)


def numpy_copy(frames: list[np.ndarray]) -> None:
    dst = np.empty(SHAPE, np.uint8)
    for frame in frames:
        np.copyto(dst, frame)


def accumulator(frames: list[np.ndarray]) -> None:
    acc = ProductAccumulator()
    for frame in frames:
        acc.add(frame)


def naive_numpy(frames: list[np.ndarray]) -> None:
    s = np.zeros(SHAPE, np.float64)
    s2 = np.zeros(SHAPE, np.float64)
    hi = frames[0].copy()
    lo = frames[0].copy()
    for frame in frames:
        f = frame.astype(np.float64)
        s += f
        s2 += f * f
        np.maximum(hi, frame, out=hi)
        np.minimum(lo, frame, out=lo)


def peak_memory(n_frames: int, source: np.ndarray) -> int:
    """Peak traced bytes while accumulating ``n_frames`` frames (one reused input frame,
    as a capture hands over one decoded frame at a time)."""
    tracemalloc.start()
    acc = ProductAccumulator()
    for i in range(n_frames):
        source[0, 0, 0] = i % 256  # a new frame's content, same buffer
        acc.add(source)
    acc.images()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=32, help="frames per timing run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--collection", type=int, default=600, help="frames for peak memory")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, SHAPE, dtype=np.uint8) for _ in range(args.frames)]
    base = best_per_frame(numpy_copy, frames, args.repeats)
    ours = best_per_frame(accumulator, frames, args.repeats)
    naive = best_per_frame(naive_numpy, frames, args.repeats)
    mb = 1024 * 1024
    frame_mb = np.prod(SHAPE) / mb
    print(f"frames: {args.frames} x 1920x1080 RGB uint8 ({frame_mb:.1f} MiB each)")
    print(f"{'numpy copy (baseline):':24s}{base * 1e3:7.2f} ms/frame")
    for label, value in (("ProductAccumulator.add", ours), ("naive numpy float64", naive)):
        print(f"{label + ':':24s}{value * 1e3:7.2f} ms/frame = {value / base:5.1f} x numpy copy")
    print(f"accumulator speed-up over naive numpy: {naive / ours:.1f} x")
    acc = ProductAccumulator()
    for frame in frames:
        acc.add(frame)
    t0 = time.perf_counter()
    acc.images()
    finish = time.perf_counter() - t0
    print(
        f"finishing (five uint8 products): {finish * 1e3:.0f} ms once per collection "
        f"= {finish / base:.0f} x one frame copy"
    )
    peak = peak_memory(args.collection, frames[0].copy())
    print(
        f"peak memory over a {args.collection}-frame collection: {peak / mb:.0f} MiB "
        f"= {peak / mb / frame_mb:.1f} frames "
        f"(the frames themselves: {args.collection * frame_mb:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
