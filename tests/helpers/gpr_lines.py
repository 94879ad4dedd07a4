"""Synthetic GPR lines with known targets, a SEG-Y writer and a GPR unit config for tests."""

from __future__ import annotations

import struct
import textwrap
from pathlib import Path

import numpy as np
import segyio

from export.data.synth_bscan import BScan, Truth, cylinder_scene
from tests.helpers.data import MODELS

#: The shipped detector.
MODEL = MODELS / "detector.onnx"


def synthetic_line() -> tuple[BScan, np.ndarray, list[tuple[Truth, int]]]:
    """A 400 MHz line of 768 traces (5 cm) over ground of relative permittivity 9
    (v = 0.0999 m/ns) with two air-filled cavities and two metal pipes at known places
    (export.data.synth_bscan.cylinder_scene, gprMax-style ground truth)."""
    targets = [
        ("cavity", 6.0, 0.60, 0.30),
        ("pipe", 14.0, 0.80, 0.05),
        ("cavity", 24.0, 1.00, 0.40),
        ("pipe", 32.0, 1.20, 0.10),
    ]
    scan = cylinder_scene(9.0, targets, frequency_ghz=0.4, n_traces=768, seed=3)
    return scan, scan.data, [(t, 0) for t in scan.truths]


def write_segy(path: Path, data: np.ndarray, dt_ps: int, dx_m: float) -> None:
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 5, list(range(data.shape[0])), data.shape[1]
    with segyio.create(str(path), spec) as f:
        for i in range(data.shape[1]):
            f.header[i] = {
                segyio.TraceField.SourceX: round(i * dx_m * 1000),
                segyio.TraceField.SourceGroupScalar: -1000,
            }
            f.trace[i] = data[:, i].astype(np.float32)
        f.bin.update(hdt=dt_ps, format=5)


def gpr_config(tmp_path: Path, source: str, extra: str = "") -> Path:
    path = tmp_path / "gpr.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [station]
            id = "gpr-test"
            kind = "gpr"
            crs = "EPSG:5186"

            [gpr]
            source = "{source}"
            antenna_mhz = 400.0

            [gpr.positioning]
            trace_spacing_m = 0.05

            [outbox]
            path = "state/outbox.sqlite"
            """
        )
        + extra
    )
    return path


def write_dzt(
    path: Path,
    data: np.ndarray,
    range_ns: float,
    antenna: str,
    scans_per_m: float,
    position_ns: float = 0.0,
) -> None:
    """A one-channel 16-bit GSSI DZT of ``data`` ``(samples, traces)`` (scaled to the 16-bit
    range, offset 32768) with a 1024-byte header: ``rh_data`` 1024, ``rhf_position``
    ``position_ns``, antenna name ``antenna`` (layout: edge.gpr.formats.dzt)."""
    head = bytearray(1024)
    n_samples = data.shape[0]
    struct.pack_into("<5H", head, 0, 0x00FF, 1024, n_samples, 16, 0)
    struct.pack_into("<5f", head, 10, 100.0, scans_per_m, 0.0, position_ns, range_ns)
    struct.pack_into("<H", head, 52, 1)
    struct.pack_into("<f", head, 54, 9.0)
    head[98 : 98 + len(antenna)] = antenna.encode("ascii")
    scale = 30000.0 / max(float(np.abs(data).max()), 1e-12)
    words = np.clip(np.round(data * scale) + 32768, 0, 65535).astype("<u2")
    words[:2] = 0  # header words: scan counter, user mark (none)
    path.write_bytes(bytes(head) + words.T.tobytes())
