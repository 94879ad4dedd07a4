"""Build the sample data bundled with the package for ``geoedge demo`` (``edge/samples/``).

Nothing here is real field data: the bundled samples are rendered by the project's own
generators so that the demo runs anywhere without a camera, a GPR antenna or a download.

Beach sample (``edge/samples/beach/``): a fictitious station ``demo-01`` on an east-facing
beach in EPSG:5187 (Korea 2000 / East Sea belt 2010), one camera ``c1`` on a 26 m mast.
:class:`export.data.scene.BeachScene` ray-casts the camera over a planar beach (tan(beta) =
0.09, elevation 1.0 m at the shore origin, dune crest at 4.6 m); every video frame adds
swash that runs up and down the slope, shoreward-moving wave crests with foam, sand
texture and a sky gradient. The swash is the one the demo's waves make on that slope
(Stockdon et al. 2006, :data:`DEMO_HS_M`, :data:`DEMO_TP_S`): the swash front oscillates
about the still-water level plus the wave setup with the significant swash height, and
the sand it reaches is wet. The tide table ``tide.csv`` holds the still-water level the
frames were rendered at and ``waves.csv`` the waves, so the station assigns the waterline
the elevation its TimeX shows (tide + setup + half the swash, see :func:`timex_edge_level`)
and the demo can check it against the known geometry (``truth.json``: true chainage of
that edge, of the still-water line and of the 0 m datum contour on each transect).

GPR sample (``edge/samples/gpr/``): a 60 m survey line of a fictitious 400 MHz GSSI unit
(16-bit DZT, 512 samples, 60 ns, 20 scans/m) over ground of velocity 0.10 m/ns, built
from the reflector physics of :mod:`export.data.synth_bscan` (direct wave, ringing, two
layers, stones, noise) with two air-filled cavities and two metal pipes at known
positions and depths (``truth.json``).

``python -m export.data.samples`` rewrites the samples; the output is deterministic (seeded).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.beach.geometry.camera import Camera, Extrinsics, Intrinsics
from edge.beach.shoreline.runup import Runup, stockdon2006
from export.data.scene import SAND, BeachProfile, BeachScene, look_at_camera
from export.data.synth_bscan import (
    C_AIR,
    Reflector,
    add_event,
    reflection_coefficient,
    render_reflector,
)

SAMPLES = Path(__file__).resolve().parents[2] / "edge" / "samples"

#: Shore origin of the demo site, EPSG:5187 (lon 129.1625 E, lat 37.4762 N).
SHORE_ORIGIN = (214373.70, 541875.04)
SEAWARD_AZIMUTH_DEG = 100.0
RECORDED_AT = dt.datetime(2026, 6, 15, 3, 0, 0, tzinfo=dt.timezone.utc)
WATER_LEVEL_M = 0.32
#: Deep-water significant wave height (m) and peak period (s) of the demo's waves.
DEMO_HS_M, DEMO_TP_S = 0.25, 5.0
#: The fraction of the significant swash height above the setup level at which a TimeX shows
#: its wet/dry edge (the station's ``[shoreline] swash_fraction``), see :func:`timex_edge_level`.
TIMEX_SWASH_FRACTION = 0.5
FPS = 2.0
SECONDS = 60
TRANSECT_ALONGSHORE_M = (-30.0, -5.0, 20.0, 45.0, 70.0)


@dataclass(frozen=True)
class BeachSample:
    """The fixed geometry of the demo beach and the swash of its waves."""

    scene: BeachScene
    swash_period_s: float = 11.0

    @property
    def runup(self) -> Runup:
        """Stockdon (2006) setup and significant swash height (m) of the demo's waves."""
        return stockdon2006(DEMO_HS_M, DEMO_TP_S, self.scene.profile.slope)


def timex_edge_level(sample: BeachSample) -> float:
    """Elevation (m) of the wet/dry edge a TimeX of the demo shows: tide + setup + half the
    significant swash height.

    The swash front runs between ``tide + setup -/+ swash / 2`` (the swash level below); in a
    10-minute TimeX the swash zone is a smeared band of water and foam over the sand it wets,
    and it fades into dry sand at its landward limit, the top of the swash. That edge is what
    the published labelling convention calls water (``export/labels/SPEC.md``: swash up to the
    wet/dry edge the TimeX shows) and what the shipped U-Net marks, so it, not the still-water
    line, is the truth of a TimeX waterline; a station says so with ``[shoreline]
    swash_fraction = 0.5`` and its waves (``z = tide + setup + 0.5 swash``).
    """
    r = sample.runup
    return WATER_LEVEL_M + r.setup_m + TIMEX_SWASH_FRACTION * r.swash_m


