"""Secrets the config points at (passwords, private keys) and keeping them out of logs.

A secret lives in a file of its own that only the station's user (and its group) may read:
:func:`read_secret` refuses one open to other users. :func:`redact` hides the password of any
``scheme://user:password@host`` in a text before it is logged or published.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from urllib.parse import quote

from edge.errors import ConfigError

#: ``scheme://user:password@`` anywhere in a text (a URL, or one inside a GStreamer pipeline).
_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):(?P<secret>[^@\s/]*)@")


def redact(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` replaced by ``***``."""
    return _CREDENTIALS.sub(r"\g<head>:***@", text)


def check_secret_file(path: Path, key: str) -> None:
    """Refuse a secret (password, private key) that other users could read or change.

    Allowed: owner read/write and group read (``0600``, ``0640``: the install
    script gives the ``geoedge`` group read access). ConfigError names the key and
    the fix otherwise.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path} ({exc.strerror})") from None
    if mode & (stat.S_IRWXO | stat.S_IWGRP | stat.S_IXGRP):
        raise ConfigError(
            f"{key}: {path} is open to other users (mode {mode:04o}); "
            f"run: chmod 600 {path} (or 640 with group geoedge)"
        )


def read_secret(path: Path, key: str) -> str:
    """The secret in ``path`` (one line, the newline dropped), after :func:`check_secret_file`."""
    check_secret_file(path, key)
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{key}: cannot read {path} ({why})") from None


def with_password(url: str, password: str) -> str:
    """``url`` (``scheme://user@host...``) with ``password`` put in after the user name."""
    head, sep, rest = url.partition("://")
    user, at, host = rest.partition("@")
    if not sep or not at or ":" in user:
        raise ConfigError(
            f"{redact(url)}: a password file needs a URL with a user name and no password "
            "(scheme://user@host/...)"
        )
    return f"{head}://{user}:{quote(password, safe='')}@{host}"
