"""Realistic synthetic TimeX images with water masks, for training the U-Net.

Geometry comes from :mod:`export.data.scene` (an oblique CIRN camera ray-cast over a beach
profile); this module paints what a 10-minute time exposure of that scene looks like:

- sky: a vertical gradient, blue to white or overcast grey, with a hazy horizon;
- sea: a base colour (blue, green or grey) with low-frequency texture; the surf zone
  as bright, patchy time-averaged foam bands over the bar(s) and a continuous swash
  foam band just seaward of the waterline;
- beach: sand of a random hue with grain and dunes of texture, a darker wet band just
  landward of the waterline, dry sand beyond; dune vegetation behind the crest and
  sometimes buildings on the skyline;
- people and objects: small dark blobs on the dry beach;
- imaging: exposure and gamma changes, colour casts, fog (contrast loss towards the
  horizon), raindrops on the lens (blurred bright spots), vignetting, sensor noise.

On top of that, each render draws a :class:`Look`: optional appearance modes aimed at the
ways the U-Net fails on real held-out stations, each switched on with the probability in
:class:`LookRates`:

- ``thermal``: a thermal camera (one channel replicated to three): cold uniform sea, warm
  dry sand, wet sand in between, hot buildings and people, cold sky; inverted polarity
  (black-hot instead of white-hot) 30 % of the time; blurred like a low-resolution sensor;
- ``foamy``: a wide, saturated surf zone (most of the sea white) and sharp breaker crests
  as in single snapshots;
- ``grey``: a grey beach with a grey sea of about the wet sand's brightness, the sea
  told apart only by its shore-parallel banding and the sand by its grain;
- ``snow``: snow patches on the dry beach and the dunes (white land);
- ``glint``: a bright, sparkling sun-glint column on the sea, sometimes the sun's halo
  in the sky above it;
- ``shadows``: cloud shadows over the ground and a dark shadow band at the dune toe,
  dark wrack patches on the sand;
- ``clouds``: clouds in the sky, half the time in the sea's own colours;
- ``cove``: a far shore of vegetated hills across the sea on the horizon, often with a
  turquoise sea (a bay photographed across);
- ``bathers``: people standing in the swash and the shallow water;
- ``occluder``: a foreground pine trunk with branches and foliage, and/or rocky
  foreground ground, in front of the scene (a photo taken from behind a tree).

Each mode draws from its own random stream (seeded by ``Look.seed``), so the rest of a
render is the same with and without it; ``paint`` without a look is the plain render.

**Label convention** (matches the waterline stage and the published method): a pixel
is water when its terrain lies below the water level of the render (the still water
plus setup of that collection), i.e. the sea and the swash foam band seaward of the
waterline are water; wet sand landward of it is land, and so are sky, dunes and
buildings. The time-averaged swash in a real TimeX straddles that line; here the foam
band is drawn seaward of it and the wet band landward, with random widths. Whatever a
mode paints on the sea (foam, glint, cloud shadow) stays water and whatever it paints on
the ground (snow, shadow) stays land; things standing in front of the water (bathers,
the foreground tree and rocks, the far shore's hills) are land, as in the real labels.

``python -m export.data.synth_timex --out DIR --count N --size HxW`` writes ``images/``
(PNG, RGB stored as usual BGR files) and ``masks/`` (PNG, 255 = water).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from edge.beach.geometry.camera import Camera, Extrinsics, Intrinsics
from export.data.scene import SAND, SKY, BeachProfile, BeachScene, look_at_camera


@dataclass(frozen=True)
class TimexSample:
    """One synthetic TimeX: ``image`` (H, W, 3) uint8 BGR and ``mask`` (H, W) bool water."""

    image: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class Look:
    """The optional appearance modes of one render (see the module docstring).

    ``seed`` seeds the modes' own random streams (one per mode), so switching a mode on
    leaves the rest of the render unchanged.
    """

    thermal: bool = False
    foamy: bool = False
    grey: bool = False
    snow: bool = False
    glint: bool = False
    shadows: bool = False
    clouds: bool = False
    cove: bool = False
    bathers: bool = False
    occluder: bool = False
    seed: int = 0

    def stream(self, mode: str) -> np.random.Generator:
        """The random stream of ``mode`` (a field name) for this look."""
        return np.random.default_rng([self.seed, _MODES.index(mode)])


#: The mode names, in the order of :class:`Look`'s fields (their stream numbers).
_MODES = tuple(f.name for f in fields(Look) if f.name != "seed")


@dataclass(frozen=True)
class LookRates:
    """Probability (0-1) of each mode in one render of :func:`generate`."""

    thermal: float = 0.08
    foamy: float = 0.12
    grey: float = 0.1
    snow: float = 0.06
    glint: float = 0.12
    shadows: float = 0.2
    clouds: float = 0.3
    cove: float = 0.1
    bathers: float = 0.1
    occluder: float = 0.08

    def draw(self, rng: np.random.Generator) -> Look:
        """A random look; draws nothing from ``rng`` for a mode whose rate is 0 (all 0:
        the plain render, the same images as before the modes existed)."""
        rates = asdict(self)
        on = {m: bool(rates[m] > 0 and rng.random() < rates[m]) for m in _MODES}
        if not any(on.values()):
            return Look()
        return Look(**on, seed=int(rng.integers(2**31)))


#: No optional modes: the plain render.
PLAIN = LookRates(**dict.fromkeys(_MODES, 0.0))


def _noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Smooth random field, zero mean and unit standard deviation, feature size ``scale_px``."""
    h, w = shape
    sh, sw = max(2, int(h / scale_px) + 2), max(2, int(w / scale_px) + 2)
    small = rng.normal(size=(sh, sw)).astype(np.float32)
    field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return (field - field.mean()) / (field.std() + 1e-6)


