"""Bad traces in, a running unit out: what a corrupted chunk is turned into before processing.

One corrupted exponent byte on the wire makes a NaN sample; a broken clock makes a trace time
of 1e15 s; a misconfigured radar sends 4 samples per trace or a 10 ns sample interval. None of
these may stop a GPR unit. :func:`repair_block` fixes what can be fixed (non-finite samples set
to 0, the amplitude centre of every trace; impossible trace times dropped) and refuses what
cannot be processed (returns None: the chunk is dropped), counting each in
:class:`RepairStats`; the site logs one line per kind of problem per line. What only the
processing chain can refuse (a band-pass above Nyquist at dt = 10 ns) ends that line in the
site, not the unit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from edge.gpr.traces import TraceBlock

log = logging.getLogger(__name__)

#: Fewest samples per trace worth processing (a B-scan window is resampled to 256 rows).
MIN_SAMPLES = 32
#: Trace times (UTC epoch s) outside 1990-01-01 .. 2100-01-01 are a broken clock.
TIME_RANGE_S = (631_152_000.0, 4_102_444_800.0)


@dataclass
class RepairStats:
    """What was repaired or dropped since the unit started (``stats`` keys)."""

    nonfinite_samples: int = 0
    bad_trace_times: int = 0
    chunks_dropped: int = 0
    lines_failed: int = 0
    _said: set[str] = field(default_factory=set, repr=False)

    def as_dict(self) -> dict[str, int]:
        return {
            "nonfinite_samples": self.nonfinite_samples,
            "bad_trace_times": self.bad_trace_times,
            "chunks_dropped": self.chunks_dropped,
            "lines_failed": self.lines_failed,
        }

    def note(self, kind: str, message: str) -> None:
        """Log ``message`` once per line for each ``kind`` of problem."""
        if kind not in self._said:
            self._said.add(kind)
            log.warning("%s (logged once per line)", message)

    def new_line(self) -> None:
        self._said.clear()


def repair_block(block: TraceBlock, stats: RepairStats) -> TraceBlock | None:
    """``block`` with non-finite samples zeroed and impossible trace times dropped, or None
    when it has too few samples per trace to process (a :class:`TraceBlock` already refuses a
    sample interval that is not > 0)."""
    if block.n_samples < MIN_SAMPLES:
        stats.chunks_dropped += 1
        stats.note(
            "geometry",
            f"{block.source}: chunk of {block.n_traces} traces dropped: {block.n_samples} "
            f"samples per trace (at least {MIN_SAMPLES} needed)",
        )
        return None
    samples = block.samples
    bad = ~np.isfinite(samples)
    if bad.any():
        n = int(bad.sum())
        stats.nonfinite_samples += n
        stats.note("nonfinite", f"{block.source}: {n} non-finite sample(s) set to 0")
        samples = np.where(bad, np.float32(0.0), samples)
    times = block.trace_times
    if times is not None:
        lo, hi = TIME_RANGE_S
        wrong = ~(np.isfinite(times) & (times >= lo) & (times <= hi))
        if wrong.any():
            stats.bad_trace_times += int(wrong.sum())
            stats.note(
                "times",
                f"{block.source}: {int(wrong.sum())} trace time(s) outside 1990..2100 UTC: "
                "the chunk's times are not used",
            )
            times = None
    if samples is block.samples and times is block.trace_times:
        return block
    return replace(block, samples=samples, trace_times=times)
