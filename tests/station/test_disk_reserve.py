"""The outbox's disk reserve on a really full file system (a tmpfs of its own in a private
mount namespace): results put after the disk filled up are stored durably all the same."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.data import REPO
from tests.helpers.tmpfs import on_tmpfs, private_tmpfs_unavailable

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from edge.station.outbox import Outbox

    folder = Path(sys.argv[1])
    box = Outbox(folder / "outbox.sqlite", reserve_bytes=2 << 20)
    assert box.keep_reserve()
    box.put("geoedge/s/stats", "{}")  # the schema's pages exist before the disk fills
    filler = open(folder / "filler", "wb")
    try:
        while True:
            filler.write(b"\\0" * 65536)
            filler.flush()
            os.fsync(filler.fileno())
    except OSError:
        pass
    stored = 0
    for n in range(100):
        if box.put("geoedge/s/beach/waterline", json.dumps({"n": n, "pad": "x" * 5000})):
            stored += 1
    reserve_left = box.reserve.exists()
    box.close()
    again = Outbox(folder / "outbox.sqlite")
    depth = again.depth()
    again.close()
    print(json.dumps({"stored": stored, "depth": depth, "reserve_left": reserve_left}))
    """
)


def test_results_put_on_a_full_disk_are_stored_from_the_reserve(tmp_path):
    if (why := private_tmpfs_unavailable()) is not None:
        pytest.skip(why)
    folder = tmp_path / "disk"
    folder.mkdir()
    run = subprocess.run(
        [*on_tmpfs(folder, "8m"), sys.executable, "-c", SCRIPT, str(folder)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    # 100 waterline-sized (5 KB) results fit in a 2 MiB reserve (measured: the write-ahead
    # log takes the first ~1 MiB, then ~200 such results per MiB): all stored, and all still
    # there when the outbox is opened again (durable, not held in memory).
    assert report == {"stored": 100, "depth": 101, "reserve_left": False}, report
    assert "released the 2097152-byte reserve" in run.stderr
