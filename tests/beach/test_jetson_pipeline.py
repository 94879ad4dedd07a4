"""The Jetson hardware-decode camera pipeline documented in ``beach_station.toml``.

Situation: an operator copies the commented GStreamer ``source`` of the shipped beach config
onto a Jetson. It must be a pipeline GeoEdge hands to OpenCV's GStreamer backend (NVDEC
decoder, NVMM -> system-memory conversion, an appsink that keeps only the newest frame);
on an OpenCV without GStreamer (PyPI's, as here) the capture refuses it in one line that
names the fix.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import pytest

from edge.beach.capture import Capture
from edge.beach.site import BeachStation
from edge.config import load_config, with_changes
from edge.config.cameras import source_kind
from edge.errors import ConfigError, InputError

CONFIG = Path(__file__).resolve().parents[2] / "firmware_config" / "beach_station.toml"


def documented_pipeline() -> str:
    found = re.search(r'^# source = "(.*! appsink.*)"$', CONFIG.read_text(), re.M)
    assert found, "beach_station.toml documents no GStreamer source"
    return found.group(1)


def test_the_documented_pipeline_decodes_on_nvdec_and_keeps_the_newest_frame():
    pipeline = documented_pipeline()
    assert source_kind(pipeline) == "gstreamer"
    elements = [e.split()[0] for e in pipeline.split(" ! ")]
    assert elements[0] == "rtspsrc" and elements[-1] == "appsink"
    assert elements.index("nvv4l2decoder") < elements.index("nvvidconv")
    assert "appsink drop=true max-buffers=1" in pipeline
    assert pipeline.split(" ! ")[-2] == "video/x-raw,format=BGR"  # what OpenCV reads


def test_without_gstreamer_the_station_refuses_it_at_start_naming_the_fix():
    if cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(InputError, match="has no GStreamer backend") as refused:
        Capture(documented_pipeline(), name="c1")
    assert "\n" not in str(refused.value) and "JetPack" in str(refused.value)
    # The station does not wait for its first window to find out: it stops at start.
    config = load_config(CONFIG)
    camera = {**config.cameras[0].model_dump(), "source": documented_pipeline()}
    with pytest.raises(ConfigError, match=r"cameras\.c1\.source: a GStreamer pipeline") as stopped:
        BeachStation(with_changes(config, cameras=[camera]), lambda kind, message: None)
    assert "\n" not in str(stopped.value) and "install.sh" in str(stopped.value)
