"""The hub's image archive: files on disk, indexed in the store, idempotent, with retention.

Runs against SQLite and a real PostgreSQL server (one code path). The image messages are
framed by the station's own code (:func:`edge.station.images.frame`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import InputError
from edge.hub.images import ImageArchive
from edge.hub.store import Store
from edge.station.images import ImageHeader, frame, image_id

STATION = "gpr-07"
T0 = 1_780_000_000.0


def _message(n: int, kind: str = "snippet", station: str = STATION, side: int = 64) -> bytes:
    """Image message ``n``: a PNG of ``side`` x ``side`` px whose grey level is ``n``."""
    data = cv2.imencode(".png", np.full((side, side), n, np.uint8))[1].tobytes()
    source = f"cav{n:04d}"
    header = ImageHeader(
        image_id(station, kind, source, None), station, kind, None,
        f"2026-05-28T20:{n % 60:02d}:00Z", "image/png", source, "cavity", f"{source}.png",
        len(data), side, side,
    )  # fmt: skip
    return frame(header, data)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    else:
        server = request.getfixturevalue("postgres_server")
        url = "postgresql+psycopg://" + server.create_database().split("://", 1)[1]
    opened = Store(url)
    yield opened
    opened.close()


def test_an_image_is_stored_once_on_disk_and_found_by_message_station_and_kind(store, tmp_path):
    archive = ImageArchive(tmp_path / "images", store.engine, None, None)
    payload = _message(7)
    record = archive.ingest(STATION, payload, T0)
    assert record is not None
    assert archive.ingest(STATION, payload, T0 + 5.0) is None  # a re-delivery: stored once
    stored = archive.file(record)
    assert stored.parent == tmp_path / "images" / STATION / "snippet" / "2026-05-28"
    image = cv2.imread(str(stored), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (64, 64) and int(image[0, 0]) == 7
    assert archive.get(record.id) == record
    assert archive.of_message("cav0007") == [record]
    newer = archive.ingest(STATION, _message(9), T0 + 10.0)
    assert archive.latest(STATION, "snippet") == newer
    assert archive.latest(STATION, "timex") is None
    assert record.to_json()["url"] == f"/api/images/{record.id}"


def test_bad_image_messages_are_refused_with_one_line(store, tmp_path):
    archive = ImageArchive(tmp_path / "images", store.engine, None, None)
    good = _message(1)
    with pytest.raises(InputError, match="image bytes"):
        archive.ingest(STATION, good[:-10], T0)
    with pytest.raises(InputError, match="says station"):
        archive.ingest("someone-else", good, T0)
    with pytest.raises(InputError, match="too short"):
        archive.ingest(STATION, b"", T0)
    small = ImageArchive(tmp_path / "images", store.engine, None, None, max_bytes=len(good) - 1)
    with pytest.raises(InputError, match="max_payload_kb"):
        small.ingest(STATION, good, T0)
    assert not list((tmp_path / "images").rglob("*.png"))


def test_retention_by_age_then_by_size_deletes_rows_and_files_together(store, tmp_path):
    """Ten images received a day apart: keep 5 days drops the 5 oldest (received more than 5
    days before the sweep); then a size bound of two and a half images keeps the newest two."""
    archive = ImageArchive(tmp_path / "images", store.engine, 5.0, None)
    day = 86400.0
    records = [archive.ingest(STATION, _message(n, side=256), T0 + n * day) for n in range(10)]
    assert all(r is not None for r in records)
    now = T0 + 9 * day + 1.0
    assert archive.sweep(now).deleted == 5
    kept = [r for r in records if r is not None and archive.get(r.id) is not None]
    assert [r.source_id for r in kept] == [f"cav{n:04d}" for n in range(5, 10)]
    assert len(list((tmp_path / "images").rglob("*.png"))) == 5

    size = kept[0].bytes
    by_size = ImageArchive(tmp_path / "images", store.engine, None, 2.5 * size / (1 << 20))
    assert by_size.sweep(now).deleted == 3
    left = sorted(p.name for p in (tmp_path / "images").rglob("*.png"))
    assert left == sorted(Path(r.path).name for r in kept[-2:])
