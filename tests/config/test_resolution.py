"""Config values resolved at load, and what the install script copies of a config folder."""

from __future__ import annotations

import shutil

from edge.config import load_config, referenced_files, with_changes
from edge.config.base import TcpAddress
from tests.helpers.data import REPO, SAMPLES


def test_shipped_configs_load():
    for name in ("beach_station.toml", "gpr_unit.toml"):
        load_config(REPO / "firmware_config" / name)


def test_a_tcp_source_survives_a_changed_copy():
    config = load_config(REPO / "firmware_config" / "gpr_unit.toml")
    assert config.gpr is not None and config.gpr.source == TcpAddress("127.0.0.1", 5600)
    changed = with_changes(config, gpr={"antenna_mhz": 900.0})
    assert changed.gpr is not None and changed.gpr.source == TcpAddress("127.0.0.1", 5600)
    assert changed.gpr.antenna_mhz == 900.0 and config.gpr.antenna_mhz == 400.0


def test_the_install_copies_what_the_config_names_not_what_lies_beside_it(tmp_path):
    """install.sh copies referenced_files(): the calibration, transects, ROI, tide and wave tables,
    not the 14 MB of snippet PNGs or a developer's outbox left in the folder."""
    folder = tmp_path / "beach"
    shutil.copytree(SAMPLES / "beach", folder)
    (folder / "snippets").mkdir()
    (folder / "snippets" / "old.png").write_bytes(b"\x89PNG")
    (folder / "state").mkdir()
    (folder / "state" / "outbox.sqlite").write_bytes(b"x")
    config = load_config(folder / "station.toml")
    names = sorted(str(p.relative_to(folder)) for p in referenced_files(config))
    assert names == [
        "c1.mp4",
        "c1_EO.json",
        "c1_IO.json",
        "roi.geojson",
        "station.toml",
        "tide.csv",
        "transects.geojson",
        "waves.csv",
    ]
