"""The label folder layout that ``geoedge label`` writes and the fine-tuning reads.

One labelled image ``<stem>.<ext>`` gives, in the label folder:

- ``<stem>.png``: the class mask, single-channel uint8 of the image's size (no resampling),
  ``0`` land, ``1`` water, ``2`` sky, ``255`` ignore (the classes of ``export/labels``;
  training uses water vs not-water and leaves ignore out);
- ``<stem>.json``: the :class:`LabelRecord` (schema ``geoedge.label/1``): which image (path
  relative to the label folder where possible, and its sha256), who labelled it, what made the
  starting mask, the tool's version, when it was saved (UTC), the class fractions.

Both are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edge import __version__
from edge.errors import InputError

LABEL_SCHEMA = "geoedge.label/1"
TOOL = f"geoedge label {__version__}"
LAND, WATER, SKY, IGNORE = 0, 1, 2, 255
#: Class name -> mask value.
CLASSES: dict[str, int] = {"land": LAND, "water": WATER, "sky": SKY, "ignore": IGNORE}
#: Image files the tool lists (what browsers and OpenCV both read).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class LabelRecord:
    """Provenance of one saved mask. ``image`` is the image's path relative to the label
    folder (absolute when on another file system root); ``size`` is ``[W, H]`` px;
    ``start`` says what made the starting mask (``unet <model file> sha256 <12 hex>`` or
    ``colour``); ``fractions`` are the class shares of the mask (0..1)."""

    image: str
    image_sha256: str
    size: tuple[int, int]
    labeller: str
    start: str
    tool: str
    saved_utc: str
    fractions: dict[str, float]
    station: str | None = None
    schema: str = LABEL_SCHEMA

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, source: Path) -> LabelRecord:
        """Parse a record file; InputError (one line naming ``source``) when malformed."""
        try:
            data = json.loads(text)
            if data.get("schema") != LABEL_SCHEMA:
                raise ValueError(f"schema {data.get('schema')!r}, expected {LABEL_SCHEMA!r}")
            w, h = data["size"]
            return cls(
                image=str(data["image"]),
                image_sha256=str(data["image_sha256"]),
                size=(int(w), int(h)),
                labeller=str(data["labeller"]),
                start=str(data["start"]),
                tool=str(data["tool"]),
                saved_utc=str(data["saved_utc"]),
                fractions={str(k): float(v) for k, v in data["fractions"].items()},
                station=None if data.get("station") is None else str(data["station"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{source}: not a label record ({exc})") from None


@dataclass(frozen=True)
class Label:
    """A saved label: the image file, the mask file, the record."""

    image: Path
    mask: Path
    record: LabelRecord

    def read_mask(self) -> np.ndarray:
        """The class mask (H x W uint8), checked against the record's size and classes."""
        mask = cv2.imread(str(self.mask), cv2.IMREAD_UNCHANGED)
        if mask is None or mask.ndim != 2 or mask.dtype != np.uint8:
            raise InputError(f"{self.mask}: not a single-channel 8-bit class mask")
        if (mask.shape[1], mask.shape[0]) != self.record.size:
            raise InputError(
                f"{self.mask}: {mask.shape[1]}x{mask.shape[0]}, the record says "
                f"{self.record.size[0]}x{self.record.size[1]}"
            )
        bad = np.setdiff1d(np.unique(mask), list(CLASSES.values()))
        if bad.size:
            raise InputError(f"{self.mask}: values {bad.tolist()} are no class (0, 1, 2, 255)")
        return mask


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fractions(mask: np.ndarray) -> dict[str, float]:
    """Share of each class in ``mask`` (0..1, 4 decimals)."""
    return {name: round(float((mask == v).mean()), 4) for name, v in CLASSES.items()}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_label(
    label_dir: Path,
    image: Path,
    mask: np.ndarray,
    labeller: str,
    start: str,
    station: str | None = None,
    tool: str = TOOL,
) -> Label:
    """Write ``<stem>.png`` and ``<stem>.json`` for ``image`` into ``label_dir``; ``tool``
    names what wrote them (this tool, or a converter of older labels)."""
    h, w = mask.shape
    bad = np.setdiff1d(np.unique(mask), list(CLASSES.values()))
    if bad.size:
        raise InputError(f"mask of {image.name}: values {bad.tolist()} are no class")
    label_dir.mkdir(parents=True, exist_ok=True)
    try:
        rel = os.path.relpath(image.resolve(), label_dir.resolve())
    except ValueError:  # another drive / root
        rel = str(image.resolve())
    record = LabelRecord(
        image=rel,
        image_sha256=file_sha256(image),
        size=(w, h),
        labeller=labeller,
        start=start,
        tool=tool,
        saved_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        fractions=fractions(mask),
        station=station,
    )
    ok, png = cv2.imencode(".png", mask)
    if not ok:
        raise InputError(f"cannot encode the mask of {image.name}")
    mask_path = label_dir / f"{image.stem}.png"
    record_path = label_dir / f"{image.stem}.json"
    _write_atomic(mask_path, png.tobytes())
    _write_atomic(record_path, record.to_json().encode())
    return Label(image, mask_path, record)


def read_label(record_path: Path) -> Label:
    """The label of one record file; the image must exist and match its sha256."""
    record = LabelRecord.from_json(record_path.read_text(), record_path)
    image = (record_path.parent / record.image).resolve()
    mask = record_path.with_suffix(".png")
    if not mask.is_file():
        raise InputError(f"{record_path}: its mask {mask.name} is missing")
    if not image.is_file():
        raise InputError(f"{record_path}: its image {record.image} is missing")
    if file_sha256(image) != record.image_sha256:
        raise InputError(f"{record_path}: {image} changed since it was labelled (sha256)")
    return Label(image, mask, record)


def read_label_dir(label_dir: Path) -> list[Label]:
    """Every label of a folder written by ``geoedge label``, sorted by name; InputError
    when there is none."""
    label_dir = Path(label_dir)
    if not label_dir.is_dir():
        raise InputError(f"{label_dir}: no such label folder")
    labels = [read_label(p) for p in sorted(label_dir.glob("*.json"))]
    if not labels:
        raise InputError(f"{label_dir}: no labels (<stem>.png + <stem>.json from geoedge label)")
    return labels


def saved_mask(label_dir: Path, image: Path) -> np.ndarray | None:
    """The mask already saved for ``image`` in ``label_dir``, or None."""
    record_path = label_dir / f"{image.stem}.json"
    if not record_path.is_file():
        return None
    return read_label(record_path).read_mask()
