"""Images to the control room: what fitting an image to ``mqtt.image_max_kb`` costs.

For three images a station sends (a B-scan snippet PNG as the GPR site writes it, a TimeX JPEG
as the beach site writes it, and a 1920 x 1080 TimeX PNG with sensor noise, the worst case),
prints the size in, the size and pixels sent, and the time :func:`edge.station.images.fit_image`
takes (median of ``--repeat``), with the ratio of the bytes sent to the bytes on disk.

    python3 bench/images.py [--max-kb 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from edge.gpr.report import snippet_png
from edge.station.images import fit_image

#: The ImageSender keeps this much of the bound for the message's JSON header (bytes).
HEADER_ROOM = 1024


def _images() -> list[tuple[str, bytes, str]]:
    rng = np.random.default_rng(0)
    # A B-scan window as the GPR site keeps it (512 samples x 256 traces), drawn at scale 2.
    bscan = rng.normal(0.0, 1.0, (512, 256)).astype(np.float32)
    bscan[100:104] += 8.0
    snippet = snippet_png(bscan, (100.0, 180.0, 160.0, 260.0))
    ramp = np.linspace(0, 200, 640)[None, :, None]
    timex = np.clip(ramp + rng.normal(0, 6, (512, 640, 3)), 0, 255).astype(np.uint8)
    jpeg = cv2.imencode(".jpg", timex, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    ramp = np.linspace(0, 200, 1920)[None, :, None]
    big = np.clip(ramp + rng.normal(0, 20, (1080, 1920, 3)), 0, 255).astype(np.uint8)
    png = cv2.imencode(".png", big)[1].tobytes()
    return [
        ("B-scan snippet PNG 512x1024", snippet, "image/png"),
        ("TimeX JPEG 640x512", jpeg, "image/jpeg"),
        ("TimeX PNG 1920x1080, noisy", png, "image/png"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-kb", type=int, default=200, help="mqtt.image_max_kb")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bound = args.max_kb * 1024 - HEADER_ROOM
    for name, data, content_type in _images():
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            fitted = fit_image(data, content_type, bound)
            times.append(time.perf_counter() - start)
        if fitted is None:
            print(f"{name}: {len(data) / 1024:.0f} KiB -> refused (cannot fit {args.max_kb} KiB)")
            continue
        print(
            f"{name}: {len(data) / 1024:.0f} KiB -> {fitted.content_type} "
            f"{fitted.width}x{fitted.height} {len(fitted.data) / 1024:.0f} KiB "
            f"(ratio {len(fitted.data) / len(data):.3f}) in {statistics.median(times) * 1e3:.0f} ms"
        )


if __name__ == "__main__":
    main()
