"""Time zero and antenna frequency from the data (edge.gpr.directwave), alone and through the
cavity pipeline: synthetic lines whose direct wave sits a few ns into the trace while the header
says time zero is the first sample, a 900 MHz DZT written with ``rhf_position`` 0, 2.7 GHz data
under a 400 MHz config, and the real FILE____032.DZT (position 0, direct wave at ~5-7 ns)."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from edge.config import StationConfig
from edge.errors import InputError
from edge.gpr.directwave import arrival_moveout, calibrate_line, find_direct_wave
from edge.gpr.formats.readers import read_gpr
from edge.gpr.stream import CavityPipeline, build_detector
from edge.gpr.traces import TraceBlock
from export.data.samples import gpr_line
from export.data.synth_bscan import BScan, add_event, cylinder_scene
from tests.helpers.data import GPRPY
from tests.helpers.gpr_lines import gpr_config, synthetic_line, write_dzt


def _shifted(scan: BScan, shift_ns: float) -> np.ndarray:
    """The scan with its direct wave (peak at time zero) moved to ``shift_ns`` ns after the
    first sample."""
    k = round(shift_ns / scan.dt_ns)
    body = scan.data[scan.t0_index :]
    return np.vstack([np.zeros((k, body.shape[1]), np.float32), body])


def _config(at: str | float = "auto", antenna_mhz: float | None = 400.0) -> StationConfig:
    gpr = {
        "source": "tcp://127.0.0.1:1",
        "positioning": {"trace_spacing_m": 0.05},
        "processing": [
            {"step": "time_zero", "at": at},
            {"step": "dewow"},
            {"step": "bandpass"},
            {"step": "background"},
            {"step": "sec"},
        ],
    }
    if antenna_mhz is not None:
        gpr["antenna_mhz"] = antenna_mhz
    return StationConfig.model_validate(
        {"station": {"id": "t0", "kind": "gpr", "crs": "EPSG:5186"}, "gpr": gpr}
    )


@pytest.fixture(scope="module")
def detector():
    return build_detector(_config().gpr)


@pytest.mark.parametrize("f_ghz", [0.4, 0.9, 2.7])
@pytest.mark.parametrize("shift_ns", [2.0, 4.0, 6.0])
def test_the_direct_wave_peak_is_found_within_a_twentieth_of_a_period(f_ghz, shift_ns):
    """Direct wave (a Ricker of 8 units at time zero plus a ground-coupling ring of -3 after
    0.6 periods) moved 2-6 ns into the trace: its peak is found within 0.05 periods, the first
    break before it, the dominant frequency within 25 % of the Ricker's peak frequency."""
    scan = cylinder_scene(9.0, [("cavity", 3.0, 0.3, 0.05)], frequency_ghz=f_ghz, n_traces=128)
    data = _shifted(scan, shift_ns)
    dw = find_direct_wave(data[np.newaxis], scan.dt_ns)
    assert dw is not None
    true_peak = round(shift_ns / scan.dt_ns)
    period_samples = 1.0 / f_ghz / scan.dt_ns
    assert abs(dw.peak_sample - true_peak) <= 0.05 * period_samples
    assert dw.first_break_sample < dw.peak_sample
    assert dw.dominant_mhz == pytest.approx(f_ghz * 1000, rel=0.25)


def _depth_errors(msgs: list[dict], truths) -> list[float]:
    errs = []
    for truth, _ in truths:
        near = [m for m in msgs if abs(m["trace"] - truth.apex_trace) < 10]
        if near:
            errs.append(abs(near[0]["depth_top_m"] - truth.depth_top_m) / truth.depth_top_m)
    return errs


@pytest.mark.parametrize("shift_ns", [2.0, 4.0, 6.0])
def test_depths_within_5_percent_when_the_header_time_zero_is_wrong(detector, shift_ns, caplog):
    """The issue's 5 % depth test: the four-target 400 MHz line with its direct wave 2-6 ns
    into the trace and a header time zero of 0. With ``at = "auto"`` the median depth-to-top
    error is <= 5 % (measured 0.2-1.1 %) and the message names the time zero used; trusting the
    header (``at = "header"``) puts every depth too deep (measured 10-27 %)."""
    scan, _, truths = synthetic_line()
    samples = _shifted(scan, shift_ns)[np.newaxis]
    errors = {}
    for at in ("auto", "header"):
        block = TraceBlock(samples=samples, dt_ns=scan.dt_ns, source="line.sgy", format="segy")
        with caplog.at_level(logging.WARNING):
            pipe = CavityPipeline(_config(at), block, detector)
            msgs = pipe.feed(block) + pipe.flush()
        errors[at] = _depth_errors(msgs, truths)
        assert len(errors[at]) >= 3  # the detector finds the targets either way
        if at == "auto":
            assert all(m["time_zero_ns"] == pytest.approx(shift_ns, abs=0.1) for m in msgs)
            assert pipe.stats()["calibration"]["time_zero_source"] == "data"
    assert np.median(errors["auto"]) <= 0.05
    assert np.median(errors["header"]) > 0.05
    assert caplog.text.count("from the direct wave") == 1


