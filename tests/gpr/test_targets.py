"""Targets, not boxes: de-duplication by the target's own extent, fit gates, widths and radii
from the hyperbola fit, and 2.7 GHz data processed at its own frequency (issue 13).

Lines are synthetic (export.data.synth_bscan.cylinder_scene: gprMax-style cylinders with
known depth, radius and velocity). Where the shipped detector is the limit (it does not box
rebar 15 cm apart: a training matter), boxes around the known apexes stand in for its output
and go through the pipeline's own localisation (fit, gates, width) and de-duplication.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace

import numpy as np
import pytest

from edge.config import StationConfig
from edge.gpr.bscan import BscanWindow
from edge.gpr.dedup import CavityCandidate, SameTarget, box_overlap, deduplicate, merge
from edge.gpr.detector import Detection
from edge.gpr.formats.readers import read_gpr
from edge.gpr.hyperbola import FitGates, HyperbolaFit, fit_box, implausible
from edge.gpr.stream import CavityPipeline, build_detector
from edge.gpr.traces import TraceBlock
from export.data.synth_bscan import C_AIR, BScan, cylinder_scene
from tests.helpers.data import GPRPY
from tests.helpers.gpr_lines import synthetic_line


def _config(spacing_m: float, antenna_mhz: float = 400.0, extra: dict | None = None):
    gpr = {
        "source": "tcp://127.0.0.1:1",
        "antenna_mhz": antenna_mhz,
        "positioning": {"trace_spacing_m": spacing_m},
        **(extra or {}),
    }
    return StationConfig.model_validate(
        {"station": {"id": "tg", "kind": "gpr", "crs": "EPSG:5186"}, "gpr": gpr}
    )


def _block(scan: BScan) -> TraceBlock:
    return TraceBlock(
        samples=scan.data[np.newaxis],
        dt_ns=scan.dt_ns,
        time_zero_sample=float(scan.t0_index),
        source="scan.dzt",
        format="dzt",
    )


def _rebar(spacing_m: float, n: int = 10) -> BScan:
    """StructureScan-like: 2.7 GHz over concrete (eps 6, v 0.122 m/ns), 5 mm traces, ``n``
    rebar of 12 mm diameter at 7 cm cover, ``spacing_m`` apart."""
    targets = [("pipe", 0.4 + spacing_m * i, 0.07, 0.006) for i in range(n)]
    length = 0.8 + spacing_m * (n - 1)
    return cylinder_scene(
        6.0, targets, frequency_ghz=2.7, dx_m=0.005, n_traces=round(length / 0.005),
        time_range_ns=6.0, seed=4,
    )  # fmt: skip


def test_rebar_15_cm_apart_stay_separate_and_each_is_merged_across_windows():
    """Ten rebar 15 cm apart, each boxed (+-7 cm) in the 128-trace windows of the pipeline's
    layout that hold it whole (neighbouring boxes overlap in time and partly along track):
    ten targets come out, one per rebar (apex within a third of the spacing: each fit stays on
    its own rebar), the five seen in two windows merged, with widths of a few cm (the fixed
    0.5 m rule made one target of them all). Depths are within 30 % (measured 0.050-0.083 m
    for 0.07 m: the flanks of the neighbours cross every box)."""
    scan = _rebar(0.15)
    pipe = CavityPipeline(_config(scan.dx_m), _block(scan), build_detector(_config(0.05).gpr))
    processed = pipe.chain.process(scan.data[np.newaxis])[0]
    candidates = []
    for first in range(0, processed.shape[1] - 128 + 1, 64):
        window = BscanWindow(0, first, processed[:, first : first + 128], scan.dt_ns)
        for truth in scan.truths:
            col = truth.apex_trace - first
            if not 14 <= col <= 128 - 14:
                continue
            row = truth.apex_time_ns / scan.dt_ns
            det = Detection("pipe", 0.9, col - 14, max(row - 15, 0), col + 14, row + 80)
            cand = pipe._localise(window, det)
            if cand is not None:
                candidates.append(cand)
    assert len(candidates) >= 14
    neighbours = sorted(candidates, key=lambda c: c.apex_trace)
    assert max(box_overlap(a, b) for a, b in itertools.pairwise(neighbours)) > 0
    cavities = deduplicate(candidates, pipe.dedup.same)
    assert len(cavities) == len(scan.truths) == 10
    # the apex-within-extent criterion alone keeps them apart; the old fixed 0.5 m merged them
    assert len(deduplicate(candidates, replace(pipe.dedup.same, min_overlap=0.0))) == 10
    old_rule = SameTarget(0.5, 0.3, 1, min_overlap=0.0, tolerance_m=0.5)
    assert len(deduplicate(candidates, old_rule)) == 1
    for cavity, truth in zip(cavities, scan.truths, strict=True):
        assert abs(cavity.best.apex_trace - truth.apex_trace) <= 10
        assert cavity.best.depth_top_m == pytest.approx(truth.depth_top_m, rel=0.3)
        assert cavity.width_m < 0.15
    assert sum(c.detections == 2 for c in cavities) == len(candidates) - 10


@pytest.mark.parametrize("scales", [[1.0], [1.0, 2.0, 4.0]])
def test_widths_and_radii_come_from_the_fit_not_the_box(scales: list[float]):
    """The four-target 400 MHz line (cavities of 0.6 and 0.8 m diameter, pipes of 0.1 and
    0.2 m) through the shipped detector, with one window width and with three: width_m is
    twice the fitted radius (within 25 %; measured 0.58, 0.82, 0.19 m) with its standard
    error, where the box was 2.3-4.4 m wide; a radius the fit cannot resolve (the 0.1 m pipe:
    a point hyperbola explains its picks as well) is reported as the first Fresnel zone's
    diameter, an upper bound (0.65 m), never smaller than the target. With three widths each
    target is sized by a resolved fit from its narrowest window (see edge.gpr.dedup)."""
    scan, _, truths = synthetic_line()
    cfg = _config(scan.dx_m, extra={"windows": {"scales": scales}})
    block = _block(scan)
    pipe = CavityPipeline(cfg, block, build_detector(cfg.gpr))
    msgs = pipe.feed(block) + pipe.flush()
    matched = sized = 0
    for truth, _ in truths:
        near = [m for m in msgs if abs(m["trace"] - truth.apex_trace) < 10]
        if not near:
            continue
        matched += 1
        m = near[0]
        box_width = (m["trace_range"][1] - m["trace_range"][0]) * scan.dx_m
        if m["width_source"] == "fresnel":
            assert m["radius_m"] is None and m["width_m"] >= 2 * truth.radius_m
            continue
        sized += 1
        assert m["width_source"] == "radius" and m["radius_sd_m"] is not None
        assert m["width_m"] == pytest.approx(2 * truth.radius_m, rel=0.25)
        assert box_width > 3 * m["width_m"]
    assert matched == len(truths) and sized >= 3


def _fit_in(scan: BScan, box: tuple[float, float, float, float]) -> HyperbolaFit:
    return fit_box(scan.data[scan.t0_index :], box, scan.dt_ns, scan.dx_m, 0.1)


def test_fit_gates_refuse_implausible_targets():
    """A pipe in ground of v = 0.1 m/ns passes; the same box on half the hyperbola (apex at
    its edge) is refused; a hyperbola of 0.235 m/ns (nearly air) is refused with the default
    0.05-0.17 m/ns and passes when the material range allows it; an apex below the window is
    refused."""
    gates = FitGates()
    for eps_r, passes, reason in [(9.0, True, ""), ((C_AIR / 0.235) ** 2, False, "velocity")]:
        scan = cylinder_scene(eps_r, [("pipe", 5.0, 0.5, 0.02)], n_traces=200, seed=1)
        apex_row = scan.truths[0].apex_time_ns / scan.dt_ns
        whole = (60.0, apex_row - 20, 140.0, apex_row + 150)
        fit = _fit_in(scan, whole)
        n_rows = scan.data.shape[0] - scan.t0_index
        why = implausible(fit, whole, n_rows, scan.dt_ns, gates)
        assert (why is None) == passes, why
        assert why is None or (why.kind == reason and "m/ns outside 0.05-0.17" in why.message)
        if not passes:
            assert implausible(fit, whole, n_rows, scan.dt_ns, FitGates((0.05, 0.3))) is None
        else:
            half = (60.0, apex_row - 20, 101.0, apex_row + 150)
            edge = implausible(_fit_in(scan, half), half, n_rows, scan.dt_ns, gates)
            assert edge is not None and edge.kind == "apex_edge"
            assert "at the edge of its box 60-101" in edge.message
    deep = HyperbolaFit(50.0, 500.0, 0.1, "configured", None, 0.0, 8)
    why = implausible(deep, (0, 0, 100, 400), 400, 0.1, gates)
    assert why is not None and why.kind == "below_window"
    assert "beyond the 40.0 ns window" in why.message


def test_2_7_ghz_data_under_a_400_mhz_config_is_processed_at_its_own_frequency(caplog):
    """Eight rebar 30 cm apart at 2.7 GHz, config antenna_mhz 400 (the old silent default): one
    warning names the estimate (within 25 % of 2.7 GHz), and the shipped detector finds rebar at
    their depth (measured 8 of 8); processed with the 400 MHz band-pass it found none."""
    scan = _rebar(0.30, n=8)
    block = _block(scan)
    found = {}
    for name, extra in [
        ("estimated", None),
        ("400 MHz band", {"processing": [
            {"step": "time_zero"}, {"step": "dewow", "window_ns": 5.0},
            {"step": "bandpass", "low_mhz": 100.0, "high_mhz": 800.0},
            {"step": "background"}, {"step": "sec"},
        ]}),
    ]:  # fmt: skip
        caplog.clear()
        cfg = _config(scan.dx_m, 400.0, extra)
        with caplog.at_level(logging.WARNING):
            pipe = CavityPipeline(cfg, block, build_detector(cfg.gpr))
            msgs = pipe.feed(block) + pipe.flush()
        warnings = [r.getMessage() for r in caplog.records if "spectrum" in r.getMessage()]
        assert len(warnings) == 1 and "400 MHz" in warnings[0]
        assert pipe.calibration.antenna_mhz == pytest.approx(2700.0, rel=0.25)
        found[name] = [
            m
            for m in msgs
            if any(
                abs(m["trace"] - t.apex_trace) < 8
                and m["depth_top_m"] == pytest.approx(t.depth_top_m, rel=0.15)
                for t in scan.truths
            )
        ]
    assert len(found["estimated"]) >= 4 and len(found["400 MHz band"]) == 0


def test_a_hyperbola_seen_at_two_scales_is_one_cavity():
    """A pipe 0.6 m deep under a 400 MHz antenna at 2 cm trace spacing (v 0.1 m/ns): its
    hyperbola spans about 170 traces. With 128-trace windows at scales 1 and 2, the shipped
    detector boxes it both in a 128-trace window (the apex and the inner flanks) and in a
    256-trace window (the whole hyperbola; measured boxes 192-319 and 175-343, both fits at
    trace 256, 0.60 m). Fed as a live stream in 64-trace chunks, the two detections come out
    as one cavity at the pipe (apex within 3 traces, depth within 10 %)."""
    scan = cylinder_scene(
        9.0, [("pipe", 5.12, 0.6, 0.05)], frequency_ghz=0.4, dx_m=0.02, n_traces=512, seed=3
    )
    truth = scan.truths[0]
    cfg = _config(scan.dx_m, extra={"windows": {"width_traces": 128, "scales": [1.0, 2.0]}})
    block = _block(scan)
    detector = build_detector(cfg.gpr)
    pipe = CavityPipeline(cfg, block, detector)
    windows = pipe.windower.feed(pipe.chain.process(block.samples)) + pipe.windower.flush()
    near = [c for c in pipe._detect(windows) if abs(c.apex_trace - truth.apex_trace) <= 3]
    assert {c.snippet.shape[1] for c in near if c.snippet is not None} == {128, 256}

    stream = CavityPipeline(cfg, block, detector)
    msgs = []
    for start in range(0, block.n_traces, 64):
        msgs += stream.feed(block.slice(start, start + 64))
    msgs += stream.flush()
    assert len(msgs) == 1
    assert msgs[0]["detections"] == len(near) >= 2
    assert abs(msgs[0]["trace"] - truth.apex_trace) <= 3
    assert msgs[0]["depth_top_m"] == pytest.approx(truth.depth_top_m, rel=0.1)


def _candidate(
    confidence: float, window_traces: int, radius_m: float | None, fresnel_m: float = 0.32
) -> CavityCandidate:
    return CavityCandidate(
        cls="pipe",
        confidence=confidence,
        channel=0,
        apex_trace=450.0 + window_traces / 256,
        distance_m=22.5,
        depth_top_m=0.8 + window_traces / 10_000,
        width_m=2 * (fresnel_m if radius_m is None else radius_m),
        height_m=None if radius_m is None else 2 * radius_m,
        velocity_m_per_ns=0.1,
        velocity_source="fit",
        t0_ns=16.0,
        trace_range=(420, 480),
        time_range_ns=(14.0, 30.0),
        radius_m=radius_m,
        width_source="fresnel" if radius_m is None else "radius",
        fresnel_m=fresnel_m,
        window_traces=window_traces,
    )


def test_a_merged_target_is_sized_by_its_narrowest_window_preferring_a_resolved_fit():
    """One pipe seen in windows of 256, 512 and 1024 traces. Its fit comes from the
    narrowest window, from a member there that resolved a radius, the most confident of
    those; the cavity reports the group's highest confidence."""
    fine = _candidate(0.6, 256, 0.05)
    group = [_candidate(0.9, 512, 0.09), fine, _candidate(0.8, 1024, 0.12)]
    cavity = merge(group)
    assert cavity.detections == 3
    assert cavity.best.confidence == 0.9
    assert cavity.width_m == cavity.best.width_m == pytest.approx(0.1)
    assert (cavity.best.apex_trace, cavity.best.depth_top_m) == (
        fine.apex_trace,
        fine.depth_top_m,
    )
    # in the narrowest window a resolved radius wins over a more confident Fresnel bound...
    narrow = [_candidate(0.7, 256, None), _candidate(0.6, 256, 0.05), _candidate(0.9, 512, 0.1)]
    assert merge(narrow).best.radius_m == 0.05
    assert merge(narrow).best.width_source == "radius"
    # ...but a wider window's resolved radius does not (its box, so its fit, is coarser)
    assert merge([_candidate(0.9, 512, 0.1), _candidate(0.5, 256, None)]).width_m == 0.64
    # among windows of one width the most confident member is the fit, as before
    same_width = [_candidate(0.6, 256, 0.05), _candidate(0.7, 256, 0.06)]
    assert merge(same_width).best.radius_m == 0.06


