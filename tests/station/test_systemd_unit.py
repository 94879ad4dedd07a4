"""The systemd unit and the install script, checked offline.

``systemd-analyze verify`` needs the installed binary and the ``geoedge`` user, so the
unit is read here as systemd reads it (sections, ``Key=value`` lines, a key may repeat)
and the directives the daemon relies on are asserted. The sandbox is scored by
``systemd-analyze security --offline=true`` (0 = locked down, 10 = unprotected).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.data import REPO

SYSTEMD = REPO / "systemd"
UNIT = SYSTEMD / "geoedge.service"
INSTALL = SYSTEMD / "install.sh"
#: Exposure the sandbox must stay under (systemd's scale: below 4 is "OK").
MAX_EXPOSURE = 4.0


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """``{section: {key: [values in file order]}}``; comments and blank lines skipped."""
    unit: dict[str, dict[str, list[str]]] = {}
    section = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"{path.name}:{number}: no continuation lines"
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{path.name}:{number}: directive before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not a Key=value line: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


@pytest.fixture(scope="module")
def unit():
    return read_unit(UNIT)


def one(unit, section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values, f"[{section}] {key}= is missing"
    assert len(values) == 1, f"[{section}] {key}= is set {len(values)} times"
    return values[0]


def test_notify_service_with_watchdog(unit):
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    # 300 s: the daemon pings every 150 s (edge.station.sd_notify.Notifier.watchdog_interval_s).
    assert one(unit, "Service", "WatchdogSec") == "300"
    assert one(unit, "Service", "ExecStart") == (
        "/opt/geoedge/venv/bin/geoedge run --config /etc/geoedge/station.toml"
    )


def test_restart_policy_and_start_limit(unit):
    assert one(unit, "Service", "Restart") == "on-failure"
    assert int(one(unit, "Service", "RestartSec")) > 0
    # The start limit belongs in [Unit]; systemd ignores it in [Service] on newer versions.
    interval = int(one(unit, "Unit", "StartLimitIntervalSec"))
    burst = int(one(unit, "Unit", "StartLimitBurst"))
    assert interval > 0 and burst > 1
    assert "StartLimitIntervalSec" not in unit["Service"]


def test_timeouts(unit):
    # Modest start (the TensorRT build extends it); a stop that lets a 10-min collection end.
    assert 30 <= int(one(unit, "Service", "TimeoutStartSec")) <= 300
    assert int(one(unit, "Service", "TimeoutStopSec")) >= 600
    assert one(unit, "Service", "KillSignal") == "SIGTERM"


def test_user_directories_and_logging(unit):
    assert one(unit, "Service", "User") == "geoedge"
    assert one(unit, "Service", "Group") == "geoedge"
    assert "video" in one(unit, "Service", "SupplementaryGroups").split()
    assert one(unit, "Service", "StateDirectory") == "geoedge"
    assert one(unit, "Service", "ConfigurationDirectory") == "geoedge"
    assert one(unit, "Service", "StandardOutput") == "journal"
    assert one(unit, "Service", "StandardError") == "journal"
    assert one(unit, "Service", "SyslogIdentifier") == "geoedge"
    assert one(unit, "Service", "UMask") == "0027"


def test_hardening(unit):
    service = unit["Service"]
    assert one(unit, "Service", "ProtectSystem") == "strict"
    writable = " ".join(service.get("ReadWritePaths", [])).split()
    assert "/var/lib/geoedge" in [p.lstrip("-") for p in writable]
    for key in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "ProtectHostname",
        "RestrictNamespaces",
        "RestrictRealtime",
        "RestrictSUIDSGID",
        "LockPersonality",
    ):
        assert one(unit, "Service", key) == "yes", key
    assert one(unit, "Service", "CapabilityBoundingSet") == ""
    assert one(unit, "Service", "AmbientCapabilities") == ""
    assert one(unit, "Service", "SystemCallArchitectures") == "native"
    assert "@system-service" in service["SystemCallFilter"]
    families = one(unit, "Service", "RestrictAddressFamilies").split()
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= set(families)


def test_nothing_that_breaks_cameras_gpus_or_onnxruntime(unit):
    service = unit["Service"]
    truthy = {"yes", "true", "on", "1"}
    # PrivateDevices hides /dev/video* and the GPU; MemoryDenyWriteExecute breaks libffi
    # and ONNX Runtime; ProtectClock (systemd < 252) implies a device allow-list.
    for key in ("PrivateDevices", "MemoryDenyWriteExecute", "ProtectClock", "PrivateUsers"):
        assert not truthy & {v.lower() for v in service.get(key, [])}, key
    assert "DevicePolicy" not in service and "DeviceAllow" not in service


def test_every_directive_is_explained():
    # Each block of directives starts with a comment saying why (blank lines and section
    # headers end a block).
    commented = False
    for number, raw in enumerate(UNIT.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("["):
            commented = False
        elif line.startswith("#"):
            commented = True
        else:
            assert commented, f"geoedge.service:{number}: {line!r} has no comment above it"


def test_security_exposure_below_4():
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: cannot score the unit's sandbox")
    result = subprocess.run(
        [analyze, "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "C", "SYSTEMD_COLORS": "0"},
    )
    assert result.returncode == 0, result.stderr
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert found, result.stdout[-2000:]
    exposure = float(found.group(1))
    print(f"systemd-analyze security --offline=true {UNIT.name}: {exposure}")
    assert exposure < MAX_EXPOSURE, result.stdout


def test_install_script_parses():
    result = subprocess.run(
        ["bash", "-n", str(INSTALL)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
