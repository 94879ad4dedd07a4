"""``geoedge label``: the labelling page in a real headless Chromium, on a real CACO-01 TimeX.

The operator's session: the page opens on the station's starting mask (the shipped U-Net through
the station's segmentation code), a sky polygon is drawn, an ignore triangle is drawn and undone
(Ctrl+Z), a water brush stroke crosses the dry beach, Ctrl+S saves. The saved mask must hold
exactly those edits on top of the starting mask, in the training layout
(:mod:`edge.beach.labelling.record`).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from edge.beach.labelling.assist import StartingMask, StartingSegmenter, grabcut_assist
from edge.beach.labelling.record import IGNORE, LAND, SKY, WATER, read_label_dir
from edge.beach.labelling.server import LabelSession, make_server, url_of
from tests.helpers.data import COASTCAM, REPO

TIMEX = COASTCAM / "1581508801.c1.timex.jpg"  # 2448 x 2048, CC0

#: Full-resolution pixel coordinates (x = column, y = row) of the edits.
SKY_POLYGON = [(100, 40), (2300, 40), (2300, 200), (100, 200)]  # above the horizon
IGNORE_TRIANGLE = [(1000, 1400), (1400, 1400), (1200, 1700)]  # drawn, then undone
WATER_STROKE = [(800, 1000), (1600, 1000)]  # across the dry beach
BRUSH_RADIUS = 12  # the page's default brush, image pixels
#: Slack at the edges of an edit (px): one screen pixel is ~2.4 image pixels at "fit" zoom,
#: and the canvas covers a pixel when its centre is inside the polygon.
EDGE_PX = 5


def _polygon_mask(shape: tuple[int, int], points: list[tuple[int, int]]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.array(points, np.int32)], 1)
    return m > 0


def _stroke_mask(shape: tuple[int, int], points: list[tuple[int, int]], radius: int) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.line(m, points[0], points[1], 1, 2 * radius + 1)
    return m > 0


def _grow(m: np.ndarray, px: int) -> np.ndarray:
    return cv2.dilate(m.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


def _shrink(m: np.ndarray, px: int) -> np.ndarray:
    return cv2.erode(m.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


def test_operator_draws_undoes_and_saves_in_the_training_layout(browser_page, tmp_path):
    images, labels = tmp_path / "timex", tmp_path / "labels"
    images.mkdir()
    shutil.copy(TIMEX, images / TIMEX.name)
    starting = StartingSegmenter("default")
    session = LabelSession(images, labels, "test operator", starting, starting.source, "caco01-c1")
    start = starting(cv2.imread(str(TIMEX))).mask
    h, w = start.shape
    server = make_server(session)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = browser_page
    try:
        page.goto(url_of(server))
        page.wait_for_selector("body[data-state=ready]", timeout=15_000)
        box = page.locator("#draft").bounding_box()

        def at(x: float, y: float) -> tuple[float, float]:
            return box["x"] + (x + 0.5) * box["width"] / w, box["y"] + (y + 0.5) * box["height"] / h

        def polygon(points: list[tuple[int, int]]) -> None:
            for x, y in points:
                page.mouse.click(*at(x, y))
            page.keyboard.press("Enter")

        page.keyboard.press("p")  # polygon tool
        page.keyboard.press("s")  # class sky
        polygon(SKY_POLYGON)
        page.keyboard.press("i")  # class ignore
        polygon(IGNORE_TRIANGLE)
        page.keyboard.press("Control+z")  # undo the triangle
        page.keyboard.press("b")  # brush
        page.keyboard.press("w")  # class water
        page.mouse.move(*at(*WATER_STROKE[0]))
        page.mouse.down()
        page.mouse.move(*at(*WATER_STROKE[1]), steps=12)
        page.mouse.up()
        page.keyboard.press("Control+s")
        page.wait_for_selector("body[data-state=saved]", timeout=10_000)
        page.screenshot(path=str(tmp_path / "label_tool.png"))
        assert page.console_errors == []
    finally:
        server.shutdown()
        server.server_close()

    (label,) = read_label_dir(labels)
    saved = label.read_mask()
    record = json.loads((labels / f"{TIMEX.stem}.json").read_text())
    assert label.image == (images / TIMEX.name).resolve()
    assert record["labeller"] == "test operator" and record["station"] == "caco01-c1"
    assert record["start"].startswith("unet unet") and record["tool"].startswith("geoedge label")

    sky = _polygon_mask(start.shape, SKY_POLYGON)
    stroke = _stroke_mask(start.shape, WATER_STROKE, BRUSH_RADIUS)
    triangle = _polygon_mask(start.shape, IGNORE_TRIANGLE)
    assert (saved[_shrink(sky, EDGE_PX)] == SKY).all()
    core = _shrink(stroke, EDGE_PX)
    assert (start[core] == LAND).mean() > 0.9, "the stroke must cross land of the start mask"
    assert (saved[core] == WATER).all()
    assert not (saved == IGNORE).any(), "the undone triangle must not be in the saved mask"
    untouched = ~_grow(sky | stroke, EDGE_PX)
    assert np.array_equal(saved[untouched], start[untouched])
    assert np.array_equal(saved[triangle & untouched], start[triangle & untouched])


@pytest.mark.parametrize("offset", [-25, 25])
def test_grabcut_moves_a_misplaced_water_edge_to_the_colour_edge(offset):
    """A blue sea over sand with a straight edge at row 120; the starting mask puts the edge
    ``offset`` px off. GrabCut, seeded with it, puts the edge back within 3 px (the colour
    edge is sharp); pixels the operator drew and sky stay as they were."""
    h, w = 240, 320
    bgr = np.zeros((h, w, 3), np.uint8)
    bgr[:120] = (170, 110, 40)  # sea (BGR)
    bgr[120:] = (120, 180, 210)  # sand
    rng = np.random.default_rng(0)
    bgr = np.clip(bgr + rng.normal(0, 6, bgr.shape), 0, 255).astype(np.uint8)
    mask = np.full((h, w), LAND, np.uint8)
    mask[: 120 + offset] = WATER
    mask[:10] = SKY
    drawn = np.zeros((h, w), bool)
    drawn[100:140, :20] = True  # the operator's own strokes, whatever they say
    out = grabcut_assist(bgr, mask, drawn, band_px=40)
    edge_rows = [10 + int(np.argmax(out[10:, x] != WATER)) for x in range(40, w, 20)]
    assert all(abs(r - 120) <= 3 for r in edge_rows), edge_rows
    assert np.array_equal(out[drawn], mask[drawn])
    assert (out[:10] == SKY).all()


def test_the_labelling_tool_runs_without_torch():
    """Devices have no PyTorch: the command and its server must not import it."""
    code = (
        "import sys, edge.commands.label, edge.beach.labelling.server; "
        "sys.exit('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr or "torch was imported"


def test_the_server_assists_and_refuses_a_mask_of_the_wrong_size(tmp_path):
    """The page's HTTP calls without the page: GrabCut moves a misplaced edge of a sea/sand
    image, a mask of the wrong size is refused with one JSON error line and nothing is saved."""
    images, labels = tmp_path / "timex", tmp_path / "labels"
    images.mkdir()
    bgr = np.zeros((120, 160, 3), np.uint8)
    bgr[:60] = (170, 110, 40)
    bgr[60:] = (120, 180, 210)
    cv2.imwrite(str(images / "scene.png"), bgr)

    def misplaced_start(image: np.ndarray) -> StartingMask:
        mask = np.full(image.shape[:2], LAND, np.uint8)
        mask[:45] = WATER  # the edge 15 px too far seaward
        return StartingMask(mask, "test start")

    session = LabelSession(images, labels, "tester", misplaced_start, "test start")
    server = make_server(session)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = url_of(server)
        with urllib.request.urlopen(base + "api/images/0/mask") as r:
            start = np.frombuffer(r.read(), np.uint8).reshape(120, 160)
            assert r.headers["X-Mask-Source"] == "test start"
        body = start.tobytes() + np.zeros(start.size, np.uint8).tobytes()
        with urllib.request.urlopen(base + "api/images/0/grabcut", data=body) as r:
            assisted = np.frombuffer(r.read(), np.uint8).reshape(120, 160)
        assert abs(int((assisted[:, 80] == WATER).sum()) - 60) <= 2
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "api/images/0/save", data=b"\x01" * 10)
        assert refused.value.code == 400
        assert "expected 1 x 160x120 bytes" in json.loads(refused.value.read())["error"]
        assert not labels.exists()
    finally:
        server.shutdown()
        server.server_close()


def test_a_label_saved_again_keeps_its_first_start_and_reopens_as_saved(tmp_path):
    """Reopening an image shows the saved mask; saving it again keeps what the first
    corrections started from (the model), not "saved label"."""
    images, labels = tmp_path / "timex", tmp_path / "labels"
    images.mkdir()
    cv2.imwrite(str(images / "scene.png"), np.full((20, 30, 3), 128, np.uint8))

    def start(image: np.ndarray) -> StartingMask:
        return StartingMask(np.zeros(image.shape[:2], np.uint8), "unet first.onnx")

    first = LabelSession(images, labels, "a", start, "unet first.onnx")
    mask = np.zeros((20, 30), np.uint8)
    mask[:5] = SKY
    first.save(0, mask.tobytes())
    second = LabelSession(images, labels, "b", start, "unet second.onnx")
    view = second.mask(0)
    assert view.source == "saved label" and np.array_equal(view.mask, mask)
    mask[5:10] = WATER
    label = second.save(0, mask.tobytes())
    assert label.record.start == "unet first.onnx" and label.record.labeller == "b"
    assert np.array_equal(label.read_mask(), mask)


def test_geoedge_label_prints_the_url_it_serves_and_stops_on_interrupt(tmp_path):
    """The command as an operator runs it: one line naming the images and the starting masks,
    one with the URL; the page and the image list answer there; Ctrl+C (SIGINT) stops it."""
    images = tmp_path / "timex"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.full((40, 50, 3), 128, np.uint8))
    cmd = [sys.executable, "-m", "edge", "label", str(images), "--out", str(tmp_path / "labels")]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        first = proc.stdout.readline()
        url = proc.stdout.readline().split()[1]
        assert "1 images" in first and "starting masks from" in first
        with urllib.request.urlopen(url, timeout=10) as r:
            assert b"label.js" in r.read()
        with urllib.request.urlopen(url + "api/images", timeout=10) as r:
            assert json.loads(r.read())["images"] == [{"name": "a.png", "labelled": False}]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
    finally:
        proc.kill()
        proc.communicate()
