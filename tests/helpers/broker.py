"""Real Mosquitto brokers for tests: :class:`Broker` (a ``mosquitto -c <conf>`` process on a free
loopback port), a throwaway CA and server certificates, and :class:`MessageCollector` (a paho v2
subscriber that records what arrives). The fixtures built on them are in ``tests/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

BROKER_START_TIMEOUT_S = 10.0


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )
    if found is None:
        pytest.fail("mosquitto not found (PATH, /usr/sbin/mosquitto): run tests/run.sh")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Broker:
    """A Mosquitto process on 127.0.0.1:``port`` configured by ``listener_conf``."""

    workdir: Path
    listener_conf: str = "allow_anonymous true\n"
    persistence: bool = False
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def log_file(self) -> Path:
        return self.workdir / "mosquitto.log"

    def _write_conf(self) -> Path:
        lines = [
            "per_listener_settings false",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.log_file}",
            "log_type error warning notice information",
            "connection_messages true",
            f"listener {self.port} {self.host}",
        ]
        if os.geteuid() == 0:
            lines.insert(0, "user root")  # else mosquitto drops to 'mosquitto' and cannot write
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n" + self.listener_conf)
        return conf

    def start(self) -> None:
        """Start the broker and wait until its port accepts connections."""
        conf = self._write_conf()
        with open(self.workdir / "mosquitto.stderr", "ab") as stderr:
            self.process = subprocess.Popen(
                [mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + BROKER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        tail = (self.workdir / "mosquitto.stderr").read_text(errors="replace")[-2000:]
        if self.log_file.exists():
            tail += self.log_file.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"mosquitto did not start on port {self.port}:\n{tail}")

    def stop(self) -> None:
        """Stop the broker (SIGTERM, as systemd would); it saves persistence on the way out."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def mqtt_config(self, **overrides: Any) -> dict[str, Any]:
        """The ``[mqtt]`` keys of a station config for this broker."""
        cfg: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "reconnect_min_s": 1,
            "reconnect_max_s": 1,
            "keepalive_s": 10,
        }
        if self.ca_file is not None:
            cfg["tls"] = {"ca_file": str(self.ca_file)}
        if self.username is not None:
            cfg["username"] = self.username
            cfg["password_file"] = str(self.password_file)
        cfg.update(overrides)
        return cfg

    def mqtt_section(self, **overrides: Any):
        from edge.config.mqtt import MqttSection

        return MqttSection.model_validate(self.mqtt_config(**overrides))

    def mqtt_toml(self, **overrides: Any) -> str:
        """TOML text of the ``[mqtt]`` section (tables last, as TOML requires)."""
        cfg = self.mqtt_config(**overrides)
        tables = {k: v for k, v in cfg.items() if isinstance(v, dict)}
        lines = ["[mqtt]"] + [
            f"{k} = {json.dumps(v)}" for k, v in cfg.items() if not isinstance(v, dict)
        ]
        for name, table in tables.items():
            lines.append(f"[mqtt.{name}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
        return "\n".join(lines) + "\n"


def make_ca(workdir: Path, cn: str = "geoedge test CA"):
    """A self-signed test CA: (certificate, private key, PEM path in ``workdir``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    path = workdir / f"{cn.replace(' ', '_')}.pem"
    path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return ca_cert, ca_key, path


def make_server_cert(
    workdir: Path, ca, names=("localhost", "127.0.0.1"), stem: str = "server"
) -> tuple[Path, Path]:
    """A leaf certificate (a server's, or a client's) for ``names`` (DNS names or IPs)
    signed by ``ca`` (from :func:`make_ca`); returns (certificate PEM, key PEM) in
    ``workdir``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_cert, ca_key, _ = ca
    now = dt.datetime.now(dt.timezone.utc)
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = workdir / f"{stem}.pem", workdir / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def make_certificates(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 / localhost; returns (ca, cert, key)."""
    ca = make_ca(workdir)
    return (ca[2], *make_server_cert(workdir, ca))


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    #: The broker re-sent it to this subscriber (DUP flag): the broker -> subscriber leg of
    #: QoS 1 across a broker restart, not a second publication by the station.
    dup: bool = False

    def json(self) -> Any:
        return json.loads(self.payload)


class MessageCollector:
    """A paho v2 subscriber that records every message it receives, in order."""

    def __init__(self, broker: Broker, topic_filter: str, persistent: bool) -> None:
        self.topic_filter = topic_filter
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-sub-{uuid.uuid4().hex[:10]}",
            clean_session=not persistent,
        )
        if broker.username is not None:
            self.client.username_pw_set(broker.username, broker.password)
        if broker.ca_file is not None:
            self.client.tls_set(ca_certs=str(broker.ca_file))
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError(f"test subscriber: no SUBACK from {broker.host}:{broker.port}")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe(self.topic_filter, qos=1)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(
                Received(message.topic, message.payload, bool(message.retain), bool(message.dup))
            )
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout_s: float, what: str = ""
    ) -> list[Received]:
        """Block until ``predicate(messages)`` holds; fail the test after ``timeout_s``."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.messages), timeout_s):
                pytest.fail(
                    f"after {timeout_s} s the subscriber has {len(self.messages)} message(s), "
                    f"still waiting for {what or 'the condition'}"
                )
            return list(self.messages)

    def wait_count(
        self, n: int, timeout_s: float, topic_filter: str | None = None
    ) -> list[Received]:
        """Block until ``n`` messages matching ``topic_filter`` arrived; return those."""
        self.wait_for(
            lambda msgs: len(self._matching(msgs, topic_filter)) >= n,
            timeout_s,
            f"{n} message(s) on {topic_filter or self.topic_filter}",
        )
        return self._matching(list(self.messages), topic_filter)

    def payloads(self, topic_filter: str | None = None) -> list[Any]:
        with self._cond:
            return [m.json() for m in self._matching(self.messages, topic_filter)]

    @staticmethod
    def _matching(msgs: list[Received], topic_filter: str | None) -> list[Received]:
        if topic_filter is None:
            return list(msgs)
        return [m for m in msgs if mqtt.topic_matches_sub(topic_filter, m.topic)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