def test_a_voids_bottom_echo_is_one_target_with_the_top_fit():
    """An air-filled void's bottom echo (or a pipe's ringing) is a second hyperbola under the
    target at the same apex: measured on a held-out synthetic line, a 0.38 m deep cavity
    boxed at 0.376 m and again at 0.744 m. Within ``echo_m`` below, at the same apex, the two
    are one target whose fit is the upper one's, whichever is more confident or from the
    narrower window; with ``echo_m = 0`` (or farther along track than the target's extent)
    they stay two."""
    top = replace(_candidate(0.79, 512, None), depth_top_m=0.376, time_range_ns=(7.0, 20.0))
    echo = replace(
        _candidate(0.85, 256, None),
        depth_top_m=0.744,
        distance_m=top.distance_m + 0.02,
        time_range_ns=(12.0, 26.0),
    )
    same = SameTarget(0.5, 0.3, 1, tolerance_m=0.1, echo_m=0.8)
    (cavity,) = deduplicate([echo, top], same)
    assert cavity.detections == 2 and cavity.best.confidence == 0.85
    assert cavity.best.depth_top_m == 0.376 and cavity.best.window_traces == 512
    assert len(deduplicate([echo, top], replace(same, echo_m=0.0))) == 2
    aside = replace(echo, distance_m=top.distance_m + 0.4)  # beyond its Fresnel radius
    assert len(deduplicate([aside, top], same)) == 2
    # members within depth_m of each other are one layer: the usual rule picks the fit
    close = replace(echo, depth_top_m=0.6)
    assert deduplicate([close, top], same)[0].best.depth_top_m == 0.6


