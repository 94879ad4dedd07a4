"""Images to the control room: framing, the size bound, results first, off by default.

The station daemon runs in this process against a real Mosquitto with a site that writes real
image files (a noisy TimeX PNG far over the bound, a small snippet PNG) and emits the result
messages that name them, as the beach and GPR sites do.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.config import StationConfig, load_config
from edge.config.mqtt import MqttSection
from edge.station.daemon import Daemon
from edge.station.images import ImageHeader, ImageSender, frame, image_topic, unframe
from edge.station.messages import envelope
from edge.station.outbox import Outbox
from edge.station.publisher import Publisher
from edge.station.site import Emit, Subscribe
from tests.helpers.data import COASTCAM

STATION = "img-01"


def _noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A gradient with noise: large as PNG, still recognisable after JPEG and downscaling."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    img = ramp + rng.normal(0, 25, (height, width, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _config(tmp_path: Path, mqtt_toml: str) -> StationConfig:
    path = tmp_path / "station.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [station]
            id = "{STATION}"
            kind = "beach"

            [[cameras]]
            name = "c1"
            source = "rtsp://192.0.2.10/stream1"
            intrinsics = "{COASTCAM / "CACO01_C1_IOBest.json"}"
            extrinsics = "{COASTCAM / "CACO01_C1_EOBest.json"}"

            [collection]
            output_dir = "products"

            [outbox]
            path = "state/outbox.sqlite"
            """
        )
        + mqtt_toml
    )
    return load_config(path)


class ImageSite:
    """Emits one products message naming a TimeX, and one cavity message naming a snippet."""

    def __init__(self, config: StationConfig, emit: Emit, subscribe: Subscribe) -> None:
        self.emit, self.config = emit, config
        out = config.collection.output_dir
        out.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / "1700000000.c1.timex.png"), _noise(900, 1200))
        self.snippet = out / "cav.png"
        cv2.imwrite(str(self.snippet), _noise(80, 120, seed=1))

    def run(self, stop: threading.Event) -> None:
        cameras = [{"camera": "c1", "products": {"timex": "1700000000.c1.timex.png"}}]
        self.emit("products", envelope("products", STATION, 1_700_000_000.0, cameras=cameras))
        cavity = envelope(
            "cavity", STATION, 1_700_000_100.0, id="cafe0001", snippet=str(self.snippet)
        )
        self.emit("cavity", cavity)

    def progress(self) -> float:
        return time.monotonic()

    def stats(self) -> dict[str, Any]:
        return {}


def _images(messages) -> list[tuple[ImageHeader, bytes, int]]:
    return [(*unframe(m.payload), len(m.payload)) for m in messages if "/image/" in m.topic]


def test_framing_round_trip_and_one_clear_error_for_a_cut_payload():
    data = cv2.imencode(".png", _noise(10, 20))[1].tobytes()
    header = ImageHeader(
        "0123456789abcdef", STATION, "snippet", None, "2023-11-14T22:13:20Z", "image/png",
        "cafe0001", "cavity", "cav.png", len(data), 20, 10,
    )  # fmt: skip
    payload = frame(header, data)
    assert unframe(payload) == (header, data)
    with pytest.raises(ValueError, match="image bytes"):
        unframe(payload[:-5])
    with pytest.raises(ValueError, match="too short"):
        unframe(b"\x00")
    wrong = json.dumps({**dataclasses.asdict(header), "width": "20"}).encode()
    with pytest.raises(ValueError, match="whole numbers"):
        unframe(struct.pack(">I", len(wrong)) + wrong + data)


