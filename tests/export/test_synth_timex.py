"""The optional appearance modes of the synthetic TimeX renderer (thermal, foamy, grey, snow,
glint, shadows, clouds, cove, bathers, occluder).

Situation: a 160 x 128 camera 25 m above a planar beach (tan(beta) = 0.08) at water level
0.3 m; the scene shows sea (37 % of the pixels), sand with dunes (27 %) and sky (36 %).
Each mode draws from its own random stream, so a render with one mode on differs from the
plain render (same seed) only where that mode paints: that is how the label convention is
checked (snow only on land, glint only on water and sky, ...). The raindrop blur of the
imaging stage (sigma 1.5 px) spreads a change by a few pixels, hence the 5 px margin, and
uint8 rounding by a grey level or two, hence "changed" means more than 2 grey levels.
"""

from __future__ import annotations

from dataclasses import asdict

import cv2
import numpy as np
import pytest

from export.data.scene import SAND, SKY, BeachProfile, BeachScene, look_at_camera
from export.data.synth_timex import PLAIN, Look, LookRates, generate, paint

LEVEL = 0.3
SEEDS = range(8)
MODES = [m for m in asdict(Look()) if m != "seed"]


@pytest.fixture(scope="module")
def scene() -> BeachScene:
    cam = look_at_camera((0, -60, 25), (0, 120, 0), nu=160, nv=128, hfov_deg=60)
    return BeachScene(cam, BeachProfile(slope=0.08), shore_origin=(0, 0), seaward_azimuth_deg=0)


@pytest.fixture(scope="module")
def zones(scene: BeachScene) -> dict[str, np.ndarray]:
    r = scene.render(LEVEL)
    return {"water": r.water_mask, "sand": r.labels == SAND, "sky": r.labels == SKY}


def _render(scene: BeachScene, seed: int, mode: str | None = None):
    look = Look(**{mode: True}, seed=seed) if mode else Look()
    return paint(np.random.default_rng(seed), scene, LEVEL, look)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.abs(a.astype(int) - b.astype(int)) > 2).any(axis=2)


def _near(zone: np.ndarray) -> np.ndarray:
    """``zone`` grown by 5 px (the raindrop blur's reach)."""
    return cv2.dilate(zone.astype(np.uint8), np.ones((11, 11), np.uint8)) > 0


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_renders_and_changes_the_image(scene, mode):
    plain = _render(scene, 0)
    sample = _render(scene, 0, mode)
    assert sample.image.shape == (128, 160, 3) and sample.image.dtype == np.uint8
    assert sample.mask.shape == (128, 160) and sample.mask.dtype == bool
    assert _changed(sample.image, plain.image).sum() > 100


@pytest.mark.parametrize("mode", ["thermal", "foamy", "grey", "snow", "glint", "shadows", "clouds"])
def test_modes_that_only_repaint_keep_the_scene_water_as_the_label(scene, zones, mode):
    for seed in SEEDS:
        np.testing.assert_array_equal(_render(scene, seed, mode).mask, zones["water"])


@pytest.mark.parametrize("mode", ["cove", "bathers", "occluder"])
def test_land_in_front_of_the_water_is_taken_out_of_the_label(scene, zones, mode):
    # The far shore's hills, bathers in the swash and a foreground tree are land (as in the
    # real labels): the mask only loses water pixels, never gains any, and every lost pixel
    # was repainted.
    lost = 0
    for seed in SEEDS:
        plain, sample = _render(scene, seed), _render(scene, seed, mode)
        assert not (sample.mask & ~zones["water"]).any()
        gone = zones["water"] & ~sample.mask
        assert (gone <= _near(_changed(sample.image, plain.image))).all()
        lost += int(gone.sum())
    assert lost > 8 * 30


def test_snow_whitens_only_land(scene, zones):
    for seed in SEEDS:
        plain, snow = _render(scene, seed), _render(scene, seed, "snow")
        changed = _changed(snow.image, plain.image)
        assert changed.sum() > 500
        assert (changed <= _near(zones["sand"])).all()
        brighter = snow.image.astype(float).mean(axis=2) - plain.image.mean(axis=2)
        assert brighter[changed & zones["sand"]].mean() > 10


