"""Open any supported GPR file by its extension; every reader yields a TraceBlock.

==========  ========================================  ====================
extension   format                                    module
==========  ========================================  ====================
.dzt        GSSI DZT (+ .dzg GPS, + .dzx XML)          :mod:`edge.gpr.formats.dzt`
.dt1        Sensors & Software DT1 + .hd               :mod:`edge.gpr.formats.dt1`
.rd3 .rd7   MALA RD3/RD7 + .rad (+ .cor GPS)           :mod:`edge.gpr.formats.rd3`
.sgy .segy  SEG-Y                                      :mod:`edge.gpr.formats.segy`
==========  ========================================  ====================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edge.errors import InputError
from edge.gpr.formats.dt1 import read_dt1
from edge.gpr.formats.dzt import read_dzt
from edge.gpr.formats.rd3 import read_rd3
from edge.gpr.formats.segy import read_segy
from edge.gpr.traces import TraceBlock

READERS: dict[str, Callable[[Path], TraceBlock]] = {
    ".dzt": read_dzt,
    ".dt1": read_dt1,
    ".rd3": read_rd3,
    ".rd7": read_rd3,
    ".sgy": read_segy,
    ".segy": read_segy,
}


def read_gpr(path: str | Path) -> TraceBlock:
    """Read a GPR file; InputError naming the file for a missing file or unknown extension."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(READERS))
        raise InputError(f"{path}: unknown GPR file type {path.suffix!r} (expected one of {known})")
    return reader(path)
