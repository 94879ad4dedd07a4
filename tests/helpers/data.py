"""Where the tests find real data.

Files whose licence allows it (CACO-01: CC0; the GPRPy files: MIT) live in ``tests/data``.
The rest (Duck Argus and the ImpDAR files: GPL-3.0; the labelled pools) is read from
``$GEOEDGE_TEST_DATA``, else ``../shared/data`` beside the repository. A test that needs such a
data set carries the ``real_data(name, licence)`` marker (:func:`needs_shared`): without the
data it is skipped with one line naming the data set and how to provide it (``tests/conftest.py``);
with it (CI) nothing is skipped. ``pytest -m "not real_data"`` leaves them out.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Real files kept in the repository, with their licences.
TESTS_DATA = REPO / "tests" / "data"
COASTCAM = TESTS_DATA / "coastcam-caco01"
GPRPY = TESTS_DATA / "gprpy"
SAMPLES = REPO / "edge" / "samples"
MODELS = REPO / "edge" / "models"


def shared_root() -> Path:
    """``$GEOEDGE_TEST_DATA`` when set, else ``../shared/data`` beside the repository."""
    env = os.environ.get("GEOEDGE_TEST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def shared(name: str) -> Path:
    """The folder of data set ``name`` (it may be absent: see :func:`needs_shared`)."""
    return shared_root() / name


def needs_shared(name: str, licence: str) -> pytest.MarkDecorator:
    """The ``real_data`` marker for a test that reads shared data set ``name``."""
    return pytest.mark.real_data(name, licence)


def missing_shared(name: str, licence: str) -> str | None:
    """Why a test needing ``name`` cannot run here (one line), or None when the data is there."""
    if shared(name).is_dir():
        return None
    return (
        f"needs the {name} data set ({licence}, not in the repository): "
        f"put it in $GEOEDGE_TEST_DATA/{name} or ../shared/data/{name}"
    )


def real_file(key: str) -> Path:
    """A real file by its path under the shared data folder (``coastcam-caco01/x.jpg``): the
    repository's copy in ``tests/data`` when there is one, else the shared data's."""
    local = TESTS_DATA / key
    return local if local.exists() else shared(key)


DUCK = shared("duck-argus02b")
IMPDAR = shared("gpr/impdar")
#: Marker for tests that read the Duck Argus station (GPL-3.0).
needs_duck = needs_shared("duck-argus02b", "Duck Argus, GPL-3.0")
#: Marker for tests that read the ImpDAR GPR files (GPL-3.0).
needs_impdar = needs_shared("gpr/impdar", "ImpDAR test files, GPL-3.0")