def test_an_apex_in_the_direct_wave_is_refused():
    """An apex less than ``direct_wave_periods`` antenna periods after time zero lies in the
    direct wave's own pulse and ringing: refused as ``direct_wave``. The pipeline sets the
    gate from the line's antenna frequency (400 MHz: 2.5 ns; 0 periods: no gate). On the
    real pulseEKKO line (50 MHz, period 20 ns) with windows cut to 300 ns, the detector at a
    0.2 threshold boxes arcs of the direct wave's ringing at 8-19 ns: every one is refused,
    none is reported."""
    gates = FitGates(min_apex_ns=2.5)
    early = HyperbolaFit(50.0, 2.0, 0.1, "fit", None, 0.0, 20)
    why = implausible(early, (0, 0, 100, 200), 400, 0.1, gates)
    assert why is not None and why.kind == "direct_wave"
    assert why.message == "apex at 2.00 ns, in the direct wave (before 2.50 ns)"
    assert implausible(replace(early, t0_ns=3.0), (0, 0, 100, 200), 400, 0.1, gates) is None

    scan = cylinder_scene(9.0, [("pipe", 5.0, 0.5, 0.02)], n_traces=200, seed=1)
    assert CavityPipeline(_config(0.05), _block(scan), None).gates.min_apex_ns == 2.5
    off = _config(0.05, extra={"fit": {"direct_wave_periods": 0.0}})
    assert CavityPipeline(off, _block(scan), None).gates.min_apex_ns == 0.0

    extra = {"windows": {"time_range_ns": 300.0}, "detector": {"threshold": 0.2}}
    block = read_gpr(GPRPY / "XLINE00.DT1")
    results = {}
    for periods in (1.0, 0.0):
        cfg = _config(0.6096, 50.0, {**extra, "fit": {"direct_wave_periods": periods}})
        pipe = CavityPipeline(cfg, block, build_detector(cfg.gpr))
        results[periods] = (pipe.feed(block) + pipe.flush(), pipe.stats()["fits_refused"])
    gated, refused = results[1.0]
    assert refused.get("direct_wave", 0) >= 3
    assert all(m["two_way_time_ns"] >= 20.0 for m in gated)
    assert sum(m["two_way_time_ns"] < 20.0 for m in results[0.0][0]) >= 3