def _streaks(
    rng: np.random.Generator, shape: tuple[int, int], scale_px: float, stretch: float
) -> np.ndarray:
    """Like :func:`_noise`, with features ``stretch`` times wider than tall (clouds, bands)."""
    h, w = shape
    narrow = _noise(rng, (h, max(2, int(w / stretch))), scale_px)
    return cv2.resize(narrow, (w, h), interpolation=cv2.INTER_LINEAR)


def _soft(field: np.ndarray, threshold: float, gain: float) -> np.ndarray:
    """0-1 cover of a noise field: 0 below ``threshold``, ramping to 1 over ``1 / gain``."""
    return np.clip((field - threshold) * gain, 0.0, 1.0)


def random_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[BeachScene, float]:
    """A random camera over a random beach, and a water level (m)."""
    h, w = size
    slope = float(rng.uniform(0.02, 0.15))
    profile = BeachProfile(
        z_origin=1.0,
        slope=slope,
        concavity_per_m=float(rng.choice([0.0, rng.uniform(0.0, slope / 150)])),
        crest_z=float(rng.uniform(2.5, 7.0)),
        bar_height_m=float(rng.choice([0.0, rng.uniform(0.2, 1.0)])),
        bar_chainage_m=float(rng.uniform(40, 150)),
        bar_width_m=float(rng.uniform(8, 25)),
    )
    scene0 = BeachScene(
        look_at_camera((0, -1, 10), (0, 0, 0), nu=w, nv=h),
        profile,
        rhythm_amplitude_m=float(rng.choice([0.0, rng.uniform(0, 12)])),
        rhythm_wavelength_m=float(rng.uniform(60, 300)),
    )
    height = float(rng.uniform(8, 45))
    back = float(rng.uniform(20, 120))
    along = float(rng.uniform(-60, 60))
    look = np.radians(rng.uniform(-65, 65))
    dist = float(rng.uniform(60, 250))
    cam_xy = scene0.to_world(np.array([-back]), np.array([along]))[0]
    tgt_xy = scene0.to_world(
        np.array([-back + dist * np.cos(look)]), np.array([along + dist * np.sin(look)])
    )[0]
    ideal = look_at_camera(
        (cam_xy[0], cam_xy[1], height),
        (tgt_xy[0], tgt_xy[1], 0.0),
        nu=w,
        nv=h,
        hfov_deg=float(rng.uniform(35, 80)),
        roll=float(rng.normal(0, 0.02)),
    )
    ic, e = ideal.intrinsics, ideal.extrinsics
    lens = Intrinsics(
        NU=w,
        NV=h,
        c0U=ic.c0U + rng.normal(0, w * 0.01),
        c0V=ic.c0V + rng.normal(0, h * 0.01),
        fx=ic.fx,
        fy=ic.fy * rng.uniform(0.995, 1.005),
        d1=float(rng.uniform(-0.25, 0.0)),
        d2=float(rng.uniform(0.0, 0.1)),
    )
    camera = Camera(lens, Extrinsics(e.x, e.y, e.z, e.a, e.t, e.r), "synthetic")
    scene = BeachScene(
        camera,
        profile,
        rhythm_amplitude_m=scene0.rhythm_amplitude_m,
        rhythm_wavelength_m=scene0.rhythm_wavelength_m,
        max_range_m=float(rng.uniform(800, 3000)),
    )
    return scene, float(rng.uniform(-0.8, 1.5))