def test_a_900_mhz_dzt_with_position_zero_gets_its_time_zero_from_the_data(tmp_path, detector):
    """The issue's 900 MHz DZT: the direct wave at 3.7 ns, ``rhf_position`` 0, antenna model
    3101 (900 MHz). Time zero comes from the data (within 0.05 ns) and the depths of the 0.3 m
    and 0.5 m deep targets the detector reports are within 5 %."""
    scan = cylinder_scene(
        6.0, [("pipe", 4.0, 0.30, 0.02), ("pipe", 8.0, 0.50, 0.03)], frequency_ghz=0.9,
        dx_m=0.02, n_traces=600, seed=2,
    )  # fmt: skip
    data = _shifted(scan, 3.7)
    write_dzt(tmp_path / "FILE900.DZT", data, data.shape[0] * scan.dt_ns, "3101", 1 / scan.dx_m)
    block = read_gpr(tmp_path / "FILE900.DZT")
    assert block.antenna_mhz == 900.0 and block.time_zero_sample == 0.0
    pipe = CavityPipeline(_config(antenna_mhz=None), block, detector)
    msgs = pipe.feed(block) + pipe.flush()
    cal = pipe.calibration
    assert cal.time_zero_source == "data" and cal.antenna_source == "header"
    assert cal.time_zero_ns == pytest.approx(3.7, abs=0.05)
    # every target the detector reports is within 5 % (the shipped FP32 detector boxes the
    # 0.5 m pipe only; finding both is the detector's recall, not time zero's business)
    errs = _depth_errors(msgs, [(t, 0) for t in scan.truths])
    assert len(errs) >= 1 and max(errs) <= 0.05


def test_time_zero_settings_header_fixed_and_agreeing_header():
    """``header`` keeps the header, a number is ns after the first sample, and ``auto`` keeps a
    header on the direct wave's rise (first break to peak, give or take 0.1 period / 2
    samples) and replaces one before the first break or past the peak."""
    scan = cylinder_scene(9.0, [("cavity", 3.0, 0.3, 0.05)], frequency_ghz=0.4, n_traces=64)
    data = _shifted(scan, 4.0)[np.newaxis]
    k = round(4.0 / scan.dt_ns)
    for header, at, want, source in [
        (0.0, "header", 0.0, "header"),
        (0.0, 2.5, 2.5 / scan.dt_ns, "config"),
        (k + 1.0, "auto", k + 1.0, "header"),
        (k - 5.0, "auto", k - 5.0, "header"),  # on the rise (first break ~7.5 samples early)
        (k - 20.0, "auto", k, "data"),  # before the first break
        (k + 12.0, "auto", k, "data"),
    ]:
        block = TraceBlock(samples=data, dt_ns=scan.dt_ns, time_zero_sample=header)
        cal = calibrate_line(block, at, 400.0)
        assert cal.time_zero_source == source
        assert cal.time_zero_sample == pytest.approx(want, abs=0.5)


def test_the_real_file____032_direct_wave_is_found_where_the_header_says_zero():
    """FILE____032.DZT: rhf_position 0, but the direct wave's first break is at ~4.5 ns and its
    strongest half-cycle at ~6.6 ns (the mean trace, printed in the issue). The header's 400 MHz
    is plausible (the spectrum peaks at ~380 MHz) and kept."""
    block = read_gpr(GPRPY / "FILE____032.DZT")
    cal = calibrate_line(block, "auto", None)
    assert cal.time_zero_source == "data" and cal.direct_wave is not None
    assert 4.0 <= cal.direct_wave.first_break_sample * block.dt_ns <= 5.0
    assert 6.0 <= cal.time_zero_ns <= 7.0
    assert (cal.antenna_mhz, cal.antenna_source) == (400.0, "header")
    assert cal.direct_wave.dominant_mhz == pytest.approx(400.0, rel=0.2)


