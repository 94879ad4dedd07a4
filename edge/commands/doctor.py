"""``geoedge doctor [--config FILE] [--json]``: what this machine has for GeoEdge.

One line per piece the station depends on: Python, numpy, the OpenCV build (FFmpeg for files
and RTSP, GStreamer for the Jetson's hardware decoder), ONNX Runtime and its execution
providers, TensorRT, the GPU and CUDA, the TensorRT engine cache (where, this machine's key,
whether the cached engines match it), free disk, the broker of a config, the clock. Each is
``ok``, ``missing`` or ``note`` with what to do about it. Exit 0: a report, even of missing
pieces (this is a diagnosis, not a gate).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.models.engine_cache import Gpu

#: A Jetson announces itself here (L4T release).
TEGRA_RELEASE = Path("/etc/nv_tegra_release")


@dataclass(frozen=True)
class Finding:
    """One piece: its ``state`` (``ok``, ``missing``, ``note``), what was found, what to do."""

    piece: str
    state: str
    found: str
    fix: str = ""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor", help="what this machine has for GeoEdge and what to do about what it lacks"
    )
    parser.add_argument(
        "--config", type=Path, help="also check this station's broker and storage folders"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    findings = diagnose(args.config)
    if args.json:
        print(json.dumps({"findings": [asdict(f) for f in findings]}, indent=2))
    else:
        for f in findings:
            fix = f"  -> {f.fix}" if f.fix else ""
            print(f"{f.state:8s} {f.piece:14s} {f.found}{fix}")
    return 0


def diagnose(config: Path | None = None) -> list[Finding]:
    """Every finding, in the order the text report prints them."""
    jetson = TEGRA_RELEASE.is_file()
    findings = [
        _python(),
        _version("numpy", "numpy"),
        _opencv(jetson),
        _onnxruntime(jetson),
        _tensorrt(jetson),
        _gpu(),
        _engine_cache(),
        _clock(),
    ]
    if config is not None:
        findings += _station(config)
    else:
        findings.append(_disk(Path.cwd()))
    return findings


def _python() -> Finding:
    v = sys.version_info
    found = f"{platform.python_version()} ({sys.executable})"
    if v < (3, 10):
        return Finding("python", "missing", found, "GeoEdge needs Python 3.10 or newer")
    return Finding("python", "ok", found)


def _version(piece: str, dist: str) -> Finding:
    try:
        return Finding(piece, "ok", importlib.metadata.version(dist))
    except importlib.metadata.PackageNotFoundError:
        return Finding(piece, "missing", "not installed", f"pip install {dist}")


def _opencv(jetson: bool) -> Finding:
    try:
        import cv2
    except ImportError:
        return Finding("opencv", "missing", "not installed", "pip install 'geoedge[cpu]'")
    info = cv2.getBuildInformation()
    has = {
        name: bool(re.search(rf"^\s*{name}:\s*YES", info, re.M)) for name in ("FFMPEG", "GStreamer")
    }
    found = f"{cv2.__version__}, FFmpeg {'yes' if has['FFMPEG'] else 'no'}, "
    found += f"GStreamer {'yes' if has['GStreamer'] else 'no'}"
    if not has["FFMPEG"]:
        return Finding("opencv", "missing", found, "video files and RTSP need an FFmpeg build")
    if not has["GStreamer"]:
        fix = "GStreamer camera pipelines (Jetson NVDEC) need an OpenCV built with it: on a "
        fix += "Jetson, JetPack's, seen from a venv made with --system-site-packages"
        return Finding("opencv", "note" if not jetson else "missing", found, fix)
    return Finding("opencv", "ok", found)


def _onnxruntime(jetson: bool) -> Finding:
    try:
        import onnxruntime
    except ImportError:
        return Finding("onnxruntime", "missing", "not installed", "pip install 'geoedge[cpu]'")
    providers = onnxruntime.get_available_providers()
    found = f"{onnxruntime.__version__}, providers {', '.join(providers)}"
    installed = [d for d in ("onnxruntime", "onnxruntime-gpu") if _installed(d)]
    if len(installed) > 1:
        fix = "two ONNX Runtimes shadow each other: pip uninstall onnxruntime onnxruntime-gpu, "
        fix += "then install the one this machine needs"
        return Finding("onnxruntime", "missing", f"{found}; both packages installed", fix)
    gpu = {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(providers)
    if gpu:
        return Finding("onnxruntime", "ok", found)
    fix = "CPU only: models run on the CPU"
    if jetson:
        fix = "install onnxruntime-gpu for JetPack (and never beside the CPU onnxruntime)"
    return Finding("onnxruntime", "missing" if jetson else "note", found, fix)


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _tensorrt(jetson: bool) -> Finding:
    try:
        version = importlib.metadata.version("tensorrt")
    except importlib.metadata.PackageNotFoundError:
        fix = "TensorRT comes with JetPack; the venv must see it (--system-site-packages)"
        if not jetson:
            fix = "not needed off a Jetson/NVIDIA GPU; the CPU path is used"
        return Finding("tensorrt", "missing" if jetson else "note", "not installed", fix)
    return Finding("tensorrt", "ok", version)


def _gpu() -> Finding:
    if TEGRA_RELEASE.is_file():
        release = TEGRA_RELEASE.read_text(errors="replace").splitlines()[0].strip("# ")
        return Finding("gpu", "ok", f"Jetson ({release})")
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return Finding("gpu", "note", "none found (no nvidia-smi, not a Jetson)", "CPU inference")
    run = subprocess.run(
        [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if run.returncode != 0:
        return Finding("gpu", "missing", "nvidia-smi fails", run.stderr.strip()[:120])
    return Finding("gpu", "ok", run.stdout.strip().replace("\n", "; "))


def _engine_cache() -> Finding:
    from edge.models.engine_cache import cache_root, cuda_gpu, tensorrt_version

    try:
        import onnxruntime
    except ImportError:
        ort_version = None
    else:
        ort_version = str(onnxruntime.__version__)
    return engine_cache_finding(cache_root(), tensorrt_version(), ort_version, cuda_gpu())


def engine_cache_finding(
    root: Path, tensorrt: str | None, onnxruntime: str | None, gpu: Gpu | None
) -> Finding:
    """Where TensorRT engines are cached, this machine's part of their key, and how many
    cached engine folders match it (the others are never loaded: stale after a JetPack
    upgrade, or from another GPU)."""
    from edge.models.engine_cache import cache_entries, machine_key

    if tensorrt is None or gpu is None:
        missing = "no TensorRT" if tensorrt is None else "no CUDA GPU"
        fix = "engines are built on first start on a GPU with TensorRT (JetPack)"
        return Finding("engine cache", "note", f"{root} ({missing} here: not used)", fix)
    key = machine_key(tensorrt, onnxruntime, gpu.name, gpu.sm)
    entries = cache_entries(tensorrt, onnxruntime, gpu, root)
    stale = [e for e in entries if not e.matches]
    built = sum(1 for e in entries if e.matches and e.engines)
    found = f"{root}, key {key}: {built} model(s) with an engine for this machine"
    if not stale:
        return Finding("engine cache", "ok", found)
    found += f", {len(stale)} stale folder(s) (other TensorRT, ONNX Runtime or GPU)"
    fix = f"never loaded; free the disk with: rm -r {' '.join(str(e.folder) for e in stale[:3])}"
    return Finding("engine cache", "note", found, fix + (" ..." if len(stale) > 3 else ""))


def _clock() -> Finding:
    tool = shutil.which("timedatectl")
    if tool is None:
        return Finding("clock", "note", "timedatectl not found", "check NTP by hand: times are UTC")
    run = subprocess.run(
        [tool, "show", "-p", "NTPSynchronized", "--value"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    state = run.stdout.strip()
    if state == "yes":
        return Finding("clock", "ok", "NTP synchronised")
    if state == "no":
        fix = "enable NTP (timedatectl set-ntp true): collection windows and ids use UTC"
        return Finding("clock", "missing", "not synchronised", fix)
    return Finding("clock", "note", "cannot tell (no systemd here)", "check NTP by hand")


def _disk(folder: Path) -> Finding:
    usage = shutil.disk_usage(folder)
    found = f"{usage.free / 1024**3:.1f} GiB free in {folder}"
    if usage.free < 1024**3:
        return Finding("disk", "missing", found, "free space: under 1 GiB")
    return Finding("disk", "ok", found)


def _station(path: Path) -> list[Finding]:
    from edge.config import load_config
    from edge.errors import GeoEdgeError

    try:
        config = load_config(path)
    except GeoEdgeError as exc:
        return [Finding("config", "missing", str(exc), "fix the key it names")]
    out = [Finding("config", "ok", f"{path}: station {config.station.id}")]
    folder = config.outbox.path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    out.append(_disk(folder))
    mqtt = config.mqtt
    if not mqtt.enabled:
        out.append(Finding("broker", "note", "MQTT disabled in the config"))
        return out
    try:
        with socket.create_connection((mqtt.host, mqtt.port), timeout=3.0):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc)
        fix = "results queue in the outbox until it answers"
        out.append(Finding("broker", "missing", f"{mqtt.host}:{mqtt.port}: {why}", fix))
    else:
        out.append(Finding("broker", "ok", f"{mqtt.host}:{mqtt.port} answers"))
    return out
