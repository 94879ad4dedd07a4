"""Hyperbola fit alone (edge.gpr.hyperbola) on clean synthetic B-scans with known reflectors.

The scenes are gprMax-style: metal or air-filled cylinders in a homogeneous host of known
relative permittivity, so the velocity is v = c / sqrt(eps_r) (c = 0.2998 m/ns) and the
depth of the top is known. They go through the landed processing chain (time-zero, dewow,
band-pass, background removal, SEC gain) exactly as on the device; the box handed to the
fit is the ground-truth box (the detector is tested in test_detector.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.gpr.hyperbola import (
    MIN_LINE_RATIO,
    VELOCITY_RANGE,
    fit_box,
    fit_linear,
    not_a_diffraction,
    travel_time,
)
from export.data.detection import process_scan
from export.data.synth_bscan import C_AIR, cylinder_scene


def truth_box(scan, truth) -> tuple[float, float, float, float]:
    """Ground-truth box in processed-window coordinates (trace0, sample0, trace1, sample1)."""
    return (
        truth.box_traces[0],
        truth.box_time_ns[0] / scan.dt_ns,
        truth.box_traces[1] + 1.0,
        truth.box_time_ns[1] / scan.dt_ns,
    )


def test_linear_fit_recovers_exact_point_hyperbola():
    # Noise-free t(x) of a point reflector: the expansion t^2 = a + b x + c x^2 is exact,
    # so x0, t0 and v come back to rounding.
    x = np.linspace(0.0, 4.0, 81)
    t = travel_time(x, 1.7, 12.0, 0.11, 0.0)
    x0, t0, v = fit_linear(x, t)
    assert x0 == pytest.approx(1.7, abs=1e-9)
    assert t0 == pytest.approx(12.0, rel=1e-9)
    assert v == pytest.approx(0.11, rel=1e-9)


def test_linear_fit_ignores_outlier_picks():
    # Five of 61 picks jump to another event 8 ns later; the robust refit drops them.
    x = np.linspace(0.0, 3.0, 61)
    t = travel_time(x, 1.5, 10.0, 0.09, 0.0)
    t[[3, 17, 30, 44, 58]] += 8.0
    x0, t0, v = fit_linear(x, t)
    assert x0 == pytest.approx(1.5, abs=0.01)
    assert v == pytest.approx(0.09, rel=0.01)
    assert t0 == pytest.approx(10.0, rel=0.01)


@pytest.mark.parametrize(
    ("eps_r", "cls", "depth", "radius"),
    [
        (6.25, "pipe", 0.5, 0.05),  # v = 0.120 m/ns: a 10 cm metal pipe at 0.5 m
        (9.0, "pipe", 0.8, 0.10),  # v = 0.100 m/ns, wet sand
        (4.0, "pipe", 0.6, 0.0),  # v = 0.150 m/ns, dry sand, a point (rebar end)
        (6.25, "cavity", 0.5, 0.20),  # a 40 cm air void under 0.5 m
    ],
)
def test_fit_recovers_velocity_depth_and_apex_of_a_cylinder(eps_r, cls, depth, radius):
    scan = cylinder_scene(eps_r, [(cls, 6.413, depth, radius)], dx_m=0.05, seed=3)
    truth = scan.truths[0]
    fit = fit_box(process_scan(scan), truth_box(scan, truth), scan.dt_ns, scan.dx_m, 0.1)
    v_true = C_AIR / np.sqrt(eps_r)
    # Clean data, full hyperbola in the box: the fit is used. Velocity within 5 % and depth
    # within 6 %: where the radius is too small to be resolved, the point model reads a
    # cylinder's flatter apex as a velocity higher by sqrt(1 + R / d) (+5 % for the 5 cm
    # pipe), and the causal background removal bends the flank picks by up to a sample.
    # Apex within a trace; t0 within 5 %.
    assert fit.velocity_source == "fit", fit.reason
    assert fit.velocity_m_per_ns == pytest.approx(v_true, rel=0.05)
    assert fit.depth_m == pytest.approx(depth, rel=0.06)
    assert fit.apex_trace == pytest.approx(truth.apex_trace, abs=1.0)
    assert fit.t0_ns == pytest.approx(truth.apex_time_ns, rel=0.05)
    assert fit.rms_ns < 2 * scan.dt_ns


def test_radius_reported_for_a_large_void():
    # A 40 cm void 0.5 m down: the hyperbola is visibly flatter near the apex than a point's,
    # so the radius is constrained; within 30 % of the truth.
    scan = cylinder_scene(6.25, [("cavity", 6.413, 0.5, 0.2)], seed=3)
    truth = scan.truths[0]
    fit = fit_box(process_scan(scan), truth_box(scan, truth), scan.dt_ns, scan.dx_m, 0.1)
    assert fit.radius_m is not None
    assert fit.radius_m == pytest.approx(0.2, rel=0.3)


def test_noise_only_box_falls_back_to_the_configured_velocity():
    # No reflector at all: whatever is picked in noise is no hyperbola; the configured
    # velocity (0.1 m/ns) is used and the result says so.
    rng = np.random.default_rng(0)
    data = rng.normal(0.0, 1.0, (400, 200)).astype(np.float32)
    fit = fit_box(data, (50.0, 100.0, 150.0, 300.0), 0.1, 0.05, 0.1)
    assert fit.velocity_source == "configured"
    assert fit.velocity_m_per_ns == 0.1
    assert fit.depth_m == pytest.approx(0.1 * fit.t0_ns / 2)
    assert fit.reason


def test_flat_layer_falls_back_to_the_configured_velocity():
    # A flat reflector is a hyperbola of infinite velocity: outside 0.03-0.3 m/ns.
    rows = np.arange(400)[:, None]
    data = np.repeat(np.exp(-(((rows - 150.0) / 3.0) ** 2)), 200, axis=1).astype(np.float32)
    data *= np.cos(2 * np.pi * (rows - 150.0) / 12.0).astype(np.float32)
    fit = fit_box(data, (20.0, 120.0, 180.0, 200.0), 0.1, 0.05, 0.12)
    assert fit.velocity_source == "configured"
    assert not VELOCITY_RANGE[0] <= 1e9 <= VELOCITY_RANGE[1]  # the bound the reason names
    assert fit.t0_ns == pytest.approx(15.0, abs=0.5)
    assert fit.depth_m == pytest.approx(0.12 * fit.t0_ns / 2)


def _layer(rows_at: np.ndarray, n_rows: int = 400) -> np.ndarray:
    """A planar reflector: a Ricker-like wavelet 3 samples wide along ``rows_at`` per trace."""
    rows = np.arange(n_rows)[:, None]
    lag = rows - rows_at[None, :]
    return (np.exp(-((lag / 3.0) ** 2)) * np.cos(2 * np.pi * lag / 12.0)).astype(np.float32)


@pytest.mark.parametrize("dip_samples_per_trace", [0.0, 0.3, -0.6])
def test_planar_reflector_is_not_a_diffraction(dip_samples_per_trace):
    # A flat or dipping layer boxed by the detector (as in the real files FILE____032 and
    # test_gssi): a straight line explains the picks as well as any hyperbola, so the box is
    # dropped, and the reason says so.
    cols = np.arange(200)
    data = _layer(150.0 + dip_samples_per_trace * (cols - 100))
    fit = fit_box(data, (40.0, 100.0, 160.0, 200.0), 0.1, 0.05, 0.1)
    assert fit.line_ratio < MIN_LINE_RATIO
    assert "straight line" in not_a_diffraction(fit)


@pytest.mark.parametrize(
    ("eps_r", "cls", "depth", "radius"), [(9.0, "pipe", 0.8, 0.1), (6.25, "cavity", 0.5, 0.2)]
)
def test_cylinder_hyperbola_is_a_diffraction(eps_r, cls, depth, radius):
    # The gprMax-style targets: their hyperbola fits the picks many times better than a line
    # (ratio 7 to 500 on the synthetic scenes), so they are kept.
    scan = cylinder_scene(eps_r, [(cls, 6.413, depth, radius)], dx_m=0.05, seed=3)
    fit = fit_box(process_scan(scan), truth_box(scan, scan.truths[0]), scan.dt_ns, scan.dx_m, 0.1)
    assert fit.line_ratio > 3 * MIN_LINE_RATIO
    assert not_a_diffraction(fit) is None


def test_a_void_is_fitted_at_its_top_not_at_its_stronger_bottom_echo(tmp_path):
    """An air-filled void 0.36 m deep and 0.82 m across (a held-out survey line's target):
    after the device's processing its bottom echo, 5.5 ns under the top, is the stronger and
    longer ridge. The box the detector drew (the apex +-17 traces, 5-22 ns) holds both; the
    fit takes its velocity from the longer ridge and its apex time from the top one: depth
    within 15 % (the bottom echo alone put it at 0.70 m)."""
    from export.data.device_lines import device_processed
    from export.data.samples import GPR_DX_M, GPR_RANGE_NS, GPR_SAMPLES, gpr_line, write_dzt

    data, (void,) = gpr_line(5, [("cavity", 10.0, 0.36, 0.41)], layers=())
    write_dzt(tmp_path / "void.DZT", data)
    processed = device_processed(str(tmp_path / "void.DZT"))
    dt = GPR_RANGE_NS / GPR_SAMPLES
    col = void.x0_m / GPR_DX_M
    box = (col - 17, 5.0 / dt, col + 17, 22.0 / dt)
    fit = fit_box(
        processed[:, int(col) - 128 : int(col) + 128], (111, box[1], 145, box[3]), dt, GPR_DX_M, 0.1
    )
    assert fit.velocity_source == "fit"
    assert fit.t0_ns == pytest.approx(2 * void.depth_top_m / void.velocity_m_per_ns, abs=0.5)
    assert fit.depth_m == pytest.approx(void.depth_top_m, rel=0.15)


@pytest.mark.parametrize(("cls", "depth", "radius"), [("cavity", 1.0, 0.4), ("pipe", 0.8, 0.05)])
def test_a_fit_that_cannot_tell_velocity_from_radius_takes_the_lines_velocity(
    tmp_path, cls, depth, radius
):
    """Near its apex a large void's hyperbola is as well explained by a point at a higher
    velocity as by a 0.4 m cylinder at the ground's 0.1 m/ns: the free fit puts the void 1.0 m
    deep at about 1.16 m. Given the line's velocity (``velocity_source="line"``), the cylinder
    at that velocity fits as well, so it is taken (``line``, depth within 3 %). A small pipe,
    whose fit already agrees with the line, keeps its own fit; with only the configured
    velocity (no line yet) nothing changes."""
    from export.data.device_lines import device_processed
    from export.data.samples import GPR_DX_M, GPR_RANGE_NS, GPR_SAMPLES, gpr_line, write_dzt

    data, (target,) = gpr_line(5, [(cls, 10.0, depth, radius)], layers=())
    write_dzt(tmp_path / "line.DZT", data)
    col = round(target.x0_m / GPR_DX_M)
    window = device_processed(str(tmp_path / "line.DZT"))[:, col - 128 : col + 128]
    dt = GPR_RANGE_NS / GPR_SAMPLES
    row = 2 * depth / 0.1 / dt
    box = (98.0, row - 15, 158.0, row + 100)
    free = fit_box(window, box, dt, GPR_DX_M, 0.1)
    prior = fit_box(window, box, dt, GPR_DX_M, 0.1, "line")
    if cls == "cavity":
        assert free.velocity_source == "fit" and free.depth_m > 1.1 * depth
        assert prior.velocity_source == "line" and prior.velocity_m_per_ns == 0.1
        assert prior.depth_m == pytest.approx(depth, rel=0.03)
    else:
        assert prior == free and free.velocity_source == "fit"
        assert free.depth_m == pytest.approx(depth, rel=0.05)


def test_the_travel_time_jacobian_is_the_derivative():
    """The exact Jacobian the fits use agrees with central differences (1e-6 steps) to 1e-6,
    for a point and a cylinder, on and off the apex."""
    from edge.gpr.hyperbola import travel_time, travel_time_jacobian

    x = np.linspace(-1.0, 1.5, 11)
    for params in ([0.1, 12.0, 0.11, 0.0], [0.3, 20.0, 0.08, 0.25]):
        p = np.array(params)
        steps = 1e-6 * np.eye(4)
        numeric = np.stack(
            [(travel_time(x, *(p + d)) - travel_time(x, *(p - d))) / 2e-6 for d in steps], axis=1
        )
        assert np.abs(travel_time_jacobian(x, *p) - numeric).max() < 1e-6
