"""Local plan-view grid <-> world coordinates.

The grid is defined in a local frame: origin ``(x0, y0)`` in world coordinates
(station CRS, metres), local x axis at ``rotation_deg`` counter-clockwise from
east (the reading that reproduces the CoastCam CACO-01 reference), local y axis
90 degrees further counter-clockwise. Grid nodes lie at ``x[0], x[0] + res, ...,
x[1]`` (both ends included, so 0..500 m at 1 m gives 501 nodes) and likewise in y.

Plan-view images are stored with row 0 = largest local y ("flipped", as the
CoastCam and CIRN rectifiers write them) and column 0 = smallest local x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.config.beach import GridSection


@dataclass(frozen=True)
class Grid:
    """A rectangular local grid; extents and resolution in metres, angle in degrees."""

    origin: tuple[float, float]
    rotation_deg: float
    x: tuple[float, float]
    y: tuple[float, float]
    resolution_m: float

    @classmethod
    def from_section(cls, section: GridSection) -> Grid:
        return cls(
            origin=(float(section.origin[0]), float(section.origin[1])),
            rotation_deg=float(section.rotation_deg),
            x=(float(section.x[0]), float(section.x[1])),
            y=(float(section.y[0]), float(section.y[1])),
            resolution_m=float(section.resolution_m),
        )

    def local_x(self) -> np.ndarray:
        """Local x of the grid nodes (m), increasing; one per image column."""
        n = round((self.x[1] - self.x[0]) / self.resolution_m) + 1
        return self.x[0] + self.resolution_m * np.arange(n)

    def local_y(self) -> np.ndarray:
        """Local y of the grid nodes (m), increasing; image rows run the other way."""
        n = round((self.y[1] - self.y[0]) / self.resolution_m) + 1
        return self.y[0] + self.resolution_m * np.arange(n)

    @property
    def shape(self) -> tuple[int, int]:
        """Plan-view image shape (rows, columns) = (number of y nodes, number of x nodes)."""
        return len(self.local_y()), len(self.local_x())

    def local_to_world(self, xl: np.ndarray, yl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local (m) -> world (station CRS, m)."""
        th = np.deg2rad(self.rotation_deg)
        xl, yl = np.asarray(xl, dtype=float), np.asarray(yl, dtype=float)
        wx = self.origin[0] + xl * np.cos(th) - yl * np.sin(th)
        wy = self.origin[1] + xl * np.sin(th) + yl * np.cos(th)
        return wx, wy

    def world_to_local(self, wx: np.ndarray, wy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World (station CRS, m) -> local (m); inverse of :meth:`local_to_world`."""
        th = np.deg2rad(self.rotation_deg)
        dx = np.asarray(wx, dtype=float) - self.origin[0]
        dy = np.asarray(wy, dtype=float) - self.origin[1]
        return dx * np.cos(th) + dy * np.sin(th), -dx * np.sin(th) + dy * np.cos(th)

    def world_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """World x, y of every node as (rows, columns) arrays, row 0 = largest local y."""
        xl, yl = np.meshgrid(self.local_x(), self.local_y()[::-1])
        return self.local_to_world(xl, yl)

    def pixel_of_local(self, xl: np.ndarray, yl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local (m) -> fractional plan-view (column, row), row 0 = largest y."""
        col = (np.asarray(xl, dtype=float) - self.x[0]) / self.resolution_m
        row = (self.y[1] - np.asarray(yl, dtype=float)) / self.resolution_m
        return col, row
