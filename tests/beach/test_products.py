"""Streaming image products against numpy on the same frames."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge.beach.products import BLOCK_FRAMES, Collection, ProductAccumulator, write_collection
from edge.errors import InputError


def accumulate(frames: np.ndarray) -> ProductAccumulator:
    acc = ProductAccumulator()
    for frame in frames:
        acc.add(frame)
    return acc


def test_products_equal_numpy_on_random_frames():
    # 300 random BGR frames (more than one block of 256): mean and standard
    # deviation agree with numpy's float64 results to float64 round-off (1e-9 grey
    # levels), max/min/first exactly, and the images are the rounded values.
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (300, 48, 64, 3), dtype=np.uint8)
    acc = accumulate(frames)
    mean, std = acc.mean_std()
    ref = frames.astype(np.float64)
    np.testing.assert_allclose(mean, ref.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(std, ref.std(axis=0), atol=1e-9)
    images = acc.images()
    assert set(images) == {"timex", "variance", "bright", "dark", "snap"}
    np.testing.assert_array_equal(images["timex"], np.rint(ref.mean(axis=0)).astype(np.uint8))
    np.testing.assert_array_equal(images["variance"], np.rint(ref.std(axis=0)).astype(np.uint8))
    np.testing.assert_array_equal(images["bright"], frames.max(axis=0))
    np.testing.assert_array_equal(images["dark"], frames.min(axis=0))
    np.testing.assert_array_equal(images["snap"], frames[0])


def test_variance_stays_exact_over_a_long_bright_collection():
    # The hard case for E[x^2] - E[x]^2: a pixel near 255 that flickers by one grey
    # level, over 10 blocks. Population std of alternating 254/255 is exactly 0.5;
    # a float32 accumulation would lose it (sum of squares ~1.7e8 > 2**24).
    n = 10 * BLOCK_FRAMES
    frames = np.where(np.arange(n) % 2 == 0, 254, 255).astype(np.uint8).reshape(n, 1, 1)
    frames = np.broadcast_to(frames, (n, 4, 4)).copy()
    mean, std = accumulate(frames).mean_std()
    np.testing.assert_allclose(mean, 254.5, atol=1e-12)
    np.testing.assert_allclose(std, 0.5, atol=1e-9)


def test_a_white_scene_over_several_blocks_keeps_its_exact_mean():
    # The largest block sums: 255 in every frame. A block's uint16 sum of grey levels peaks at
    # 256 * 255 = 65280 < 2**16, so three blocks and a part give mean 255 and std 0 exactly
    # (a wrapped uint16 sum would pull the mean down by 65536 / frames).
    n = 3 * BLOCK_FRAMES + 17
    frames = np.full((n, 3, 5, 3), 255, np.uint8)
    acc = accumulate(frames)
    mean, std = acc.mean_std()
    assert acc.count == n
    np.testing.assert_array_equal(mean, 255.0)
    np.testing.assert_array_equal(std, 0.0)
    assert (acc.images()["timex"] == 255).all()


def test_constant_scene_has_zero_variance_and_any_frame_size():
    frame = np.full((7, 13, 3), 200, np.uint8)  # odd size, not a multiple of anything
    _, std = accumulate(np.stack([frame] * 5)).mean_std()
    assert np.all(std == 0.0)


def test_frame_of_another_size_is_refused():
    acc = ProductAccumulator()
    acc.add(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputError, match="differs"):
        acc.add(np.zeros((10, 11, 3), np.uint8))
    with pytest.raises(InputError, match="uint8"):
        acc.add(np.zeros((10, 10, 3), np.float32))


def test_argus_names_and_sidecar(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (4, 20, 30, 3), dtype=np.uint8)
    images = accumulate(frames).images()
    col = Collection(
        station="chuam-01",
        camera="c1",
        start=1581508800.0,
        end=1581509400.0,
        sample_hz=1.0,
        frame_count=4,
        expected_frames=600,
        flags=["too_few_frames"],
        quality={"brightness": 127.0},
    )
    write_collection(col, images, tmp_path, image_format="png")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "1581508800.chuam-01.c1.bright.png",
        "1581508800.chuam-01.c1.dark.png",
        "1581508800.chuam-01.c1.json",
        "1581508800.chuam-01.c1.snap.png",
        "1581508800.chuam-01.c1.timex.png",
        "1581508800.chuam-01.c1.variance.png",
    ]
    # PNG is lossless: the file holds exactly the accumulated image.
    np.testing.assert_array_equal(cv2.imread(str(col.paths["timex"])), images["timex"])
    doc = json.loads(col.sidecar.read_text())
    assert doc["window"] == {"start": "2020-02-12T12:00:00Z", "end": "2020-02-12T12:10:00Z"}
    assert doc["frame_count"] == 4 and doc["expected_frames"] == 600
    assert doc["flags"] == ["too_few_frames"]
    assert doc["products"]["timex"] == "1581508800.chuam-01.c1.timex.png"
    assert doc["sample_hz"] == 1.0 and doc["station"] == "chuam-01"
    np.testing.assert_array_equal(col.timex, images["timex"])
