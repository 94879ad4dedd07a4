"""A stand-in for the ``tensorrt`` Python module (absent here: no Jetson, no NVIDIA GPU).

:func:`install` puts a module named ``tensorrt`` into ``sys.modules`` that has the builder
API ``export.convert.tensorrt`` uses, behaves as the named release does where releases
differ, and records every call in :attr:`FakeTensorRT.calls`:

- 8.x: ``NetworkDefinitionCreationFlag`` has ``EXPLICIT_BATCH`` and no ``STRONGLY_TYPED``;
  the ONNX parser refuses a network created without the explicit-batch flag (as TensorRT
  8 does: "network must have explicit batch dimensions").
- 10.x: explicit batch is implied (the flag still exists, deprecated and ignored);
  ``STRONGLY_TYPED`` exists, and building a strongly typed network with the ``FP16`` or
  ``INT8`` builder flag fails (``build_serialized_network`` returns None, as TensorRT 10
  refuses precision flags on strongly typed networks).

It builds nothing: the "engine" is a short byte string naming the flags, and the timing
cache grows by one line per build, so tests can see it read and written back.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest


@dataclass
class FakeTensorRT:
    """The installed module and the calls made on it, in order: ``(name, argument)``."""

    module: ModuleType
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def called(self, name: str) -> list[Any]:
        """The arguments of every call of ``name``."""
        return [arg for n, arg in self.calls if n == name]


def install(monkeypatch: pytest.MonkeyPatch, version: str) -> FakeTensorRT:
    """Make ``import tensorrt`` give a fake of TensorRT ``version`` for this test."""
    major = int(version.split(".")[0])
    module = ModuleType("tensorrt")
    fake = FakeTensorRT(module)
    calls = fake.calls
    explicit_batch, strongly_typed = 0, 1

    class Logger:
        WARNING = 2

        def __init__(self, severity: int) -> None:
            self.severity = severity

    flags = {"EXPLICIT_BATCH": explicit_batch}
    if major >= 10:
        flags["STRONGLY_TYPED"] = strongly_typed
    network_flags = SimpleNamespace(**flags)
    builder_flags = SimpleNamespace(FP16="FP16", INT8="INT8")

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags

        def has_flag(self, bit: int) -> bool:
            return bool(self.flags & (1 << bit))

    class OnnxParser:
        def __init__(self, network: Network, logger: Logger) -> None:
            self.network = network
            self.errors: list[str] = []

        def parse(self, data: bytes) -> bool:
            calls.append(("parse", len(data)))
            if major < 10 and not self.network.has_flag(explicit_batch):
                self.errors.append("network must have explicit batch dimensions")
            return not self.errors

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> str:
            return self.errors[i]

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def serialize(self) -> bytes:
            return self.data

    class BuilderConfig:
        def __init__(self) -> None:
            self.flags: set[str] = set()
            self.timing_cache: TimingCache | None = None

        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            calls.append(("set_memory_pool_limit", (pool, size)))

        def set_flag(self, flag: str) -> None:
            calls.append(("set_flag", flag))
            self.flags.add(flag)

        def create_timing_cache(self, data: bytes) -> TimingCache:
            calls.append(("create_timing_cache", bytes(data)))
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            calls.append(("set_timing_cache", ignore_mismatch))
            self.timing_cache = cache
            return True

        def get_timing_cache(self) -> TimingCache | None:
            return self.timing_cache

        def add_optimization_profile(self, profile: Any) -> int:
            calls.append(("add_optimization_profile", profile.shapes))
            return 0

    class Profile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[Any, Any, Any]] = {}

        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

    class Builder:
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        def create_network(self, flags: int) -> Network:
            calls.append(("create_network", flags))
            return Network(flags)

        def create_builder_config(self) -> BuilderConfig:
            return BuilderConfig()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: BuilderConfig) -> Any:
            typed = major >= 10 and network.has_flag(strongly_typed)
            if typed and config.flags & {"FP16", "INT8"}:
                calls.append(("build_error", "precision flags on a strongly typed network"))
                return None
            if config.timing_cache is not None:
                config.timing_cache.data += b"tactics measured\n"
            engine = f"engine flags={network.flags} precision={sorted(config.flags)}"
            calls.append(("build_serialized_network", engine))
            return engine.encode()

    module.__dict__.update(
        __version__=version,
        Logger=Logger,
        Builder=Builder,
        OnnxParser=OnnxParser,
        NetworkDefinitionCreationFlag=network_flags,
        BuilderFlag=builder_flags,
        MemoryPoolType=SimpleNamespace(WORKSPACE="WORKSPACE"),
    )
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    return fake