def test_images_arrive_intact_within_the_cap_after_their_results(
    mosquitto_broker, mqtt_subscriber, tmp_path
):
    sub = mqtt_subscriber(mosquitto_broker, f"geoedge/{STATION}/#")
    cfg = _config(tmp_path, mosquitto_broker.mqtt_toml(publish_images=True, image_max_kb=64))
    assert Daemon(cfg, site_factory=ImageSite).run() == 0
    got = sub.wait_count(2, 10, f"geoedge/{STATION}/image/#")
    images = {h.kind: (h, data, size) for h, data, size in _images(got)}
    assert set(images) == {"timex", "snippet"}

    # The TimeX (a ~3 MB PNG) was re-encoded as JPEG, downscaled, and fits the 64 KiB cap.
    header, data, size = images["timex"]
    assert size <= 64 * 1024
    assert header.content_type == "image/jpeg" and header.view == "c1"
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (header.height, header.width, 3)
    assert header.width / header.height == pytest.approx(1200 / 900, rel=0.01)
    # The picture survived: the left-to-right ramp (0..200) is still there within JPEG noise.
    columns = decoded.mean(axis=(0, 2))
    assert columns[: len(columns) // 10].mean() < 40 and columns[-len(columns) // 10 :].mean() > 160

    # The snippet fits as it is: byte for byte the station's file.
    header, data, _ = images["snippet"]
    assert data == (tmp_path / "products" / "cav.png").read_bytes()
    assert (header.source_id, header.source_kind, header.content_type) == (
        "cafe0001", "cavity", "image/png",
    )  # fmt: skip

    # The results keep their local paths, and each went out before its images.
    topics = [m.topic for m in sub.messages]
    results = [m.json() for m in sub.messages if m.topic.endswith("/gpr/cavity")]
    assert results[0]["snippet"] == str(tmp_path / "products" / "cav.png")
    assert topics.index(f"geoedge/{STATION}/beach/products") < topics.index(
        image_topic("geoedge", STATION, "timex")
    )
    # The last stats snapshot (taken before the final flush) counts them.
    counts = [m.json() for m in sub.messages if m.topic.endswith("/stats")][-1]["images"]
    assert (counts["queued"], counts["refused"], counts["unreadable"], counts["dropped"]) == (
        2, 0, 0, 0,
    )  # fmt: skip


def test_off_by_default_no_image_goes_out(mosquitto_broker, mqtt_subscriber, tmp_path):
    assert MqttSection().publish_images is False
    sub = mqtt_subscriber(mosquitto_broker, f"geoedge/{STATION}/#")
    cfg = _config(tmp_path, mosquitto_broker.mqtt_toml())
    assert Daemon(cfg, site_factory=ImageSite).run() == 0
    sub.wait_count(1, 10, f"geoedge/{STATION}/gpr/cavity")
    assert not [m for m in sub.messages if "/image/" in m.topic]
    assert not (tmp_path / "state" / "images.sqlite").exists()
    assert [m.json() for m in sub.messages if m.topic.endswith("/stats")][-1]["images"] is None


def test_refused_and_dropped_images_are_counted_and_results_all_flow(
    mosquitto_broker, mqtt_subscriber, tmp_path
):
    """A 48 x 20,000 px noise strip cannot fit 64 KiB (no JPEG of it does, and it cannot shrink
    below 48 px): refused. A 200 KiB image queue under 20 snippets of ~58 KiB keeps the newest
    and drops the rest, counted. All 20 results, queued first, arrive before any image."""
    station = "img-02"
    out = tmp_path / "products"
    out.mkdir()
    cv2.imwrite(str(out / "strip.png"), _noise(48, 20_000, seed=2))
    results = Outbox(tmp_path / "outbox.sqlite")
    image_queue = Outbox(tmp_path / "images.sqlite", max_bytes=200 * 1024)
    images = ImageSender(image_queue, "geoedge", station, out, 64 * 1024)
    strip = envelope("cavity", station, 1.0, id="strip", snippet=str(out / "strip.png"))
    assert images.offer("cavity", strip) == 0
    for n in range(20):
        path = out / f"s{n}.png"
        cv2.imwrite(str(path), _noise(120, 160, seed=n))
        message = envelope("cavity", station, 10.0 + n, id=f"c{n}", snippet=str(path))
        results.put(f"geoedge/{station}/gpr/cavity", json.dumps(message))
        images.offer("cavity", message)
    counts = images.stats()
    assert counts["refused"] == 1
    assert counts["dropped"] > 0 and counts["queue_depth"] == 20 - counts["dropped"]

    sub = mqtt_subscriber(mosquitto_broker, f"geoedge/{station}/#")
    publisher = Publisher(mosquitto_broker.mqtt_section(), station, results, image_queue)
    publisher.start()
    try:
        assert publisher.flush(15)
    finally:
        publisher.stop()
        results.close()
        image_queue.close()
    sent = [m.topic.split("/")[2] for m in sub.messages if not m.topic.endswith("/status")]
    assert sent.count("gpr") == 20
    assert sent.count("image") == counts["queue_depth"] > 0
    assert "gpr" not in sent[sent.index("image") :]


def test_an_image_that_cannot_be_read_is_counted_and_never_raises(tmp_path):
    """A corrupt PNG, a file gone (retention swept it), a file that is no image: one log line
    and a count each; the result they belong to is already stored and stays so."""
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 100)
    (tmp_path / "notes.txt").write_text("not an image")
    queue = Outbox(tmp_path / "images.sqlite")
    sender = ImageSender(queue, "geoedge", STATION, tmp_path, 64 * 1024)
    for n, name in enumerate(["bad.png", "gone.png", "notes.txt"]):
        message = envelope("cavity", STATION, 1.0, id=f"c{n}", snippet=str(tmp_path / name))
        assert sender.offer("cavity", message) == 0
    assert sender.stats() == {"queued": 0, "queue_depth": 0, "refused": 0, "unreadable": 3,
                              "dropped": 0}  # fmt: skip
    queue.close()
