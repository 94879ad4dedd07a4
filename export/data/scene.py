"""Geometric beach scene: an oblique camera over a sloping beach, rendered by ray casting.

The scene is the ground truth for the waterline tests and the base geometry of the
synthetic TimeX images (:mod:`export.data.synth_timex` adds textures on top).

Conventions
-----------
- World coordinates are those of the :class:`~edge.beach.geometry.camera.Camera` (station CRS,
  metres, z up). Internally everything is relative to the camera position, so large
  projected eastings/northings lose no precision.
- The beach is described in *shore coordinates* around ``shore_origin`` (world x, y):
  cross-shore chainage ``s`` (m, positive seaward, along the compass bearing
  ``seaward_azimuth_deg``, clockwise from grid north) and alongshore distance ``a``
  (m, positive to the right when facing the sea, i.e. bearing ``seaward_azimuth_deg + 90``).
- Terrain elevation (m) is ``profile.elevation(s - shift(a))`` where the optional
  rhythmic shift ``shift(a) = rhythm_amplitude_m * sin(2 pi a / rhythm_wavelength_m)``
  makes a cuspate (non-straight) shoreline. The visible surface is
  ``max(terrain, water_level)``: water is a flat plane at ``water_level`` (m).
- The true waterline is the contour ``terrain == water_level``; along a transect the
  true crossing is the first point, walking seaward from the landward end, where the
  terrain drops to the water level.

Example::

    cam = look_at_camera((0, -60, 25), (0, 120, 0), nu=1224, nv=1024, hfov_deg=60)
    scene = BeachScene(cam, BeachProfile(slope=0.08), shore_origin=(0, 0), seaward_azimuth_deg=0)
    r = scene.render(water_level=0.3)        # SceneRender: labels, world_xyz, image
    t = scene.transect(alongshore_m=10, start_m=-20, end_m=120)
    scene.true_chainage(t, water_level=0.3)  # metres from the landward end
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq
from shapely.geometry import LineString

from edge.beach.geometry.camera import Camera, Extrinsics, Intrinsics

#: Pixel labels of :attr:`SceneRender.labels`.
SKY, SAND, WATER = 0, 1, 2


@dataclass(frozen=True)
class BeachProfile:
    """Beach elevation (m) as a function of cross-shore chainage ``s`` (m, positive seaward).

    ``z(s) = z_origin - slope * s + 0.5 * concavity_per_m * s**2`` (the quadratic part only
    while it still descends; beyond the vertex the bed stays flat), plus an optional
    Gaussian bar ``bar_height_m * exp(-((s - bar_chainage_m) / bar_width_m)**2)``, capped
    landward at the dune/berm crest ``crest_z``. ``slope`` is tan(beta) at ``s = 0``.
    """

    z_origin: float = 1.0
    slope: float = 0.08
    concavity_per_m: float = 0.0
    crest_z: float = 4.0
    bar_height_m: float = 0.0
    bar_chainage_m: float = 80.0
    bar_width_m: float = 10.0

    def elevation(self, s: np.ndarray) -> np.ndarray:
        """Terrain elevation (m) at cross-shore chainages ``s`` (m)."""
        s = np.asarray(s, dtype=float)
        if self.concavity_per_m > 0:
            s_flat = self.slope / self.concavity_per_m
            sc = np.minimum(s, s_flat)
            z = self.z_origin - self.slope * sc + 0.5 * self.concavity_per_m * sc**2
        else:
            z = self.z_origin - self.slope * s
        if self.bar_height_m:
            z = z + self.bar_height_m * np.exp(
                -(((s - self.bar_chainage_m) / self.bar_width_m) ** 2)
            )
        return np.minimum(z, self.crest_z)

    def max_gradient(self, s_range: tuple[float, float] = (-500.0, 2000.0)) -> float:
        """Largest |dz/ds| over ``s_range`` (m/m), from a 0.05 m sampling plus a 10 % margin."""
        s = np.arange(s_range[0], s_range[1], 0.05)
        return 1.1 * float(np.max(np.abs(np.diff(self.elevation(s)))) / 0.05) + 1e-6


@dataclass
class SceneRender:
    """One rendered view at one water level.

    ``labels`` (NV, NU) uint8: :data:`SKY`, :data:`SAND` or :data:`WATER`.
    ``world_xyz`` (NV, NU, 3) float64: the visible surface point of each pixel (station
    CRS, m; NaN for sky). ``image`` (NV, NU, 3) uint8 in OpenCV BGR order: flat shading
    (dry sand, darker wet sand within ``wet_band_m`` above the water, water, sky).
    ``range_m`` (NV, NU): distance camera -> surface point (NaN for sky).
    """

    water_level: float
    labels: np.ndarray
    world_xyz: np.ndarray
    image: np.ndarray
    range_m: np.ndarray

    @property
    def water_mask(self) -> np.ndarray:
        """Boolean (NV, NU): True where the pixel sees water."""
        return self.labels == WATER


@dataclass
class BeachScene:
    """A camera over a beach; see the module docstring for the coordinate conventions."""

    camera: Camera
    profile: BeachProfile = field(default_factory=BeachProfile)
    shore_origin: tuple[float, float] = (0.0, 0.0)
    seaward_azimuth_deg: float = 0.0
    rhythm_amplitude_m: float = 0.0
    rhythm_wavelength_m: float = 100.0
    #: Rays whose visible point lies farther than this (m) are labelled sky (the horizon).
    max_range_m: float = 3000.0
    #: Height (m) above the water level where sand is shaded as wet.
    wet_band_m: float = 0.15

    # --- shore coordinates -------------------------------------------------------------
    @property
    def seaward(self) -> np.ndarray:
        """Unit horizontal vector (east, north) pointing seaward."""
        b = np.radians(self.seaward_azimuth_deg)
        return np.array([np.sin(b), np.cos(b)])

    @property
    def alongshore(self) -> np.ndarray:
        """Unit horizontal vector (east, north), seaward rotated 90 deg clockwise."""
        b = np.radians(self.seaward_azimuth_deg + 90.0)
        return np.array([np.sin(b), np.cos(b)])

    def to_shore(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World (N, 2) -> cross-shore ``s`` and alongshore ``a`` (m)."""
        d = np.asarray(xy, dtype=float).reshape(-1, 2) - np.asarray(self.shore_origin)
        return d @ self.seaward, d @ self.alongshore

    def to_world(self, s: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Cross-shore ``s`` and alongshore ``a`` (m) -> world (N, 2)."""
        s, a = np.broadcast_arrays(np.asarray(s, float), np.asarray(a, float))
        o = np.asarray(self.shore_origin, dtype=float)
        return o + np.outer(s.ravel(), self.seaward) + np.outer(a.ravel(), self.alongshore)

    def _shift(self, a: np.ndarray) -> np.ndarray:
        if not self.rhythm_amplitude_m:
            return np.zeros_like(a)
        return self.rhythm_amplitude_m * np.sin(2 * np.pi * a / self.rhythm_wavelength_m)

    def terrain(self, xy: np.ndarray) -> np.ndarray:
        """Terrain elevation (m) at world points (N, 2)."""
        s, a = self.to_shore(xy)
        return self.profile.elevation(s - self._shift(a))

    # --- truth ---------------------------------------------------------------------------
    def shoreline_chainage(self, water_level: float) -> float:
        """Cross-shore chainage (m) where the profile first drops to ``water_level`` (a = 0)."""
        p = self.profile
        if p.elevation(np.array([-1000.0]))[0] <= water_level:
            raise ValueError(f"water level {water_level} m floods the whole profile")
        s = np.arange(-1000.0, 5000.0, 0.5)
        below = np.nonzero(p.elevation(s) <= water_level)[0]
        if not below.size:
            raise ValueError(f"water level {water_level} m never reaches the profile")
        i = below[0]
        return float(brentq(lambda x: p.elevation(np.array([x]))[0] - water_level, s[i - 1], s[i]))

    def waterline(
        self, water_level: float, alongshore: tuple[float, float], step_m: float = 0.5
    ) -> LineString:
        """True waterline (world x, y) over the alongshore range ``alongshore`` (m)."""
        a = np.arange(alongshore[0], alongshore[1] + step_m / 2, step_m)
        s = self.shoreline_chainage(water_level) + self._shift(a)
        return LineString(self.to_world(s, a))

    def transect(self, alongshore_m: float, start_m: float, end_m: float) -> LineString:
        """Shore-normal transect at alongshore ``alongshore_m``, from chainage ``start_m``
        (landward end, first point) to ``end_m`` (seaward end), in world x, y."""
        return LineString(self.to_world(np.array([start_m, end_m]), np.full(2, alongshore_m)))

    def true_chainage(self, transect: LineString, water_level: float) -> float:
        """Distance (m) from the transect's first point to the true waterline crossing.

        The crossing is the first point, walking from the first (landward) point, where
        the terrain is at or below ``water_level``; NaN when the transect never gets there
        or starts in the water.
        """
        n = max(2, int(np.ceil(transect.length / 0.05)) + 1)
        c = np.linspace(0.0, transect.length, n)

        def height(ci: np.ndarray) -> np.ndarray:
            pts = np.array([transect.interpolate(x).coords[0][:2] for x in np.atleast_1d(ci)])
            return self.terrain(pts) - water_level

        pts = np.column_stack(
            [
                np.interp(c, *_chainage_table(transect, 0)),
                np.interp(c, *_chainage_table(transect, 1)),
            ]
        )
        f = self.terrain(pts) - water_level
        if f[0] <= 0:
            return float("nan")
        below = np.nonzero(f <= 0)[0]
        if not below.size:
            return float("nan")
        i = below[0]
        return float(brentq(lambda x: height(np.array([x]))[0], c[i - 1], c[i], xtol=1e-6))

    # --- rendering -----------------------------------------------------------------------
    def render(self, water_level: float, rows_per_chunk: int = 256) -> SceneRender:
        """Cast one ray per pixel and return labels, surface points and a shaded image.

        ``water_level`` (m, station datum) is the elevation of the flat sea surface.
        Each ray is marched with conservative steps ``f / (|dz| + L * |d_h|)`` (``f`` the
        height of the ray above the visible surface, ``L`` a bound of the surface
        gradient), which never passes the first intersection, then polished by Newton.
        """
        ic = self.camera.intrinsics
        nv, nu = ic.NV, ic.NU
        labels = np.zeros((nv, nu), np.uint8)
        xyz = np.full((nv, nu, 3), np.nan)
        rng = np.full((nv, nu), np.nan)
        u = np.arange(nu, dtype=float)
        for r0 in range(0, nv, rows_per_chunk):
            r1 = min(nv, r0 + rows_per_chunk)
            vv, uu = np.meshgrid(np.arange(r0, r1, dtype=float), u, indexing="ij")
            lab, pts, t = self._cast(np.column_stack([uu.ravel(), vv.ravel()]), water_level)
            labels[r0:r1] = lab.reshape(r1 - r0, nu)
            xyz[r0:r1] = pts.reshape(r1 - r0, nu, 3)
            rng[r0:r1] = t.reshape(r1 - r0, nu)
        image = self._shade(labels, xyz, water_level)
        return SceneRender(water_level, labels, xyz, image, rng)

    def _cast(
        self, uv: np.ndarray, water_level: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cam = self.camera
        d = cam.rays(uv)
        c_rel = cam.position[:2] - np.asarray(self.shore_origin, dtype=float)
        s0, a0 = float(c_rel @ self.seaward), float(c_rel @ self.alongshore)
        cz = float(cam.position[2])
        ds, da, dz = d[:, :2] @ self.seaward, d[:, :2] @ self.alongshore, d[:, 2]
        z_top = max(self.profile.crest_z, water_level)
        n = len(d)
        labels = np.full(n, SKY, np.uint8)
        t_out = np.full(n, np.nan)
        down = dz < -1e-9
        t_hi = np.where(down, (cz - water_level) / np.where(down, -dz, 1.0), np.inf)
        t = np.where(down, np.maximum(0.0, (cz - z_top) / np.where(down, -dz, 1.0)), 0.0)
        k = 2 * np.pi / self.rhythm_wavelength_m
        grad = self.profile.max_gradient() * np.hypot(1.0, self.rhythm_amplitude_m * k)
        rate = -dz + grad * np.hypot(ds, da)

        def height_above(idx: np.ndarray, tt: np.ndarray) -> np.ndarray:
            s = s0 + tt * ds[idx]
            a = a0 + tt * da[idx]
            surface = np.maximum(self.profile.elevation(s - self._shift(a)), water_level)
            return cz + tt * dz[idx] - surface

        active = np.nonzero(down & (t_hi <= self.max_range_m * 1.5))[0]
        ta = t[active]
        for _ in range(400):
            f = height_above(active, ta)
            done = f < 1e-4
            t[active[done]] = ta[done]
            keep = ~done
            active, ta = active[keep], ta[keep] + f[keep] / rate[active[keep]]
            over = ta >= t_hi[active]
            t[active[over]] = t_hi[active[over]]
            active, ta = active[~over], ta[~over]
            if not active.size:
                break
        t[active] = ta  # rays still marching (grazing): best conservative estimate
        hit = down & (t_hi <= self.max_range_m * 1.5)
        pts = np.full((n, 3), np.nan)
        pts[hit] = t[hit, None] * d[hit]
        pts[hit] += cam.position
        rng = np.where(hit, t, np.nan)
        far = hit & (rng > self.max_range_m)
        hit &= ~far
        pts[far] = np.nan
        rng[far] = np.nan
        ground = self.terrain(pts[hit, :2])
        labels[hit] = np.where(ground < water_level, WATER, SAND)
        t_out[hit] = rng[hit]
        return labels, pts, t_out

    def _shade(self, labels: np.ndarray, xyz: np.ndarray, water_level: float) -> np.ndarray:
        image = np.empty((*labels.shape, 3), np.uint8)
        image[:] = (235, 206, 170)  # sky, BGR
        sand = labels == SAND
        ground = np.full(labels.shape, np.inf)
        ground[sand] = self.terrain(xyz[sand][:, :2])
        wet = sand & (ground - water_level < self.wet_band_m)
        image[sand & ~wet] = (150, 190, 215)
        image[wet] = (105, 135, 160)
        image[labels == WATER] = (120, 100, 40)
        return image


def _chainage_table(line: LineString, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative chainage, coordinate ``axis``) of the vertices of ``line``."""
    xy = np.asarray(line.coords)[:, :2]
    c = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    return c, xy[:, axis]


def look_at_camera(
    position: tuple[float, float, float],
    target: tuple[float, float, float],
    nu: int = 2448,
    nv: int = 2048,
    hfov_deg: float = 60.0,
    roll: float = 0.0,
    name: str = "synthetic",
) -> Camera:
    """A distortion-free CIRN camera at ``position`` looking at ``target`` (world, m).

    Square pixels, principal point at the image centre, horizontal field of view
    ``hfov_deg``; azimuth and tilt follow from the viewing direction, ``roll`` in radians.
    """
    d = np.asarray(target, float) - np.asarray(position, float)
    azimuth = float(np.arctan2(d[0], d[1]))
    tilt = float(np.arctan2(np.hypot(d[0], d[1]), -d[2]))
    f = (nu / 2) / np.tan(np.radians(hfov_deg) / 2)
    intr = Intrinsics(NU=nu, NV=nv, c0U=nu / 2, c0V=nv / 2, fx=f, fy=f)
    x, y, z = position
    extr = Extrinsics(x=float(x), y=float(y), z=float(z), a=azimuth, t=tilt, r=roll)
    return Camera(intr, extr, name)
