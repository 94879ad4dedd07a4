"""Synthetic raw GPR B-scans with ground truth, for training and testing the cavity detector.

Units: along-track position x in m, two-way time t in ns (0 = time zero, the instant the
pulse leaves the antenna), velocity v in m/ns, frequency f in GHz (1/ns), depth in m below
the surface. A B-scan array is ``(samples, traces)``; sample ``i`` is at ``(i - t0_index) * dt``.

Physics used (zero-offset, ray approximation):

* Source pulse: a Ricker wavelet of peak frequency ``f``, central lobe positive. This is also
  the polarity of the direct (air/ground-coupling) wave at time zero.
* Reflection coefficient for a wave in the host (relative permittivity ``eps_h``) hitting a
  target of permittivity ``eps_t``:
  ``r = (sqrt(eps_h) - sqrt(eps_t)) / (sqrt(eps_h) + sqrt(eps_t))``.
  An air-filled void (``eps_t = 1`` < ``eps_h``) gives ``r > 0``: the top of a cavity reflects
  with the SAME polarity as the direct wave. A metal pipe (``r = -1``) and a water-filled pipe
  (``eps_t = 81``) give ``r < 0``: reversed polarity. (An empty plastic pipe is physically an
  air void and looks like a cavity; the generator labels only metal and water pipes ``pipe``.)
* A void of radius ``R`` also returns its bottom: the normal-incidence ray of a circle runs
  through its centre, so the bottom echo is the top hyperbola delayed by ``4 R / c`` (c = 0.2998
  m/ns in air) for every trace, with amplitude ``-(1 - r^2) r`` (reversed polarity), and internal
  multiples every further ``4 R / c`` scaled by ``r^2`` each.
* Hyperbola of a cylinder of radius ``R`` with its top at depth ``d`` under trace position x0:
  ``t(x) = 2/v sqrt((x - x0)^2 + (d + R)^2) - 2 R / v`` (a point reflector is ``R = 0``).
* Amplitudes: geometric spreading ``1/t``, attenuation ``exp(-alpha t)``, an antenna beam
  pattern ``cos(theta)^p`` (theta off vertical), a size factor ``min(1, sqrt(R_eff / lambda))``.
* Ground: direct wave plus ground coupling near time zero, antenna ringing (horizontal bands),
  layered ground (dipping, gently curved reflectors, either polarity), weak point diffractors
  (stones: clutter, not labelled), low-frequency "wow", trace gain jitter and Gaussian noise.

``python -m export.data.detection --out DIR --count N`` writes a detection dataset: ``images/``
(processed, normalised ``.npy`` float32 windows, see :mod:`export.data.detection`), ``labels/``
(YOLO txt: ``class cx cy w h``, normalised to the window) and ``truth/`` (JSON ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

C_AIR = 0.2998  # m/ns
EPS_WATER = 81.0
CLASSES = ("cavity", "pipe")
#: Targets whose apex echo is weaker than this many raw noise std are left out.
MIN_SNR = 2.0


@dataclass
class Reflector:
    """One labelled target. Times in ns from time zero, positions in m along track."""

    cls: str  # "cavity" | "pipe"
    x0_m: float  # apex along-track position
    depth_top_m: float  # depth of the top below the surface
    radius_m: float
    velocity_m_per_ns: float
    reflection: float  # reflection coefficient at the top (sign = polarity)
    internal_velocity_m_per_ns: float  # wave speed inside (air: c; water: c/9; metal: none)

    @property
    def apex_time_ns(self) -> float:
        return 2.0 * self.depth_top_m / self.velocity_m_per_ns

    def travel_time_ns(self, x_m: np.ndarray) -> np.ndarray:
        """Two-way time of the top echo at positions ``x_m`` (m)."""
        v, r, d = self.velocity_m_per_ns, self.radius_m, self.depth_top_m
        return 2.0 / v * np.sqrt((x_m - self.x0_m) ** 2 + (d + r) ** 2) - 2.0 * r / v


@dataclass
class Truth:
    """Ground truth of one labelled target in a B-scan (and in its detector window)."""

    cls: str
    apex_trace: float  # trace index in the raw B-scan
    apex_time_ns: float  # from time zero
    depth_top_m: float
    velocity_m_per_ns: float
    radius_m: float
    box_traces: tuple[float, float]  # first, last trace of the visible hyperbola
    box_time_ns: tuple[float, float]  # earliest, latest time of the visible hyperbola


@dataclass
class BScan:
    """A raw synthetic B-scan: ``data`` is ``(samples, traces)`` float32."""

    data: np.ndarray
    dt_ns: float
    dx_m: float
    t0_index: int  # sample index of time zero
    frequency_ghz: float
    velocity_m_per_ns: float
    truths: list[Truth] = field(default_factory=list)

    @property
    def time_ns(self) -> np.ndarray:
        return (np.arange(self.data.shape[0]) - self.t0_index) * self.dt_ns


def ricker(t_ns: np.ndarray, f_ghz: float) -> np.ndarray:
    """Ricker wavelet of peak frequency ``f_ghz`` centred on t = 0, central lobe +1."""
    a = (np.pi * f_ghz * t_ns) ** 2
    return (1.0 - 2.0 * a) * np.exp(-a)


def reflection_coefficient(eps_host: float, eps_target: float) -> float:
    """Normal-incidence amplitude reflection coefficient host -> target (sign = polarity)."""
    n1, n2 = np.sqrt(eps_host), np.sqrt(eps_target)
    return float((n1 - n2) / (n1 + n2))


def add_event(
    data: np.ndarray,
    times_ns: np.ndarray,
    amps: np.ndarray,
    dt_ns: float,
    t0_index: int,
    f_ghz: float,
) -> None:
    """Add a Ricker wavelet at ``times_ns[j]`` with amplitude ``amps[j]`` to each trace j.

    Only a band of +-1.5 periods around each arrival is evaluated (the wavelet is < 1e-4
    outside it), so the cost is independent of the number of samples.
    """
    nsamp, ntr = data.shape
    half = int(np.ceil(1.5 / f_ghz / dt_ns)) + 1
    centre = times_ns / dt_ns + t0_index
    base = np.round(centre).astype(int)
    offs = np.arange(-half, half + 1)
    rows = base[:, None] + offs[None, :]
    vals = amps[:, None] * ricker((rows - centre[:, None]) * dt_ns, f_ghz)
    cols = np.broadcast_to(np.arange(ntr)[:, None], rows.shape)
    ok = (rows >= 0) & (rows < nsamp)
    np.add.at(data, (rows[ok], cols[ok]), vals[ok])


def _beam_half_angle(p: float, floor: float = 0.3) -> float:
    """Angle (radians) at which the beam pattern cos(theta)^p falls to ``floor``."""
    return float(np.arccos(floor ** (1.0 / p)))


def make_reflector(rng: np.random.Generator, cls: str, v: float, x0: float, d: float) -> Reflector:
    """A cavity (air void) or a pipe (metal or water-filled) in a host of velocity ``v``."""
    eps_h = (C_AIR / v) ** 2
    if cls == "cavity":
        radius = float(rng.uniform(0.05, 0.5))
        return Reflector(cls, x0, d, radius, v, reflection_coefficient(eps_h, 1.0), C_AIR)
    radius = float(rng.uniform(0.0, 0.2))
    if rng.random() < 0.7:
        return Reflector(cls, x0, d, radius, v, -1.0, 0.0)
    r = reflection_coefficient(eps_h, EPS_WATER)
    return Reflector(cls, x0, d, radius, v, r, C_AIR / np.sqrt(EPS_WATER))


def apex_snr(ref: Reflector, f_ghz: float, alpha: float, amplitude: float, noise: float) -> float:
    """Peak amplitude of the top echo at the apex over the raw noise std there."""
    t = ref.apex_time_ns
    size = min(1.0, np.sqrt(max(ref.radius_m, 0.03) / (ref.velocity_m_per_ns / f_ghz)))
    peak = amplitude * size * abs(ref.reflection) * np.exp(-alpha * t) / max(t, 1.0)
    return float(peak / max(noise, 1e-12))


def render_reflector(
    data: np.ndarray,
    ref: Reflector,
    x_m: np.ndarray,
    dt_ns: float,
    t0_index: int,
    f_ghz: float,
    beam_p: float,
    alpha: float,
    amplitude: float,
) -> None:
    """Add the top echo, and for voids / water pipes the bottom echo and internal multiples."""
    t = ref.travel_time_ns(x_m)
    dist = np.sqrt((x_m - ref.x0_m) ** 2 + (ref.depth_top_m + ref.radius_m) ** 2)
    cos_theta = (ref.depth_top_m + ref.radius_m) / np.maximum(dist, 1e-6)
    wavelength = ref.velocity_m_per_ns / f_ghz
    size = min(1.0, np.sqrt(max(ref.radius_m, 0.03) / wavelength))
    amp = amplitude * size * cos_theta**beam_p * np.exp(-alpha * t) / np.maximum(t, 1.0)
    add_event(data, t, ref.reflection * amp, dt_ns, t0_index, f_ghz)
    if ref.internal_velocity_m_per_ns <= 0.0 or ref.radius_m <= 0.0:
        return
    r = ref.reflection
    delay = 4.0 * ref.radius_m / ref.internal_velocity_m_per_ns
    loss = 1.0 if ref.cls == "cavity" else 0.15  # water absorbs the inner path
    for k in range(1, 4):
        coeff = -(1.0 - r * r) * r * (r * r) ** (k - 1) * loss**k
        if abs(coeff) < 0.02 * abs(r):
            break
        add_event(data, t + k * delay, coeff * amp, dt_ns, t0_index, f_ghz)


def synthesize(
    rng: np.random.Generator,
    n_traces: int = 256,
    n_samples: int = 512,
    like: BScan | None = None,
) -> BScan:
    """One random raw B-scan with 0-4 labelled targets (cavities and pipes) and clutter.

    ``like``: keep that scan's acquisition and ground (antenna frequency, sample interval,
    time-zero sample, trace spacing, velocity) so consecutive scans join into one line; the
    random draws are the same either way, so a seed gives the same targets.
    """
    f = float(rng.uniform(0.1, 1.0))  # GHz
    periods = float(rng.uniform(14.0, 40.0))  # periods in the time window
    t0_index = int(rng.integers(4, 24))
    dt = periods / f / (n_samples - t0_index)
    v = float(rng.uniform(0.06, 0.15))
    dx = float(rng.uniform(0.02, 0.1))
    if like is not None:
        f, dt, t0_index = like.frequency_ghz, like.dt_ns, like.t0_index
        v, dx = like.velocity_m_per_ns, like.dx_m
    t_max = (n_samples - 1 - t0_index) * dt
    x = np.arange(n_traces) * dx
    data = np.zeros((n_samples, n_traces), np.float64)
    alpha = float(rng.uniform(0.0, 2.0)) / t_max
    beam_p = float(rng.uniform(1.5, 5.0))

    # Direct wave and ground coupling: strong, flat, slightly jittered.
    jitter = rng.normal(0.0, 0.02 / f, n_traces)
    add_event(data, 0.0 + jitter, np.full(n_traces, 8.0), dt, t0_index, f)
    add_event(
        data, 0.6 / f + jitter, np.full(n_traces, -4.0 * rng.uniform(0.3, 1.0)), dt, t0_index, f
    )
    # Antenna ringing: decaying sinusoid, the same on every trace.
    tt = (np.arange(n_samples) - t0_index) * dt
    ring_f = f * rng.uniform(0.7, 1.3)
    ring = np.where(
        tt > 0,
        np.sin(2 * np.pi * ring_f * tt) * np.exp(-tt * f / rng.uniform(2.0, 8.0)),
        0.0,
    )
    data += rng.uniform(0.2, 1.5) * ring[:, None] * (1.0 + 0.05 * rng.normal(size=n_traces))
    # Layered ground: dipping, gently curved reflectors.
    for _ in range(int(rng.integers(0, 6))):
        ta = rng.uniform(0.1, 0.95) * t_max
        slope = rng.normal(0.0, 0.3) * t_max / (x[-1] + dx)
        curve = rng.normal(0.0, 0.1) * t_max / (x[-1] + dx) ** 2
        xc = x - x.mean()
        tl = ta + slope * xc + curve * xc**2
        amp = rng.choice([-1, 1]) * rng.uniform(0.05, 0.4) * np.exp(-alpha * tl) / np.maximum(tl, 1)
        amp = amp * (1.0 + 0.3 * np.sin(2 * np.pi * x / rng.uniform(1.0, 10.0)))
        add_event(data, tl, amp * t_max / 10.0, dt, t0_index, f)

    # Labelled targets.
    truths: list[Truth] = []
    amplitude = t_max / 10.0 * rng.uniform(1.0, 3.0)
    noise = rng.uniform(0.002, 0.03) * amplitude / max(t_max / 10.0, 1e-6)
    half_angle = _beam_half_angle(beam_p)
    for _ in range(int(rng.choice([0, 1, 1, 2, 2, 3, 4]))):
        cls = CLASSES[int(rng.integers(0, 2))]
        t_apex = rng.uniform(0.08, 0.8) * t_max
        x0 = rng.uniform(0.05, 0.95) * x[-1]
        ref = make_reflector(rng, cls, v, float(x0), float(v * t_apex / 2.0))
        truth = _truth(ref, x, dx, half_angle, f, t_max)
        if any(_overlap(truth, o) > 0.25 for o in truths):
            continue
        if apex_snr(ref, f, alpha, amplitude, noise * (1.0 + t_apex / t_max)) < MIN_SNR:
            continue  # buried in the noise: neither drawn nor labelled
        render_reflector(data, ref, x, dt, t0_index, f, beam_p, alpha, amplitude)
        truths.append(truth)

    # Clutter: weak stones (point diffractors, either polarity).
    for _ in range(int(rng.integers(0, 25))):
        clutter = Reflector(
            "clutter",
            float(rng.uniform(0, x[-1])),
            float(v * rng.uniform(0.05, 0.95) * t_max / 2),
            0.0,
            v,
            float(rng.choice([-1, 1]) * rng.uniform(0.02, 0.12)),
            0.0,
        )
        render_reflector(data, clutter, x, dt, t0_index, f, beam_p, alpha, amplitude)

    # Wow (slow drift), trace gain jitter, noise.
    wow = rng.uniform(0, 3) * np.exp(-np.clip(tt, 0, None) / (rng.uniform(0.2, 0.6) * t_max))
    data += wow[:, None] * (1 + 0.1 * rng.normal(size=n_traces))
    data *= 1.0 + 0.05 * rng.normal(size=n_traces)[None, :]
    data += rng.normal(0.0, noise, data.shape) * (1 + tt[:, None].clip(0) / t_max)
    return BScan(data.astype(np.float32), dt, dx, t0_index, f, v, truths)


def cylinder_scene(
    eps_r: float,
    targets: list[tuple[str, float, float, float]],
    frequency_ghz: float = 0.4,
    dx_m: float = 0.05,
    n_traces: int = 256,
    n_samples: int = 512,
    time_range_ns: float | None = None,
    noise: float = 0.01,
    seed: int = 0,
) -> BScan:
    """A gprMax-style B-scan: cylinders in a homogeneous host of relative permittivity ``eps_r``.

    ``targets`` are ``(cls, x0_m, depth_top_m, radius_m)``: ``"pipe"`` a metal cylinder
    (r = -1), ``"cavity"`` an air-filled one. Velocity ``v = c / sqrt(eps_r)``, c = 0.2998
    m/ns; a direct wave at time zero (sample 10), a weak ground-coupling ring, Gaussian noise
    of std ``noise`` (the direct wave has amplitude 8). The time range defaults to 1.6 times
    the two-way time of the deepest target's bottom, at least 20 periods.
    """
    rng = np.random.default_rng(seed)
    v = C_AIR / np.sqrt(eps_r)
    deepest = max((d + 2 * r for _, _, d, r in targets), default=1.0)
    t_range = time_range_ns or max(1.6 * 2 * deepest / v, 20 / frequency_ghz)
    t0_index = 10
    dt = t_range / (n_samples - t0_index)
    x = np.arange(n_traces) * dx_m
    data = np.zeros((n_samples, n_traces))
    add_event(data, np.zeros(n_traces), np.full(n_traces, 8.0), dt, t0_index, frequency_ghz)
    add_event(
        data, np.full(n_traces, 0.6 / frequency_ghz), np.full(n_traces, -3.0), dt, t0_index,
        frequency_ghz,
    )  # fmt: skip
    truths = []
    beam_p, half_angle = 2.0, _beam_half_angle(2.0)
    for cls, x0, depth, radius in targets:
        if cls == "pipe":
            ref = Reflector(cls, x0, depth, radius, v, -1.0, 0.0)
        else:
            ref = Reflector(cls, x0, depth, radius, v, reflection_coefficient(eps_r, 1.0), C_AIR)
        render_reflector(data, ref, x, dt, t0_index, frequency_ghz, beam_p, 0.0, t_range / 3)
        truths.append(_truth(ref, x, dx_m, half_angle, frequency_ghz, t_range))
    data += rng.normal(0.0, noise, data.shape)
    return BScan(data.astype(np.float32), dt, dx_m, t0_index, frequency_ghz, v, truths)


def _truth(
    ref: Reflector, x: np.ndarray, dx: float, half_angle: float, f: float, t_max: float
) -> Truth:
    """Ground truth and visible box: where the beam pattern is above 0.3 of its peak."""
    half_width = (ref.depth_top_m + ref.radius_m) * np.tan(half_angle)
    half_width = max(half_width, 3 * dx)
    xa, xb = max(0.0, ref.x0_m - half_width), min(x[-1], ref.x0_m + half_width)
    t_edge = float(ref.travel_time_ns(np.array([xa, xb])).max())
    tail = 0.8 / f
    if ref.cls == "cavity":
        tail += 4.0 * ref.radius_m / C_AIR
    return Truth(
        ref.cls,
        ref.x0_m / dx,
        ref.apex_time_ns,
        ref.depth_top_m,
        ref.velocity_m_per_ns,
        ref.radius_m,
        (xa / dx, xb / dx),
        (max(0.0, ref.apex_time_ns - 0.8 / f), min(t_max, t_edge + tail)),
    )


def _overlap(a: Truth, b: Truth) -> float:
    """IoU of two truth boxes in (trace, time) space."""
    w = min(a.box_traces[1], b.box_traces[1]) - max(a.box_traces[0], b.box_traces[0])
    h = min(a.box_time_ns[1], b.box_time_ns[1]) - max(a.box_time_ns[0], b.box_time_ns[0])
    if w <= 0 or h <= 0:
        return 0.0
    area = lambda t: (t.box_traces[1] - t.box_traces[0]) * (t.box_time_ns[1] - t.box_time_ns[0])  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)
