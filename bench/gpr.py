"""GPR unit throughput: sustained end-to-end traces/s, as a ratio to the survey requirement;
the processing chain on DZT files of 1k-100k traces against readgssi's and ImpDAR's chains.

A vehicle at 80 km/h with 5 cm trace spacing makes 80 / 3.6 / 0.05 = 444 traces/s per
channel; a 16-channel array about 7,100 traces/s. This feeds synthetic raw 512-sample
traces (export.data.synth_bscan, concatenated scans with known reflectors) through the whole
:class:`edge.gpr.stream.CavityPipeline` -- processing chain, overlapping windows, ONNX
Runtime detector, hyperbola fit, positioning, de-duplication, messages -- in live-sized
chunks, and prints traces/s / 444 and / 7100, with the time per stage (what limits it).

Then, per size in ``--sizes`` (default 1k, 10k, 100k traces), a DZT file is written by
repeating the scans of the bundled GSSI file (``tests/data/gprpy/FILE____032.DZT``, 400 MHz,
512 samples, 16 bit), and each chain reads and processes that same file, in the same run
(median of ``--repeat`` interleaved rounds):

- GeoEdge: ``read_gpr`` + time-zero, dewow, band-pass 100-800 MHz, background removal
  (256 traces), SEC gain, in ``FILE_CHUNK_TRACES`` chunks (as ``geoedge gpr detect``);
- readgssi (``pip install readgssi``): ``readdzt`` + ``triangular`` band-pass 100-800 MHz
  (its vectorised zero-phase FIR, which it recommends over ``bp``, a per-trace loop at
  ~1,700 traces/s) + background removal (``bgr``, 257-trace boxcar); its dewow (marked
  experimental, a Python loop, ~500 traces/s) is left out, so readgssi does one step less;
- ImpDAR (``pip install impdar``): ``load_gssi`` + ``vertical_band_pass(100, 800)`` +
  ``winavg_hfilt(257)`` (its moving-average background removal);

a peer that is not installed prints "not installed". GeoEdge's peak traced memory
(tracemalloc, numpy buffers included) is printed per size. Last, on the largest file,
``geoedge gpr detect`` runs as a command: its wall time and peak RSS, and the start-up time
of ``geoedge gpr info``.

    python3 bench/gpr.py [--traces 20000] [--chunk 64] [--channels 1] [--scales 1 2]
                         [--sizes 1000,10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

REQUIRED_ONE_CHANNEL = 80 / 3.6 / 0.05  # traces/s
REQUIRED_ARRAY = 16 * REQUIRED_ONE_CHANNEL
REPO = Path(__file__).resolve().parents[1]
SOURCE_DZT = REPO / "tests" / "data" / "gprpy" / "FILE____032.DZT"
DZT_HEADER_BYTES = 1024
#: `geoedge gpr ARGS...` in this process, then its peak resident memory on stderr.
PEAK_RSS_WRAPPER = """
import runpy, sys
sys.argv = ["geoedge", "gpr", *sys.argv[1:]]
try:
    runpy.run_module("edge", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status:
        print(*(line.strip() for line in status if line.startswith("VmHWM:")), file=sys.stderr)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=20000, help="traces per channel")
    parser.add_argument("--chunk", type=int, default=64, help="traces per live chunk")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--model", default="default")
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        help="[gpr.windows] scales: window widths as multiples of the width (each >= 1; "
        "default: the config's default)",
    )
    parser.add_argument(
        "--sizes", default="1000,10000,100000", help="DZT file sizes in traces ('' = none)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds per size")
    args = parser.parse_args(argv)
    status = stream_throughput(args)
    sizes = [int(n) for n in args.sizes.split(",") if n.strip()]
    if status == 0 and sizes:
        with tempfile.TemporaryDirectory() as tmp:
            files = compare_chains(Path(tmp), sizes, args.repeat)
            detect_command(Path(tmp), files[-1])
    return status


def stream_throughput(args: argparse.Namespace) -> int:
    """Sustained end-to-end traces/s of the stream pipeline on synthetic traces."""

    from pydantic import ValidationError

    from edge.config import StationConfig
    from edge.errors import GeoEdgeError
    from edge.gpr.stream import CavityPipeline, build_detector
    from edge.gpr.traces import TraceBlock
    from export.data.synth_bscan import BScan, synthesize

    rng = np.random.default_rng(0)
    scans: list[BScan] = []
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
    try:
        cfg = StationConfig.model_validate(
            {
                "station": {"id": "bench", "kind": "gpr", "crs": "EPSG:5186"},
                # A live source (never opened here): the config checks a file source exists.
                "gpr": {
                    "source": "tcp://127.0.0.1:9",
                    "detector": {"model": args.model},
                    "windows": {} if args.scales is None else {"scales": args.scales},
                },
            }
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        print(f"bench/gpr.py: error: --scales: {err['msg']}", file=sys.stderr)
        return 2
    try:
        assert cfg.gpr is not None
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
        f"chunk {args.chunk}, window scales {cfg.gpr.windows.scales}, {stats['windows']} windows, "
        f"{messages} cavity messages"
    )
    print(f"sustained {rate:.0f} traces/s (all channels) in {wall:.2f} s")
    print(f"ratio to 444 traces/s (80 km/h, 5 cm, 1 channel):   {rate / REQUIRED_ONE_CHANNEL:.2f}")
    print(f"ratio to 7100 traces/s (16-channel array):           {rate / REQUIRED_ARRAY:.3f}")
    accounted = sum(stats[k] for k in ("processing_s", "detector_s", "localisation_s"))
    for key in ("processing_s", "detector_s", "localisation_s"):
        print(f"  {key[:-2]:<13} {stats[key]:7.2f} s  {100 * stats[key] / wall:5.1f} %")
    print(f"  {'other':<13} {wall - accounted:7.2f} s  {100 * (wall - accounted) / wall:5.1f} %")
    return 0


