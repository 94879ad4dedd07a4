"""GPR unit throughput: sustained end-to-end traces/s, as a ratio to the survey requirement.

A vehicle at 80 km/h with 5 cm trace spacing makes 80 / 3.6 / 0.05 = 444 traces/s per
channel; a 16-channel array about 7,100 traces/s. This feeds synthetic raw 512-sample
traces (export.data.synth_bscan, concatenated scans with known reflectors) through the whole
:class:`edge.gpr.stream.CavityPipeline` -- processing chain, overlapping windows, ONNX
Runtime detector, hyperbola fit, positioning, de-duplication, messages -- in live-sized
chunks, and prints traces/s / 444 and / 7100, with the time per stage (what limits it).

    python3 bench/gpr.py [--traces 20000] [--chunk 64] [--channels 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

REQUIRED_ONE_CHANNEL = 80 / 3.6 / 0.05  # traces/s
REQUIRED_ARRAY = 16 * REQUIRED_ONE_CHANNEL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=20000, help="traces per channel")
    parser.add_argument("--chunk", type=int, default=64, help="traces per live chunk")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--model", default="default")
    args = parser.parse_args(argv)

    from edge.config import StationConfig
    from edge.errors import GeoEdgeError
    from edge.gpr.stream import CavityPipeline, build_detector
    from edge.gpr.traces import TraceBlock
    from export.data.synth_bscan import synthesize

    rng = np.random.default_rng(0)
    scans = []
    while sum(s.data.shape[1] for s in scans) < args.traces:
        scans.append(synthesize(rng, n_traces=256, n_samples=512))
    dt_ns = scans[0].dt_ns
    data = np.concatenate([s.data for s in scans], axis=1)[:, : args.traces]
    samples = np.repeat(data[None].astype(np.float32), args.channels, axis=0)
    first = TraceBlock(
        samples[:, :, :0],
        dt_ns,
        time_zero_sample=scans[0].t0_index,
        trace_spacing_m=0.05,
        antenna_mhz=scans[0].frequency_ghz * 1000,
        source="synthetic",
    )
    cfg = StationConfig.model_validate(
        {
            "station": {"id": "bench", "kind": "gpr", "crs": "EPSG:5186"},
            "gpr": {"source": "synthetic", "detector": {"model": args.model}},
        }
    )
    try:
        detector = build_detector(cfg.gpr)
        pipe = CavityPipeline(cfg, first, detector)
    except GeoEdgeError as exc:
        print(f"bench/gpr.py: error: {exc}", file=sys.stderr)
        return 2
    n = samples.shape[2]
    start = time.perf_counter()
    messages = 0
    for i in range(0, n, args.chunk):
        block = TraceBlock(
            samples[:, :, i : i + args.chunk],
            dt_ns,
            scans[0].t0_index,
            first_trace=i,
            trace_spacing_m=0.05,
            source="synthetic",
        )
        messages += len(pipe.feed(block))
    messages += len(pipe.flush())
    wall = time.perf_counter() - start
    rate = n * args.channels / wall
    stats = pipe.stats()
    print(
        f"cpu cores {os.cpu_count()}, {args.channels} channel(s) x {n} traces x 512 samples, "
        f"chunk {args.chunk}, {stats['windows']} windows, {messages} cavity messages"
    )
    print(f"sustained {rate:.0f} traces/s (all channels) in {wall:.2f} s")
    print(f"ratio to 444 traces/s (80 km/h, 5 cm, 1 channel):   {rate / REQUIRED_ONE_CHANNEL:.2f}")
    print(f"ratio to 7100 traces/s (16-channel array):           {rate / REQUIRED_ARRAY:.3f}")
    accounted = sum(stats[k] for k in ("processing_s", "detector_s", "localisation_s"))
    for key in ("processing_s", "detector_s", "localisation_s"):
        print(f"  {key[:-2]:<13} {stats[key]:7.2f} s  {100 * stats[key] / wall:5.1f} %")
    print(f"  {'other':<13} {wall - accounted:7.2f} s  {100 * (wall - accounted) / wall:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
