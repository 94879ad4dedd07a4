"""Building blocks shared by every config section.

Every section is a :class:`Section`: unknown keys are refused (a typo must not
silently fall back to a default) and values are validated once, at start-up.
Paths in the TOML file are relative to the config file; :data:`ExistingFile`
resolves them and refuses a file that does not exist, :data:`ConfigPath` only
resolves (outputs, state directories), :data:`SourceSpec` is a stream address
(:class:`TcpAddress`, the one parser of ``tcp://HOST:PORT``) or a path, and
:data:`ModelSpec` is ``"default"`` or an existing ``.onnx`` path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
)


class Section(BaseModel):
    """A config section: strict keys, no extra fields, no NaN or infinite numbers, frozen once
    validated (a variant is a copy: :func:`edge.config.with_changes`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


#: Longest file name and path the Linux file systems take (bytes).
NAME_MAX, PATH_MAX = 255, 4096


def _resolve(value: Path, info: ValidationInfo) -> Path:
    text = str(value)
    if "\0" in text:
        raise ValueError("a path cannot contain a NUL character")
    if any(len(part.encode()) > NAME_MAX for part in value.parts):
        raise ValueError(f"a path component is longer than {NAME_MAX} bytes")
    base = (info.context or {}).get("base_dir")
    value = value.expanduser()
    if base is not None and not value.is_absolute():
        value = Path(base) / value
    if len(str(value).encode()) > PATH_MAX:
        raise ValueError(f"the path is longer than {PATH_MAX} bytes")
    return value


def _existing(value: Path, info: ValidationInfo) -> Path:
    value = _resolve(value, info)
    try:
        found = value.is_file()
    except OSError as exc:
        raise ValueError(f"cannot look at {value} ({exc.strerror})") from None
    if not found:
        raise ValueError(f"file not found: {value}")
    return value


#: A path relative to the config file; need not exist (outputs, state).
ConfigPath = Annotated[Path, AfterValidator(_resolve)]
#: A path relative to the config file that must name an existing file.
ExistingFile = Annotated[Path, AfterValidator(_existing)]


@dataclass(frozen=True)
class TcpAddress:
    """A stream address given as ``tcp://HOST:PORT``."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"tcp://{self.host}:{self.port}"


def parse_tcp(value: str) -> TcpAddress | None:
    """The address of ``tcp://HOST:PORT``; None for text that is no ``tcp://`` address.

    Raises ValueError for a ``tcp://`` address without a host or with a bad port.
    """
    if not value.startswith("tcp://"):
        return None
    host, _, port = value[len("tcp://") :].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected tcp://HOST:PORT with a port 1..65535, got {value!r}")
    return TcpAddress(host, int(port))


def _source(value: object, info: ValidationInfo) -> TcpAddress | Path:
    if isinstance(value, TcpAddress):
        return value
    if not isinstance(value, str | Path):
        raise ValueError("expected tcp://HOST:PORT or a file path")
    address = parse_tcp(str(value))
    return address if address is not None else _resolve(Path(value), info)


def _model(value: object, info: ValidationInfo) -> Literal["default"] | Path:
    if value == "default":
        return "default"
    if not isinstance(value, str | Path):
        raise ValueError("expected 'default' or the path of an .onnx file")
    path = _existing(Path(value), info)
    if path.suffix != ".onnx":
        raise ValueError(f"expected 'default' or the path of an .onnx file, got {path.name}")
    return path


def _source_text(value: TcpAddress | Path) -> str | Path:
    return str(value) if isinstance(value, TcpAddress) else value


#: ``tcp://HOST:PORT`` (a stream) or a path relative to the config file (a file); dumped as
#: the text it was read from, so a dumped config validates again.
SourceSpec = Annotated[TcpAddress | Path, PlainValidator(_source), PlainSerializer(_source_text)]
#: ``"default"`` (the shipped model) or the path of an existing ``.onnx`` file, relative to
#: the config file; its manifest and precision variants lie beside it.
ModelSpec = Annotated[Literal["default"] | Path, PlainValidator(_model)]
