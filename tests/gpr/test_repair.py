"""What a corrupted chunk becomes before processing (edge.gpr.repair), and that a line the
chain cannot process ends that line only, not the unit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edge.config import load_config, with_changes
from edge.gpr.formats.readers import read_gpr
from edge.gpr.repair import RepairStats, repair_block
from edge.gpr.site import GprUnit
from edge.gpr.traces import TraceBlock
from tests.helpers.data import SAMPLES


def _block(n_samples: int = 64, dt_ns: float = 0.1, n: int = 8) -> TraceBlock:
    rng = np.random.default_rng(0)
    times = 1_780_000_000.0 + np.arange(n) / 100
    return TraceBlock(
        rng.normal(size=(1, n_samples, n)).astype(np.float32), dt_ns, trace_times=times
    )


def test_non_finite_samples_are_zeroed_and_counted():
    block = _block()
    block.samples[0, 10, 3] = np.nan
    block.samples[0, 11, 3] = np.inf
    stats = RepairStats()
    fixed = repair_block(block, stats)
    assert fixed is not None and np.isfinite(fixed.samples).all()
    assert fixed.samples[0, 10, 3] == 0.0 and stats.nonfinite_samples == 2
    np.testing.assert_array_equal(fixed.samples[0, :, 0], block.samples[0, :, 0])


def test_impossible_trace_times_are_dropped_not_the_traces():
    block = _block()
    assert block.trace_times is not None
    block.trace_times[5] = 1e15
    stats = RepairStats()
    fixed = repair_block(block, stats)
    assert fixed is not None and fixed.trace_times is None and fixed.n_traces == 8
    assert stats.bad_trace_times == 1


def test_unprocessable_chunks_are_dropped_and_counted():
    # (A sample interval <= 0 or NaN never gets this far: a TraceBlock refuses it.)
    stats = RepairStats()
    assert repair_block(_block(n_samples=4), stats) is None
    assert repair_block(_block(n_samples=31), stats) is None
    assert stats.chunks_dropped == 2
    good = _block()
    assert repair_block(good, stats) is good  # nothing to repair: the same block


def test_a_line_the_chain_cannot_process_ends_that_line_not_the_unit(tmp_path):
    """dt = 10 ns puts the 400 MHz band-pass above Nyquist (50 MHz): the chain refuses it.
    The unit counts a failed line, skips the rest of it, and processes the next line."""
    config = load_config(SAMPLES / "gpr" / "station.toml")
    config = with_changes(config, outbox={"path": tmp_path / "outbox.sqlite"})
    sent: list[dict] = []
    unit = GprUnit(config, lambda kind, message: sent.append(message))
    line = read_gpr(SAMPLES / "gpr" / "line01.DZT")
    unit._process(replace(line, dt_ns=10.0))
    assert unit.repairs.lines_failed == 1 and unit.pipeline is None
    unit._end_line()
    unit._process(line)
    unit._end_line()
    assert unit.repairs.lines_failed == 1 and unit.lines == 1
    assert len(sent) >= 3  # the good line's cavities
