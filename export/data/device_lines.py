"""The device pipeline's processed output of a raw GPR file, as the detector's windows see it.

Training sources that must look exactly like deployment (hard negatives from real raw files,
synthetic survey lines) are cut from this, not from the processing chain alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.gpr.detector import WINDOW, Detection
from export.data.real_bscan import CLASSES

if TYPE_CHECKING:
    from edge.gpr.bscan import BscanWindow
    from edge.gpr.dedup import CavityCandidate

CONFIG = Path(__file__).resolve().parents[2] / "firmware_config" / "gpr_unit.toml"


def device_processed(path: str, config: Path = CONFIG) -> np.ndarray:
    """A raw file's processed line ``(samples, traces)`` exactly as the pipeline windows it."""
    from edge.config import load_config
    from edge.gpr import stream as pipeline
    from edge.gpr.formats.readers import read_gpr

    got: list[tuple[int, np.ndarray]] = []

    class _Recorder:
        classes, input_hw, score_threshold = CLASSES, WINDOW, 1.0

        def detect(self, windows: np.ndarray) -> list[list[Detection]]:
            return [[] for _ in windows]

    class _RecordingPipeline(pipeline.CavityPipeline):
        """The device pipeline, keeping every window it hands to the detector."""

        def _detect(self, windows: list[BscanWindow]) -> list[CavityCandidate]:
            got.extend((w.first_trace, w.data) for w in windows)
            return super()._detect(windows)

    # What pipeline.detect_file does, with the recording pipeline.
    block = read_gpr(path)
    pipe = _RecordingPipeline(load_config(config), block, _Recorder())
    pipe.feed(block)
    pipe.flush()
    n = max(a + d.shape[1] for a, d in got)
    full = np.zeros((got[0][1].shape[0], n), np.float32)
    for a, d in got:
        full[:, a : a + d.shape[1]] = d
    return full
