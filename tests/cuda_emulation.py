"""The CUDA kernels' real sources run on the CPU, thread by thread: each .cu compiled as C++ behind
tests/cuda_host.h, with a launcher per kernel that loops over the grid and blocks, called through ctypes.

Compiling is not running: this executes the very code the GPU runs (same integer and float32 maths, no
fused multiply-adds, as NVRTC is told `--fmad=false`), so the suite holds it against the OpenCV path.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import numpy as np

from engine.cuda.kernels import KERNELS, source

HEADER = Path(__file__).with_name("cuda_host.h")
BLOCK = (16, 16)
CTYPES = {"int": ctypes.c_int, "float": ctypes.c_float}


def compiler() -> str | None:
    """`$CXX`, else g++ or c++ on PATH."""
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def compiler_missing() -> str | None:
    if compiler() is None:
        return "needs a C++ compiler to run the CUDA kernels on the CPU (apt install g++, or set CXX)"
    return None


def _parameters(text: str, kernel: str) -> list[tuple[str, str]]:
    """(C type, name) of each parameter of `kernel` as the .cu declares it."""
    match = re.search(rf'extern "C" __global__ void {kernel}\((.*?)\)', text, re.S)
    if not match:
        raise ValueError(f"no kernel {kernel}")
    parameters = [p.strip() for p in match.group(1).split(",")]
    return [(p.rsplit(None, 1)[0] if "*" not in p else p[: p.rindex("*") + 1], re.findall(r"\w+", p)[-1])
            for p in parameters]


def _launcher(kernel: str, parameters: list[tuple[str, str]]) -> str:
    declared = ", ".join(f"{kind} {name}" for kind, name in parameters)
    passed = ", ".join(name for _, name in parameters)
    return f"""
extern "C" void emulate_{kernel}(unsigned grid_x, unsigned grid_y, unsigned block_x, unsigned block_y, {declared}) {{
    gridDim = dim3{{grid_x, grid_y, 1}};
    blockDim = dim3{{block_x, block_y, 1}};
    for (unsigned by = 0; by < grid_y; ++by)
        for (unsigned bx = 0; bx < grid_x; ++bx)
            for (unsigned ty = 0; ty < block_y; ++ty)
                for (unsigned tx = 0; tx < block_x; ++tx) {{
                    blockIdx = dim3{{bx, by, 0}};
                    threadIdx = dim3{{tx, ty, 0}};
                    {kernel}({passed});
                }}
}}
"""


class EmulatedKernel:
    """One kernel: called with NumPy arrays for pointers and Python numbers for the rest, over a 2-D grid."""

    def __init__(self, library: ctypes.CDLL, kernel: str, parameters: list[tuple[str, str]]) -> None:
        self._function = getattr(library, f"emulate_{kernel}")
        self._function.restype = None
        self._types = [ctypes.c_void_p if "*" in kind else CTYPES[kind] for kind, _ in parameters]
        self._function.argtypes = [ctypes.c_uint] * 4 + self._types

    def __call__(self, width: int, height: int, *args: object) -> None:
        """One thread per (x, y) of a `width` x `height` output, in 16x16 blocks as engine/cuda/launch.py."""
        values = [arg.ctypes.data if isinstance(arg, np.ndarray) else kind(arg)
                  for kind, arg in zip(self._types, args, strict=True)]
        grid = (-(-width // BLOCK[0]), -(-height // BLOCK[1]))
        self._function(*grid, *BLOCK, *values)


@cache
def kernels() -> dict[str, EmulatedKernel]:
    """Every kernel of every .cu, compiled once per test session into a shared library; the folder goes once
    they are loaded (a loaded library stays mapped), so no run leaves files behind."""
    found: dict[str, EmulatedKernel] = {}
    with tempfile.TemporaryDirectory(prefix="cuda-emulation-") as temporary:
        folder = Path(temporary)
        for file, names in KERNELS.items():
            text = source(file)
            parameters = {name: _parameters(text, name) for name in names}
            unit = folder / f"{file}.cpp"
            unit.write_text(f'#include "{HEADER}"\n{text}\n' + "".join(_launcher(n, p) for n, p in parameters.items()))
            library = folder / f"{file}.so"
            subprocess.run([compiler(), "-O2", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC", "-o",
                            str(library), str(unit)], check=True, capture_output=True, text=True)
            loaded = ctypes.CDLL(str(library))
            found.update({name: EmulatedKernel(loaded, name, parameters[name]) for name in names})
    return found
