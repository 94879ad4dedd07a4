"""Beach station geometry and segmentation: ``[grid]``, ``[transects]``,
``[segmentation]``, ``[waterline]``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import ExistingFile, ModelSpec, Section


class GridSection(Section):
    """Local plan-view grid.

    ``origin`` is the world (x, y) of the local origin in the station CRS;
    ``rotation_deg`` is the angle of the local x axis counter-clockwise from east.
    ``x`` and ``y`` are the local extents in metres, ``resolution_m`` the cell size.
    """

    origin: tuple[float, float]
    rotation_deg: float = 0.0
    x: tuple[float, float]
    y: tuple[float, float]
    resolution_m: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _extent(self) -> GridSection:
        for key in ("x", "y"):
            lo, hi = getattr(self, key)
            if hi <= lo:
                raise ValueError(f"grid.{key} must be [min, max] with max > min")
        return self


class TransectsSection(Section):
    """Cross-shore transects: GeoJSON LineStrings in the station CRS, first point landward."""

    file: ExistingFile


class SegmentationSection(Section):
    """Sea/land segmentation.

    ``model`` is ``"default"`` (the shipped U-Net) or the path of an ``.onnx`` file (relative
    to the config file, checked at load) with its manifest beside it. ``providers`` are ONNX
    Runtime execution providers in order of preference; missing ones are skipped with a log
    line. ``precision``: ``fp32``/``int8``/``fp16`` pick that model variant; ``auto`` the
    fastest one whose accuracy gate passed on this kind of device. With TensorRT, an FP32
    model is built with FP16 enabled on a fast-FP16 GPU unless ``precision = "fp32"``, and
    an INT8 one only when it is symmetric signed QDQ. ``method``
    ``"unet"`` uses the model and reports the colour method as a cross-check;
    ``"colour"`` uses Colour Channel Divergence (red minus blue, Otsu threshold).
    ``refine`` ``"guided"`` snaps the U-Net's boundary to the image's own edges at full
    resolution (:mod:`edge.beach.waterline.refine`); ``"none"`` keeps the resized map.
    ``flip_average`` runs the U-Net on the image and on its mirror image and averages the
    two (twice the inference time; +0.016 mean IoU over 23 held-out real stations).
    """

    model: ModelSpec = "default"
    method: Literal["unet", "colour"] = "unet"
    providers: list[str] = Field(
        default_factory=lambda: [
            "TensorrtExecutionProvider",
            "CUDAExecutionProvider",
            "CPUExecutionProvider",
        ]
    )
    precision: Literal["auto", "fp32", "int8", "fp16"] = "auto"
    threads: int = Field(default=2, ge=1, le=64)
    water_threshold: float = Field(default=0.5, gt=0, lt=1)
    refine: Literal["guided", "none"] = "guided"
    flip_average: bool = True


class WaterlineSection(Section):
    """Waterline extraction.

    ``roi`` is a GeoJSON Polygon (station CRS) limiting where a waterline is
    looked for; ``min_length_m`` drops boundary pieces shorter than this
    (foam islands, wet-sand patches, people). A transect is valid when its
    crossings lie within ``max_crossing_spread_m`` of each other and the
    segmentation is decisive there (``min_confidence``, 0..1); see
    :mod:`edge.beach.waterline.transects`.
    """

    roi: ExistingFile | None = None
    min_length_m: float = Field(default=20.0, ge=0)
    min_confidence: float = Field(default=0.6, ge=0, le=1)
    max_crossing_spread_m: float = Field(default=5.0, gt=0)
    #: Ground farther than this from the camera (m, horizontal) is not used.
    max_range_m: float = Field(default=1500.0, gt=0)