def paint(
    rng: np.random.Generator, scene: BeachScene, water_level: float, look: Look = Look()
) -> TimexSample:
    """Render the scene at ``water_level`` and paint it as a TimeX with the modes of ``look``."""
    r = scene.render(water_level)
    h, w = r.labels.shape
    sky, sand = r.labels == SKY, r.labels == SAND
    water = r.water_mask
    xyz = r.world_xyz
    s = np.zeros((h, w))
    a = np.zeros((h, w))
    z = np.zeros((h, w))
    ground = ~sky
    s[ground], a[ground] = scene.to_shore(xyz[ground][:, :2])
    z[sand] = scene.terrain(xyz[sand][:, :2])
    shore = scene.shoreline_chainage(water_level)
    off = s - shore  # m seaward of the straight-shore waterline
    img: np.ndarray = np.zeros((h, w, 3), np.float32)

    # Sky.
    rows = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    top = rng.choice([[200, 150, 90], [190, 190, 190], [230, 200, 160]]) + rng.normal(0, 12, 3)
    horizon = np.array([235, 235, 235]) + rng.normal(0, 10, 3)
    img[:] = top * (1 - rows) + horizon * rows
    img += 6 * _noise(rng, (h, w), 40)[..., None]

    # Sea: base colour, texture, foam over bars and the swash band (time-averaged).
    sea = np.array(rng.choice([[110, 90, 40], [90, 100, 60], [120, 120, 110], [140, 110, 60]]))
    sea = sea + rng.normal(0, 12, 3)
    tex = _noise(rng, (h, w), 25)
    st = {m: look.stream(m) for m in _MODES}
    if look.clouds:
        _clouds(st["clouds"], img, sky, sea)
    if look.cove and st["cove"].random() < 0.6:  # a turquoise bay
        sea = np.array([200.0, 185.0, 70.0]) + st["cove"].normal(0, 15, 3)
    sea_img = sea + 12 * tex[..., None]
    grey_sand = np.zeros(3)
    if look.grey:
        sea_img, grey_sand = _grey(st["grey"], img, sky, off, tex)
    surf_width = float(rng.uniform(5, 120))
    foam = np.exp(-np.clip(off, 0, None) / max(surf_width, 1.0)) * rng.uniform(0.3, 1.0)
    if scene.profile.bar_height_m:
        bar_off = scene.profile.bar_chainage_m - shore
        foam += rng.uniform(0.4, 1.0) * np.exp(-(((off - bar_off) / 10.0) ** 2))
    foam *= np.clip(0.7 + 0.5 * _noise(rng, (h, w), 15), 0, 1.5)
    swash = float(rng.uniform(0.5, 8.0))
    foam = np.maximum(foam, np.where(off < swash, rng.uniform(0.5, 1.0), 0.0))
    if look.foamy:
        foam = _foamy(st["foamy"], foam, off, a)
    white: np.ndarray = np.array([235, 235, 230], np.float32)
    if look.grey:  # grey foam, little brighter than the grey sand
        white = grey_sand + st["grey"].uniform(10, 50)
    sea_img = (
        sea_img * (1 - np.clip(foam, 0, 1)[..., None]) + white * np.clip(foam, 0, 1)[..., None]
    )
    if look.glint:
        _glint(st["glint"], sea_img, img, water, sky)
    img[water] = sea_img[water]

    # Beach: wet band landward of the waterline, dry sand, dunes behind the crest.
    sand_c = np.array(rng.choice([[150, 190, 215], [130, 160, 185], [160, 175, 180]]))
    sand_c = sand_c + rng.normal(0, 10, 3)
    if look.grey:
        sand_c = grey_sand
    grain = 10 * _noise(rng, (h, w), 2) + 8 * _noise(rng, (h, w), 30)
    sand_img = sand_c + grain[..., None]
    wet_dz = float(rng.uniform(0.02, 0.4))
    wet = sand & (z < water_level + wet_dz)
    sand_img[wet] *= rng.uniform(0.55, 0.85)
    dune = sand & (z >= scene.profile.crest_z - 1e-6)
    veg = np.array(rng.choice([[60, 110, 80], [70, 120, 120], [90, 130, 140]])) + rng.normal(
        0, 10, 3
    )
    sand_img[dune] = veg + 20 * _noise(rng, (h, w), 6)[dune][:, None]
    snow = np.zeros((h, w), np.float32)
    if look.snow:
        snow = _snow(st["snow"], sand_img, sand & ~wet, dune)
    img[sand] = sand_img[sand]

    # Buildings on the skyline, people on the dry beach.
    hot = np.zeros((h, w), np.uint8)  # 1: buildings and people, warm in a thermal image
    dune_rows = np.nonzero(dune.any(axis=1))[0]
    if dune_rows.size and rng.random() < 0.4:
        for _ in range(int(rng.integers(1, 5))):
            bw, bh = int(rng.uniform(0.03, 0.12) * w), int(rng.uniform(0.03, 0.1) * h)
            x0 = int(rng.uniform(0, w - bw))
            y1 = int(dune_rows.min()) + int(rng.uniform(0, 0.05 * h))
            y0 = max(0, y1 - bh)
            img[y0:y1, x0 : x0 + bw] = rng.uniform(60, 220, 3)
            hot[y0:y1, x0 : x0 + bw] = 1
    dry = sand & ~wet & ~dune
    dry_idx = np.argwhere(dry)
    for _ in range(int(rng.integers(0, 12)) if dry_idx.size else 0):
        y, x = dry_idx[rng.integers(len(dry_idx))]
        size = max(1, int(rng.uniform(0.002, 0.012) * h))
        colour = rng.uniform(20, 120, 3).tolist()
        cv2.ellipse(img, (int(x), int(y)), (size, size * 2), 0, 0, 360, colour, -1)
        cv2.ellipse(hot, (int(x), int(y)), (size, size * 2), 0, 0, 360, 1, -1)

    # Modes that put land in front of the water: the label loses those pixels.
    if look.shadows:
        _shadows(st["shadows"], img, ground, sand & ~wet & ~dune, dune)
    covered = np.zeros((h, w), bool)
    if look.cove:
        covered |= _far_shore(st["cove"], img, water, sky)
    if look.bathers:
        covered |= _bathers(st["bathers"], img, water, off, hot)
    if look.occluder:
        covered |= _occluder(st["occluder"], img)
    mask = water & ~covered
    if look.thermal:
        zones = _Zones(sky, water, wet, dune, np.clip(foam, 0, 1), snow, hot > 0, covered)
        img = _thermal(st["thermal"], zones)

    # Imaging: fog, raindrops, exposure, vignetting, noise.
    if rng.random() < 0.25:
        depth = np.nan_to_num(r.range_m, nan=np.nanmax(r.range_m) if ground.any() else 1.0)
        fog = 1 - np.exp(-depth / rng.uniform(150, 800))
        grey = rng.uniform(150, 220)
        img = img * (1 - fog[..., None]) + grey * fog[..., None]
    if rng.random() < 0.15:
        for _ in range(int(rng.integers(3, 25))):
            c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            radius = int(rng.uniform(0.01, 0.04) * w)
            colour = rng.uniform(150, 230, 3).tolist()
            cv2.circle(img, c, radius, colour, -1)
        img = cv2.GaussianBlur(img, (0, 0), 1.5)
    img = img * rng.uniform(0.55, 1.25) + rng.normal(0, 6, 3)
    img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** rng.uniform(0.7, 1.4)
    yy, xx = np.mgrid[0:h, 0:w]
    rad2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
    img *= (1 - rng.uniform(0, 0.6) * rad2)[..., None]
    img += rng.normal(0, rng.uniform(0.5, 4), img.shape)
    if look.thermal:  # one sensor channel: the colour casts and per-channel noise average out
        img = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    return TimexSample(np.clip(img, 0, 255).astype(np.uint8), mask)