def test_an_unknown_antenna_is_estimated_with_one_warning(caplog):
    """No frequency in the header nor the config: the direct wave's spectrum sets it (a
    900 MHz Ricker: within 25 %), with one warning naming the estimate; a plausible nominal
    frequency (the header's 900 MHz) is kept without a word."""
    scan = cylinder_scene(9.0, [("cavity", 3.0, 0.3, 0.05)], frequency_ghz=0.9, n_traces=64)
    data = _shifted(scan, 3.0)[np.newaxis]
    with caplog.at_level(logging.WARNING):
        cal = calibrate_line(TraceBlock(samples=data, dt_ns=scan.dt_ns, source="x"), 0.0, None)
    assert cal.antenna_source == "data"
    assert cal.antenna_mhz == pytest.approx(900.0, rel=0.25)
    assert [r.getMessage() for r in caplog.records] == [
        f"x: antenna frequency not given: {cal.antenna_mhz:.0f} MHz estimated from the direct "
        "wave's spectrum sets the processing"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        block = TraceBlock(samples=data, dt_ns=scan.dt_ns, source="x", antenna_mhz=900.0)
        cal = calibrate_line(block, 0.0, 400.0)
    assert (cal.antenna_mhz, cal.antenna_source) == (900.0, "header") and not caplog.records


def _warr(step_m: float, n_traces: int, f_ghz: float = 0.4) -> tuple[np.ndarray, float]:
    """A WARR gather (samples, traces) and its ns per sample: the receiver steps ``step_m``
    away from the transmitter (first separation 0.6 m), so the air wave arrives at
    separation / 0.3 m/ns, the ground wave at separation / 0.1 m/ns and a reflector at 20 ns
    zero-offset time along its normal-moveout hyperbola; direct waves weaken with separation."""
    dt = 60.0 / 512
    data = np.zeros((512, n_traces))
    sep = 0.6 + step_m * np.arange(n_traces)
    weak = 1.0 / np.maximum(sep, 0.3)
    add_event(data, sep / 0.3, 8.0 * weak, dt, 16, f_ghz)
    add_event(data, sep / 0.1, 4.0 * weak, dt, 16, f_ghz)
    add_event(data, np.sqrt(20.0**2 + (sep / 0.1) ** 2), np.ones(n_traces), dt, 16, f_ghz)
    data += np.random.default_rng(0).normal(0.0, 0.01, data.shape)
    return data, dt


@pytest.mark.parametrize(("step_m", "n_traces"), [(0.05, 120), (0.1, 40), (0.02, 256)])
def test_a_warr_gathers_moving_direct_wave_marks_it_a_gather(step_m, n_traces):
    """The air wave moves out by step / 0.3 ns per trace: the moveout is measured within 5 %
    and the block is a gather."""
    data, dt = _warr(step_m, n_traces)
    moveout = arrival_moveout(data[None], dt)
    assert moveout is not None and moveout.is_gather
    assert moveout.ns_per_trace == pytest.approx(step_m / 0.3, rel=0.05)
    assert moveout.r2 > 0.99


def test_profiles_are_not_gathers():
    """The bundled real files (pulseEKKO 50 MHz, SIR-3000 400 MHz), the demo line and
    synthetic scenes at 400 MHz to 2.7 GHz keep their direct wave at one time: none is a
    gather."""
    blocks = [read_gpr(GPRPY / name) for name in ("XLINE00.DT1", "FILE____032.DZT")]
    samples = [(b.samples, b.dt_ns) for b in blocks]
    samples.append((gpr_line()[0][None], 60.0 / 512))
    rng = np.random.default_rng(1)
    for _ in range(4):
        scan = cylinder_scene(
            float(rng.uniform(4, 16)), [("cavity", 5.0, float(rng.uniform(0.3, 1.5)), 0.2)],
            frequency_ghz=float(rng.choice([0.4, 0.9, 2.7])), n_traces=256,
            seed=int(rng.integers(1000)),
        )  # fmt: skip
        samples.append((scan.data[None], scan.dt_ns))
    for data, dt in samples:
        moveout = arrival_moveout(data, dt)
        assert moveout is not None and not moveout.is_gather, moveout


def test_gpr_detect_refuses_a_dzt_warr_gather_with_one_line(tmp_path):
    """DZT has no survey-mode field: a WARR recorded as a DZT is told from the data, and
    ``geoedge gpr detect`` exits 2 with one line naming the file; the same gather as a live
    line's first block is refused by the pipeline (the unit abandons that line)."""
    data, dt = _warr(0.05, 120)
    path = tmp_path / "WARR01.DZT"
    write_dzt(path, data, data.shape[0] * dt, "5103", 20.0, position_ns=-16 * dt)
    cfg = gpr_config(tmp_path, path.name)
    run = subprocess.run(
        [sys.executable, "-m", "edge", "gpr", "detect", str(path), "--config", str(cfg),
         "--out", str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "WARR01.DZT" in lines[0] and "CMP or WARR gather" in lines[0]
    assert not (tmp_path / "out.json").exists()
    with pytest.raises(InputError, match="CMP or WARR gather"):
        CavityPipeline(_config(), read_gpr(path), build_detector(_config().gpr))
