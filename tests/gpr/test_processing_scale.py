"""The processing chain at scale: running-sum background removal against the implementation
it replaced, whole files in bounded chunks (memory flat in the number of traces), and the
band-pass spread over threads against one scipy call."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from edge.config import load_config
from edge.gpr import stream
from edge.gpr.processing import BackgroundRemoval, Bandpass
from edge.gpr.stream import build_detector
from tests.helpers.gpr_lines import gpr_config, synthetic_line, write_segy


class CumsumBackground:
    """The background removal before issue 17, kept as the reference: per chunk, the cumulative
    sum over the kept ``n - 1`` traces plus the chunk, in float64."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.history: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        c, s, m = x.shape
        past = self.history if self.history is not None else np.zeros((c, s, 0))
        full = np.concatenate([past, x.astype(np.float64)], axis=2)
        k = past.shape[2]
        csum = np.concatenate([np.zeros((c, s, 1)), np.cumsum(full, axis=2)], axis=2)
        ends = np.arange(k + 1, k + m + 1)
        starts = np.maximum(ends - self.n, 0)
        mean = (csum[:, :, ends] - csum[:, :, starts]) / (ends - starts)
        self.history = full[:, :, -(self.n - 1) :] if self.n > 1 else full[:, :, :0]
        return (x - mean).astype(np.float32)


def radargram(rng: np.random.Generator, channels: int, samples: int, traces: int) -> np.ndarray:
    """Raw-like traces: a 16-bit-scale layered background that drifts along the track, plus
    noise (what background removal exists to take out)."""
    layers = 8000 * np.sin(np.linspace(0, 12, samples))[None, :, None]
    drift = np.linspace(0, 3000, traces)[None, None, :]
    noise = rng.normal(0, 300, (channels, samples, traces))
    return (layers + drift + noise).astype(np.float32)


@pytest.mark.parametrize(
    ("n", "chunks"),
    [
        (255, [64] * 20),  # live: 64-trace chunks through a 255-trace window
        (255, [1, 7, 300, 64, 1, 254, 255, 256, 100]),  # odd sizes, chunks longer than n
        (50, [1300]),  # a whole file in one chunk
        (1, [5, 3]),  # n = 1: every trace minus itself
    ],
)
def test_running_sums_equal_the_cumulative_sum_reference(n, chunks):
    # Same chunk boundaries for both; float32 output, so 1e-6 of the amplitude is rounding.
    x = radargram(np.random.default_rng(n), 2, 64, sum(chunks))
    new, ref = BackgroundRemoval(n), CumsumBackground(n)
    edges = np.cumsum([0, *chunks])
    for a, b in itertools.pairwise(edges):
        got, want = new(x[:, :, a:b]), ref(x[:, :, a:b])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(x).max())


def test_a_non_finite_sample_spoils_the_same_outputs_as_before_and_then_clears():
    # A NaN at trace 100 (64-trace chunks, n = 50): the reference's cumulative sums are NaN
    # from it to the end of the chunks whose window still holds it, then finite again; the
    # running sums give the same NaN outputs and the same values.
    x = radargram(np.random.default_rng(1), 1, 16, 400)
    x[0, 3, 100] = np.nan
    new, ref = BackgroundRemoval(50), CumsumBackground(50)
    got = np.concatenate([new(x[:, :, i : i + 64]) for i in range(0, 400, 64)], axis=2)
    want = np.concatenate([ref(x[:, :, i : i + 64]) for i in range(0, 400, 64)], axis=2)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[0, 3, 100:192]).all() and np.isfinite(got[:, :, 192:]).all()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.nanmax(np.abs(x)))


def _peak_bytes(run) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_whole_file_is_processed_in_bounded_chunks(tmp_path, monkeypatch):
    # `gpr detect` on a 4x longer file (the synthetic line tiled 2 and 8 times, 512-trace
    # chunks): the file's samples are held once (float32, 4x), the processing's working
    # arrays are those of one chunk. Peak traced memory (numpy buffers included) grows ~1.6x
    # here; processing the file as one chunk, as before, grew it ~4x (float64 copies of the
    # whole file).
    monkeypatch.setattr(stream, "FILE_CHUNK_TRACES", 512)
    scan, data, _ = synthetic_line()
    dt_ps = round(scan.dt_ns * 1000)
    for name, tiles in (("short.sgy", 2), ("long.sgy", 8)):
        write_segy(tmp_path / name, np.tile(data[scan.t0_index :], tiles), dt_ps, scan.dx_m)
    cfg = load_config(gpr_config(tmp_path, "short.sgy"))
    detector = build_detector(cfg.gpr)
    found: dict[str, list] = {}

    def detect(name: str) -> None:
        found[name] = stream.detect_file(tmp_path / name, cfg, detector)

    peaks = [_peak_bytes(lambda n=name: detect(n)) for name in ("short.sgy", "long.sgy")]
    assert len(found["long.sgy"]) > len(found["short.sgy"]) > 0  # every line's cavities
    assert peaks[1] < 2.5 * peaks[0], peaks


def test_the_threaded_bandpass_gives_the_same_bits_as_one_call():
    # 100 traces over 3 threads (33/33/34) against scipy's sosfiltfilt on the whole chunk:
    # every trace is filtered alone, so not one bit may differ.
    x = radargram(np.random.default_rng(5), 2, 512, 100)
    sos = butter(4, [100.0, 800.0], btype="bandpass", fs=10_000.0, output="sos")
    threaded = Bandpass(sos, 27, threads=3)(x)
    np.testing.assert_array_equal(
        threaded, sosfiltfilt(sos, x, axis=1, padlen=27).astype(np.float32)
    )
    assert threaded.dtype == np.float32
