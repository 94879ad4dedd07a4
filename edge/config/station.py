"""The ``[station]`` section: who this station is and its coordinate system."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pyproj import CRS
from pyproj.exceptions import CRSError

from edge.config.base import Section


class StationSection(Section):
    """Identity of the station.

    ``id`` is used in MQTT topics (``geoedge/<id>/...``) and file names, so it is
    restricted to letters, digits, ``-`` and ``_``. ``crs`` is the CRS of every
    world coordinate the station reads or publishes (a projected CRS in metres).
    """

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    crs: str = "EPSG:4326"
    kind: Literal["beach", "gpr"] = "beach"

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, value: str) -> str:
        try:
            CRS.from_user_input(value)
        except CRSError as exc:
            raise ValueError(f"unknown CRS {value!r} (expected e.g. 'EPSG:5187')") from exc
        return value
