"""Processing chain, B-scan windows, positioning and de-duplication (pure stages)."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer

from edge.config.gpr import (
    AgcStep,
    BackgroundStep,
    BandpassStep,
    DewowStep,
    GprSection,
    SecGainStep,
    TimeZeroStep,
)
from edge.gpr.bscan import BscanWindower, box_to_profile
from edge.gpr.dedup import CavityCandidate, SameTarget, deduplicate
from edge.gpr.formats.readers import read_gpr
from edge.gpr.positioning import TrackPositioner
from edge.gpr.processing import ProcessingChain, TraceGeometry, pulse_width
from edge.gpr.traces import GpsFix
from tests.helpers.data import GPRPY

ALL_STEPS = [
    TimeZeroStep(sample=5),
    DewowStep(),
    BandpassStep(),
    BackgroundStep(traces=50),
    SecGainStep(power=1.0, alpha_per_ns=0.01),
    AgcStep(),
]


@pytest.mark.parametrize("chunk", [1, 7, 64, 333])
def test_chunked_stream_equals_whole_file(chunk):
    """FILE____032.DZT fed trace by trace / in odd chunks gives the whole-file result."""
    block = read_gpr(GPRPY / "FILE____032.DZT")
    geometry = TraceGeometry(block.dt_ns, block.n_samples, 0.0, block.antenna_mhz)
    whole = ProcessingChain(ALL_STEPS, geometry).process(block.samples)
    chain = ProcessingChain(ALL_STEPS, geometry)
    parts = [chain.process(block.samples[:, :, i : i + chunk]) for i in range(0, 1040, chunk)]
    streamed = np.concatenate(parts, axis=2)
    # float32 rounding is the only allowed difference
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-5 * np.abs(whole).max())


def test_background_removal_is_causal_mean_of_last_n():
    """A constant layer disappears; a trace differing from its 3 predecessors keeps its excess."""
    x = np.ones((1, 4, 6), np.float32)
    x[0, :, 5] = 5.0
    out = ProcessingChain([BackgroundStep(traces=4)], TraceGeometry(1.0, 4)).process(x)
    assert np.allclose(out[0, :, :5], 0.0)
    assert np.allclose(out[0, :, 5], 5.0 - (1 + 1 + 1 + 5) / 4)


def test_time_zero_dewow_and_bandpass_on_a_known_trace():
    """dt 0.1 ns, 400 MHz Ricker at 10 ns on a 50-unit DC offset plus a slow wow."""
    dt, n = 0.1, 512
    t = np.arange(n) * dt
    f = 0.4
    ricker = (1 - 2 * (np.pi * f * (t - 10)) ** 2) * np.exp(-((np.pi * f * (t - 10)) ** 2))
    trace = 50 + 20 * np.sin(2 * np.pi * t / 200) + 100 * ricker
    geom = TraceGeometry(dt, n, time_zero_sample=20, antenna_mhz=400)
    steps = [TimeZeroStep(), DewowStep(), BandpassStep()]
    out = ProcessingChain(steps, geom).process(trace[None, :, None].astype(np.float32))[0, :, 0]
    # time zero moved by 20 samples (2 ns): the pulse peak is now at 8 ns, and not delayed
    # by the (zero-phase) band-pass
    assert np.argmax(out) * dt == pytest.approx(8.0, abs=0.15)
    # dewow and band-pass removed the offset and the wow away from the pulse
    assert abs(out[200:400].mean()) < 1.0 and np.abs(out[250:400]).max() < 5.0


def test_sec_gain_and_agc():
    geom = TraceGeometry(1.0, 100)
    ones = np.ones((1, 100, 2), np.float32)
    sec = ProcessingChain([SecGainStep(power=1.0, alpha_per_ns=0.0)], geom).process(ones)
    assert sec[0, 50, 0] == pytest.approx(50.0)  # g(t) = t / 1 ns at t = 50 ns
    decaying = (
        np.exp(-np.arange(100) / 20.0)[None, :, None]
        * np.sign(np.sin(np.arange(100) * 1.3))[None, :, None]
    )
    agc = ProcessingChain([AgcStep(window_ns=11)], geom).process(decaying.astype(np.float32))
    early, late = np.abs(agc[0, 10:30, 0]).mean(), np.abs(agc[0, 60:80, 0]).mean()
    assert early == pytest.approx(late, rel=0.2)  # equalised despite e^-3 decay between them


def test_pulse_width_is_the_full_width_at_half_maximum_plus_one_with_trace_ends_counting():
    """A Gaussian envelope of standard deviation 4 samples is 2.355 x 4 = 9.4 samples wide at
    half its peak: the samples at or above half are 9, and the nearest ones below half on
    either side are 10 apart. Cut at the trace's start, the missing side ends at sample -1."""
    env = np.exp(-0.5 * ((np.arange(64) - 30.0) / 4.0) ** 2)
    assert pulse_width(env, 30) == 10
    assert pulse_width(env[27:], 3) == 3 + 1 + 5
    assert pulse_width(np.ones(8), 2) == 9  # never below half: one trace end to the other


