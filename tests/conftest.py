"""Shared fixtures: real Mosquitto brokers started by the test suite.

This is the only conftest of the suite. Every broker is a real ``mosquitto -c
<conf>`` process on 127.0.0.1, on a free port, with its own config and log file
(``broker.log_file``, read it when a test fails). The binary is found on PATH or at
/usr/sbin/mosquitto (``tests/run.sh`` installs it when missing).

Broker fixtures (each yields a :class:`Broker`):

``mosquitto_broker`` (session)
    anonymous plain MQTT, persistence off.
``tls_broker`` (session)
    TLS-only listener. ``broker.ca_file`` is the CA (generated in the test run with
    ``cryptography``) that signed the server certificate (SAN 127.0.0.1, localhost).
``password_broker`` (session)
    ``allow_anonymous false``; users made with ``mosquitto_passwd -b -c``.
    ``broker.username`` / ``broker.password``; ``broker.password_file`` is a
    client-side file holding only the password (what ``mqtt.password_file`` names).
``restartable_broker`` (function)
    a broker of its own that the test may ``stop()`` and ``start()`` again on the
    same port (outage tests). Persistence is ON (in the test's tmp dir) so that a
    persistent subscriber session (``mqtt_subscriber(..., persistent=True)``) and
    its queued QoS 1 messages survive the restart; without it, messages published
    after the restart but before the subscriber reconnects would be lost by the
    broker, not by the code under test.

Every :class:`Broker` also gives ``broker.mqtt_config(**overrides)`` -> dict for an
``[mqtt]`` section pointing at it (TLS CA, username, password file included),
``broker.mqtt_section(**overrides)`` -> validated ``MqttSection``, and
``broker.mqtt_toml(**overrides)`` -> TOML text of that ``[mqtt]`` section for a
station config file. Reconnect back-off is 1 s there so outage tests stay short.

Subscriber fixture:

``mqtt_subscriber`` (function)
    factory ``mqtt_subscriber(broker, topic_filter="#", persistent=False)`` ->
    :class:`MessageCollector`, a paho v2 client already connected and subscribed
    (QoS 1) when returned. ``.messages`` is the list of :class:`Received` (topic,
    payload bytes, retain flag) in arrival order; ``.wait_for(predicate, timeout_s)``
    / ``.wait_count(n, timeout_s, topic_filter=None)`` block until the condition
    holds (return the messages, or fail the test naming what is missing);
    ``.payloads(topic_filter)`` decodes the JSON payloads. All clients disconnect at
    teardown.

Other real servers:

``postgres_server`` (session)
    a real PostgreSQL cluster (``tests/helpers/postgres.py``) on a free loopback port in a
    temp dir; ``postgres_server.create_database()`` -> ``postgresql://`` URL of a fresh
    database. Tests using it get the ``postgres`` marker.
``browser_page`` (function)
    a page of a real headless Chromium driven by Playwright (``tests/helpers/browser.py``);
    ``page.console_errors`` lists the page's console errors. Tests get the ``browser`` marker.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.broker import Broker, MessageCollector, make_certificates
from tests.helpers.browser import chromium_page
from tests.helpers.data import missing_shared
from tests.helpers.postgres import PostgresServer

#: Fixtures that start or talk to a real Mosquitto: their tests get the ``broker`` marker.
BROKER_FIXTURES = frozenset(
    {"mosquitto_broker", "tls_broker", "password_broker", "restartable_broker", "mqtt_subscriber"}
)


#: Fixtures that train or export a network with PyTorch: their tests get the ``torch`` marker.
TORCH_FIXTURES = frozenset({"tiny_models"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if BROKER_FIXTURES & fixtures:
            item.add_marker(pytest.mark.broker)
        if TORCH_FIXTURES & fixtures or "tests/export/" in item.nodeid:
            item.add_marker(pytest.mark.torch)
        if "postgres_server" in fixtures:
            item.add_marker(pytest.mark.postgres)
        if "browser_page" in fixtures:
            item.add_marker(pytest.mark.browser)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a ``real_data(name, licence)`` test, in one line, when its data set is absent."""
    for mark in item.iter_markers("real_data"):
        reason = missing_shared(*mark.args)
        if reason:
            pytest.skip(reason)


@pytest.fixture(scope="session")
def mosquitto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(workdir=tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    workdir = tmp_path_factory.mktemp("mosquitto-tls")
    ca, cert, key = make_certificates(workdir)
    conf = f"allow_anonymous true\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
    broker = Broker(workdir=workdir, listener_conf=conf, ca_file=ca)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def password_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    workdir = tmp_path_factory.mktemp("mosquitto-passwd")
    username, password = "station", "s3cret-" + uuid.uuid4().hex[:8]
    passwd = workdir / "passwd"
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    subprocess.run([tool, "-b", "-c", str(passwd), username, password], check=True)
    client_file = workdir / "station.password"
    client_file.write_text(password + "\n")
    client_file.chmod(0o600)
    conf = f"allow_anonymous false\npassword_file {passwd}\n"
    broker = Broker(
        workdir=workdir,
        listener_conf=conf,
        username=username,
        password=password,
        password_file=client_file,
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def restartable_broker(tmp_path: Path) -> Iterator[Broker]:
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    broker = Broker(workdir=workdir, persistence=True)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def mqtt_subscriber() -> Iterator[Callable[..., MessageCollector]]:
    collectors: list[MessageCollector] = []

    def make(broker: Broker, topic_filter: str = "#", persistent: bool = False) -> MessageCollector:
        collector = MessageCollector(broker, topic_filter, persistent)
        collectors.append(collector)
        return collector

    yield make
    for collector in collectors:
        collector.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    # not under pytest's tmp dir: that is private to this user, and as root the server runs as
    # the postgres user, which must reach its data directory
    workdir = Path(tempfile.mkdtemp(prefix="geoedge-postgres-"))
    server = PostgresServer(workdir=workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with chromium_page() as page:
        yield page
