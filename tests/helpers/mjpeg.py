"""The wire format of an HTTP MJPEG camera, for the test camera servers.

A camera answers the request with :data:`RESPONSE`, then sends one
:func:`part` per JPEG frame (``multipart/x-mixed-replace``, boundary ``frame``),
which OpenCV's FFmpeg backend reads as a live stream.
"""

from __future__ import annotations

RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"


def part(jpg: bytes) -> bytes:
    """One multipart part carrying the JPEG bytes ``jpg``."""
    head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
    return head + jpg + b"\r\n"
