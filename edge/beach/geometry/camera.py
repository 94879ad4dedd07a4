"""Camera model in the coastal-imaging (CIRN) convention.

Intrinsics (CoastCam JSON): ``NU NV c0U c0V fx fy d1 d2 d3 t1 t2`` — image size
in pixels, principal point (pixels), focal lengths (pixels), radial (d1..d3) and
tangential (t1, t2) Brown distortion coefficients.

Extrinsics: camera position ``x y z`` (station CRS, metres, z up) and angles
``a t r`` in radians: azimuth ``a`` clockwise from grid north, tilt ``t``
(0 = looking straight down, pi/2 = horizontal), roll ``r``.

Pixel coordinates ``(u, v)``: ``u`` to the right along a row, ``v`` down along a
column, in pixels, and 0-based: ``(u, v)`` is the array index (column, row) of a pixel
centre, so masks and images are indexed with them directly. Calibrations differ here:
the USGS CoastCam (Python) files are 0-based, the CIRN toolbox (MATLAB) files 1-based.
An intrinsics JSON may say ``"pixel_origin": 1`` (default 0); the principal point is
then moved by -1 pixel on load. Measured on real reference plan views: CACO-01
(CoastCam) 1.25 grey levels 0-based vs 1.62 1-based; Duck (CIRN toolbox) 0.74
1-based vs 1.19 0-based (``tests/test_rectify_*.py``).

World coordinates are centred on the camera position before any arithmetic, so
projected eastings/northings of 1e5..1e6 m lose no precision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import InputError

_INTRINSIC_KEYS = ("NU", "NV", "c0U", "c0V", "fx", "fy", "d1", "d2", "d3", "t1", "t2")
_EXTRINSIC_KEYS = ("x", "y", "z", "a", "t", "r")


def _read_json(
    path: Path, keys: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, float]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read calibration JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: calibration JSON must be an object with keys {list(keys)}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise InputError(f"{path}: calibration lacks keys {missing} (expected {list(keys)})")
    try:
        return {k: float(v) for k, v in data.items() if k in keys or k in optional}
    except (TypeError, ValueError):
        raise InputError(f"{path}: calibration values must be numbers") from None


@dataclass(frozen=True)
class Intrinsics:
    """Lens and sensor: image size (px), principal point (px), focal lengths (px), Brown terms."""

    NU: int
    NV: int
    c0U: float
    c0V: float
    fx: float
    fy: float
    d1: float = 0.0
    d2: float = 0.0
    d3: float = 0.0
    t1: float = 0.0
    t2: float = 0.0

    @classmethod
    def from_json(cls, path: str | Path) -> Intrinsics:
        """Read a CoastCam JSON; an optional ``pixel_origin`` (0 or 1) is applied to c0U/c0V."""
        d = _read_json(Path(path), _INTRINSIC_KEYS, optional=("pixel_origin",))
        origin = d.pop("pixel_origin", 0.0)
        if origin not in (0.0, 1.0):
            raise InputError(f"{path}: pixel_origin must be 0 or 1, got {origin:g}")
        return cls(
            NU=int(d["NU"]),
            NV=int(d["NV"]),
            c0U=d["c0U"] - origin,
            c0V=d["c0V"] - origin,
            fx=d["fx"],
            fy=d["fy"],
            d1=d["d1"],
            d2=d["d2"],
            d3=d["d3"],
            t1=d["t1"],
            t2=d["t2"],
        )

    def radial(self, r2: np.ndarray) -> np.ndarray:
        """Radial distortion factor 1 + d1 r^2 + d2 r^4 + d3 r^6 (normalised coordinates)."""
        return 1.0 + r2 * (self.d1 + r2 * (self.d2 + r2 * self.d3))

    def max_r2(self) -> float:
        """Largest undistorted normalised r^2 where the distortion model is trusted.

        The limit is the undistorted radius whose distorted image lies 5 % beyond the
        farthest image corner (the margin covers the tangential terms), or, if sooner,
        the fold of the radial curve r * f(r), beyond which the Brown polynomial turns
        back and maps far-away points into the image. Barrel distortion (d1 < 0) puts
        the corners' undistorted radius beyond their distorted one.
        """
        corners_u = np.array([0.0, self.NU - 1, self.NU - 1, 0.0])
        corners_v = np.array([0.0, 0.0, self.NV - 1, self.NV - 1])
        xc = (corners_u - self.c0U) / self.fx
        yc = (corners_v - self.c0V) / self.fy
        rd_limit = float(np.sqrt(np.max(xc**2 + yc**2))) * 1.05
        r = np.linspace(0.0, rd_limit * 4.0, 8001)
        rd = r * self.radial(r**2)
        folds = np.nonzero(np.diff(rd) <= 0)[0]
        end = folds[0] + 1 if folds.size else r.size
        beyond = np.nonzero(rd[:end] >= rd_limit)[0]
        r_max = r[beyond[0]] if beyond.size else r[end - 1]
        return float(r_max**2)


@dataclass(frozen=True)
class Extrinsics:
    """Camera pose: position (station CRS, m) and azimuth/tilt/roll (radians, CIRN)."""

    x: float
    y: float
    z: float
    a: float
    t: float
    r: float

    @classmethod
    def from_json(cls, path: str | Path) -> Extrinsics:
        return cls(**_read_json(Path(path), _EXTRINSIC_KEYS))

    def rotation(self) -> np.ndarray:
        """World-to-camera rotation matrix (CIRN ``angles2R``), rows = camera axes."""
        a, t, r = self.a, self.t, self.r
        ca, sa, ct, st, cr, sr = np.cos(a), np.sin(a), np.cos(t), np.sin(t), np.cos(r), np.sin(r)
        return np.array(
            [
                [ca * cr + sa * ct * sr, -cr * sa + sr * ct * ca, sr * st],
                [-sr * ca + cr * ct * sa, sr * sa + cr * ct * ca, cr * st],
                [st * sa, st * ca, -ct],
            ]
        )


@dataclass(frozen=True)
class Camera:
    """A calibrated camera: projection world <-> pixels with Brown distortion."""

    intrinsics: Intrinsics
    extrinsics: Extrinsics
    name: str = "camera"

    @classmethod
    def from_files(
        cls, intrinsics: str | Path, extrinsics: str | Path, name: str = "camera"
    ) -> Camera:
        return cls(Intrinsics.from_json(intrinsics), Extrinsics.from_json(extrinsics), name)

    @property
    def position(self) -> np.ndarray:
        e = self.extrinsics
        return np.array([e.x, e.y, e.z])

    def world_to_image(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points (N, 3) to distorted pixels.

        Returns ``(uv, valid)``: ``uv`` (N, 2) in pixels and ``valid`` (N,) which is
        False for points behind the camera, beyond the distortion limit or outside
        the image (``0 <= u <= NU - 1``, ``0 <= v <= NV - 1``).
        """
        xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
        ic = self.intrinsics
        cam = (xyz - self.position) @ self.extrinsics.rotation().T
        depth = cam[:, 2]
        in_front = depth > 1e-9
        safe = np.where(in_front, depth, 1.0)
        # CIRN image axes: u grows with camera x, v opposite to camera y (checked against
        # the CACO-01 reference rectification, which a mirrored u fails by 27 grey levels).
        xn = cam[:, 0] / safe
        yn = -cam[:, 1] / safe
        r2 = xn**2 + yn**2
        fr = ic.radial(r2)
        xd = xn * fr + 2 * ic.t1 * xn * yn + ic.t2 * (r2 + 2 * xn**2)
        yd = yn * fr + ic.t1 * (r2 + 2 * yn**2) + 2 * ic.t2 * xn * yn
        uv = np.column_stack([xd * ic.fx + ic.c0U, yd * ic.fy + ic.c0V])
        valid = (
            in_front
            & (r2 <= ic.max_r2())
            & (uv[:, 0] >= 0)
            & (uv[:, 0] <= ic.NU - 1)
            & (uv[:, 1] >= 0)
            & (uv[:, 1] <= ic.NV - 1)
        )
        return uv, valid

    def undistort(self, uv: np.ndarray, iterations: int = 20) -> np.ndarray:
        """Distorted pixels (N, 2) -> undistorted normalised coordinates (N, 2)."""
        ic = self.intrinsics
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        xd = (uv[:, 0] - ic.c0U) / ic.fx
        yd = (uv[:, 1] - ic.c0V) / ic.fy
        x, y = xd.copy(), yd.copy()
        for _ in range(iterations):
            r2 = x**2 + y**2
            fr = ic.radial(r2)
            dx = 2 * ic.t1 * x * y + ic.t2 * (r2 + 2 * x**2)
            dy = ic.t1 * (r2 + 2 * y**2) + 2 * ic.t2 * x * y
            x = (xd - dx) / fr
            y = (yd - dy) / fr
        return np.column_stack([x, y])

    def rays(self, uv: np.ndarray) -> np.ndarray:
        """Unit viewing directions in world axes (N, 3) for distorted pixels (N, 2)."""
        xy = self.undistort(uv)
        cam = np.column_stack([xy[:, 0], -xy[:, 1], np.ones(len(xy))])
        world = cam @ self.extrinsics.rotation()
        return world / np.linalg.norm(world, axis=1, keepdims=True)

    def image_to_world(
        self, uv: np.ndarray, z: float | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Intersect the rays of pixels (N, 2) with the horizontal plane(s) at elevation ``z`` (m).

        Returns ``(xyz, valid)``; ``valid`` is False where the ray does not reach
        the plane in front of the camera (looking above the horizon), and for pixels
        outside the image or beyond the distortion limit (:meth:`Intrinsics.max_r2`).
        """
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        ic = self.intrinsics
        xy = self.undistort(uv)
        seen = (
            (np.sum(xy**2, axis=1) <= ic.max_r2())
            & (uv[:, 0] >= 0)
            & (uv[:, 0] <= ic.NU - 1)
            & (uv[:, 1] >= 0)
            & (uv[:, 1] <= ic.NV - 1)
        )
        d = self.rays(uv)
        z = np.broadcast_to(np.asarray(z, dtype=float), (len(d),))
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (z - self.extrinsics.z) / d[:, 2]
        valid = seen & np.isfinite(s) & (s > 0)
        s = np.where(valid, s, np.nan)
        return self.position + d * s[:, None], valid
