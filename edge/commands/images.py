"""Images named on a command line, read for the sub-commands that take them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import InputError


def read_colour_image(label: str, path: Path) -> np.ndarray:
    """A colour image (BGR uint8) of ``path``, or InputError in one line starting with
    ``label`` (decoded from bytes: no OpenCV warnings before the error)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{label}: cannot read image ({exc.strerror or exc})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{label}: cannot read image (not a decodable image file)")
    return image
