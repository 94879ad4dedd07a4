"""sd_notify client: tell systemd (``Type=notify``) that the daemon is ready, alive, stopping.

The protocol is one datagram per message on the AF_UNIX socket named by
``$NOTIFY_SOCKET`` (a filesystem path, or ``@name`` for an abstract socket), each
message newline-separated ``KEY=value`` lines (``READY=1``, ``STATUS=...``,
``WATCHDOG=1``, ``EXTEND_TIMEOUT_USEC=...``, ``STOPPING=1``). No library: the socket
is opened here.

The watchdog: with ``WatchdogSec=`` systemd sets ``$WATCHDOG_USEC`` (microseconds)
and ``$WATCHDOG_PID``; the service must send ``WATCHDOG=1`` within that time or it is
killed and restarted. ``WATCHDOG_PID`` names the process the watchdog is meant for;
a child that inherited the environment ignores it.

Without ``$NOTIFY_SOCKET`` (not started by systemd, tests, ``geoedge demo``) every
method is a no-op. Sending never raises into the daemon: a failing socket gives one
warning log line, later failures are silent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages to ``address`` (a socket path, or ``@name`` for an abstract one).

    ``address`` None disables every method. ``watchdog_usec`` is systemd's watchdog
    timeout in microseconds (None: no watchdog; :meth:`watchdog` then sends nothing).
    """

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self._address = _socket_address(address) if address else None
        self._watchdog_usec = watchdog_usec if self._address and watchdog_usec else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """A notifier from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``.

        ``environ`` defaults to :data:`os.environ`. The watchdog is ignored when
        ``WATCHDOG_PID`` is set to another process's pid, or when ``WATCHDOG_USEC`` is not
        a positive integer (one warning).
        """
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        return cls(address, _watchdog_usec(env) if address else None)

    @property
    def enabled(self) -> bool:
        """True when there is a notify socket to send to."""
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to call :meth:`watchdog`, s: half the watchdog timeout; None without one."""
        return self._watchdog_usec / 2e6 if self._watchdog_usec else None

    def ready(self, status: str) -> None:
        """Start-up is complete (``READY=1``), with a one-line status for ``systemctl status``."""
        self._send(f"READY=1\nSTATUS={_one_line(status)}")

    def status(self, text: str) -> None:
        """A one-line free-form status shown by ``systemctl status``."""
        self._send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        """Keep-alive (``WATCHDOG=1``); sends nothing when there is no watchdog for us."""
        if self._watchdog_usec:
            self._send("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> None:
        """Ask for ``seconds`` more before the start/stop timeout (and the watchdog) fire.

        ``EXTEND_TIMEOUT_USEC``: systemd's current timeout becomes at least now + ``seconds``;
        send it again before that runs out to keep extending.
        """
        self._send(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1e6))}")

    def stopping(self, status: str) -> None:
        """Shutdown has begun (``STOPPING=1``), with a one-line status."""
        self._send(f"STOPPING=1\nSTATUS={_one_line(status)}")

    def close(self) -> None:
        """Close the socket (a later message opens a new one)."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._sock.sendto(message.encode("utf-8"), self._address)
            except OSError as exc:
                if not self._warned:
                    self._warned = True
                    shown = self._address.replace("\0", "@")
                    log.warning(
                        "sd_notify to %s failed (%s); further failures are silent", shown, exc
                    )


@contextmanager
def extending_timeout(notifier: Notifier, step_s: float) -> Iterator[None]:
    """Keep systemd's timeouts from firing while a long block runs (a TensorRT engine build).

    Sends ``EXTEND_TIMEOUT_USEC`` of ``2 * step_s`` on entry and then every ``step_s``
    seconds from a background thread until the block exits, so a block that hangs for
    good still times out ``2 * step_s`` after its last extension stopped. Does nothing
    when ``notifier`` is disabled.
    """
    if step_s <= 0:
        raise ValueError(f"extending_timeout: step_s must be > 0 s, got {step_s}")
    if not notifier.enabled:
        yield
        return
    done = threading.Event()

    def extend() -> None:
        while not done.wait(step_s):
            notifier.extend_timeout(2 * step_s)

    notifier.extend_timeout(2 * step_s)
    thread = threading.Thread(target=extend, name="sd-notify-extend", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _socket_address(address: str) -> str:
    """``@name`` -> the abstract socket ``\\0name``; a path is used as it is."""
    return "\0" + address[1:] if address.startswith("@") else address


def _one_line(text: str) -> str:
    """A value must not break the ``KEY=value`` line format: newlines become spaces."""
    return " ".join(str(text).splitlines())


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    raw_pid = env.get("WATCHDOG_PID")
    if raw_pid:
        try:
            pid = int(raw_pid)
        except ValueError:
            log.warning("WATCHDOG_PID=%r is not a pid: watchdog ignored", raw_pid)
            return None
        if pid != os.getpid():
            return None
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        usec = 0
    if usec <= 0:
        log.warning("WATCHDOG_USEC=%r is not a positive number of microseconds: ignored", raw)
        return None
    return usec
