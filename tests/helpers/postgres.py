"""A real PostgreSQL server for tests: :class:`PostgresServer` runs ``initdb`` into a temporary
directory and ``pg_ctl start`` on a free loopback port (no Unix socket in a shared place, trust
authentication, fsync off: test data only). The fixture built on it, ``postgres_server``, is in
``tests/conftest.py``.

The binaries come from Debian's ``postgresql`` package (``tests/run.sh`` installs it when
missing): PATH first, then the newest ``/usr/lib/postgresql/<major>/bin``. PostgreSQL refuses to
run as root; as root the server runs as the ``postgres`` system user the package creates.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.broker import free_port

START_TIMEOUT_S = 30


def postgres_bin_dir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not versions:
        pytest.fail("PostgreSQL server binaries (initdb) not found: run tests/run.sh")
    return versions[-1].parent


@dataclass
class PostgresServer:
    """One throw-away PostgreSQL cluster on 127.0.0.1:``port``; ``url()`` names a fresh database."""

    workdir: Path
    port: int = field(default_factory=free_port)
    user: str = "postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S)

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_file(self) -> Path:
        return self.workdir / "postgres.log"

    def start(self) -> None:
        bin_dir = postgres_bin_dir()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres")
        if not (self.data_dir / "PG_VERSION").exists():  # a restart keeps the cluster
            done = self._run(
                str(bin_dir / "initdb"), "-D", str(self.data_dir), "-A", "trust", "-U",
                self.user, "-E", "UTF8", "--no-sync",
            )  # fmt: skip
            if done.returncode != 0:
                pytest.fail(f"initdb failed: {done.stderr.strip()[-500:]}")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        done = self._run(
            str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
            "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start",
        )  # fmt: skip
        if done.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            pytest.fail(f"PostgreSQL did not start: {done.stderr.strip()} {log[-800:]}")

    def stop(self) -> None:
        """Stop the server (``start()`` again restarts it with its databases)."""
        self._run(
            str(postgres_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "stop"
        )

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a fresh name by default); return its ``postgresql://`` URL."""
        name = name or "t_" + uuid.uuid4().hex[:12]
        done = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", "postgres",
             "-v", "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{name}"'],
            capture_output=True, text=True, timeout=START_TIMEOUT_S,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"CREATE DATABASE failed: {done.stderr.strip()}")
        return self.url(name)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"
