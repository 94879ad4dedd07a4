"""The hub's config: validated like a station's, one line naming the key on any mistake."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge.errors import ConfigError
from edge.hub.config import load_hub_config
from tests.helpers.data import REPO


def _write(tmp_path, text: str):
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return path


def test_the_example_config_loads_with_its_store_beside_it():
    cfg = load_hub_config(REPO / "firmware_config" / "hub.toml")
    assert cfg.hub.store == str(REPO / "firmware_config" / "hub.sqlite")
    assert cfg.store_url() == f"sqlite:///{REPO / 'firmware_config' / 'hub.sqlite'}"
    assert cfg.topic_filters == ["geoedge/+/#"]
    assert (cfg.hub.address.host, cfg.hub.address.port) == ("127.0.0.1", 8080)


def test_a_postgresql_store_gets_its_password_from_a_private_file(tmp_path):
    secret = tmp_path / "db.password"
    secret.write_text("p@ss/word\n")
    secret.chmod(0o600)
    path = _write(tmp_path, '[hub]\nstore = "postgresql://hub@db.example:5433/geoedge"\n'
                            'store_password_file = "db.password"\n')  # fmt: skip
    cfg = load_hub_config(path)
    assert cfg.store_url() == "postgresql+psycopg://hub:p%40ss%2Fword@db.example:5433/geoedge"
    assert "p@ss" not in cfg.store_shown()
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match=r"hub\.store_password_file: .* open to other users"):
        cfg.store_url()


def test_an_absolute_sqlite_url_is_a_path():
    from edge.hub.config import HubSection

    section = HubSection(store="sqlite:///var/lib/geoedge-hub/hub.sqlite")
    assert section.store == "/var/lib/geoedge-hub/hub.sqlite"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[hub]\nhttp = "localhost"\n', "hub.http: expected HOST:PORT with a port 1..65535"),
        ('[hub]\nhttp = "0.0.0.0:99999"\n', "hub.http: expected HOST:PORT"),
        ('[hub]\nstore = "mysql://x/y"\n', "hub.store: expected a postgresql:// URL"),
        ("[hub]\nstale_after_missed = 0\n", "hub.stale_after_missed: "),
        ('[hub]\nshare_group = "a/b"\n', "hub.share_group: "),
        ('[hub]\nshare_group = "hubs"\n', "hub.share_group: a shared subscription needs"),
        ('[hub]\ntopcis = ["x"]\n', "unknown key 'hub.topcis'"),
        ('[hub]\ntopics = ["coast/#"]\n', "hub.topics: 'coast/#' is not under mqtt.topic_prefix"),
        ('[mqtt]\nport = "1883x"\n', "mqtt.port: "),
        ("[mqtt]\nenabled = false\n", "mqtt: the hub needs its broker"),
        ("[mqtt]\nstats_interval_s = 30\n", "mqtt: stats_interval_s: a station's key"),
        ('[mqtt.tls]\nca_file = "none.pem"\n', "mqtt.tls.ca_file: file not found"),
        ("[hub\n", "not valid TOML"),
    ],
)
def test_a_mistake_is_one_line_naming_the_key(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_hub_config(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)), message
    assert expected in message, message


def test_the_command_says_it_in_one_line_and_exits_2(tmp_path):
    path = _write(tmp_path, '[hub]\nhttp = "localhost"\n')
    run = subprocess.run(
        [sys.executable, "-m", "edge", "hub", "--config", str(path)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geoedge hub: error: "), lines
    assert "hub.http" in lines[0]


def test_an_install_copies_the_files_the_config_names(tmp_path):
    secret = tmp_path / "db.password"
    secret.write_text("x\n")
    secret.chmod(0o600)
    (tmp_path / "certs").mkdir()
    ca = tmp_path / "certs" / "ca.pem"
    ca.write_text("a CA certificate\n")
    path = _write(
        tmp_path,
        '[hub]\nstore = "postgresql://hub@db/geoedge"\nstore_password_file = "db.password"\n'
        '[mqtt]\n[mqtt.tls]\nca_file = "certs/ca.pem"\n',
    )
    assert load_hub_config(path).referenced_files() == [path.resolve(), secret, ca]
