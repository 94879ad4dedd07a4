"""Images to the control room: TimeX products, waterline overlays and GPR cavity snippets.

The station's result messages name image files on its own disk (``products`` ->
``cameras[].products.timex``, a name in ``collection.output_dir``; ``waterline`` ->
``overlays``, camera name or ``"plan"`` -> path; ``cavity`` -> ``snippet``, a path). With
``[mqtt] publish_images = true`` the daemon also sends those images, one MQTT message each,
on ``<prefix>/<station>/image/<kind>`` with ``kind`` one of :data:`IMAGE_KINDS`. The result
messages keep their local paths.

Framing (``geoedge.image/1``), one binary MQTT payload::

    4 bytes   N, the header length, unsigned big-endian
    N bytes   the header, UTF-8 JSON (an object, keys below)
    the rest  the image file (JPEG or PNG), exactly header["bytes"] long

Header keys: ``schema`` (``"geoedge.image/1"``), ``id`` (16 hex, a pure function of station,
kind, source message id and view: the same image sent twice has the same id), ``station``,
``kind``, ``view`` (camera name, ``"plan"``, or null for a snippet), ``time`` (the source
message's time, UTC ISO 8601 ``Z``), ``content_type`` (``image/jpeg`` or ``image/png``),
``source_id`` and ``source_kind`` (the result message the image belongs to: its ``id`` and
message kind), ``name`` (the file name on the station), ``bytes`` (image length), ``width``
and ``height`` (pixels, as sent).

Size bound: a whole message (header included) is at most ``mqtt.image_max_kb`` KiB. A larger
file is re-encoded as JPEG at falling quality, then downscaled (by 3/4 per step, down to
:data:`MIN_SIDE_PX` on the short side) until it fits; one that cannot fit, or cannot be read, is
refused and counted (``images.refused``, ``images.unreadable`` in ``stats``).

Results first: images wait in their own bounded outbox (``images.sqlite`` beside the results'
outbox, ``mqtt.image_queue_mb``), which the publisher drains only while no result is queued, one
image in flight at a time. Under pressure the oldest queued images are dropped (the outbox's
size policy, counted as ``images.dropped``); a result is never dropped nor delayed for an image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import GeoEdgeError
from edge.station.outbox import Outbox

log = logging.getLogger(__name__)

SCHEMA = "geoedge.image/1"
#: Image kinds, the last level of the image topic.
IMAGE_KINDS = ("timex", "overlay", "snippet")
#: MQTT sub-topic level (under ``<prefix>/<station>/``) of every image topic.
IMAGE_LEVEL = "image"
#: Downscaling stops when the short side would fall below this (px); the image is refused then.
MIN_SIDE_PX = 48
#: JPEG qualities tried, best first, at each scale.
JPEG_QUALITIES = (85, 70, 55, 40)
_LENGTH = struct.Struct(">I")
#: Largest header accepted by :func:`unframe` (bytes): headers are a few hundred bytes.
MAX_HEADER_BYTES = 16 * 1024
_CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """The JSON header of an image message (see the module docstring for each key)."""

    id: str
    station: str
    kind: str
    view: str | None
    time: str
    content_type: str
    source_id: str
    source_kind: str
    name: str
    bytes: int
    width: int
    height: int
    schema: str = SCHEMA


@dataclass(frozen=True, slots=True)
class ImageSource:
    """An image file a result message names: its kind, view (camera/plan/None) and path."""

    kind: str
    view: str | None
    path: Path


@dataclass(frozen=True, slots=True)
class EncodedImage:
    """Image bytes ready to send with their content type and size (px)."""

    data: bytes
    content_type: str
    width: int
    height: int


def image_topic(prefix: str, station: str, kind: str) -> str:
    """``<prefix>/<station>/image/<kind>``."""
    return f"{prefix}/{station}/{IMAGE_LEVEL}/{kind}"


def image_id(station: str, kind: str, source_id: str, view: str | None) -> str:
    """Deterministic id of one image (16 hex)."""
    return hashlib.sha1(f"{station}|{kind}|{source_id}|{view or ''}".encode()).hexdigest()[:16]


def frame(header: ImageHeader, data: bytes) -> bytes:
    """The MQTT payload: header length, JSON header, image bytes."""
    if header.bytes != len(data):
        raise ValueError(f"header says {header.bytes} bytes, the image has {len(data)}")
    head = json.dumps(asdict(header), separators=(",", ":")).encode("utf-8")
    return _LENGTH.pack(len(head)) + head + data


def unframe(payload: bytes) -> tuple[ImageHeader, bytes]:
    """Header and image bytes of an image payload; ValueError naming what is wrong."""
    if len(payload) < _LENGTH.size:
        raise ValueError(f"{len(payload)} bytes: too short for an image message")
    (length,) = _LENGTH.unpack_from(payload)
    if length > MAX_HEADER_BYTES or _LENGTH.size + length > len(payload):
        raise ValueError(f"header length {length} does not fit a {len(payload)}-byte payload")
    try:
        raw = json.loads(payload[_LENGTH.size : _LENGTH.size + length])
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"header is not JSON ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
        raise ValueError(f"header schema is not {SCHEMA}")
    try:
        header = ImageHeader(**raw)
    except TypeError as exc:
        raise ValueError(f"header keys: {exc}") from None
    texts = (header.id, header.station, header.kind, header.time, header.content_type,
             header.source_id, header.source_kind, header.name)  # fmt: skip
    numbers = (header.bytes, header.width, header.height)
    if not all(isinstance(v, str) for v in texts) or not isinstance(header.view, str | None):
        raise ValueError("header: a text field is not a string")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in numbers):
        raise ValueError("header: bytes, width and height must be whole numbers >= 0")
    data = payload[_LENGTH.size + length :]
    if header.bytes != len(data) or not data:
        raise ValueError(f"header says {header.bytes} image bytes, the payload has {len(data)}")
    if header.kind not in IMAGE_KINDS or header.content_type not in _CONTENT_TYPES.values():
        raise ValueError(f"unknown image kind {header.kind!r} or type {header.content_type!r}")
    return header, data


def fit_image(data: bytes, content_type: str, max_bytes: int) -> EncodedImage | None:
    """``data`` as is when it fits in ``max_bytes``, else re-encoded as JPEG and downscaled
    until it fits; None when it cannot (or is not a decodable image: ValueError)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a decodable JPEG or PNG")
    height, width = image.shape[:2]
    if len(data) <= max_bytes:
        return EncodedImage(data, content_type, width, height)
    scale = 1.0
    while min(height, width) * scale >= MIN_SIDE_PX:
        scaled = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            scaled = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        for quality in JPEG_QUALITIES:
            ok, jpeg = cv2.imencode(".jpg", scaled, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok and jpeg.size <= max_bytes:
                h, w = scaled.shape[:2]
                return EncodedImage(jpeg.tobytes(), "image/jpeg", w, h)
        scale *= 0.75
    return None


def images_in(kind: str, message: dict[str, Any], products_dir: Path) -> list[ImageSource]:
    """The image files a result message of ``kind`` names (nothing for other kinds)."""
    found: list[ImageSource] = []
    if kind == "products":
        for camera in message.get("cameras") or []:
            name = (camera.get("products") or {}).get("timex")
            if name:
                found.append(ImageSource("timex", camera.get("camera"), products_dir / name))
    elif kind == "waterline":
        for view, path in (message.get("overlays") or {}).items():
            found.append(ImageSource("overlay", view, Path(path)))
    elif kind == "cavity" and message.get("snippet"):
        found.append(ImageSource("snippet", None, Path(message["snippet"])))
    return found


class ImageSender:
    """Queues the images of result messages in their own bounded outbox (see the module doc).

    ``offer(kind, message)`` is called by the daemon after the result itself is stored; it
    never raises: an image that cannot be read, fitted or stored is counted and logged.
    """

    def __init__(
        self, outbox: Outbox, prefix: str, station: str, products_dir: Path, max_bytes: int
    ) -> None:
        self.outbox = outbox
        self.prefix = prefix
        self.station = station
        self.products_dir = products_dir
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        #: queued, refused (cannot fit), unreadable, not_stored (the image outbox refused it).
        self._counts: Counter[str] = Counter()

    def offer(self, kind: str, message: dict[str, Any]) -> int:
        """Queue every image ``message`` names; the number queued."""
        sources = images_in(kind, message, self.products_dir)
        if not sources or "id" not in message:
            return 0
        return sum(self._queue(src, kind, message) for src in sources)

    def _queue(self, src: ImageSource, source_kind: str, message: dict[str, Any]) -> bool:
        content_type = _CONTENT_TYPES.get(src.path.suffix.lower())
        ident = image_id(self.station, src.kind, str(message["id"]), src.view)
        topic_name = image_topic(self.prefix, self.station, src.kind)
        try:
            if content_type is None:
                raise ValueError("not a .jpg or .png file")
            data = src.path.read_bytes()
            # The header's own size counts against the bound; 1 KiB is plenty for it.
            fitted = fit_image(data, content_type, self.max_bytes - 1024)
        except OSError as exc:
            self._count("unreadable")
            log.warning("image %s not sent: %s", src.path, exc.strerror or exc)
            return False
        except (ValueError, cv2.error) as exc:
            self._count("unreadable")
            log.warning("image %s not sent: %s", src.path, str(exc).strip().splitlines()[-1])
            return False
        if fitted is None:
            self._count("refused")
            log.warning(
                "image %s not sent: it cannot be made to fit mqtt.image_max_kb = %d",
                src.path,
                self.max_bytes // 1024,
            )
            return False
        header = ImageHeader(
            id=ident,
            station=self.station,
            kind=src.kind,
            view=src.view,
            time=str(message.get("time")),
            content_type=fitted.content_type,
            source_id=str(message["id"]),
            source_kind=source_kind,
            name=src.path.name,
            bytes=len(fitted.data),
            width=fitted.width,
            height=fitted.height,
        )
        try:
            stored = self.outbox.put(topic_name, frame(header, fitted.data), key=ident)
        except GeoEdgeError as exc:
            self._count("not_stored")
            log.warning("image %s not queued: %s", src.path, exc)
            return False
        if stored is not None:
            self._count("queued")
        return stored is not None

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def stats(self) -> dict[str, int]:
        """Counters for the ``stats`` message (``images``)."""
        with self._lock:
            counts = dict(self._counts)
        return {
            "queued": counts.get("queued", 0),
            "queue_depth": self.outbox.depth(),
            "refused": counts.get("refused", 0),
            "unreadable": counts.get("unreadable", 0),
            "dropped": self.outbox.dropped() + counts.get("not_stored", 0),
        }
