"""The labelling page's local HTTP server (stdlib ``ThreadingHTTPServer``, no torch).

Routes (``I`` is the image's index in the folder listing, sorted by name)::

    GET  /                       the page (static/index.html, label.js, label.css)
    GET  /api/images             {"images": [{"name", "labelled"}], "labeller", "start", "tool"}
    GET  /api/images/I/image     the image file as it is
    GET  /api/images/I/mask      raw class mask, W*H bytes row-major (0 land, 1 water, 2 sky,
                                 255 ignore); headers X-Width, X-Height, X-Mask-Source (the
                                 saved label, else the starting mask's source)
    POST /api/images/I/grabcut   body: mask (W*H bytes) then hand-drawn flags (W*H bytes);
                                 answers the new mask (W*H bytes)
    POST /api/images/I/save      body: mask (W*H bytes); writes <stem>.png + <stem>.json
                                 (:mod:`edge.beach.labelling.record`), answers
                                 {"mask", "record", "fractions"}

A bad request is answered with ``{"error": "..."}`` and one log line; the server goes on.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from edge.beach.labelling.assist import StartingMask, grabcut_assist
from edge.beach.labelling.record import (
    IMAGE_SUFFIXES,
    TOOL,
    Label,
    LabelRecord,
    save_label,
    saved_mask,
)
from edge.errors import GeoEdgeError, InputError

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "label.js": "text/javascript; charset=utf-8",
    "label.css": "text/css; charset=utf-8",
}
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


@dataclass(frozen=True)
class MaskView:
    """The mask the page starts from for one image and where it came from."""

    mask: np.ndarray
    source: str


class LabelSession:
    """The images of one folder, the label folder, who labels, and how starting masks are made.

    ``starting`` makes the starting mask of an image that has no saved label yet.
    """

    def __init__(
        self,
        image_dir: Path,
        label_dir: Path,
        labeller: str,
        starting: Callable[[np.ndarray], StartingMask],
        start_source: str,
        station: str | None = None,
    ) -> None:
        if not image_dir.is_dir():
            raise InputError(f"{image_dir}: no such image folder")
        if label_dir.resolve() == image_dir.resolve():
            raise InputError(f"--out {label_dir}: use a folder other than the images' own")
        self.images = sorted(
            p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not self.images:
            raise InputError(f"{image_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self.label_dir = label_dir
        self.labeller = labeller
        self.starting = starting
        self.start_source = start_source
        self.station = station
        self._lock = threading.Lock()
        self._cache: tuple[int, np.ndarray] | None = None

    def image(self, index: int) -> Path:
        if not 0 <= index < len(self.images):
            raise InputError(f"no image {index} (the folder has {len(self.images)})")
        return self.images[index]

    def bgr(self, index: int) -> np.ndarray:
        """The image (BGR uint8); the last one read is kept."""
        with self._lock:
            if self._cache is None or self._cache[0] != index:
                path = self.image(index)
                image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
                if image is None:
                    raise InputError(f"{path.name}: cannot read image (not a decodable image file)")
                self._cache = (index, image)
            return self._cache[1]

    def labelled(self, index: int) -> bool:
        return (self.label_dir / f"{self.image(index).stem}.json").is_file()

    def mask(self, index: int) -> MaskView:
        saved = saved_mask(self.label_dir, self.image(index))
        if saved is not None:
            return MaskView(saved, "saved label")
        start = self.starting(self.bgr(index))
        return MaskView(start.mask, start.source)

    def _mask_from(self, index: int, body: bytes, copies: int) -> list[np.ndarray]:
        h, w = self.bgr(index).shape[:2]
        if len(body) != copies * w * h:
            raise InputError(
                f"{self.image(index).name}: expected {copies} x {w}x{h} bytes, got {len(body)}"
            )
        flat = np.frombuffer(body, np.uint8)
        return [flat[k * w * h : (k + 1) * w * h].reshape(h, w) for k in range(copies)]

    def grabcut(self, index: int, body: bytes) -> np.ndarray:
        mask, drawn = self._mask_from(index, body, 2)
        return grabcut_assist(self.bgr(index), mask, drawn > 0)

    def save(self, index: int, body: bytes) -> Label:
        """Save the page's mask; a label saved again keeps the ``start`` of its first record
        (what made the mask the corrections began from)."""
        (mask,) = self._mask_from(index, body, 1)
        image = self.image(index)
        earlier = self.label_dir / f"{image.stem}.json"
        start = (
            LabelRecord.from_json(earlier.read_text(), earlier).start
            if earlier.is_file()
            else self.start_source
        )
        label = save_label(self.label_dir, image, mask, self.labeller, start, self.station)
        log.info("saved %s (water %.1f %%)", label.mask, 100 * label.record.fractions["water"])
        return label


class _Handler(BaseHTTPRequestHandler):
    session: LabelSession  # set on the subclass made by make_server

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(
        self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: object, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _route(self) -> tuple[int | None, str]:
        """(image index or None, action) of an ``/api/images/I/ACTION`` path."""
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 4 and parts[:2] == ["api", "images"] and parts[2].isdigit():
            return int(parts[2]), parts[3]
        return None, "/".join(parts)

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except GeoEdgeError as exc:
            log.warning("geoedge label: %s %s: %s", self.command, self.path, exc)
            self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)

    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _get(self) -> None:
        s = self.session
        index, action = self._route()
        if index is None:
            name = "index.html" if action == "" else action.removeprefix("static/")
            if name in STATIC_TYPES:
                self._send(HTTPStatus.OK, (STATIC / name).read_bytes(), STATIC_TYPES[name])
            elif action == "api/images":
                images = [
                    {"name": p.name, "labelled": s.labelled(i)} for i, p in enumerate(s.images)
                ]
                self._json(
                    {
                        "images": images,
                        "labeller": s.labeller,
                        "start": s.start_source,
                        "tool": TOOL,
                    }
                )
            else:
                self._json({"error": f"no such page: {self.path}"}, HTTPStatus.NOT_FOUND)
        elif action == "image":
            path = s.image(index)
            self._send(HTTPStatus.OK, path.read_bytes(), IMAGE_TYPES[path.suffix.lower()])
        elif action == "mask":
            view = s.mask(index)
            h, w = view.mask.shape
            headers = {"X-Width": str(w), "X-Height": str(h), "X-Mask-Source": view.source}
            self._send(HTTPStatus.OK, view.mask.tobytes(), "application/octet-stream", headers)
        else:
            self._json({"error": f"no such page: {self.path}"}, HTTPStatus.NOT_FOUND)

    def _post(self) -> None:
        index, action = self._route()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if index is not None and action == "grabcut":
            out = self.session.grabcut(index, body)
            self._send(HTTPStatus.OK, out.tobytes(), "application/octet-stream")
        elif index is not None and action == "save":
            label = self.session.save(index, body)
            self._json(
                {
                    "mask": label.mask.name,
                    "record": f"{label.mask.stem}.json",
                    "fractions": label.record.fractions,
                }
            )
        else:
            self._json({"error": f"no such action: {self.path}"}, HTTPStatus.NOT_FOUND)


def make_server(
    session: LabelSession, host: str = "127.0.0.1", port: int = 0
) -> ThreadingHTTPServer:
    """A server for ``session`` bound to ``host:port`` (0: a free port); call
    ``serve_forever()`` on it (``server_address`` says where it listens)."""
    handler = type("LabelHandler", (_Handler,), {"session": session})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    server.daemon_threads = True
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/"
