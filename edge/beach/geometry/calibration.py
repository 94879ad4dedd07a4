"""Camera calibration: a configured camera (:func:`load_camera`), or its extrinsics solved from
ground control points (world xyz + pixel uv).

Coordinates are centred on the mean GCP position before anything is solved: projected
eastings/northings of 1e5..1e6 m would otherwise cost the solver most of its digits.
The initial pose comes from OpenCV's PnP on the undistorted, normalised image points
(a standard pinhole: ``x = X_cirn``, ``y = -Y_cirn`` of the CIRN camera frame), and is
refined in the CIRN parameters ``x y z a t r`` by least squares on the reprojection
error in pixels, with the lens (intrinsics) held fixed.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import least_squares

from edge.beach.geometry.camera import Camera, Extrinsics, Intrinsics
from edge.config.cameras import CameraSection
from edge.errors import ConfigError, InputError

log = logging.getLogger(__name__)

#: Reprojection RMS (pixels) above which a solution is logged as a warning.
WARN_RMS_PX = 2.0
_FLIP = np.diag([1.0, -1.0, 1.0])


@dataclass(frozen=True)
class GcpSolution:
    """Solved pose, its reprojection RMS and per-point residuals (pixels)."""

    extrinsics: Extrinsics
    rms_px: float
    residuals_px: np.ndarray


def read_gcps(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) and pixels (N, 2) from a CSV with columns x,y,z,u,v."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        xyz = np.array([[float(r["x"]), float(r["y"]), float(r["z"])] for r in rows])
        uv = np.array([[float(r["u"]), float(r["v"])] for r in rows])
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: GCP CSV needs numeric columns x,y,z,u,v ({exc})") from None
    if len(xyz) < 4:
        raise InputError(f"{path}: {len(xyz)} GCPs, at least 4 are needed (6+ recommended)")
    return xyz, uv


def rotation_to_angles(r: np.ndarray) -> tuple[float, float, float]:
    """CIRN azimuth, tilt, roll (radians) of a world-to-camera rotation (``angles2R``)."""
    tilt = float(np.arccos(np.clip(-r[2, 2], -1.0, 1.0)))
    azimuth = float(np.arctan2(r[2, 0], r[2, 1]))
    roll = float(np.arctan2(r[0, 2], r[1, 2]))
    return azimuth, tilt, roll


def solve_extrinsics(
    intrinsics: Intrinsics, gcps: tuple[np.ndarray, np.ndarray], warn_rms_px: float = WARN_RMS_PX
) -> GcpSolution:
    """The pose that best reprojects the GCPs (see the module docstring)."""
    xyz, uv = gcps
    origin = xyz.mean(axis=0)
    local = xyz - origin
    probe = Camera(intrinsics, Extrinsics(0, 0, 0, 0, 0, 0))
    norm = probe.undistort(uv)
    ok, rvec, tvec = cv2.solvePnP(
        local.astype(np.float64), norm.astype(np.float64), np.eye(3), None,
        flags=cv2.SOLVEPNP_SQPNP,
    )  # fmt: skip
    if not ok:
        raise InputError("GCP solve: no initial pose (are the GCPs collinear or mislabelled?)")
    r_std, _ = cv2.Rodrigues(rvec)
    centre = (-r_std.T @ tvec).ravel()
    start = np.array([*centre, *rotation_to_angles(_FLIP @ r_std)])

    def residuals(p: np.ndarray) -> np.ndarray:
        cam = Camera(intrinsics, Extrinsics(*p))
        pred, _ = cam.world_to_image(local)
        return (pred - uv).ravel()

    fit = least_squares(residuals, start, method="lm")
    res = fit.fun.reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum(res**2, axis=1))))
    x, y, z, a, t, r = fit.x
    extrinsics = Extrinsics(x + origin[0], y + origin[1], z + origin[2], a, t, r)
    if rms > warn_rms_px:
        log.warning("GCP solve: reprojection RMS %.2f px exceeds %.1f px", rms, warn_rms_px)
    else:
        log.info("GCP solve: %d points, reprojection RMS %.2f px", len(uv), rms)
    return GcpSolution(extrinsics, rms, np.hypot(res[:, 0], res[:, 1]))


def load_camera(section: CameraSection) -> Camera:
    """The camera of a ``[[cameras]]`` config entry: intrinsics plus extrinsics, or the
    extrinsics solved from its ground control points (:func:`solve_extrinsics`)."""
    intrinsics = Intrinsics.from_json(section.intrinsics)
    if section.extrinsics is not None:
        return Camera(intrinsics, Extrinsics.from_json(section.extrinsics), section.name)
    if section.gcps is None:  # the section's validator requires one of the two
        raise ConfigError(f"camera {section.name}: give 'extrinsics' or 'gcps'")
    solution = solve_extrinsics(intrinsics, read_gcps(section.gcps))
    return Camera(intrinsics, solution.extrinsics, section.name)
