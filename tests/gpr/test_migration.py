"""Stolt migration (edge.gpr.migration) and the chain's ``migrate`` step: a synthetic point
diffraction (a 2 cm pipe 0.5 m deep in ground of v = 0.1 m/ns, 400 MHz, 5 cm traces)
collapses toward its apex."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import hilbert

from edge.config.gpr import MigrateStep
from edge.errors import ConfigError
from edge.gpr.migration import stolt_migrate
from edge.gpr.processing import ProcessingChain, TraceGeometry
from export.data.synth_bscan import cylinder_scene


def _diffraction():
    scan = cylinder_scene(9.0, [("pipe", 5.0, 0.5, 0.01)], n_traces=200, seed=1)
    data = scan.data[scan.t0_index :]
    return scan, data - data.mean(axis=1, keepdims=True)  # flat direct wave removed


def _focus(section: np.ndarray, below: int) -> tuple[int, int, int, float]:
    """(row, trace) of the envelope's peak below row ``below``, the number of traces whose
    peak envelope reaches half of it, and that peak."""
    env = np.abs(hilbert(section, axis=0))[below:]
    row, col = np.unravel_index(int(np.argmax(env)), env.shape)
    per_trace = env.max(axis=0)
    return (
        int(row) + below,
        int(col),
        int((per_trace >= 0.5 * per_trace.max()).sum()),
        float(env.max()),
    )


def test_a_point_diffraction_collapses_to_its_apex():
    """Migrated at the ground's velocity, the hyperbola (17 traces above half its peak, the
    measured figure) focuses on one or two traces at the apex (trace 100, 10 ns: within one
    trace and two samples) and its peak grows (measured 2.7x); migrated 30 % too slow or too
    fast it focuses less."""
    scan, data = _diffraction()
    truth = scan.truths[0]
    below = 60  # rows after the direct wave
    _, _, raw_width, raw_peak = _focus(data, below)
    migrated = stolt_migrate(data, scan.dt_ns, scan.dx_m, scan.velocity_m_per_ns)
    row, col, width, peak = _focus(migrated, below)
    assert migrated.shape == data.shape and migrated.dtype == np.float32
    assert abs(col - truth.apex_trace) <= 1
    assert abs(row - truth.apex_time_ns / scan.dt_ns) <= 2
    assert raw_width >= 10 and width <= 2
    assert peak >= 2.0 * raw_peak
    for wrong in (0.7, 1.3):
        off = stolt_migrate(data, scan.dt_ns, scan.dx_m, wrong * scan.velocity_m_per_ns)
        assert _focus(off, below)[3] < peak


def test_the_chain_migrates_when_configured():
    """``[[gpr.processing]] step = "migrate"`` with the geometry's spacing and velocity gives
    the function's result per channel; without a spacing it is one config error."""
    scan, data = _diffraction()
    geometry = TraceGeometry(
        scan.dt_ns, data.shape[0], trace_spacing_m=scan.dx_m, velocity_m_per_ns=0.0999
    )
    out = ProcessingChain([MigrateStep()], geometry).process(np.stack([data, 2 * data]))
    want = stolt_migrate(data, scan.dt_ns, scan.dx_m, 0.0999)
    np.testing.assert_allclose(out[0], want, atol=1e-5 * np.abs(want).max())
    np.testing.assert_allclose(out[1], 2 * want, atol=1e-5 * np.abs(want).max())
    with pytest.raises(ConfigError, match="migrate: needs a trace spacing"):
        ProcessingChain([MigrateStep()], TraceGeometry(scan.dt_ns, data.shape[0]))