def test_a_poor_fit_takes_the_lines_velocity_not_the_configured_one():
    """Dry sand (relative permittivity 4, v = 0.15 m/ns) under a config that says 0.1 m/ns.
    Four pipes are fitted (velocity_source ``fit``, within 10 % of 0.15); a fifth box too
    narrow to fit (4 traces) falls back to the median of those fits, ``line``, and its depth is
    within 10 % of the truth, where the configured velocity puts it a third too shallow. The
    line's first poor box, before any fit, takes the configured velocity."""
    targets = [("pipe", x, 0.6, 0.03) for x in (2.0, 4.0, 6.0, 8.0, 10.0)]
    scan = cylinder_scene(4.0, targets, frequency_ghz=0.4, n_traces=240, seed=5)
    pipe = CavityPipeline(_config(scan.dx_m), _block(scan), None)
    processed = pipe.chain.process(scan.data[np.newaxis])[0]
    window = BscanWindow(0, 0, processed, scan.dt_ns)

    def box(truth, half: float) -> Detection:
        row = truth.apex_time_ns / scan.dt_ns
        col = truth.apex_trace
        return Detection("pipe", 0.9, col - half, max(row - 15, 0), col + half, row + 80)

    *fitted, last = scan.truths
    early = pipe._localise(window, box(last, 2))
    assert early is not None and early.velocity_source == "configured"
    assert early.velocity_m_per_ns == 0.1
    for truth in fitted:
        cand = pipe._localise(window, box(truth, 20))
        assert cand is not None and cand.velocity_source == "fit"
        assert cand.velocity_m_per_ns == pytest.approx(0.15, rel=0.1)
    line_v = pipe.stats()["line_velocity_m_per_ns"]
    assert line_v == pytest.approx(0.15, rel=0.1)
    poor = pipe._localise(window, box(last, 2))
    assert poor is not None and poor.velocity_source == "line"
    assert poor.velocity_m_per_ns == line_v
    assert poor.depth_top_m == pytest.approx(last.depth_top_m, rel=0.1)
    assert early.depth_top_m < 0.75 * last.depth_top_m
