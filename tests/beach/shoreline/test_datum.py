"""Tide inputs, slope and the tide-datum shoreline on rendered scenes of known slope."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import subprocess
import sys
import warnings

import numpy as np
import pytest
import utide
from shapely.geometry import LineString

from edge.beach.shoreline.datum import ShorelineStage, chainage_point, datum_chainage
from edge.beach.shoreline.runup import stockdon2006
from edge.beach.shoreline.slope import Observation, fit_slope
from edge.beach.shoreline.tide import TideSource, predict
from edge.beach.shoreline.waves import WaveState, shoaling_coefficient
from edge.beach.waterline.analysis import BeachAnalyser, WaterlineResult
from edge.beach.waterline.transects import Crossing
from edge.config.shoreline import ConstituentSection, SlopeSection, TideSection
from edge.errors import InputError
from tests.helpers.beach_scene import make_station

DAY = dt.datetime(2026, 6, 15, tzinfo=dt.timezone.utc).timestamp()
SPEC = {"M2": (0.5, 120.0), "S2": (0.2, 150.0), "N2": (0.1, 100.0), "K1": (0.15, 200.0),
        "O1": (0.1, 180.0), "P1": (0.05, 190.0), "K2": (0.05, 160.0)}  # fmt: skip


def test_harmonic_prediction_agrees_with_utide():
    """utide's least-squares analysis of a year of our hourly prediction must give back
    the constituents we predicted with: a wrong equilibrium argument or nodal factor
    shows up as a phase or amplitude error far beyond these bounds."""
    cons = [ConstituentSection(name=k, amplitude_m=a, phase_deg=g) for k, (a, g) in SPEC.items()]
    t = DAY + np.arange(0, 370 * 86400, 3600.0)
    level = predict(cons, 0.2, t)
    times = (t.astype("datetime64[s]")).astype("datetime64[s]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coef = utide.solve(times, level, lat=37.5, constit=list(SPEC), nodal=True, trend=False,
                           method="ols", conf_int="none", verbose=False)  # fmt: skip
    for name, amp, phase in zip(coef.name, coef.A, coef.g, strict=True):
        a, g = SPEC[name]
        assert amp == pytest.approx(a, rel=0.02), name
        assert abs((phase - g + 180) % 360 - 180) < 1.0, name
    assert coef.mean == pytest.approx(0.2, abs=1e-3)


def test_csv_tide_is_interpolated_and_unknown_beyond_its_rows(tmp_path):
    table = tmp_path / "tide.csv"
    table.write_text("time,level_m\n2026-06-15T00:00:00Z,0.0\n2026-06-15T01:00:00Z,0.6\n")
    src = TideSource(TideSection(source="csv", file=table, max_gap_s=1800, offset_m=0.1))
    assert src.level_at(DAY + 1800) == pytest.approx(0.4)
    assert src.level_at(DAY + 6 * 3600) is None


def test_mqtt_gauge_keeps_recent_readings_only():
    src = TideSource(TideSection(source="mqtt", topic="gauge/level", max_age_s=600))
    src.on_message("gauge/level", {"level_m": 0.8, "time": "2026-06-15T00:00:00Z"})
    src.on_message("gauge/level", {"level_m": 1.0, "time": "2026-06-15T00:10:00Z"})
    for bad in ({"no_level": 1}, {"level_m": float("nan")}, {"level_m": 99.0}, [1.0]):
        with pytest.raises(InputError):
            src.on_message("gauge/level", bad)
    assert src.level_at(DAY + 300) == pytest.approx(0.9)
    assert src.level_at(DAY + 3 * 3600) is None


def test_reverse_shoaling_matches_linear_theory_limits():
    # Deep water: no change; shallow water: Green's law-like growth (Ks > 1 for kh << 1).
    assert shoaling_coefficient(8.0, 500.0) == pytest.approx(1.0, abs=1e-6)
    assert shoaling_coefficient(10.0, 2.0) > 1.2
    # Ks dips below 1 at intermediate depth (kh ~ 1.2) before rising: the textbook minimum.
    assert min(shoaling_coefficient(10.0, d) for d in np.linspace(10, 60, 50)) < 0.92


def test_slope_fit_is_robust_to_one_bad_waterline():
    rules = SlopeSection(min_points=4)
    z = np.linspace(-0.3, 0.6, 8)
    x = 40.0 - z / 0.07
    x[3] += 15.0  # one waterline on a wet-sand patch
    obs = [
        Observation(DAY + i * 1800, xi, zi, 1.0, 8.0)
        for i, (xi, zi) in enumerate(zip(x, z, strict=True))
    ]
    est = fit_slope(obs, rules)
    assert est.source == "fit"
    assert est.tan_beta == pytest.approx(0.07, abs=0.005)
    est = fit_slope(obs[:2], rules, last_good=0.05)
    assert (est.source, est.tan_beta) == ("last_good", 0.05)
    assert fit_slope(obs[:2], rules).source == "default"


@pytest.mark.parametrize("slope", [0.035, 0.06, 0.12])
def test_rendered_day_gives_the_slope_and_the_datum_shoreline(tmp_path, slope):
    """A rendered beach of known slope seen at 6 water levels over a day (a rising tide
    of 0.9 m, no waves), through the waterline stage (ready water masks) and the slope and
    shoreline stages: the day's slope must come within 0.01 of the truth and each
    transect's datum (0 m) shoreline within 1 m of the rendered 0 m contour."""
    station = make_station(tmp_path, slope=slope, extra_toml="[slope]\ndefault = 0.2\n")
    analyser = BeachAnalyser(station.config, load_model=False)
    stage = ShorelineStage(station.config)
    levels = np.linspace(-0.3, 0.6, 6)
    for k, level in enumerate(levels):
        t = DAY + 36000 + k * 1800
        mask = station.scene.render(float(level)).water_mask.astype(np.uint8) * 255
        waterline = analyser.analyse(t, float(level), masks={"c1": mask})
        slope_result, shoreline = stage.update(waterline, t, float(level), None)
    estimates = list(slope_result.estimates.values())
    slopes = [e.tan_beta for e in estimates]
    assert [e.source for e in estimates] == ["fit"] * 5
    # The slope message carries its inputs: the day's (chainage, elevation) pairs.
    points = slope_result.to_message("test")["transects"][0]["points"]
    np.testing.assert_allclose([p["z_m"] for p in points], levels, atol=1e-4)
    np.testing.assert_allclose(slopes, slope, atol=0.01)
    truth = [station.scene.true_chainage(t, 0.0) for t in station.transects]
    got = [p.distance_m for p in shoreline.points]
    print(
        "slopes", np.round(slopes, 4), "datum shoreline error", np.round(np.subtract(got, truth), 3)
    )
    np.testing.assert_allclose(got, truth, atol=1.0)
    assert shoreline.to_message("test", "EPSG:32633")["schema"] == "geoedge.shoreline/1"
    stage.close()


