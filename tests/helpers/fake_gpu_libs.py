"""Stand-ins for the CUDA driver (``libcuda.so.1``) and TensorRT (``libnvinfer.so.N``)
shared libraries, compiled here with the C compiler: no NVIDIA GPU or TensorRT exists on
this machine, and :mod:`edge.models.engine_cache` asks those libraries through ctypes.

The fake driver reports one GPU of the given name and compute capability through the same
driver-API calls and argument order as the real one (``cuInit``, ``cuDeviceGet``,
``cuDeviceGetName``, ``cuDeviceGetAttribute`` with attributes 75/76); the fake TensorRT
library exports ``getInferLibVersion`` returning the release's number.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CUDA = """
#include <string.h>
int cuInit(unsigned int flags) { return flags == 0 ? 0 : 1; }
int cuDeviceGet(int *device, int ordinal) {
    if (ordinal != 0) return 101;  /* CUDA_ERROR_INVALID_DEVICE */
    *device = 0; return 0;
}
int cuDeviceGetName(char *name, int len, int device) {
    strncpy(name, "%(name)s", len - 1); name[len - 1] = 0; return device == 0 ? 0 : 101;
}
int cuDeviceGetAttribute(int *value, int attribute, int device) {
    if (device != 0) return 101;
    if (attribute == 75) { *value = %(major)d; return 0; }
    if (attribute == 76) { *value = %(minor)d; return 0; }
    return 1;  /* CUDA_ERROR_INVALID_VALUE */
}
"""
NVINFER = "int getInferLibVersion(void) { return %(number)d; }\n"


def build(folder: Path, name: str, cc: tuple[int, int], nvinfer: tuple[str, int] | None) -> Path:
    """Compile ``libcuda.so.1`` (and ``nvinfer`` = (soname, version number), if given) into
    ``folder``; returns it, for ``LD_LIBRARY_PATH``. Skips the test without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the fake GPU libraries")
    folder.mkdir(parents=True, exist_ok=True)
    sources = {"libcuda.so.1": CUDA % {"name": name, "major": cc[0], "minor": cc[1]}}
    if nvinfer is not None:
        sources[nvinfer[0]] = NVINFER % {"number": nvinfer[1]}
    for soname, code in sources.items():
        source = folder / f"{soname}.c"
        source.write_text(code)
        subprocess.run(
            [compiler, "-shared", "-fPIC", "-o", str(folder / soname), str(source)], check=True
        )
    return folder
