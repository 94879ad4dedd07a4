"""sd_notify client on real AF_UNIX datagram sockets (what systemd listens on).

Each test binds the receiving end itself, at a path in tmp_path or at an abstract
name, points ``NOTIFY_SOCKET`` at it and reads back the exact datagrams the daemon
would send to systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

import pytest

from edge.station.sd_notify import Notifier, extending_timeout


class Listener:
    """The systemd side: a bound AF_UNIX SOCK_DGRAM socket collecting datagrams."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        bind_to = "\0" + address[1:] if address.startswith("@") else address
        self.sock.bind(bind_to)
        self.address = address

    def receive(self, timeout_s: float = 5.0) -> str:
        """The next datagram as text; fails the test when none arrives within timeout_s."""
        self.sock.settimeout(timeout_s)
        return self.sock.recv(4096).decode("utf-8")

    def drain(self) -> list[str]:
        """Every datagram already queued, without waiting."""
        self.sock.setblocking(False)
        out = []
        try:
            while True:
                out.append(self.sock.recv(4096).decode("utf-8"))
        except BlockingIOError:
            return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def path_listener(tmp_path, monkeypatch):
    listener = Listener(str(tmp_path / "notify.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield listener
    listener.close()


@pytest.fixture
def abstract_listener(monkeypatch):
    listener = Listener(f"@geoedge-test-{uuid.uuid4().hex}")
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield listener
    listener.close()


def test_ready_status_stopping_on_a_socket_path(path_listener):
    notifier = Notifier.from_environment()
    assert notifier.enabled
    notifier.ready("beach station chuam-01: 2 cameras")
    notifier.status("collecting 2024-05-01T10:00:00Z")
    notifier.stopping("finishing the current collection")
    assert path_listener.receive() == "READY=1\nSTATUS=beach station chuam-01: 2 cameras"
    assert path_listener.receive() == "STATUS=collecting 2024-05-01T10:00:00Z"
    assert path_listener.receive() == "STOPPING=1\nSTATUS=finishing the current collection"


def test_status_with_a_newline_stays_one_line(path_listener):
    # A newline inside STATUS would start a new KEY=value line systemd would misread.
    Notifier.from_environment().status("camera c1 lost\nreconnecting")
    assert path_listener.receive() == "STATUS=camera c1 lost reconnecting"


def test_abstract_socket_watchdog_and_extend_timeout(abstract_listener, monkeypatch):
    # WatchdogSec=300 -> WATCHDOG_USEC=300000000; ping every half of it, 150 s.
    monkeypatch.setenv("WATCHDOG_USEC", "300000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = Notifier.from_environment()
    assert notifier.watchdog_interval_s == pytest.approx(150.0)
    notifier.watchdog()
    notifier.extend_timeout(60.0)
    notifier.extend_timeout(0.25)
    assert abstract_listener.receive() == "WATCHDOG=1"
    assert abstract_listener.receive() == "EXTEND_TIMEOUT_USEC=60000000"
    assert abstract_listener.receive() == "EXTEND_TIMEOUT_USEC=250000"


def test_watchdog_without_watchdog_pid_is_ours(path_listener, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    notifier = Notifier.from_environment()
    assert notifier.watchdog_interval_s == pytest.approx(10.0)
    notifier.watchdog()
    assert path_listener.receive() == "WATCHDOG=1"


def test_watchdog_meant_for_another_process_is_ignored(path_listener, monkeypatch):
    # A child that inherited the environment: the watchdog belongs to its parent.
    monkeypatch.setenv("WATCHDOG_USEC", "300000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getppid()))
    notifier = Notifier.from_environment()
    assert notifier.enabled
    assert notifier.watchdog_interval_s is None
    notifier.watchdog()
    notifier.status("still talking")
    # Only the status arrives: the WATCHDOG=1 was never sent.
    assert path_listener.receive() == "STATUS=still talking"
    assert path_listener.drain() == []


def test_no_watchdog_configured(path_listener):
    notifier = Notifier.from_environment()
    assert notifier.watchdog_interval_s is None
    notifier.watchdog()
    notifier.status("x")
    assert path_listener.receive() == "STATUS=x"
    assert path_listener.drain() == []


def test_without_notify_socket_everything_is_a_no_op(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "300000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = Notifier.from_environment()
    assert not notifier.enabled
    assert notifier.watchdog_interval_s is None
    notifier.ready("r")
    notifier.status("s")
    notifier.watchdog()
    notifier.extend_timeout(10)
    notifier.stopping("t")
    with extending_timeout(notifier, 0.05):
        pass


def test_vanished_socket_warns_once_and_never_raises(tmp_path, monkeypatch, caplog):
    listener = Listener(str(tmp_path / "gone.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    notifier = Notifier.from_environment()
    notifier.status("before")
    assert listener.receive() == "STATUS=before"
    listener.close()
    os.unlink(listener.address)
    with caplog.at_level(logging.WARNING, logger="edge.station.sd_notify"):
        notifier.status("after")
        notifier.ready("after")
        notifier.extend_timeout(1.0)
        notifier.stopping("after")
    warnings = [r for r in caplog.records if r.name == "edge.station.sd_notify"]
    assert len(warnings) == 1
    assert "gone.sock" in warnings[0].getMessage()


def test_socket_that_never_existed_does_not_raise(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "never.sock"))
    notifier = Notifier.from_environment()
    notifier.ready("r")
    notifier.watchdog()


def test_extending_timeout_repeats_while_the_block_runs(path_listener):
    # A block lasting ~2.5 steps: one extension of 2 steps on entry plus one per completed
    # step (3 in all). Counts with slack: at least 2, and never more than one per step
    # of the block's measured length plus the one on entry.
    step = 0.2
    start = time.monotonic()
    with extending_timeout(Notifier.from_environment(), step):
        time.sleep(2.5 * step)
    elapsed = time.monotonic() - start
    sent = path_listener.drain()
    assert set(sent) == {"EXTEND_TIMEOUT_USEC=400000"}
    assert 2 <= len(sent) <= 1 + elapsed / step
    # Stopped at exit: nothing more arrives after the block.
    time.sleep(2 * step)
    assert path_listener.drain() == []


def test_extending_timeout_stops_when_the_block_raises(path_listener):
    with pytest.raises(RuntimeError), extending_timeout(Notifier.from_environment(), 0.05):
        raise RuntimeError("engine build failed")
    assert path_listener.receive() == "EXTEND_TIMEOUT_USEC=100000"
    time.sleep(0.2)
    assert path_listener.drain() == []


def test_extending_timeout_rejects_a_non_positive_step(path_listener):
    with (
        pytest.raises(ValueError, match="step_s"),
        extending_timeout(Notifier.from_environment(), 0),
    ):
        pass


def test_tensorrt_engine_build_extends_only_while_no_engine_is_cached(
    path_listener, tmp_path, caplog
):
    # The runtime's hook (TensorRT itself is absent here): an empty engine directory
    # means a first-start build, which asks systemd for time (2 x 30 s) and says so.
    from edge.models.runtime import trt_engine_build

    trt = ["TensorrtExecutionProvider", "CPUExecutionProvider"]
    engines = tmp_path / "unet.onnx-0123456789abcdef"
    with (
        caplog.at_level(logging.INFO, logger="edge.models.runtime"),
        trt_engine_build(trt, engines, "unet.onnx"),
    ):
        pass
    assert path_listener.drain() == ["EXTEND_TIMEOUT_USEC=60000000"]
    assert [r.getMessage() for r in caplog.records if r.name == "edge.models.runtime"] == [
        "building the TensorRT engine for unet.onnx; this takes minutes on first start"
    ]

    engines.mkdir()
    (engines / "TensorrtExecutionProvider_TRTKernel_graph_main_0_0_sm87.engine").write_bytes(b"x")
    with trt_engine_build(trt, engines, "unet.onnx"):
        pass
    with trt_engine_build(["CPUExecutionProvider"], tmp_path / "empty", "unet.onnx"):
        pass
    assert path_listener.drain() == []
