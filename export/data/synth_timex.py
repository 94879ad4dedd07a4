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

**Label convention** (matches the waterline stage and the published method): a pixel
is water when its terrain lies below the water level of the render (the still water
plus setup of that collection), i.e. the sea and the swash foam band seaward of the
waterline are water; wet sand landward of it is land, and so are sky, dunes and
buildings. The time-averaged swash in a real TimeX straddles that line; here the foam
band is drawn seaward of it and the wet band landward, with random widths.

``python -m export.data.synth_timex --out DIR --count N --size HxW`` writes ``images/``
(PNG, RGB stored as usual BGR files) and ``masks/`` (PNG, 255 = water).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
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


def _noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Smooth random field, zero mean and unit standard deviation, feature size ``scale_px``."""
    h, w = shape
    sh, sw = max(2, int(h / scale_px) + 2), max(2, int(w / scale_px) + 2)
    small = rng.normal(size=(sh, sw)).astype(np.float32)
    field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return (field - field.mean()) / (field.std() + 1e-6)


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


def paint(rng: np.random.Generator, scene: BeachScene, water_level: float) -> TimexSample:
    """Render the scene at ``water_level`` and paint it as a TimeX."""
    r = scene.render(water_level)
    h, w = r.labels.shape
    sky, sand = r.labels == SKY, r.labels == SAND
    water = r.water_mask
    xyz = r.world_xyz
    s = np.zeros((h, w))
    z = np.zeros((h, w))
    ground = ~sky
    s[ground], _ = scene.to_shore(xyz[ground][:, :2])
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
    sea_img = sea + 12 * tex[..., None]
    surf_width = float(rng.uniform(5, 120))
    foam = np.exp(-np.clip(off, 0, None) / max(surf_width, 1.0)) * rng.uniform(0.3, 1.0)
    if scene.profile.bar_height_m:
        bar_off = scene.profile.bar_chainage_m - shore
        foam += rng.uniform(0.4, 1.0) * np.exp(-(((off - bar_off) / 10.0) ** 2))
    foam *= np.clip(0.7 + 0.5 * _noise(rng, (h, w), 15), 0, 1.5)
    swash = float(rng.uniform(0.5, 8.0))
    foam = np.maximum(foam, np.where(off < swash, rng.uniform(0.5, 1.0), 0.0))
    white = np.array([235, 235, 230], np.float32)
    sea_img = (
        sea_img * (1 - np.clip(foam, 0, 1)[..., None]) + white * np.clip(foam, 0, 1)[..., None]
    )
    img[water] = sea_img[water]

    # Beach: wet band landward of the waterline, dry sand, dunes behind the crest.
    sand_c = np.array(rng.choice([[150, 190, 215], [130, 160, 185], [160, 175, 180]]))
    sand_c = sand_c + rng.normal(0, 10, 3)
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
    img[sand] = sand_img[sand]

    # Buildings on the skyline, people on the dry beach.
    dune_rows = np.nonzero(dune.any(axis=1))[0]
    if dune_rows.size and rng.random() < 0.4:
        for _ in range(int(rng.integers(1, 5))):
            bw, bh = int(rng.uniform(0.03, 0.12) * w), int(rng.uniform(0.03, 0.1) * h)
            x0 = int(rng.uniform(0, w - bw))
            y1 = int(dune_rows.min()) + int(rng.uniform(0, 0.05 * h))
            y0 = max(0, y1 - bh)
            img[y0:y1, x0 : x0 + bw] = rng.uniform(60, 220, 3)
    dry = sand & ~wet & ~dune
    dry_idx = np.argwhere(dry)
    for _ in range(int(rng.integers(0, 12)) if dry_idx.size else 0):
        y, x = dry_idx[rng.integers(len(dry_idx))]
        size = max(1, int(rng.uniform(0.002, 0.012) * h))
        colour = rng.uniform(20, 120, 3).tolist()
        cv2.ellipse(img, (int(x), int(y)), (size, size * 2), 0, 0, 360, colour, -1)

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
    return TimexSample(np.clip(img, 0, 255).astype(np.uint8), water)


def generate(rng: np.random.Generator, size: tuple[int, int]) -> TimexSample:
    """One random synthetic TimeX of ``size`` (H, W); retries scenes that show no shore."""
    while True:
        scene, level = random_scene(rng, size)
        try:
            sample = paint(rng, scene, level)
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