@dataclass(frozen=True)
class _Zones:
    """Where each kind of surface is, for the thermal mode: boolean (H, W) masks, ``foam``
    and ``snow`` 0-1 cover; ``covered`` is land standing in front of everything else."""

    sky: np.ndarray
    water: np.ndarray
    wet: np.ndarray
    dune: np.ndarray
    foam: np.ndarray
    snow: np.ndarray
    hot: np.ndarray
    covered: np.ndarray


def _px(h: int, fraction: float) -> float:
    """A feature size of ``fraction`` of the image height, in pixels (at least 1.5)."""
    return max(1.5, fraction * h)


def _clouds(m: np.random.Generator, img: np.ndarray, sky: np.ndarray, sea: np.ndarray) -> None:
    """Clouds over the sky pixels of ``img`` (in place): wide soft patches, half the time in
    the sea's own colour ``sea`` (BGR), else white to dark grey."""
    h, w = sky.shape
    field = _streaks(m, (h, w), _px(h, m.uniform(0.03, 0.12)), m.uniform(1.5, 4.0))
    cover = _soft(field, m.uniform(-0.8, 0.8), m.uniform(1.0, 4.0)) * m.uniform(0.6, 1.0)
    if m.random() < 0.5:
        colour = sea + m.normal(0, 15, 3)
    else:
        colour = np.full(3, m.uniform(90, 250)) + m.normal(0, 6, 3)
    shade = colour + 10 * _noise(m, (h, w), _px(h, 0.02))[..., None]
    c = (cover * sky)[..., None]
    img[:] = img * (1 - c) + shade * c


