"""SEG-Y files of GPR profiles, read with segyio.

Geometry is ignored (a GPR profile is one line of traces in file order). The
sample interval is the binary header's Interval field (the trace headers'
TRACE_SAMPLE_INTERVAL when the binary one is 0). SEG-Y defines it in
microseconds, which cannot hold a GPR interval of a fraction of a ns, so GPR
writers store it in picoseconds: this reader takes it as picoseconds
(``dt_ns = interval / 1000``) unless told otherwise with ``interval_unit_ns``.
Trace positions come from the source X/Y of the trace headers (scaled by
SourceGroupScalar) when they vary, as along-track distance from the first trace.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.errors import InputError
from edge.gpr.traces import TraceBlock

_FORMAT_BITS = {1: 32, 2: 32, 3: 16, 5: 32, 8: 8, 6: 64, 9: 64, 10: 32, 11: 16, 16: 8}


def read_segy(path: str | Path, interval_unit_ns: float = 1e-3) -> TraceBlock:
    """A SEG-Y file as a single-channel :class:`TraceBlock` (see the module for dt)."""
    import segyio

    path = Path(path)
    try:
        with segyio.open(str(path), "r", ignore_geometry=True) as f:
            samples = np.asarray(f.trace.raw[:], dtype=np.float32).T
            interval = int(f.bin[segyio.BinField.Interval]) or int(
                f.header[0][segyio.TraceField.TRACE_SAMPLE_INTERVAL]
            )
            fmt = int(f.bin[segyio.BinField.Format])
            scalar = np.array(f.attributes(segyio.TraceField.SourceGroupScalar)[:], dtype=float)
            x = np.array(f.attributes(segyio.TraceField.SourceX)[:], dtype=float)
            y = np.array(f.attributes(segyio.TraceField.SourceY)[:], dtype=float)
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable SEG-Y file ({exc})") from None
    if samples.ndim != 2 or samples.shape[1] == 0:
        raise InputError(f"{path}: SEG-Y file has no traces")
    if interval <= 0:
        raise InputError(f"{path}: SEG-Y sample interval is {interval} (expected > 0)")
    factor = np.where(scalar < 0, -1.0 / np.where(scalar == 0, 1, scalar), scalar)
    factor[scalar == 0] = 1.0
    x, y = x * factor, y * factor
    distance = None
    if np.ptp(x) > 0 or np.ptp(y) > 0:
        distance = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    dt_ns = interval * interval_unit_ns
    return TraceBlock(
        samples=samples[np.newaxis],
        dt_ns=dt_ns,
        distance_m=distance,
        trace_spacing_m=float(np.median(np.diff(distance))) if distance is not None else None,
        bits=_FORMAT_BITS.get(fmt, 32),
        format="segy",
        source=str(path),
        header={"interval": interval, "interval_unit_ns": interval_unit_ns, "format_code": fmt},
    )
