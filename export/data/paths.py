"""Where the training side finds the real data sets: ``$GEOEDGE_DATA``, else ``../shared/data``
beside the repository (the layout of the project's machines). Nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository's root (``export/data/paths.py`` is two folders below it).
REPO = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """The folder holding ``gpr-labelled/``, ``beach-unlabelled/``, ``duck-argus02b/``, ..."""
    env = os.environ.get("GEOEDGE_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"
