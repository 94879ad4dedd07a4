"""Extrinsics from ground control points with large projected coordinates."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edge.beach.geometry.calibration import read_gcps, solve_extrinsics
from edge.beach.geometry.camera import Camera, Extrinsics, Intrinsics
from edge.errors import InputError

#: A CACO-01-like camera: UTM 19N (easting 4.1e5, northing 4.66e6), 27 m up, looking
#: north-west along the beach, lens with real barrel distortion.
TRUE = Extrinsics(x=410843.97, y=4655942.49, z=27.3, a=-0.271, t=1.304, r=0.007)
LENS = Intrinsics(NU=2448, NV=2048, c0U=1150.39, c0V=1200.53, fx=3599.3, fy=3600.84,
                  d1=-0.2214, d2=0.1298, t1=0.0006, t2=-0.0004)  # fmt: skip


def _survey(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points spread over the lower image, surveyed at 0..6 m elevation."""
    rng = np.random.default_rng(seed)
    cam = Camera(LENS, TRUE)
    uv = np.column_stack([rng.uniform(100, 2350, n), rng.uniform(1300, 2000, n)])
    xyz, valid = cam.image_to_world(uv, rng.uniform(0.0, 6.0, n))
    assert valid.all()
    return xyz, uv


def test_exact_gcps_give_back_the_pose():
    """Eight exact GCPs: the solved pose equals the true one to 1 mm and 1e-6 rad, which
    only works if the eastings/northings were centred before solving."""
    xyz, uv = _survey(8, seed=1)
    sol = solve_extrinsics(LENS, (xyz, uv))
    e = sol.extrinsics
    assert np.allclose([e.x, e.y, e.z], [TRUE.x, TRUE.y, TRUE.z], atol=1e-3)
    assert np.allclose([e.a, e.t, e.r], [TRUE.a, TRUE.t, TRUE.r], atol=1e-6)
    assert sol.rms_px < 1e-3


def test_noisy_gcps_report_their_reprojection_error():
    """Twelve GCPs clicked with 0.5 px (per axis) noise: the reported RMS is the RMS of
    the residuals, near 0.5 * sqrt(2) * sqrt((24 - 6) / 24) = 0.61 px (six parameters
    absorb some noise), the camera stays within 0.5 m of the truth, the view direction
    within 2 mrad."""
    xyz, uv = _survey(12, seed=2)
    noisy = uv + np.random.default_rng(3).normal(0.0, 0.5, uv.shape)
    sol = solve_extrinsics(LENS, (xyz, noisy))
    assert sol.rms_px == pytest.approx(np.sqrt(np.mean(sol.residuals_px**2)))
    assert 0.3 < sol.rms_px < 0.9
    e = sol.extrinsics
    assert np.linalg.norm([e.x - TRUE.x, e.y - TRUE.y, e.z - TRUE.z]) < 0.5
    assert np.abs([e.a - TRUE.a, e.t - TRUE.t, e.r - TRUE.r]).max() < 2e-3


def test_a_mislabelled_gcp_raises_a_warning_with_the_rms(caplog):
    """One GCP clicked 40 px off: the fit cannot reproject it, the RMS exceeds the 2 px
    threshold and a warning names the figure; the worst residual points at that GCP."""
    xyz, uv = _survey(10, seed=5)
    uv[4, 0] += 40.0
    with caplog.at_level(logging.WARNING, logger="edge.beach.geometry.calibration"):
        sol = solve_extrinsics(LENS, (xyz, uv))
    assert sol.rms_px > 2.0
    assert "reprojection RMS" in caplog.text
    assert int(np.argmax(sol.residuals_px)) == 4


def test_gcp_csv_is_read_and_bad_files_fail_in_one_line(tmp_path):
    good = tmp_path / "gcps.csv"
    good.write_text("x,y,z,u,v\n" + "\n".join(f"{410000 + i},4655000,{i},{10 * i},20" for i in
                                              range(5)) + "\n")  # fmt: skip
    xyz, uv = read_gcps(good)
    assert xyz.shape == (5, 3) and uv[3].tolist() == [30.0, 20.0]
    few = tmp_path / "few.csv"
    few.write_text("x,y,z,u,v\n1,2,3,4,5\n")
    with pytest.raises(InputError, match="at least 4"):
        read_gcps(few)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("east,north,z,u,v\n1,2,3,4,5\n")
    with pytest.raises(InputError, match="columns x,y,z,u,v"):
        read_gcps(wrong)
