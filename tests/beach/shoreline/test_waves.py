"""Linear wave theory for reverse shoaling, and the wave table input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.beach.shoreline.runup import G
from edge.beach.shoreline.waves import WaveSource, shoaling_coefficient, wavenumber
from edge.config.shoreline import WavesSection
from edge.errors import InputError
from edge.station.messages import epoch_seconds


@pytest.mark.parametrize("period_s", [4.0, 8.0, 12.0, 18.0])
@pytest.mark.parametrize("depth_m", [0.5, 3.0, 12.0, 40.0, 300.0])
def test_wavenumber_solves_the_dispersion_relation(period_s, depth_m):
    """omega^2 = g k tanh(k h) to 1e-10 relative, from shallow (kh << 1) to deep water."""
    k = wavenumber(period_s, depth_m)
    omega = 2 * math.pi / period_s
    assert G * k * math.tanh(k * depth_m) == pytest.approx(omega**2, rel=1e-10)


def test_wavelength_matches_the_textbook_table():
    """T = 10 s in 10 m of water: L0 = 156.1 m and h/L0 = 0.0641 give L = 92.3 m (the
    classic linear-theory table, e.g. the Shore Protection Manual); deep water L -> L0."""
    assert 2 * math.pi / wavenumber(10.0, 10.0) == pytest.approx(92.3, abs=0.1)
    assert 2 * math.pi / wavenumber(10.0, 1000.0) == pytest.approx(G * 100 / (2 * math.pi))


@pytest.mark.parametrize("depth_m", [1.0, 5.0, 10.0, 20.0, 80.0])
def test_shoaling_coefficient_equals_the_closed_form_in_kh(depth_m):
    """Ks = [tanh(kh) (1 + 2kh / sinh 2kh)]^-1/2 (energy flux conservation, the form in
    terms of kh only, an algebra independent of the group-velocity ratio in the code)."""
    kh = wavenumber(10.0, depth_m) * depth_m
    expected = 1.0 / math.sqrt(math.tanh(kh) * (1 + 2 * kh / math.sinh(2 * kh)))
    assert shoaling_coefficient(10.0, depth_m) == pytest.approx(expected, rel=1e-9)
    # The textbook minimum Ks ~ 0.913 near h/L0 ~ 0.15 (kh ~ 1.2).
    ks = [shoaling_coefficient(10.0, d) for d in np.linspace(5, 60, 200)]
    assert min(ks) == pytest.approx(0.913, abs=0.002)


def test_wave_table_is_reverse_shoaled_and_unknown_beyond_max_age(tmp_path):
    """A buoy in 8 m of water: H0 = Hs / Ks(8 m); a time 4 h from any row is unknown."""
    table = tmp_path / "waves.csv"
    table.write_text(
        "time,hs_m,tp_s,dir_deg\n2026-06-15T00:00:00Z,1.2,9.0,80\n2026-06-15T03:00:00Z,2.0,11.0,\n"
    )
    src = WaveSource(
        WavesSection(source="csv", file=table, gauge_depth_m=8.0, reverse_shoal=True,
                     max_age_s=3600)
    )  # fmt: skip
    t0 = epoch_seconds("2026-06-15T00:00:00Z")
    w = src.at(t0 + 600)
    assert (w.hs_m, w.tp_s, w.direction_deg) == (1.2, 9.0, 80.0)
    assert w.h0_m == pytest.approx(1.2 / shoaling_coefficient(9.0, 8.0))
    assert src.at(t0 + 3 * 3600).direction_deg is None
    assert src.at(t0 + 7 * 3600) is None


def test_bad_wave_table_fails_in_one_line(tmp_path):
    table = tmp_path / "waves.csv"
    table.write_text("time,height\n2026-06-15T00:00:00Z,1.2\n")
    with pytest.raises(InputError, match=r"waves\.csv: wave table needs columns time,hs_m,tp_s"):
        WaveSource(WavesSection(source="csv", file=table))
