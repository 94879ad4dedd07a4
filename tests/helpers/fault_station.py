"""Real processes for the fault-injection tests: a live camera, a beach station, the daemon.

:class:`LiveCamera` is an HTTP MJPEG camera on 127.0.0.1 that plays the frames of the
bundled sample video (``edge/samples/beach/c1.mp4``, 640 x 512) in a loop at ``fps``.
A test can make it ``stall()`` (connections stay open, no frames: a hung camera),
``go_down()`` (listening socket closed: the camera disappears) and ``come_back()``
(same port again).

:func:`beach_config` writes a station config for the bundled sample station fed by
such a camera: back-to-back collections of ``window_s`` seconds, tide and wave tables
around now (so every collection gets a waterline, slope and shoreline), the given ``[mqtt]``
TOML, the outbox and products under the test's folder.

:class:`DaemonProcess` runs ``python -m edge run --config FILE`` as a child process
(stderr to ``daemon.log``) and reads the ``status.json`` the daemon writes beside
its outbox.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2

from tests.helpers import mjpeg
from tests.helpers.data import SAMPLES

SAMPLE = SAMPLES / "beach"
STATION = "demo-01"
RESULT_KINDS = ("products", "waterline", "slope", "shoreline")


def _sample_frames(limit: int = 40) -> list[bytes]:
    capture = cv2.VideoCapture(str(SAMPLE / "c1.mp4"))
    frames = []
    while len(frames) < limit:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    capture.release()
    return frames


class LiveCamera:
    """An MJPEG-over-HTTP camera that a test can stall, take down and bring back."""

    def __init__(self, fps: float = 5.0) -> None:
        self.fps = fps
        self.frames = _sample_frames()
        self.connections = 0
        self._frames_ok = threading.Event()
        self._frames_ok.set()
        self._closed = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._sock = self._listen(0)
        self.port = self._sock.getsockname()[1]
        self._start_accepting()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream"

    def _listen(self, port: int) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(8)
        return sock

    def _start_accepting(self) -> None:
        sock = self._sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            threading.Thread(target=self._stream, args=(conn,), daemon=True).start()

    def _stream(self, conn: socket.socket) -> None:
        try:
            conn.recv(4096)
            conn.sendall(mjpeg.RESPONSE)
            i = 0
            while not self._closed.is_set():
                if not self._frames_ok.wait(0.1):
                    continue  # stalled: the connection stays open, silent
                jpg = self.frames[i % len(self.frames)]
                conn.sendall(mjpeg.part(jpg))
                i += 1
                time.sleep(1.0 / self.fps)
        except OSError:
            pass
        finally:
            conn.close()

    def stall(self) -> None:
        """Keep every connection open but send nothing (a hung camera)."""
        self._frames_ok.clear()

    def resume(self) -> None:
        self._frames_ok.set()

    def go_down(self) -> None:
        """Close the listening socket and every connection (the camera is gone)."""
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def come_back(self) -> None:
        """Listen on the same port again, sending frames."""
        self._frames_ok.set()
        self._sock = self._listen(self.port)
        self._start_accepting()

    def close(self) -> None:
        self._closed.set()
        self._frames_ok.set()
        self.go_down()


def beach_config(
    folder: Path,
    mqtt_toml: str,
    camera_url: str,
    *,
    window_s: float = 6.0,
    extra_toml: str = "",
) -> Path:
    """A config of the bundled sample station fed by ``camera_url`` (see module doc)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("c1_IO.json", "c1_EO.json", "roi.geojson", "transects.geojson"):
        shutil.copy(SAMPLE / name, folder / name)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    rows = [now + dt.timedelta(hours=h) for h in range(-3, 4)]
    (folder / "tide.csv").write_text(
        "time,level_m\n" + "".join(f"{t.isoformat().replace('+00:00', 'Z')},0.320\n" for t in rows)
    )
    (folder / "waves.csv").write_text(
        "time,hs_m,tp_s\n"
        + "".join(f"{t.isoformat().replace('+00:00', 'Z')},0.25,5.0\n" for t in rows)
    )
    text = (SAMPLE / "station.toml").read_text()
    body = text[text.index("[station]") :]
    body = body.replace(
        'source = "c1.mp4"',
        f'source = "{camera_url}"\nread_timeout_s = 2.0\n'
        "stall_timeout_s = 4.0\nreconnect_min_s = 0.5\nreconnect_max_s = 1.0",
    )
    body = body.replace("start_utc = 2026-06-15T02:59:30Z\n", "")
    body = body.replace("duration_min = 1.0", f"duration_min = {window_s / 60.0:.6f}")
    body = body.replace("sample_hz = 1.0", 'sample_hz = 2.0\noutput_dir = "products"')
    config = folder / "station.toml"
    config.write_text(body + '\n[outbox]\npath = "state/outbox.sqlite"\n' + mqtt_toml + extra_toml)
    return config


class DaemonProcess:
    """``geoedge run --config FILE`` as a child process."""

    def __init__(self, config: Path, env: dict[str, str] | None = None,
                 prefix: list[str] | None = None) -> None:  # fmt: skip
        self.config = config
        self.log_file = config.parent / "daemon.log"
        self.status_file = config.parent / "state" / "status.json"
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [*(prefix or []), sys.executable, "-m", "edge", "run", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, **(env or {})},
            )

    def stats(self) -> dict[str, Any]:
        """This daemon's latest stats snapshot ({} before its first)."""
        try:
            doc = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}
        return doc.get("stats", {}) if doc.get("pid") == self.process.pid else {}

    def wait_stats(self, predicate, timeout_s: float, what: str) -> dict[str, Any]:
        """Poll the status file until ``predicate(stats)``; AssertionError with the log tail."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = self.stats()
            if stats and predicate(stats):
                return stats
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(
            f"daemon: no stats with {what} after {timeout_s} s (exit {self.process.poll()}); "
            f"last stats {self.stats()}; log tail:\n{self.log_tail()}"
        )

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:]

    def log_lines(self, needle: str) -> list[str]:
        return [line for line in self.log_file.read_text().splitlines() if needle in line]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout_s: float = 30.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()


def results(messages) -> dict[str, list[dict[str, Any]]]:
    """Result payloads by id (every delivery of each id), from a subscriber's messages."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for m in messages:
        if m.topic.rsplit("/", 1)[-1] in ("status", "stats"):
            continue
        payload = m.json()
        by_id.setdefault(payload["id"], []).append(payload)
    return by_id