def write_dzt(path: Path, n_traces: int) -> Path:
    """A DZT of ``n_traces`` scans: the bundled file's header and its scans repeated (GSSI
    readers take the trace count from the file size)."""
    data = SOURCE_DZT.read_bytes()
    header, body = data[:DZT_HEADER_BYTES], data[DZT_HEADER_BYTES:]
    scan_bytes = 512 * 2
    scans = len(body) // scan_bytes
    repeats = -(-n_traces // scans)
    path.write_bytes(header + (body[: scans * scan_bytes] * repeats)[: n_traces * scan_bytes])
    return path


def geoedge_chain(path: Path) -> None:
    from edge.config.gpr import default_processing
    from edge.gpr.formats.readers import read_gpr
    from edge.gpr.processing import ProcessingChain, TraceGeometry
    from edge.gpr.stream import FILE_CHUNK_TRACES

    block = read_gpr(path)
    geometry = TraceGeometry(block.dt_ns, block.n_samples, 0.0, block.antenna_mhz)
    chain = ProcessingChain(default_processing(), geometry)
    for i in range(0, block.n_traces, FILE_CHUNK_TRACES):
        chain.process(block.samples[:, :, i : i + FILE_CHUNK_TRACES])


def readgssi_chain(path: Path) -> None:
    from readgssi import dzt, filtering

    with contextlib.redirect_stdout(io.StringIO()):
        header, data, _ = dzt.readdzt(str(path))
        ar = filtering.triangular(data[0], header, 100, 800)
        filtering.bgr(ar, header, win=257)


def impdar_chain(path: Path) -> None:
    from impdar.lib.load import load_gssi

    with contextlib.redirect_stdout(io.StringIO()):
        radar = load_gssi.load_gssi(str(path))
        radar.vertical_band_pass(100, 800)
        radar.winavg_hfilt(257)


def _installed(module: str) -> bool:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            __import__(module)
    except ImportError:
        return False
    return True


def compare_chains(tmp: Path, sizes: list[int], repeat: int) -> list[Path]:
    """Per file size: traces/s of each chain and GeoEdge's ratio to the peers."""
    chains: dict[str, Callable[[Path], None]] = {"geoedge": geoedge_chain}
    missing = []
    for name, module, chain in (
        ("readgssi", "readgssi.filtering", readgssi_chain),
        ("impdar", "impdar.lib.load.load_gssi", impdar_chain),
    ):
        if _installed(module):
            chains[name] = chain
        else:
            missing.append(name)
    print(f"\nprocessing chains on DZT files (400 MHz, 512 samples, 16 bit), median of {repeat}:")
    files = []
    for size in sizes:
        path = write_dzt(tmp / f"line_{size}.DZT", size)
        files.append(path)
        seconds: dict[str, list[float]] = {name: [] for name in chains}
        for _ in range(repeat):
            for name, chain in chains.items():
                t0 = time.perf_counter()
                chain(path)
                seconds[name].append(time.perf_counter() - t0)
        tracemalloc.start()
        geoedge_chain(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rate = {name: size / statistics.median(v) for name, v in seconds.items()}
        line = f"  {size:>7} traces: geoedge {rate['geoedge']:9,.0f} traces/s"
        for name in chains:
            if name != "geoedge":
                line += f"; {name} {rate[name]:9,.0f} ({rate['geoedge'] / rate[name]:.2f}x)"
        line += "".join(f"; {name} not installed" for name in missing)
        file_mb = path.stat().st_size / 2**20
        print(f"{line}; geoedge peak {peak / 2**20:.0f} MiB (file {file_mb:.0f} MiB)")
    return files


def detect_command(tmp: Path, path: Path) -> None:
    """`geoedge gpr detect` on ``path``: wall time and peak RSS; `gpr info` start-up time."""
    config = tmp / "gpr.toml"
    config.write_text(
        f'[station]\nid = "bench"\nkind = "gpr"\ncrs = "EPSG:5186"\n'
        f'[gpr]\nsource = "{path}"\n[outbox]\npath = "{tmp / "outbox.sqlite"}"\n'
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "edge", "gpr"]
    t0 = time.perf_counter()
    subprocess.run([*command, "info", str(path)], env=env, check=True, capture_output=True)
    info_s = time.perf_counter() - t0
    # The child reports its own peak RSS (VmHWM of its process image): getrusage's maxrss of
    # a child started by fork/vfork + exec counts the parent's pages it started with.
    args = ["detect", str(path), "--config", str(config), "--out", str(tmp / "c.json")]
    t0 = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_WRAPPER, *args], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    peak = [line for line in run.stderr.splitlines() if line.startswith("VmHWM:")]
    rss_mib = int(peak[-1].split()[1]) / 1024 if peak else float("nan")
    traces = int(path.stem.rsplit("_", 1)[1])
    print(f"\n`geoedge gpr info` start-up + run: {info_s:.2f} s")
    if run.returncode != 0:
        print(f"`geoedge gpr detect` failed: {run.stderr.strip().splitlines()[-1:]}")
        return
    print(f"`geoedge gpr detect` on {traces:,} traces: {wall:.1f} s "
          f"({traces / wall:,.0f} traces/s), peak RSS {rss_mib:.0f} MiB; "
          f"{run.stdout.strip()}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