def test_config_refuses_unknown_keys_and_steps():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        GprSection.model_validate({"source": "x.DZT", "colour": 1})
    with pytest.raises(ValidationError):
        GprSection.model_validate({"source": "x.DZT", "processing": [{"step": "migrate"}]})
    with pytest.raises(ValidationError):
        GprSection.model_validate(
            {"source": "x", "processing": [{"step": "bandpass", "low_mhz": 900, "high_mhz": 100}]}
        )


@pytest.mark.parametrize("scales", [[], [0.5, 1.0], [1.0, 1.0], [1.0, float("inf")], ["wide"]])
def test_config_refuses_window_scales_below_one_repeated_or_none(scales):
    """Scales are multiples of width_traces, each >= 1, each once; the error names the key."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        GprSection.model_validate({"source": "tcp://127.0.0.1:1", "windows": {"scales": scales}})
    assert err.value.errors()[0]["loc"][:2] == ("windows", "scales")
    default = GprSection.model_validate({"source": "tcp://127.0.0.1:1"}).windows.scales
    assert default == [1.0, 2.0, 4.0]


def test_windows_overlap_cover_every_trace_and_map_boxes():
    """300 traces, width 128, overlap 0.5: starts 0, 64, 128 and a flush window at 172."""
    win = BscanWindower(width=128, overlap=0.5, dt_ns=0.5, height=100, channels=[3])
    data = np.arange(300, dtype=np.float32)[None, None, :].repeat(120, axis=1)
    windows = []
    for i in range(0, 300, 37):
        windows += win.feed(data[:, :, i : i + 37])
    windows += win.flush()
    assert [w.first_trace for w in windows] == [0, 64, 128, 172]
    assert all(w.data.shape == (100, 128) and w.channel == 3 for w in windows)
    assert windows[-1].data[0, -1] == 299  # the last trace is in a window
    box = box_to_profile(windows[1], 10.0, 20.0, 30.0, 40.0)
    assert (box.trace0, box.trace1, box.time0_ns, box.time1_ns) == (74.0, 94.0, 10.0, 20.0)


def test_window_scales_cut_each_width_from_one_buffer():
    """Width 64 at scales 1, 2 and 4 over 300 traces fed in chunks of 37: windows of 64, 128
    and 256 traces, each width every half width plus a flush window on the last trace; one
    buffer holds at most the widest window and a chunk (256 + 37 traces)."""
    win = BscanWindower(
        width=64, overlap=0.5, dt_ns=0.5, height=100, channels=[0], scales=[4, 1, 2]
    )
    data = np.arange(300, dtype=np.float32)[None, None, :].repeat(120, axis=1)
    windows = []
    for i in range(0, 300, 37):
        windows += win.feed(data[:, :, i : i + 37])
        assert win._buffer is not None and win._buffer.shape[2] <= 256 + 37
    windows += win.flush()
    starts: dict[int, list[int]] = {}
    for w in windows:
        starts.setdefault(w.n_traces, []).append(w.first_trace)
        assert w.data[0, 0] == w.first_trace and w.data[0, -1] == w.first_trace + w.n_traces - 1
    assert starts == {
        64: [0, 32, 64, 96, 128, 160, 192, 224, 236],
        128: [0, 64, 128, 172],
        256: [0, 44],
    }
    assert win.max_width == 256


def test_window_scales_of_one_width_or_a_short_line_cut_one_window():
    """Scales rounding to one width cut it once; on a 100-trace line the 128- and 256-trace
    scales both flush the whole line, cut once."""
    assert len(BscanWindower(64, 0.5, 0.5, scales=[1.0, 1.001]).layouts) == 1
    win = BscanWindower(width=64, overlap=0.5, dt_ns=0.5, scales=[1, 2, 4])
    windows = win.feed(np.zeros((1, 10, 100), np.float32)) + win.flush()
    assert [(w.first_trace, w.n_traces) for w in windows] == [(0, 64), (32, 64), (36, 64), (0, 100)]
    with pytest.raises(ValueError):
        BscanWindower(64, 0.5, 0.5, scales=[0.5])


def test_positioning_round_trip_and_gaps():
    """Fixes every 10 traces along a meridian in EPSG:5186 (Korea central belt), one gap."""
    to_xy = Transformer.from_crs("EPSG:4326", "EPSG:5186", always_xy=True)
    lat = np.linspace(37.5, 37.5009, 10)  # ~100 m northwards
    traces = np.array([0, 10, 20, 30, 40, 50, 60, 70, 80, 90], float)
    fixes = [GpsFix(t, la, 127.0) for t, la in zip(traces, lat, strict=True)]
    fixes = [f for f in fixes if f.trace not in (40, 50)]  # gap of 30 traces
    pos = TrackPositioner("EPSG:5186", fixes, max_gap_traces=20)
    p = pos.locate(15.0)
    x, y = to_xy.transform(127.0, (lat[1] + lat[2]) / 2)
    assert p.x == pytest.approx(x, abs=0.01) and p.y == pytest.approx(y, abs=0.01)
    assert p.lon == pytest.approx(127.0, abs=1e-7) and p.lat == pytest.approx(
        (lat[1] + lat[2]) / 2, abs=1e-7
    )
    assert pos.locate(45.0).x is None  # inside the 30-trace gap: no invented position
    assert pos.locate(95.0).x is None  # past the last fix
    # no wheel and no spacing: distance is the GNSS path length (~11.1 m per 10 traces)
    assert pos.locate(20.0).distance_m == pytest.approx(2 * 0.0001 / 360 * 40007863, rel=0.01)
    # fixes without a fix (quality 0) are not used
    assert not TrackPositioner("EPSG:5186", [GpsFix(0, 37.5, 127, quality=0)]).has_gnss


def _cand(channel, dist, depth, conf, traces=(0, 10)):
    return CavityCandidate(
        cls="cavity",
        confidence=conf,
        channel=channel,
        apex_trace=dist / 0.05,
        distance_m=dist,
        depth_top_m=depth,
        width_m=0.4,
        height_m=None,
        velocity_m_per_ns=0.1,
        velocity_source="fit",
        t0_ns=2 * depth / 0.1,
        trace_range=traces,
        time_range_ns=(0.0, 10.0),
    )


def test_dedup_overlapping_windows_and_neighbouring_channels():
    """One void on channels 2-4 seen in two windows, plus a second void 3 m on: 2 cavities."""
    cands = [
        _cand(2, 10.00, 0.60, 0.7, (190, 215)),
        _cand(2, 10.05, 0.62, 0.9, (192, 214)),  # overlapping window, same channel
        _cand(3, 10.10, 0.58, 0.8, (195, 220)),
        _cand(4, 10.05, 0.61, 0.6, (188, 210)),
        _cand(2, 13.00, 0.60, 0.8, (250, 270)),
        _cand(7, 10.00, 0.60, 0.9, (190, 215)),  # far channel: a different void
    ]
    cavities = deduplicate(cands, SameTarget(distance_m=0.5, depth_m=0.3, channels=1))
    assert len(cavities) == 3
    first = cavities[0] if cavities[0].best.channel != 7 else cavities[1]
    assert first.channels == [2, 3, 4] and first.best.confidence == 0.9
    assert first.trace_range == (188, 220) and first.detections == 4
