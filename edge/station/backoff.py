"""Reconnect back-off shared by every input that reconnects (cameras, trace streams, GNSS)."""

from __future__ import annotations


class Backoff:
    """Reconnect delays in seconds: ``first_s``, doubling per failure up to ``max_s``; reset on
    success."""

    def __init__(self, first_s: float = 1.0, max_s: float = 30.0) -> None:
        self.first_s, self.max_s = first_s, max(max_s, first_s)
        self.next_s = first_s

    def failed(self) -> float:
        """The delay to wait now; the following one doubles."""
        delay = self.next_s
        self.next_s = min(self.next_s * 2.0, self.max_s)
        return delay

    def succeeded(self) -> None:
        self.next_s = self.first_s
