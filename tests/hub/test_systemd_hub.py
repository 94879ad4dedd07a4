"""The hub's systemd unit and its install mode, checked offline (as the station's are in
tests/station/test_systemd_unit.py): the directives the hub relies on, the sandbox score."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from edge.hub.service import STALL_S
from tests.helpers.data import REPO

UNIT = REPO / "systemd" / "geoedge-hub.service"
INSTALL = REPO / "systemd" / "install.sh"


def _directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_a_notify_service_with_a_watchdog_longer_than_a_stall():
    unit = _directives()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["ExecStart"] == ["/opt/geoedge/venv/bin/geoedge hub --config /etc/geoedge/hub.toml"]
    assert int(unit["WatchdogSec"][0]) > STALL_S
    assert unit["Restart"] == ["on-failure"] and unit["RestartPreventExitStatus"] == ["2"]
    assert unit["StateDirectory"] == ["geoedge-hub"] and unit["User"] == ["geoedge"]
    assert unit["ReadWritePaths"] == ["/var/lib/geoedge-hub"]


def test_security_exposure_below_2():
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: cannot score the unit's sandbox")
    result = subprocess.run(
        [analyze, "security", "--offline=true", str(UNIT)], capture_output=True, text=True,
        timeout=60, env={"PATH": "/usr/bin:/bin", "LANG": "C", "SYSTEMD_COLORS": "0"},
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert found, result.stdout[-2000:] + result.stderr
    assert float(found.group(1)) < 2.0, result.stdout


def test_the_install_script_has_a_hub_mode_and_parses():
    text = INSTALL.read_text()
    assert '"--hub"' in text and "geoedge-hub.service" in text and "load_hub_config" in text
    result = subprocess.run(["bash", "-n", str(INSTALL)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