def test_glint_brightens_only_the_sea_and_the_sky_above_it(scene, zones):
    for seed in SEEDS:
        plain, glint = _render(scene, seed), _render(scene, seed, "glint")
        changed = _changed(glint.image, plain.image)
        assert (changed <= _near(zones["water"] | zones["sky"])).all()
        brighter = glint.image.astype(float).mean(axis=2) - plain.image.mean(axis=2)
        assert brighter[zones["water"]].max() > 40  # the column itself: measured 47-125


def test_shadows_only_darken_the_ground(scene, zones):
    for seed in SEEDS:
        plain, shade = _render(scene, seed), _render(scene, seed, "shadows")
        assert (shade.image.astype(int) <= plain.image.astype(int) + 2).all()
        assert (_changed(shade.image, plain.image) <= _near(~zones["sky"])).all()


def test_clouds_stay_in_the_sky(scene, zones):
    for seed in SEEDS:
        plain, cloudy = _render(scene, seed), _render(scene, seed, "clouds")
        assert (_changed(cloudy.image, plain.image) <= _near(zones["sky"])).all()


def test_thermal_is_one_channel_with_sea_and_beach_apart(scene, zones):
    # Cold sea (30-90 before exposure) against sand, wet sand and dunes (100-220): measured
    # mean contrast 32-144 grey levels over these seeds; 20 allows for exposure and fog.
    for seed in SEEDS:
        image = _render(scene, seed, "thermal").image
        assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
        grey = image[..., 0].astype(float)
        assert abs(grey[zones["water"]].mean() - grey[zones["sand"]].mean()) > 20


def test_grey_sea_and_sand_are_grey_and_of_similar_brightness(scene, zones):
    # Measured: the mean colours' channel spread 4-12 (the plain sand's is ~65) and the
    # sea at 0.67-1.03 of the sand's brightness over these seeds.
    for seed in SEEDS:
        image = _render(scene, seed, "grey").image.astype(float)
        sea, sand = image[zones["water"]].mean(axis=0), image[zones["sand"]].mean(axis=0)
        assert np.ptp(sea) < 20 and np.ptp(sand) < 20
        assert 0.5 < sea.mean() / sand.mean() < 1.2


def test_foamy_sea_is_mostly_white(scene, zones):
    # A wide saturated surf zone in 70 % of foamy renders (breaker crests only otherwise):
    # then the median sea pixel is brighter than three quarters of the plain sea.
    whiter = 0
    for seed in SEEDS:
        plain, foamy = _render(scene, seed), _render(scene, seed, "foamy")
        pg, fg = plain.image.mean(axis=2), foamy.image.mean(axis=2)
        assert (foamy.image.astype(int) >= plain.image.astype(int) - 2).all()
        whiter += np.median(fg[zones["water"]]) > np.percentile(pg[zones["water"]], 75)
    assert whiter >= 5


def test_a_look_with_no_mode_is_the_plain_render(scene):
    a = paint(np.random.default_rng(3), scene, LEVEL)
    b = paint(np.random.default_rng(3), scene, LEVEL, Look(seed=123))
    np.testing.assert_array_equal(a.image, b.image)


def test_generate_is_deterministic_per_seed():
    runs = [[generate(np.random.default_rng(11), (64, 80)) for _ in range(4)] for _ in range(2)]
    for first, second in zip(*runs, strict=True):
        np.testing.assert_array_equal(first.image, second.image)
        np.testing.assert_array_equal(first.mask, second.mask)
    other = generate(np.random.default_rng(12), (64, 80))
    assert not np.array_equal(other.image, runs[0][0].image)


def test_looks_are_drawn_at_their_rates():
    # 4000 draws: each mode's frequency within 4 binomial standard deviations of its rate;
    # PLAIN draws no mode and takes nothing from the stream.
    rates = LookRates()
    rng = np.random.default_rng(0)
    looks = [rates.draw(rng) for _ in range(4000)]
    for mode, p in asdict(rates).items():
        freq = np.mean([asdict(look)[mode] for look in looks])
        assert abs(freq - p) < 4 * np.sqrt(p * (1 - p) / 4000), mode
    rng = np.random.default_rng(0)
    assert PLAIN.draw(rng) == Look()
    assert rng.random() == np.random.default_rng(0).random()