def demo_beach() -> BeachSample:
    """The demo scene: camera 48 m landward of the shore origin, 26 m up, looking seaward."""
    scene0 = BeachScene(
        look_at_camera((0, 0, 0), (0, 1, 0), nu=640, nv=512),
        BeachProfile(z_origin=1.0, slope=0.09, crest_z=4.6),
        shore_origin=SHORE_ORIGIN,
        seaward_azimuth_deg=SEAWARD_AZIMUTH_DEG,
    )
    cam_xy = scene0.to_world(np.array([-48.0]), np.array([-50.0]))[0]
    target_xy = scene0.to_world(np.array([30.0]), np.array([10.0]))[0]
    ideal = look_at_camera(
        (cam_xy[0], cam_xy[1], 26.0),
        (target_xy[0], target_xy[1], 0.0),
        nu=640,
        nv=512,
        hfov_deg=62.0,
        name="c1",
    )
    ic = ideal.intrinsics
    lens = Intrinsics(
        NU=ic.NU,
        NV=ic.NV,
        c0U=ic.c0U + 3.5,
        c0V=ic.c0V - 2.0,
        fx=ic.fx,
        fy=ic.fy * 1.001,
        d1=-0.06,
        d2=0.015,
        t1=0.0004,
        t2=-0.0002,
    )
    e = ideal.extrinsics
    camera = Camera(lens, Extrinsics(e.x, e.y, e.z, e.a, e.t, 0.004), "c1")
    return BeachSample(
        BeachScene(
            camera,
            scene0.profile,
            shore_origin=SHORE_ORIGIN,
            seaward_azimuth_deg=SEAWARD_AZIMUTH_DEG,
        )
    )