def _grey(
    m: np.random.Generator, img: np.ndarray, sky: np.ndarray, off: np.ndarray, tex: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Grey sea and grey sand of similar brightness: returns the sea image (H, W, 3) and the
    sand colour (BGR). The sea, about as bright as wet sand, carries shore-parallel bands
    (every 4-25 m of ``off``, m seaward); the sand keeps its grain. Often an overcast sky
    (``img`` sky pixels, in place)."""
    h, w = sky.shape
    g = m.uniform(90, 190)
    sand = g + m.normal(0, 4, 3)
    bands = m.uniform(4, 14) * np.sin(2 * np.pi * off / m.uniform(4, 25) + 2 * tex)
    sea = g * m.uniform(0.55, 0.95) + m.normal(0, 4, 3) + (bands + 4 * tex)[..., None]
    if m.random() < 0.7:
        rows = np.linspace(0, 1, h)[:, None, None]
        top = np.full(3, g + m.uniform(-30, 50))
        overcast = top * (1 - rows) + (top + m.uniform(0, 40)) * rows
        img[sky] = (overcast + 5 * _noise(m, (h, w), _px(h, 0.1))[..., None])[sky]
    return sea, sand


def _foamy(m: np.random.Generator, foam: np.ndarray, off: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Foam cover (0-1+) of a wide surf zone: a saturated zone 150-600 m wide (most of the
    visible sea white) and/or sharp, broken breaker crests parallel to the shore; ``off`` (m
    seaward of the waterline) and ``a`` (m alongshore) per pixel."""
    h, w = foam.shape
    width = m.uniform(150, 600)
    out = foam
    if m.random() < 0.7:
        wide = m.uniform(0.8, 1.3) * np.exp(-np.clip(off, 0, None) / width)
        out = np.maximum(out, wide * np.clip(0.85 + 0.3 * _noise(m, (h, w), _px(h, 0.04)), 0, 1.3))
    for _ in range(int(m.integers(2, 10))):
        crest = np.exp(-(((off - m.uniform(0, width / 2)) / m.uniform(0.5, 4.0)) ** 2))
        along = np.sin(2 * np.pi * a / m.uniform(20, 150) + m.uniform(0, 2 * np.pi))
        broken = _soft(along + 0.7 * _noise(m, (h, w), _px(h, 0.03)), m.uniform(-0.8, 0.6), 3)
        out = out + crest * broken * (off > 0)
    return out


def _glint(
    m: np.random.Generator, sea_img: np.ndarray, img: np.ndarray, water: np.ndarray, sky: np.ndarray
) -> None:
    """Sun glint on the sea (``sea_img``, in place): a bright column of glitter under the sun,
    narrow at the horizon and wider towards the camera; half the time the sun's halo in the
    sky above it (``img`` sky pixels, in place)."""
    h, w = water.shape
    rows = np.nonzero(water.any(axis=1))[0]
    if not rows.size:
        return
    y_top = int(rows.min())
    xc = m.uniform(0.1, 0.9) * w
    yy, xx = np.mgrid[0:h, 0:w]
    near = np.clip((yy - y_top) / max(h - y_top, 1), 0, 1)  # 0 at the horizon, 1 at the bottom
    half = w * (m.uniform(0.01, 0.04) + m.uniform(0.05, 0.25) * near)
    column = np.exp(-(((xx - xc) / half) ** 2))
    glitter = _soft(_streaks(m, (h, w), 1.5, 3.0), m.uniform(-0.5, 1.0), 2.0)
    glow = column * (0.5 + 0.8 * glitter) * m.uniform(0.8, 1.3) * (1 - m.uniform(0, 0.5) * near)
    glow = np.clip(glow, 0, 1)
    sun = np.array([230.0, 245.0, 255.0]) * m.uniform(0.8, 1.0)
    sea_img[:] = sea_img * (1 - glow[..., None]) + sun * glow[..., None]
    if m.random() < 0.5:
        r2 = (xx - xc) ** 2 + (yy - y_top + m.uniform(0, 0.15) * h) ** 2
        halo = np.exp(-r2 / (m.uniform(0.05, 0.2) * w) ** 2) * m.uniform(0.5, 1.0)
        blend = (halo * sky)[..., None]
        img[:] = img * (1 - blend) + sun * blend


def _snow(
    m: np.random.Generator, sand_img: np.ndarray, dry: np.ndarray, dune: np.ndarray
) -> np.ndarray:
    """Snow patches on the dry beach and the dunes of ``sand_img`` (in place; land stays
    land); returns the snow cover (H, W) 0-1."""
    h, w = dry.shape
    field = _noise(m, (h, w), _px(h, m.uniform(0.015, 0.08)))
    cover = _soft(field, m.uniform(-1.2, 0.6), m.uniform(1.5, 5.0)) * (dry | dune)
    if m.random() < 0.5:  # dunes under a full cover
        cover[dune] = np.maximum(cover[dune], 0.9)
    white = m.uniform(205, 250) + np.array([8.0, 2.0, -4.0])  # slightly blue (BGR)
    snow = white + 6 * _noise(m, (h, w), _px(h, 0.01))[..., None]
    sand_img[:] = sand_img * (1 - cover[..., None]) + snow * cover[..., None]
    return cover.astype(np.float32)


def _shadows(
    m: np.random.Generator, img: np.ndarray, ground: np.ndarray, dry: np.ndarray, dune: np.ndarray
) -> None:
    """Dark patches on the ground of ``img`` (in place): cloud shadows over land and sea, a
    shadow band on the dry sand at the dune toe, dark wrack patches on the dry sand."""
    h, w = ground.shape
    dark = np.zeros((h, w))
    if m.random() < 0.7:
        field = _streaks(m, (h, w), _px(h, m.uniform(0.04, 0.15)), m.uniform(1.0, 3.0))
        dark = _soft(field, m.uniform(-0.3, 0.8), m.uniform(1.0, 4.0)) * m.uniform(0.25, 0.55)
    cols = dune.any(axis=0)
    if cols.any() and m.random() < 0.7:
        toe = h - 1 - np.argmax(dune[::-1], axis=0)  # lowest dune row of each column
        depth = _px(h, m.uniform(0.02, 0.1)) * (1 + 0.5 * _noise(m, (1, w), w / 4)[0])
        yy = np.arange(h)[:, None]
        band = cols & (yy > toe) & (yy <= toe + depth) & dry
        dark = np.maximum(dark, band * m.uniform(0.35, 0.6))
    if m.random() < 0.5:
        wrack = _soft(_noise(m, (h, w), _px(h, 0.01)), m.uniform(1.5, 2.5), 3.0) * dry
        dark = np.maximum(dark, wrack * m.uniform(0.3, 0.6))
    img *= (1 - dark * ground)[..., None]


def _far_shore(
    m: np.random.Generator, img: np.ndarray, water: np.ndarray, sky: np.ndarray
) -> np.ndarray:
    """Vegetated hills of a far shore standing on the sea horizon of ``img`` (in place),
    with a rocky foot just over the far water; returns the pixels they cover (land)."""
    h, w = water.shape
    top = np.argmax(water, axis=0)  # first water row of each column
    horizon = water.any(axis=0) & (top > 0) & sky[np.maximum(top - 1, 0), np.arange(w)]
    x0 = m.uniform(-0.3, 0.5) * w
    span = (np.arange(w) >= x0) & (np.arange(w) <= x0 + m.uniform(0.4, 1.2) * w)
    if not (horizon & span).any():
        return np.zeros((h, w), bool)
    hill = _px(h, m.uniform(0.03, 0.15)) * np.clip(0.6 + 0.5 * _noise(m, (1, w), w / 5)[0], 0.1, 2)
    foot = _px(h, m.uniform(0.004, 0.02))
    yy = np.arange(h)[:, None]
    covered = (horizon & span) & (yy >= top - hill) & (yy < top + foot) & (sky | water)
    veg = np.array([50.0, 95.0, 60.0]) + m.normal(0, 12, 3)
    colour = veg + 18 * _noise(m, (h, w), _px(h, 0.006))[..., None]
    haze = m.uniform(0, 0.5)
    colour = colour * (1 - haze) + m.uniform(150, 220) * haze
    rock = (yy >= top - foot) & (yy < top + foot)
    colour[rock] = np.array([120.0, 140.0, 150.0]) + m.normal(0, 15)
    img[covered] = colour[covered]
    return covered


def _bathers(
    m: np.random.Generator, img: np.ndarray, water: np.ndarray, off: np.ndarray, hot: np.ndarray
) -> np.ndarray:
    """People standing in the swash and the shallow water of ``img`` (in place; ``hot`` marks
    them 1): returns the pixels they cover (land, as in the real labels)."""
    h, w = water.shape
    cover = np.zeros((h, w), np.uint8)
    shallow = np.argwhere(water & (off < m.uniform(5, 40)))
    for _ in range(int(m.integers(3, 40)) if len(shallow) else 0):
        y, x = shallow[m.integers(len(shallow))]
        size = max(1, int(m.uniform(0.003, 0.01) * h * (0.5 + y / h)))  # nearer is bigger
        skin = [m.uniform(90, 170), m.uniform(120, 190), m.uniform(160, 230)]
        colour = skin if m.random() < 0.6 else m.uniform(20, 230, 3).tolist()
        axes = (size, int(size * m.uniform(1.0, 2.5)))
        cv2.ellipse(img, (int(x), int(y)), axes, 0, 0, 360, colour, -1)
        cv2.ellipse(cover, (int(x), int(y)), axes, 0, 0, 360, 1, -1)
    hot |= cover
    return cover > 0


def _occluder(m: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A foreground pine (dark trunk, branches, foliage tufts) and/or rocky foreground ground
    in front of the scene in ``img`` (in place); returns the pixels they cover (land)."""
    h, w = img.shape[:2]
    part = np.zeros((h, w), np.uint8)  # 1 wood, 2 foliage, 3 ground, 4 rock
    tree = m.random() < 0.75
    if tree:
        side = 1 if m.random() < 0.5 else -1
        n = 12
        ys = np.linspace(h * 1.05, -0.05 * h, n)
        xs = w * (0.5 + side * m.uniform(0.05, 0.45)) + np.cumsum(m.normal(0, 0.03 * w, n))
        thick = m.uniform(0.03, 0.1) * w * np.linspace(1.0, 0.3, n)
        for i in range(n - 1):
            p0, p1 = (int(xs[i]), int(ys[i])), (int(xs[i + 1]), int(ys[i + 1]))
            cv2.line(part, p0, p1, 1, max(1, int(thick[i])))
        for _ in range(int(m.integers(3, 10))):
            i = int(m.integers(n // 3, n - 1))
            x, y = xs[i], ys[i]
            angle = np.pi / 2 + (-side if m.random() < 0.7 else side) * m.uniform(0.3, 1.4)
            t = max(1.0, thick[i] * m.uniform(0.15, 0.4))
            for _ in range(3):
                step = m.uniform(0.05, 0.15) * w
                nx, ny = x + step * np.cos(angle), y - step * np.sin(angle)
                cv2.line(part, (int(x), int(y)), (int(nx), int(ny)), 1, max(1, int(t)))
                x, y, t = nx, ny, max(1.0, 0.7 * t)
                angle += m.normal(0, 0.3)
            for _ in range(int(m.integers(5, 30))):  # a tuft of needles at the branch end
                c = (int(x + m.normal(0, 0.04 * w)), int(y + m.normal(0, 0.03 * h)))
                r = max(1, int(m.uniform(0.005, 0.03) * w))
                cv2.ellipse(part, c, (r, max(1, r // 2)), m.uniform(0, 180), 0, 360, 2, -1)
    if not tree or m.random() < 0.6:
        edge = h * (1 - m.uniform(0.06, 0.25)) + _px(h, 0.03) * _noise(m, (1, w), w / 8)[0]
        part[np.arange(h)[:, None] >= edge] = 3
        for _ in range(int(m.integers(0, 8))):
            c = (int(m.uniform(0, w)), int(m.uniform(edge.min(), h)))
            axes = (max(1, int(m.uniform(0.02, 0.08) * w)), max(1, int(m.uniform(0.01, 0.04) * h)))
            cv2.ellipse(part, c, axes, 0, 180, 360, 4, -1)
    light = m.uniform(0.4, 1.2)  # backlit (dark) to front-lit
    colours = {
        1: np.array([30.0, 45.0, 60.0]),
        2: np.array([35.0, 70.0, 45.0]),
        3: np.array([70.0, 95.0, 115.0]),
        4: np.array([125.0, 135.0, 145.0]),
    }
    tex = 25 * _noise(m, (h, w), _px(h, 0.005))
    for k, colour in colours.items():
        sel = part == k
        img[sel] = (colour + m.normal(0, 10, 3)) * light + tex[sel][:, None]
    return part > 0


def _thermal(m: np.random.Generator, zones: _Zones) -> np.ndarray:
    """A thermal image (H, W, 3 equal channels): cold, uniform sea (foam a little warmer),
    wet sand between sea and the warm dry sand, dunes mid, snow cold, buildings and people
    hot, cold sky; black-hot polarity (inverted) 30 % of the time; blurred like a low
    resolution sensor."""
    h, w = zones.sky.shape
    sea_t = m.uniform(30, 90)
    t = m.uniform(140, 220) + 12 * _noise(m, (h, w), 1.5) + 10 * _noise(m, (h, w), _px(h, 0.08))
    t = np.where(zones.dune, m.uniform(100, 200) + 15 * _noise(m, (h, w), _px(h, 0.015)), t)
    t = np.where(zones.wet, sea_t + m.uniform(20, 70) + 6 * _noise(m, (h, w), _px(h, 0.02)), t)
    sea = sea_t + 4 * _noise(m, (h, w), _px(h, 0.08)) + m.uniform(0, 30) * zones.foam
    t = np.where(zones.water, sea, t)
    t = t * (1 - zones.snow) + (sea_t + m.uniform(-10, 15)) * zones.snow
    t = np.where(zones.hot, m.uniform(170, 255) + 10 * _noise(m, (h, w), 1.5), t)
    rows = np.linspace(0, 1, h)[:, None]
    t = np.where(zones.sky, m.uniform(10, 80) + m.uniform(0, 40) * rows, t)
    t = np.where(zones.covered, m.uniform(110, 220) + 15 * _noise(m, (h, w), 1.5), t)
    if m.random() < 0.3:
        t = 255 - t
    scale = m.uniform(0.4, 1.0)  # sensor resolution relative to the image
    small = cv2.resize(t.astype(np.float32), (max(2, int(w * scale)), max(2, int(h * scale))))
    t = cv2.GaussianBlur(cv2.resize(small, (w, h)), (0, 0), m.uniform(0.3, 1.2))
    return np.repeat(t[..., None], 3, axis=2)


def generate(
    rng: np.random.Generator, size: tuple[int, int], rates: LookRates = LookRates()
) -> TimexSample:
    """One random synthetic TimeX of ``size`` (H, W) with a look drawn from ``rates``;
    retries scenes that show no shore."""
    while True:
        scene, level = random_scene(rng, size)
        try:
            sample = paint(rng, scene, level, rates.draw(rng))
        except ValueError:
            continue
        frac = sample.mask.mean()
        if 0.05 < frac < 0.9:
            return sample


def write_dataset(out: Path, count: int, size: tuple[int, int], seed: int = 0) -> None:
    """Write ``count`` samples as ``images/NNNNNN.png`` and ``masks/NNNNNN.png``."""
    from tqdm import tqdm

    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in tqdm(range(count), desc="synthetic TimeX", unit="image"):
        sample = generate(rng, size)
        cv2.imwrite(str(out / "images" / f"synth_{seed}_{i:06d}.png"), sample.image)
        cv2.imwrite(
            str(out / "masks" / f"synth_{seed}_{i:06d}.png"), sample.mask.astype(np.uint8) * 255
        )


def _size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic TimeX segmentation dataset.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=_size, default=(256, 320), help="HxW (default 256x320)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_dataset(args.out, args.count, args.size, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
