"""A small file system of its own for disk-full tests: a tmpfs mounted in a private user and
mount namespace (no root needed on the host), reached by the command run inside it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def private_tmpfs_unavailable() -> str | None:
    """None when this kernel lets us mount a tmpfs in a private namespace, else why not (the
    test that needs one skips with that line)."""
    if shutil.which("unshare") is None:
        return "util-linux unshare is not installed"
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d && umount $d && rmdir $d"],
        capture_output=True, text=True,
    )  # fmt: skip
    return None if probe.returncode == 0 else f"no private tmpfs mount: {probe.stderr.strip()}"


def on_tmpfs(folder: Path, size: str) -> list[str]:
    """A command prefix that mounts a ``size`` (``16m``) tmpfs on ``folder`` and then runs the
    command after it inside that namespace."""
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
            f'mount -t tmpfs -o size={size} tmpfs "{folder}" && exec "$@"', "sh"]  # fmt: skip
