"""NVRTC through ctypes: CUDA C++ to a cubin for one GPU architecture, without nvcc or a GPU.

ctypes rather than cuda-python: the part of NVRTC we need is eight C functions, the
`nvidia-cuda-nvrtc-cu12` wheel ships exactly that library (it is what CI installs), and JetPack has the same
library under /usr/local/cuda; cuda-python would add a second, larger binding package for no gain.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path


class NvrtcUnavailable(RuntimeError):
    """No libnvrtc: install the `test` extra (nvidia-cuda-nvrtc-cu12) or CUDA."""


class CompileError(RuntimeError):
    """NVRTC refused a source; the message carries its log."""


def library_candidates(toolkit_first: bool = False) -> list[Path]:
    """Where libnvrtc may be: the PyPI wheel (the version CI pins) and the device's CUDA install (JetPack's).

    The kernel check wants the pinned wheel first; at run time (`toolkit_first`) the device's own toolkit comes
    first, as its NVRTC matches its driver and knows its GPU, and the wheel is only a test extra.
    """
    wheel: list[Path] = []
    spec = importlib.util.find_spec("nvidia.cuda_nvrtc") if importlib.util.find_spec("nvidia") else None
    for location in (spec.submodule_search_locations or []) if spec else []:
        wheel += sorted(Path(location, "lib").glob("libnvrtc.so*"))
    toolkit: list[Path] = []
    for root in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if root:
            toolkit += sorted(Path(root, "lib64").glob("libnvrtc.so*"))
    found = toolkit + wheel if toolkit_first else wheel + toolkit
    system = ctypes.util.find_library("nvrtc")
    if system:
        found.append(Path(system))
    return [p for p in found if "builtins" not in p.name]


@cache
def _library(toolkit_first: bool = False) -> ctypes.CDLL:
    for candidate in library_candidates(toolkit_first):
        try:
            lib = ctypes.CDLL(str(candidate))
        except OSError:
            continue
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        return lib
    raise NvrtcUnavailable("libnvrtc not found: pip install 'nvidia-cuda-nvrtc-cu12==12.6.*' (the test extra) "
                           "or install CUDA")


def _check(result: int) -> None:
    if result:
        raise CompileError(_library().nvrtcGetErrorString(result).decode())


def version() -> tuple[int, int]:
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(_library().nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)))
    return major.value, minor.value


def compile_cubin(source: str, name: str, arch: str, options: Sequence[str] = (), toolkit_first: bool = False
                  ) -> bytes:
    """Compile `source` for `arch` (e.g. "sm_87") to a cubin; CompileError with NVRTC's log on failure."""
    lib = _library(toolkit_first)
    program = ctypes.c_void_p()
    _check(lib.nvrtcCreateProgram(ctypes.byref(program), source.encode(), name.encode(), 0, None, None))
    try:
        flags = [f"--gpu-architecture={arch}", *options]
        argv = (ctypes.c_char_p * len(flags))(*(f.encode() for f in flags))
        result = lib.nvrtcCompileProgram(program, len(flags), argv)
        if result:
            raise CompileError(f"{name} for {arch}: {lib.nvrtcGetErrorString(result).decode()}\n{_log(lib, program)}")
        size = ctypes.c_size_t()
        _check(lib.nvrtcGetCUBINSize(program, ctypes.byref(size)))
        cubin = ctypes.create_string_buffer(size.value)
        _check(lib.nvrtcGetCUBIN(program, cubin))
        return cubin.raw
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))


def _log(lib: ctypes.CDLL, program: ctypes.c_void_p) -> str:
    size = ctypes.c_size_t()
    _check(lib.nvrtcGetProgramLogSize(program, ctypes.byref(size)))
    log = ctypes.create_string_buffer(size.value)
    _check(lib.nvrtcGetProgramLog(program, log))
    return log.value.decode(errors="replace")
