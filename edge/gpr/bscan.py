"""B-scan windows over the processed trace stream, and window boxes mapped back to the profile.

A window is ``width`` consecutive processed traces of one channel and the first
``height`` samples after time zero (the processed time axis: sample k at
``k * dt_ns`` ns). Consecutive windows start ``stride = round(width * (1 -
overlap))`` traces apart, so a hyperbola cut by one window edge is whole in the
next. At the end of a stream, :meth:`BscanWindower.flush` emits one last window
aligned to the last trace so no trace goes unseen. The detector resamples a
window to its model input size itself; boxes come back in window coordinates
(fractional sample and trace indices) and :func:`box_to_profile` maps them to
file trace indices (0-based, per channel) and two-way time (ns).
"""

from __future__ import annotations

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


class BscanWindower:
    """Cuts the processed stream of every channel into overlapping windows (stateful).

    ``height`` None keeps every sample. Feed chunks ``(n_channels, n_samples,
    n_traces)`` in order with :meth:`feed`; :meth:`flush` at the end of the stream.
    Keeps at most ``width`` traces per channel in memory.
    """

    def __init__(
        self,
        width: int,
        overlap: float,
        dt_ns: float,
        height: int | None = None,
        channels: list[int] | None = None,
    ) -> None:
        if width < MIN_TRACES:
            raise ValueError(f"window width {width} traces < {MIN_TRACES}")
        self.width = width
        self.stride = max(1, round(width * (1.0 - overlap)))
        self.height = height
        self.dt_ns = dt_ns
        self.channels = channels
        self._buffer: np.ndarray | None = None
        self._buffer_start = 0
        self._next_start = 0
        self._seen = 0

    def feed(self, chunk: np.ndarray) -> list[BscanWindow]:
        """Append processed traces; return the windows that became complete."""
        rows = chunk if self.height is None else chunk[:, : self.height, :]
        if self._buffer is None:
            self._buffer = rows.copy()
        else:
            self._buffer = np.concatenate([self._buffer, rows], axis=2)
        self._seen += chunk.shape[2]
        out: list[BscanWindow] = []
        while self._next_start + self.width <= self._seen:
            out.extend(self._cut(self._next_start, self.width))
            self._next_start += self.stride
        keep_from = min(self._next_start, self._seen - self.width)
        if keep_from > self._buffer_start:
            self._buffer = self._buffer[:, :, keep_from - self._buffer_start :]
            self._buffer_start = keep_from
        return out

    def flush(self) -> list[BscanWindow]:
        """The last window, aligned to the last trace, if some traces were never in a window."""
        covered = self._next_start - self.stride + self.width if self._next_start else 0
        if self._buffer is None or covered >= self._seen:
            return []
        n = min(self.width, self._seen)
        if n < MIN_TRACES:
            return []
        out = self._cut(self._seen - n, n)
        self._next_start = self._seen + self.stride
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
