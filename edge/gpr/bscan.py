"""B-scan windows over the processed trace stream, and window boxes mapped back to the profile.

A window is ``width`` consecutive processed traces of one channel and the first
``height`` samples after time zero (the processed time axis: sample k at
``k * dt_ns`` ns). Consecutive windows start ``stride = round(width * (1 -
overlap))`` traces apart, so a hyperbola cut by one window edge is whole in the
next. With several scales, each scale s adds its own layout of windows
``round(s * width)`` traces wide (stride likewise), so a hyperbola wider than one
window is whole in a wider one. At the end of a stream, :meth:`BscanWindower.flush`
emits, per scale, one last window aligned to the last trace so no trace goes unseen.
The detector resamples a window of any width to its model input size itself; boxes
come back in window coordinates (fractional sample and trace indices) and
:func:`box_to_profile` maps them to file trace indices (0-based, per channel) and
two-way time (ns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Fewest traces a window may have (the detector refuses smaller windows).
MIN_TRACES = 8


@dataclass(frozen=True)
class BscanWindow:
    """One detector window: ``data`` ``(samples, traces)`` of ``channel`` from ``first_trace``."""

    channel: int
    first_trace: int
    data: np.ndarray
    dt_ns: float

    @property
    def n_traces(self) -> int:
        return int(self.data.shape[1])


@dataclass(frozen=True)
class ProfileBox:
    """A window box in profile coordinates: traces (0-based, fractional) and time (ns)."""

    channel: int
    trace0: float
    trace1: float
    time0_ns: float
    time1_ns: float


def box_to_profile(
    window: BscanWindow, trace0: float, sample0: float, trace1: float, sample1: float
) -> ProfileBox:
    """Map a box in window coordinates (trace = column, sample = row) to the profile."""
    return ProfileBox(
        channel=window.channel,
        trace0=window.first_trace + trace0,
        trace1=window.first_trace + trace1,
        time0_ns=sample0 * window.dt_ns,
        time1_ns=sample1 * window.dt_ns,
    )


@dataclass
class _Layout:
    """The windows of one scale: ``width`` traces every ``stride``; the next starts at
    ``next_start`` (trace index in the stream)."""

    width: int
    stride: int
    next_start: int = 0


class BscanWindower:
    """Cuts the processed stream of every channel into overlapping windows (stateful).

    ``width`` is the window width in traces at scale 1; ``scales`` (each >= 1) the widths cut,
    as multiples of it (``round(s * width)`` traces; scales that round to the same width are
    cut once). ``height`` None keeps every sample. Feed chunks ``(n_channels, n_samples,
    n_traces)`` in order with :meth:`feed`; :meth:`flush` at the end of the stream. Keeps
    at most the widest window's traces per channel in memory, shared by all scales.
    """

    def __init__(
        self,
        width: int,
        overlap: float,
        dt_ns: float,
        height: int | None = None,
        channels: list[int] | None = None,
        scales: Sequence[float] = (1.0,),
    ) -> None:
        if width < MIN_TRACES:
            raise ValueError(f"window width {width} traces < {MIN_TRACES}")
        if not scales or min(scales) < 1.0:
            raise ValueError(f"window scales {list(scales)}: need at least one, each >= 1")
        widths = sorted({round(s * width) for s in scales})
        self.layouts = [_Layout(w, max(1, round(w * (1.0 - overlap)))) for w in widths]
        #: The widest window in traces: how far behind the stream a window may complete.
        self.max_width = widths[-1]
        self.height = height
        self.dt_ns = dt_ns
        self.channels = channels
        self._buffer: np.ndarray | None = None
        self._buffer_start = 0
        self._seen = 0

    def feed(self, chunk: np.ndarray) -> list[BscanWindow]:
        """Append processed traces; return the windows that became complete (by scale, then
        along the line)."""
        rows = chunk if self.height is None else chunk[:, : self.height, :]
        if self._buffer is None:
            self._buffer = rows.copy()
        else:
            self._buffer = np.concatenate([self._buffer, rows], axis=2)
        self._seen += chunk.shape[2]
        out: list[BscanWindow] = []
        for lay in self.layouts:
            while lay.next_start + lay.width <= self._seen:
                out.extend(self._cut(lay.next_start, lay.width))
                lay.next_start += lay.stride
        keep_from = min(min(lay.next_start, self._seen - lay.width) for lay in self.layouts)
        if keep_from > self._buffer_start:
            self._buffer = self._buffer[:, :, keep_from - self._buffer_start :]
            self._buffer_start = keep_from
        return out

    def flush(self) -> list[BscanWindow]:
        """Per scale, the last window, aligned to the last trace, if some traces were never in
        a window of that scale (a window already cut for another scale is not cut twice)."""
        if self._buffer is None:
            return []
        out: list[BscanWindow] = []
        cut: set[tuple[int, int]] = set()
        for lay in self.layouts:
            covered = lay.next_start - lay.stride + lay.width if lay.next_start else 0
            n = min(lay.width, self._seen)
            if covered >= self._seen or n < MIN_TRACES or (self._seen - n, n) in cut:
                continue
            cut.add((self._seen - n, n))
            out.extend(self._cut(self._seen - n, n))
            lay.next_start = self._seen + lay.stride
        return out

    def _cut(self, start: int, n: int) -> list[BscanWindow]:
        assert self._buffer is not None
        lo = start - self._buffer_start
        chans = self.channels if self.channels is not None else range(self._buffer.shape[0])
        return [
            BscanWindow(
                channel=c, first_trace=start, data=self._buffer[i, :, lo : lo + n], dt_ns=self.dt_ns
            )
            for i, c in enumerate(chans)
        ]
