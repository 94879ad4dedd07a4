"""Replay a GPR file as a live TCP trace stream, at a given survey speed (for testing).

Acts as the GPR unit: listens on ``host:port``, waits for one client, and sends
every trace of every channel as frames of :mod:`edge.gpr.live.sources` (float32 samples,
raw amplitudes as read, the file's dt) at ``speed_kmh / 3.6 / spacing_m`` traces
per second. ``spacing_m`` is the trace spacing: the file's own when it has one,
else the one given. Frame timestamps are the wall-clock send times, so the
receiver's lag statistics are meaningful; with ``start_time`` (UTC epoch s) they
are ``start_time + k / rate`` instead, the same on every replay (a line replayed
after a restart, or matched to a GNSS track made for it). ``speed_kmh = 0`` sends
as fast as the receiver takes them (TCP flow control is the only brake), and so
does ``pace = False`` at any speed.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import numpy as np

from edge.errors import InputError
from edge.gpr.formats.readers import read_gpr
from edge.gpr.live.framing import encode_frame
from edge.gpr.traces import TraceBlock

log = logging.getLogger(__name__)


def trace_rate(block: TraceBlock, speed_kmh: float, spacing_m: float | None) -> float | None:
    """Traces per second at ``speed_kmh`` (None: unthrottled)."""
    if speed_kmh <= 0:
        return None
    spacing = block.trace_spacing_m or spacing_m
    if not spacing:
        raise InputError(
            f"{block.source}: no trace spacing in the file; give --spacing-m for a speed in km/h"
        )
    return speed_kmh / 3.6 / spacing


def send_block(
    conn: socket.socket,
    block: TraceBlock,
    rate: float | None,
    stop: threading.Event | None = None,
    times: np.ndarray | None = None,
) -> int:
    """Send every trace of ``block`` over ``conn`` at ``rate`` traces/s (None: flat out),
    stamped with ``times`` (UTC epoch s per trace; None: the send time); returns traces sent."""
    start = time.monotonic()
    for k in range(block.n_traces):
        if stop is not None and stop.is_set():
            return k
        if rate is not None:
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        now = time.time() if times is None else float(times[k])
        frame = b"".join(
            encode_frame(c, block.first_trace + k, block.samples[c, :, k], block.dt_ns, now)
            for c in range(block.n_channels)
        )
        conn.sendall(frame)
    return block.n_traces


class ReplayServer:
    """Serve one file once to the first client on ``host:port`` (port 0: pick a free one)."""

    def __init__(
        self,
        path: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        speed_kmh: float = 0.0,
        spacing_m: float | None = None,
        start_time: float | None = None,
        pace: bool = True,
    ) -> None:
        self.block = read_gpr(path)
        self.rate = trace_rate(self.block, speed_kmh, spacing_m)
        self.times = None
        if start_time is not None:
            if self.rate is None:
                raise InputError("replay: a start time needs a survey speed (speed_kmh > 0)")
            self.times = start_time + np.arange(self.block.n_traces) / self.rate
        self.pace = pace
        self._sock = socket.create_server((host, port))
        self.port = int(self._sock.getsockname()[1])
        self.sent = 0

    def serve_once(self, stop: threading.Event | None = None, timeout_s: float = 60.0) -> int:
        """Wait for a client, send the whole file, close; returns the traces sent."""
        self._sock.settimeout(timeout_s)
        try:
            conn, peer = self._sock.accept()
        except TimeoutError:
            raise InputError(f"replay: no client connected within {timeout_s:.0f} s") from None
        finally:
            self._sock.close()
        with conn:
            log.info(
                "replaying %s to %s at %s traces/s",
                self.block.source,
                peer,
                "max" if self.rate is None or not self.pace else f"{self.rate:.0f}",
            )
            try:
                rate = self.rate if self.pace else None
                self.sent = send_block(conn, self.block, rate, stop, self.times)
            except (ConnectionResetError, BrokenPipeError) as exc:
                log.info("replay: the client closed the connection (%s)", exc.strerror or exc)
        return self.sent
