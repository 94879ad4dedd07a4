"""Building blocks shared by every config section.

Every section is a :class:`Section`: unknown keys are refused (a typo must not
silently fall back to a default) and values are validated once, at start-up.
Paths in the TOML file are relative to the config file; :data:`ExistingFile`
resolves them and refuses a file that does not exist, :data:`ConfigPath` only
resolves (outputs, state directories).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo


class Section(BaseModel):
    """A config section: strict keys, validated assignment, no extra fields."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    value = value.expanduser()
    if base is not None and not value.is_absolute():
        value = Path(base) / value
    return value


def _existing(value: Path, info: ValidationInfo) -> Path:
    value = _resolve(value, info)
    if not value.is_file():
        raise ValueError(f"file not found: {value}")
    return value


#: A path relative to the config file; need not exist (outputs, state).
ConfigPath = Annotated[Path, AfterValidator(_resolve)]
#: A path relative to the config file that must name an existing file.
ExistingFile = Annotated[Path, AfterValidator(_existing)]
