"""Synthetic B-scans (export.data.synth_bscan): the physics the detector is trained on, and the
dataset the command writes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import hilbert

from edge.gpr.detector import WINDOW
from export.data.synth_bscan import C_AIR, cylinder_scene, synthesize


def raw_sample(scan, trace: int, time_ns: float) -> float:
    """Raw amplitude of ``trace`` at ``time_ns`` after time zero (nearest sample)."""
    return float(scan.data[scan.t0_index + round(time_ns / scan.dt_ns), trace])


def test_void_reflects_with_the_direct_wave_polarity_and_a_metal_pipe_reversed():
    # eps_r = 6.25 host (v = 0.12 m/ns). The direct wave at time zero is positive; an air
    # void (eps 1 < 6.25: r = +0.43) reflects positive, a metal pipe (r = -1) negative.
    scan = cylinder_scene(6.25, [("cavity", 3.0, 0.6, 0.2), ("pipe", 9.0, 0.6, 0.05)], noise=0.0)
    assert raw_sample(scan, 0, 0.0) > 0
    void, pipe = scan.truths
    assert void.apex_time_ns == pytest.approx(2 * 0.6 / (C_AIR / 2.5))
    assert raw_sample(scan, round(void.apex_trace), void.apex_time_ns) > 0
    assert raw_sample(scan, round(pipe.apex_trace), pipe.apex_time_ns) < 0


def test_void_returns_its_bottom_reversed_after_the_air_path():
    # The bottom of a 0.2 m air void echoes 4 R / c = 2.67 ns after its top, reversed.
    scan = cylinder_scene(6.25, [("cavity", 6.0, 0.6, 0.2)], noise=0.0)
    void = scan.truths[0]
    bottom = void.apex_time_ns + 4 * 0.2 / C_AIR
    assert raw_sample(scan, round(void.apex_trace), bottom) < 0
    top = raw_sample(scan, round(void.apex_trace), void.apex_time_ns)
    assert abs(raw_sample(scan, round(void.apex_trace), bottom)) < top


def test_hyperbola_follows_the_cylinder_travel_time():
    # t(x) = 2/v sqrt((x - x0)^2 + (d + R)^2) - 2R/v; the envelope peak of each raw trace
    # (direct wave muted) is within one sample of it across the visible limbs.
    scan = cylinder_scene(9.0, [("pipe", 6.4, 0.8, 0.1)], noise=0.0)
    v, dx = C_AIR / 3.0, scan.dx_m
    data = scan.data.copy()
    data[: scan.t0_index + round(3 / scan.frequency_ghz / scan.dt_ns)] = 0.0
    env = np.abs(hilbert(data, axis=0))
    for trace in (108, 118, 128, 138, 148):
        x = trace * dx
        t = 2 / v * np.hypot(x - 6.4, 0.9) - 2 * 0.1 / v
        picked = (np.argmax(env[:, trace]) - scan.t0_index) * scan.dt_ns
        assert picked == pytest.approx(t, abs=scan.dt_ns)


def test_random_scans_stay_in_the_stated_ranges_with_consistent_truth():
    rng = np.random.default_rng(4)
    labelled = 0
    for _ in range(40):
        scan = synthesize(rng)
        assert scan.data.shape == (512, 256) and scan.data.dtype == np.float32
        assert 0.06 <= scan.velocity_m_per_ns <= 0.15 and 0.02 <= scan.dx_m <= 0.1
        for t in scan.truths:
            labelled += 1
            assert t.cls in ("cavity", "pipe")
            # depth to top = v t0 / 2, the apex inside its own box
            assert t.depth_top_m == pytest.approx(t.velocity_m_per_ns * t.apex_time_ns / 2)
            assert t.box_traces[0] <= t.apex_trace <= t.box_traces[1]
            assert t.box_time_ns[0] <= t.apex_time_ns <= t.box_time_ns[1]
    assert labelled >= 40  # 0-4 targets a scan, most of them above the noise


def test_dataset_command_writes_windows_yolo_labels_and_truth(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "export.data.detection", "--out", str(tmp_path), "--count", "6"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    images = sorted((tmp_path / "images").glob("*.npy"))
    assert len(images) == 6
    assert (tmp_path / "classes.txt").read_text().split() == ["cavity", "pipe"]
    boxes = 0
    for image in images:
        window = np.load(image)
        # processed by the deployment chain, resampled to the model input, standardised
        assert window.shape == WINDOW and window.dtype == np.float32
        assert abs(float(window.mean())) < 1e-3 and float(window.std()) == pytest.approx(1, 1e-3)
        text = (tmp_path / "labels" / f"{image.stem}.txt").read_text()
        rows = np.array(text.split(), dtype=float).reshape(-1, 5)
        truth = json.loads((tmp_path / "truth" / f"{image.stem}.json").read_text())
        assert len(rows) == len(truth["truths"])
        assert set(rows[:, 0]) <= {0.0, 1.0} and np.all((rows[:, 1:] >= 0) & (rows[:, 1:] <= 1))
        boxes += len(rows)
    assert boxes > 0