def render_frames(
    sample: BeachSample, seconds: float, fps: float, seed: int = 7
) -> Iterator[np.ndarray]:
    """Yield BGR frames (uint8) of the demo beach at ``WATER_LEVEL_M`` with moving swash.

    The terrain is cast once at a water level far below the beach, so every ground pixel
    knows its terrain elevation; a pixel sees water in a frame when its terrain lies
    below the instantaneous swash level (its ray crossed the water surface first). The
    swash level oscillates about ``WATER_LEVEL_M`` + setup with half the significant swash
    height; the sand below its top is wet (darker) in every frame.
    """
    rng = np.random.default_rng(seed)
    scene = sample.scene
    dry = scene.render(water_level=-50.0)
    ground = dry.labels == SAND
    z: np.ndarray = np.full(dry.labels.shape, np.nan)
    z[ground] = scene.terrain(dry.world_xyz[ground][:, :2])
    s = np.full(dry.labels.shape, np.nan)
    a = np.full(dry.labels.shape, np.nan)
    s[ground], a[ground] = scene.to_shore(dry.world_xyz[ground][:, :2])
    rows = np.linspace(0.0, 1.0, z.shape[0])[:, None, None]
    sky = np.array([235, 206, 170]) * (1 - 0.3 * rows) + np.array([250, 245, 240]) * 0.3 * rows
    grain = rng.normal(0.0, 9.0, z.shape)[..., None]
    dune = ground & (z >= scene.profile.crest_z - 1e-6)
    still = scene.shoreline_chainage(WATER_LEVEL_M)
    runup = sample.runup
    mean_level = WATER_LEVEL_M + runup.setup_m
    top = timex_edge_level(sample)
    for k in range(int(seconds * fps)):
        t = k / fps
        phase = 2 * np.pi * (t / sample.swash_period_s) + np.nan_to_num(a) / 35.0
        level = mean_level + runup.swash_m / 2 * np.sin(phase)
        water = ground & (z < level)
        frame = np.empty((*z.shape, 3), np.float64)
        frame[:] = sky
        frame[ground] = np.array([150.0, 190.0, 215.0])
        frame[ground & (z < top)] = (110.0, 140.0, 165.0)
        frame[dune] = (60.0, 110.0, 80.0)
        frame = frame + np.where(ground[..., None], grain, 0.0)
        off = np.nan_to_num(s - still)
        crest = np.cos(2 * np.pi * (off + 6.0 * t) / 25.0) > 0.6
        surf = water & (off < 70.0) & crest
        edge_foam = water & (z > level - 0.06)
        frame[water] = (120.0, 100.0, 45.0)
        frame[surf | edge_foam] = (235.0, 235.0, 230.0)
        frame += rng.normal(0.0, 1.0, frame.shape)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def write_beach(out: Path) -> None:
    """Write the beach sample: calibration, transects, ROI, tide table, video, truth."""
    out.mkdir(parents=True, exist_ok=True)
    sample = demo_beach()
    cam = sample.scene.camera
    ic, e = cam.intrinsics, cam.extrinsics
    (out / "c1_IO.json").write_text(
        json.dumps(
            {
                k: getattr(ic, k)
                for k in ("NU", "NV", "c0U", "c0V", "fx", "fy", "d1", "d2", "d3", "t1", "t2")
            },
            indent=1,
        )
        + "\n"
    )
    (out / "c1_EO.json").write_text(
        json.dumps({k: round(getattr(e, k), 6) for k in ("x", "y", "z", "a", "t", "r")}, indent=1)
        + "\n"
    )
    features, truth = [], []
    for i, along in enumerate(TRANSECT_ALONGSHORE_M, start=1):
        line = sample.scene.transect(along, -40.0, 110.0)
        tid = f"T{i:02d}"
        features.append(
            {
                "type": "Feature",
                "properties": {"id": tid},
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[round(x, 2), round(y, 2)] for x, y in line.coords],
                },
            }
        )
        truth.append(
            {
                "id": tid,
                "waterline_distance_m": round(
                    sample.scene.true_chainage(line, timex_edge_level(sample)), 3
                ),
                "still_water_distance_m": round(sample.scene.true_chainage(line, WATER_LEVEL_M), 3),
                "datum_distance_m": round(sample.scene.true_chainage(line, 0.0), 3),
            }
        )
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::5187"}}
    (out / "transects.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "crs": crs, "features": features}, indent=1) + "\n"
    )
    ring = sample.scene.to_world(
        np.array([-35.0, 120.0, 120.0, -35.0, -35.0]), np.array([-90.0, -90.0, 90.0, 90.0, -90.0])
    )
    (out / "roi.geojson").write_text(
        json.dumps(
            {"type": "Polygon", "coordinates": [[[round(x, 2), round(y, 2)] for x, y in ring]]},
            indent=1,
        )
        + "\n"
    )
    with (out / "tide.csv").open("w") as f:
        f.write("time,level_m\n")
        for h in (-2, -1, 0, 1, 2):
            when = RECORDED_AT + dt.timedelta(hours=h)
            f.write(f"{when.isoformat().replace('+00:00', 'Z')},{WATER_LEVEL_M:.3f}\n")
    with (out / "waves.csv").open("w") as f:
        f.write("time,hs_m,tp_s\n")
        for h in (-2, -1, 0, 1, 2):
            when = RECORDED_AT + dt.timedelta(hours=h)
            f.write(f"{when.isoformat().replace('+00:00', 'Z')},{DEMO_HS_M:.2f},{DEMO_TP_S:.1f}\n")
    (out / "truth.json").write_text(
        json.dumps(
            {
                "recorded_at": RECORDED_AT.isoformat().replace("+00:00", "Z"),
                "water_level_m": WATER_LEVEL_M,
                "slope": sample.scene.profile.slope,
                "hs_m": DEMO_HS_M,
                "tp_s": DEMO_TP_S,
                "setup_m": round(sample.runup.setup_m, 4),
                "swash_m": round(sample.runup.swash_m, 4),
                "waterline_level_m": round(timex_edge_level(sample), 4),
                "transects": truth,
                "note": (
                    "rendered by export.data.samples; distances from each transect's landward end"
                ),
            },
            indent=1,
        )
        + "\n"
    )
    writer = cv2.VideoWriter(
        str(out / "c1.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (ic.NU, ic.NV)
    )
    for frame in render_frames(sample, SECONDS, FPS):
        writer.write(frame)
    writer.release()


#: Demo GPR line: antenna (GHz), time window (ns), samples, trace spacing (m), traces, v (m/ns).
GPR_F_GHZ, GPR_RANGE_NS, GPR_SAMPLES, GPR_DX_M, GPR_TRACES, GPR_V = 0.4, 60.0, 512, 0.05, 1200, 0.10
GPR_T0_INDEX = 16
#: (class, apex position m, depth of the top m, radius m) of the labelled targets.
GPR_TARGETS = (
    ("cavity", 12.0, 0.60, 0.30),
    ("pipe", 22.5, 0.80, 0.05),
    ("cavity", 33.0, 1.00, 0.40),
    ("pipe", 46.0, 1.30, 0.10),
)


def line_reflectors(targets: Sequence[tuple[str, float, float, float]]) -> list[Reflector]:
    """The reflectors of ``targets`` (as :data:`GPR_TARGETS`) in the demo line's ground: an
    air-filled cavity or a metal pipe (r = -1) at velocity ``GPR_V``."""
    eps_host = (C_AIR / GPR_V) ** 2
    cavity_r = reflection_coefficient(eps_host, 1.0)
    return [
        Reflector(cls, x0, depth, radius, GPR_V, cavity_r, C_AIR)
        if cls == "cavity"
        else Reflector(cls, x0, depth, radius, GPR_V, -1.0, 0.0)
        for cls, x0, depth, radius in targets
    ]


def gpr_line(
    seed: int = 11,
    targets: Sequence[tuple[str, float, float, float]] = GPR_TARGETS,
    layers: Sequence[tuple[float, float]] = ((18.0, 0.25), (41.0, -0.18)),
) -> tuple[np.ndarray, list[Reflector]]:
    """Raw demo B-scan (samples, traces) float64 and its labelled reflectors.

    ``targets`` as :data:`GPR_TARGETS`; ``layers`` ``(two-way time ns, amplitude)`` of the
    gently undulating ground layers. The defaults are the demo line; other targets, layers
    and seeds give the survey lines the detector trains on (:mod:`export.data.synth_lines`).
    """
    rng = np.random.default_rng(seed)
    dt = GPR_RANGE_NS / GPR_SAMPLES
    x = np.arange(GPR_TRACES) * GPR_DX_M
    tt = (np.arange(GPR_SAMPLES) - GPR_T0_INDEX) * dt
    f, v, n = GPR_F_GHZ, GPR_V, GPR_TRACES
    data = np.zeros((GPR_SAMPLES, n))
    add_event(data, rng.normal(0.0, 0.03, n), np.full(n, 8.0), dt, GPR_T0_INDEX, f)
    add_event(data, 0.6 / f + rng.normal(0.0, 0.03, n), np.full(n, -3.0), dt, GPR_T0_INDEX, f)
    ring = np.where(tt > 0, np.sin(2 * np.pi * f * 1.1 * tt) * np.exp(-tt * f / 4.0), 0.0)
    data += 0.8 * ring[:, None]
    for t_layer, amp in layers:
        add_event(data, t_layer + 1.5 * np.sin(x / 9.0), np.full(n, amp), dt, GPR_T0_INDEX, f)
    reflectors = line_reflectors(targets)
    for ref in reflectors:
        render_reflector(data, ref, x, dt, GPR_T0_INDEX, f, 3.0, 0.02, 12.0)
    for _ in range(30):
        stone = Reflector(
            "clutter",
            float(rng.uniform(0, x[-1])),
            float(rng.uniform(0.2, 2.5)),
            0.0,
            v,
            float(rng.choice([-1, 1]) * rng.uniform(0.02, 0.1)),
            0.0,
        )
        render_reflector(data, stone, x, dt, GPR_T0_INDEX, f, 3.0, 0.02, 12.0)
    data += rng.normal(0.0, 0.01, data.shape) * (1 + np.clip(tt, 0, None)[:, None] / 20.0)
    return data, reflectors


def write_dzt(path: Path, data: np.ndarray) -> None:
    """Write one channel of ``data`` (samples, traces) as a 16-bit GSSI DZT.

    Header fields as :mod:`edge.gpr.formats.dzt` reads them; samples 0 and 1 of each scan are
    the scan counter and the mark word, as a SIR unit writes them.
    """
    head = bytearray(1024)
    struct.pack_into("<5H", head, 0, 0x00FF, 1024, GPR_SAMPLES, 16, 0)
    position = -GPR_T0_INDEX * GPR_RANGE_NS / GPR_SAMPLES
    struct.pack_into("<5f", head, 10, 100.0, 1.0 / GPR_DX_M, 0.0, position, GPR_RANGE_NS)
    struct.pack_into("<H", head, 52, 1)
    struct.pack_into("<f", head, 54, (C_AIR / GPR_V) ** 2)
    head[98:112] = b"400MHz demo".ljust(14, b"\x00")
    scale = 30000.0 / np.abs(data).max()
    words = np.clip(np.round(data * scale) + 32768, 0, 65535).astype("<u2")
    words[0, :] = np.arange(words.shape[1]) % 65536
    words[1, :] = 0
    path.write_bytes(bytes(head) + words.T.tobytes())


def write_gpr(out: Path) -> None:
    """Write the GPR sample: the DZT line and its ground truth."""
    out.mkdir(parents=True, exist_ok=True)
    data, targets = gpr_line()
    write_dzt(out / "line01.DZT", data)
    truth = [
        {
            "class": r.cls,
            "distance_m": r.x0_m,
            "trace": round(r.x0_m / GPR_DX_M),
            "depth_top_m": r.depth_top_m,
            "radius_m": r.radius_m,
            "velocity_m_per_ns": r.velocity_m_per_ns,
        }
        for r in targets
    ]
    (out / "truth.json").write_text(
        json.dumps(
            {
                "antenna_mhz": GPR_F_GHZ * 1000,
                "trace_spacing_m": GPR_DX_M,
                "targets": truth,
                "note": "rendered by export.data.samples; distances from the first trace",
            },
            indent=1,
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLES)
    args = parser.parse_args(argv)
    write_beach(args.out / "beach")
    write_gpr(args.out / "gpr")
    print(f"wrote {args.out / 'beach'} and {args.out / 'gpr'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