def test_no_tide_marks_the_shoreline_unavailable(tmp_path):
    station = make_station(tmp_path)
    stage = ShorelineStage(station.config)
    crossing = Crossing("T01", 50.0, (0.0, 0.0), True, None, 1.0, "c1")
    waterline = WaterlineResult(DAY, 0.3, None, [crossing], "mask", None, ["c1"], {}, {})
    _, shoreline = stage.update(waterline, DAY, None, WaveState(DAY, 1.0, 8.0, 1.0))
    message = shoreline.to_message("test", "EPSG:32633")
    assert message["available"] is False
    assert message["transects"][0]["distance_m"] is None
    stage.close()


def test_datum_shift_direction():
    # Water 0.5 m above the datum on a 1:20 beach: the datum contour is 10 m seaward.
    assert datum_chainage(40.0, 0.5, 0.0, 0.05) == pytest.approx(50.0)


def test_trend_command_recovers_a_retreat_rate(tmp_path):
    station = make_station(tmp_path)
    stage = ShorelineStage(station.config)
    years = np.arange(0, 3, 0.25)
    for y in years:
        stage.store.add_shoreline("T01", DAY + y * 365.25 * 86400, 60.0 - 1.5 * y, 0.4, 0.06)
    stage.close()
    out = subprocess.run(
        [sys.executable, "-m", "edge", "shoreline", "trend", "--config",
         str(station.config.source_path), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    import json

    row = json.loads(out.stdout)["transects"][0]
    assert row["rate_m_per_yr"] == pytest.approx(-1.5, abs=1e-3)
    assert row["n"] == len(years)


def test_waves_raise_the_waterline_and_the_next_day_uses_the_fitted_slope(tmp_path):
    """Steady waves (H0 1 m, Tp 8 s) on a beach of tan(beta) 0.06: the water edge stands at
    tide + Stockdon setup (0.210 m). Day 1 knows no slope yet, so the plane and the setup
    use the configured default 0.12 (setup 0.420 m): the slope still comes out right (a
    constant z error moves every waterline alike) but the datum shoreline is off by about
    (0.420 - 0.210) / 0.06 = 3.5 m. Day 2 takes the setup from day 1's fitted slopes:
    the plane is right again and the datum shoreline within 1 m of the rendered contour."""
    station = make_station(tmp_path, slope=0.06, extra_toml="[slope]\ndefault = 0.12\n")
    analyser = BeachAnalyser(station.config, load_model=False)
    stage = ShorelineStage(station.config)
    true_setup = stockdon2006(1.0, 8.0, 0.06).setup_m
    truth = np.array([station.scene.true_chainage(t, 0.0) for t in station.transects])
    errors = []
    for day in (0, 1):
        for k, tide in enumerate(np.linspace(-0.3, 0.6, 4)):
            t = DAY + day * 86400 + 36000 + k * 3600
            waves = WaveState(t, 1.0, 8.0, 1.0)
            level = stage.water_level(t, float(tide), waves)
            water = station.scene.render(float(tide) + true_setup).water_mask
            waterline = analyser.analyse(t, level.z_m, masks={"c1": water.astype(np.uint8) * 255})
            slope_result, shoreline = stage.update(waterline, t, float(tide), waves)
        slopes = [e.tan_beta for e in slope_result.estimates.values()]
        np.testing.assert_allclose(slopes, 0.06, atol=0.01)
        got = np.array([p.distance_m for p in shoreline.points], dtype=float)
        errors.append(got - truth)
        print(f"day {day + 1}: setup {level.setup_m:.3f} m with slope {level.slope:.4f}, "
              f"datum shoreline error {np.round(got - truth, 2)} m")  # fmt: skip
    assert level.setup_m == pytest.approx(true_setup, abs=0.02)
    assert np.abs(errors[0]).mean() > 2.0
    assert np.abs(errors[1]).max() < 1.0
    stage.close()


def test_a_full_store_never_fails_the_analysis(tmp_path, caplog):
    """The shoreline store is written during the analysis; on a full disk it raised
    'database or disk is full' and the collection's waterline, slope and shoreline were never
    published. Now the store counts what it could not keep (one log line per run) and the
    results are computed all the same. (A store that refuses writes is simulated by reopening
    it read-only: SQLite refuses every write, as it does on a full disk.)"""
    station = make_station(tmp_path)
    stage = ShorelineStage(station.config)
    stage.store.db.close()
    stage.store.db = sqlite3.connect(f"file:{stage.store.path}?mode=ro", uri=True)
    analyser = BeachAnalyser(station.config, load_model=False)
    with caplog.at_level(logging.ERROR):
        for k, level in enumerate((0.0, 0.3, 0.6)):
            t = DAY + 36000 + k * 1800
            mask = station.scene.render(level).water_mask.astype(np.uint8) * 255
            waterline = analyser.analyse(t, level, masks={"c1": mask})
            slope_result, shoreline = stage.update(waterline, t, level, None)
            assert all(p.distance_m is not None for p in shoreline.points)
            assert len(slope_result.estimates) == 5
    assert stage.store.rows_not_stored >= 3 * 5
    assert len([r for r in caplog.records if "cannot store" in r.getMessage()]) == 1
    stage.close()


def test_a_datum_chainage_is_placed_on_its_transect_and_beyond_its_ends():
    """A 50 m transect from (0, 0) towards (30, 40) (a 3-4-5 triangle): 25 m seaward is its
    middle; 60 m is 10 m past the seaward end, -5 m 5 m behind the landward end, both on the
    line's extension (a datum shoreline can lie beyond a short transect)."""
    line = LineString([(0.0, 0.0), (30.0, 40.0)])
    assert chainage_point(line, 25.0) == pytest.approx((15.0, 20.0))
    assert chainage_point(line, 60.0) == pytest.approx((36.0, 48.0))
    assert chainage_point(line, -5.0) == pytest.approx((-3.0, -4.0))
