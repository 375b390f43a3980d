"""The CUDA kernel sources and the architectures they must compile for: Nano, TX2, Xavier, Orin."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from engine.cuda.nvrtc import CompileError, compile_cubin

# Source file -> the kernels (extern "C" entry points) it defines.
KERNELS = {"resize.cu": ("letterbox_normalise", "crop_normalise"), "warp.cu": ("warp_normalise",)}
ARCHS = ("sm_53", "sm_62", "sm_72", "sm_87")
# No contraction into fused multiply-adds: the NumPy references round each product as the kernels must.
OPTIONS = ("--fmad=false",)


def source(file: str) -> str:
    return resources.files("engine.cuda").joinpath(file).read_text()


@dataclass(frozen=True)
class CheckResult:
    file: str
    arch: str
    error: str | None
    cubin_bytes: int = 0


def compile_kernel(file: str, text: str, arch: str, toolkit_first: bool = False) -> bytes:
    """A cubin of one source; also fails when an entry point it should define is missing. `toolkit_first`
    at run time: the device's own NVRTC before the test extra's wheel."""
    cubin = compile_cubin(text, file, arch, OPTIONS, toolkit_first)
    missing = [k for k in KERNELS.get(file, ()) if k.encode() + b"\0" not in cubin]
    if missing:
        raise CompileError(f"{file} for {arch}: no kernel {', '.join(missing)}")
    return cubin


def check(sources: dict[str, str] | None = None, archs: tuple[str, ...] = ARCHS) -> list[CheckResult]:
    """Compile every source for every architecture; the results say which failed and why."""
    sources = sources if sources is not None else {file: source(file) for file in KERNELS}
    results = []
    for file, text in sources.items():
        for arch in archs:
            try:
                results.append(CheckResult(file, arch, None, len(compile_kernel(file, text, arch))))
            except CompileError as error:
                results.append(CheckResult(file, arch, str(error)))
    return results
