"""``[gpr]``: the GPR unit's trace source, processing, detection and positioning.

Example (units in the key names: ns, MHz, m, km/h)::

    [gpr]
    source = "tcp://127.0.0.1:5600"     # or a file path (read once, or tailed: follow = true)
    channels = [0]                      # channels to process (0-based); empty = all
    antenna_mhz = 400.0                 # when the source does not say
    velocity_m_per_ns = 0.1             # fallback velocity when the hyperbola fit is poor

    [[gpr.processing]]
    step = "time_zero"                  # at = "auto" (data vs header), "header" or ns
    [[gpr.processing]]
    step = "dewow"
    window_ns = 5.0
    [[gpr.processing]]
    step = "background"
    traces = 200

    [gpr.windows]
    width_traces = 128
    overlap = 0.5
    scales = [1.0, 2.0]                 # also windows of 256 traces (multiples of the width)

    [gpr.detector]
    model = "default"
    threshold = 0.5

    [gpr.positioning]
    trace_spacing_m = 0.05
    gnss = "tcp://192.0.2.20:5017"      # or an NMEA file: read once, or tailed for a live source
    max_gap_s = 2.0                     # no position across a longer gap between fixes
    max_wait_s = 2.0                    # a trace newer than the newest fix waits this long
    track_s = 600.0                     # GNSS history held in memory
    trace_time_offset_s = 0.0           # added to trace times (GPR clock minus GNSS UTC)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import ConfigPath, ModelSpec, Section, SourceSpec, TcpAddress


class TimeZeroStep(Section):
    """Shift every trace so time zero is sample 0.

    ``at``: ``"auto"`` (the source header's time zero when the data's direct wave agrees with
    it, else the direct wave's peak; :mod:`edge.gpr.directwave`), ``"header"`` (the source's
    own), or a number: time zero in ns after the first recorded sample. ``sample`` (a fixed
    row) overrides ``at``.
    """

    step: Literal["time_zero"] = "time_zero"
    at: Literal["auto", "header"] | Annotated[float, Field(ge=0)] = "auto"
    sample: float | None = Field(default=None, ge=0)


class DewowStep(Section):
    """Subtract a running mean along time (window in ns; None: 2 periods of the antenna)."""

    step: Literal["dewow"] = "dewow"
    window_ns: float | None = Field(default=None, gt=0)


class BackgroundStep(Section):
    """Subtract the mean of the last ``traces`` traces (causal, so no delay)."""

    step: Literal["background"] = "background"
    traces: int = Field(default=256, ge=2)


class SecGainStep(Section):
    """Spherical and exponential compensation: g(t) = (t / 1 ns)^power * exp(alpha * t)."""

    step: Literal["sec"] = "sec"
    power: float = Field(default=1.0, ge=0)
    alpha_per_ns: float = Field(default=0.0, ge=0)
    max_gain: float = Field(default=1e4, gt=0)


class AgcStep(Section):
    """Automatic gain control: divide by the running RMS over ``window_ns``."""

    step: Literal["agc"] = "agc"
    window_ns: float | None = Field(default=None, gt=0)


class BandpassStep(Section):
    """Zero-phase Butterworth band-pass (MHz; None: 0.25x and 2x the antenna frequency)."""

    step: Literal["bandpass"] = "bandpass"
    low_mhz: float | None = Field(default=None, gt=0)
    high_mhz: float | None = Field(default=None, gt=0)
    order: int = Field(default=4, ge=1, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> BandpassStep:
        if self.low_mhz and self.high_mhz and self.low_mhz >= self.high_mhz:
            raise ValueError(f"low_mhz {self.low_mhz} must be below high_mhz {self.high_mhz}")
        return self


class MigrateStep(Section):
    """Stolt f-k migration (:mod:`edge.gpr.migration`) at ``velocity_m_per_ns`` (None: ``[gpr]
    velocity_m_per_ns``). Not causal: each chunk is migrated on its own, so it suits whole
    files, not streams; the shipped detector and the hyperbola fit expect unmigrated data."""

    step: Literal["migrate"] = "migrate"
    velocity_m_per_ns: float | None = Field(default=None, gt=0.0, le=0.3)


ProcessingStep = Annotated[
    TimeZeroStep | DewowStep | BackgroundStep | SecGainStep | AgcStep | BandpassStep | MigrateStep,
    Field(discriminator="step"),
]


def default_processing() -> list[ProcessingStep]:
    return [TimeZeroStep(), DewowStep(), BandpassStep(), BackgroundStep(), SecGainStep()]


class WindowsSection(Section):
    """B-scan windows handed to the detector.

    ``width_traces`` None: 256 traces (``edge.gpr.stream.DEFAULT_WIDTH_TRACES``; the detector
    was trained on 128-384-trace scans resampled to its input width). ``height_samples`` None
    and ``time_range_ns`` None: the whole trace after time zero. Every window is resampled to
    the detector manifest's input size.
    ``scales``: window widths as multiples of ``width_traces`` (each >= 1, distinct): for each
    scale s the detector also sees windows of ``round(s * width_traces)`` traces (same height,
    same ``overlap``), resampled to its input like the others, so a hyperbola wider than one
    window (close trace spacing, deep or slow ground) is seen whole at a larger scale. The
    boxes of all scales go through the one de-duplication. Detector time grows with the sum
    of 1/s over the scales (a window of 2x the traces covers twice the line in one run).
    Default ``[1, 2, 4]`` (1.75x the windows of ``[1]``): radars, trace spacings and depths
    the project has not seen put hyperbolas of any width into a 256-trace window.
    """

    width_traces: int | None = Field(default=None, ge=8)
    height_samples: int | None = Field(default=None, ge=8)
    overlap: float = Field(default=0.5, ge=0.0, lt=1.0)
    time_range_ns: float | None = Field(default=None, gt=0)
    scales: list[Annotated[float, Field(ge=1.0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [1.0, 2.0, 4.0], min_length=1
    )

    @field_validator("scales")
    @classmethod
    def _distinct(cls, scales: list[float]) -> list[float]:
        if len(set(scales)) != len(scales):
            raise ValueError(f"{scales}: each scale once")
        return scales


class DetectorSection(Section):
    """The cavity detector: ``model`` "default" (shipped) or the path of an .onnx file (relative
    to the config file, checked at load). ``precision`` as ``[segmentation] precision``."""

    model: ModelSpec = "default"
    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"])
    precision: Literal["auto", "fp32", "int8", "fp16"] = "auto"
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)


class PositioningSection(Section):
    """Along-track position and GNSS (units: m, s).

    ``trace_spacing_m``: the odometer wheel setting, used when the source gives no
    distance (and for the hyperbola fit of a stream). ``min_fix_quality``: the lowest
    NMEA GGA fix quality trusted (RMC 'A' counts as 1).

    ``gnss``: where GNSS fixes come from, besides the file's own GPS (DZG, COR):

    * the path of an NMEA log (GGA/RMC, relative to the config): with a one-shot file
      source it is read once and matched by time; with a live source (``tcp://`` or
      ``follow = true``) it is tailed as the receiver appends to it;
    * ``tcp://HOST:PORT``: NMEA sentences streamed by the receiver (live sources only),
      reconnecting with back-off (``reconnect_s`` doubling up to ``max_reconnect_s``).

    Live GNSS is a time-indexed track of the last ``track_s`` seconds; each trace is
    placed by interpolating it at the trace's UTC time plus ``trace_time_offset_s``.
    Across a gap between fixes longer than ``max_gap_s`` the position is null, and
    the message says why. A trace newer than the newest fix waits up to ``max_wait_s``
    for the next one (positions are interpolated, never extrapolated); once a wait has
    timed out, no trace waits again until a fix arrives. For files, fixes keyed by
    trace number are trusted across at most ``max_gap_traces`` traces.
    """

    trace_spacing_m: float | None = Field(default=None, gt=0)
    gnss: SourceSpec | None = None
    min_fix_quality: int = Field(default=1, ge=0)
    max_gap_traces: int = Field(default=2000, ge=1)
    max_gap_s: float = Field(default=2.0, gt=0)
    max_wait_s: float = Field(default=2.0, ge=0)
    track_s: float = Field(default=600.0, gt=0)
    trace_time_offset_s: float = 0.0
    reconnect_s: float = Field(default=1.0, gt=0)
    max_reconnect_s: float = Field(default=30.0, gt=0)

    @property
    def gnss_is_stream(self) -> bool:
        return isinstance(self.gnss, TcpAddress)


class DedupSection(Section):
    """Same target (:mod:`edge.gpr.dedup`) when the boxes overlap by ``min_overlap`` of the
    smaller one and the apexes lie within the target's own fitted extent along track (never
    farther than ``distance_m``), within ``depth_m`` in depth and ``channels`` channels. A
    candidate at most ``echo_m`` under another at the same apex is its echo (a void's bottom,
    a pipe's ringing): one target, with the upper one's fit (0: echoes are targets)."""

    distance_m: float = Field(default=0.5, gt=0)
    depth_m: float = Field(default=0.3, gt=0)
    channels: int = Field(default=1, ge=0)
    min_overlap: float = Field(default=0.3, ge=0.0, le=1.0)
    echo_m: float = Field(default=0.8, ge=0.0)


class FitSection(Section):
    """Gates on a box's hyperbola fit (:func:`edge.gpr.hyperbola.implausible`): a fitted
    velocity outside ``velocity_min_m_per_ns``..``velocity_max_m_per_ns`` (the material's
    range), an apex within ``apex_margin`` (share of the box) of its box's edge, less than
    ``direct_wave_periods`` antenna periods after time zero (the direct wave's own pulse and
    ringing; 0: no such gate, or the antenna frequency unknown) or below the window, and the
    box is counted, not reported."""

    velocity_min_m_per_ns: float = Field(default=0.05, gt=0.0)
    velocity_max_m_per_ns: float = Field(default=0.17, gt=0.0, le=0.3)
    apex_margin: float = Field(default=0.1, ge=0.0, lt=0.5)
    direct_wave_periods: float = Field(default=1.0, ge=0.0, le=10.0)

    @model_validator(mode="after")
    def _ordered(self) -> FitSection:
        if self.velocity_min_m_per_ns >= self.velocity_max_m_per_ns:
            raise ValueError("velocity_min_m_per_ns must be below velocity_max_m_per_ns")
        return self


class LiveSection(Section):
    """Live input: the queue of trace chunks between the reader and processing, bounded by
    ``queue_chunks`` chunks and ``queue_mb`` MiB of samples; frames of a channel at or above
    ``max_channels`` are refused (counted in ``frames_refused``): a peer announcing thousands
    of channels cannot grow the unit's memory."""

    queue_chunks: int = Field(default=256, ge=1)
    queue_mb: float = Field(default=256.0, gt=0)
    chunk_traces: int = Field(default=64, ge=1)
    max_channels: int = Field(default=64, ge=1, le=1024)
    poll_s: float = Field(default=0.2, gt=0)


class GprSection(Section):
    """GPR unit settings (see the module docstring for an example)."""

    source: SourceSpec
    follow: bool = False
    channels: list[int] = Field(default_factory=list)
    antenna_mhz: float | None = Field(default=None, gt=0)
    velocity_m_per_ns: float = Field(default=0.1, gt=0.0, le=0.3)
    processing: list[ProcessingStep] = Field(default_factory=default_processing)
    windows: WindowsSection = Field(default_factory=WindowsSection)
    detector: DetectorSection = Field(default_factory=DetectorSection)
    positioning: PositioningSection = Field(default_factory=PositioningSection)
    dedup: DedupSection = Field(default_factory=DedupSection)
    fit: FitSection = Field(default_factory=FitSection)
    live: LiveSection = Field(default_factory=LiveSection)
    snippets: ConfigPath | None = None

    @model_validator(mode="after")
    def _source_exists(self) -> GprSection:
        """A file read once must be there at start-up (a tailed one may still be coming)."""
        if isinstance(self.source, Path) and not self.follow and not self.source.is_file():
            raise ValueError(f"source: file not found: {self.source} (or set follow = true)")
        return self
