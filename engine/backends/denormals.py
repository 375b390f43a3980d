"""Denormal floats read and written as zero (x86's DAZ and FTZ flags) while a CPU inference runs, on the thread
that runs it.

Why: activations underflow as well as weights. On an AVX-512 Xeon, fr_feature's convolutions produce denormal
activations on real faces, and every operation on one takes a microcode assist: its calls for one compare cost
33.5 ms of CPU with the flags off and 15.5 with them on, the outputs the same to float precision
(docs/PERFORMANCE.md, "Fourth round"). ONNX Runtime's `session.set_denormal_as_zero` sets the flags on its
intra-op pool's threads only, and, once per process, on the thread that creates the first session; with one
intra-op thread a model computes on its caller's thread (a compare's, or a batcher's worker), which keeps the
default. The flags live in each thread's MXCSR register, so they are set here around the call and the caller's
own are put back after: nothing else the thread computes sees them.

Python has no call for MXCSR; C's `fegetenv`/`fesetenv` read and write it with the rest of the floating-point
environment, whose layout is the C library's ABI: on Linux x86-64 (glibc and musl alike) `fenv_t` is 32 bytes
with MXCSR last. Elsewhere this does nothing (not measured there; on a GPU, TensorRT does not come here).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_FENV = ctypes.c_uint32 * 8  # fenv_t on Linux x86-64, as 32-bit words
_MXCSR_WORD = 7
_DAZ_FTZ = 0x0040 | 0x8000  # MXCSR bit 6: denormal inputs are zero; bit 15: denormal results are flushed to zero


def _libm() -> ctypes.CDLL | None:
    """The C maths library on Linux x86-64, else None."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    except OSError:
        return None


_LIBM = _libm()
SUPPORTED = _LIBM is not None


@contextmanager
def denormals_as_zero() -> Iterator[None]:
    """DAZ and FTZ on for the body, on this thread; the thread's floating-point environment restored after."""
    if _LIBM is None:
        yield
        return
    saved = _FENV()
    if _LIBM.fegetenv(saved) != 0:
        yield
        return
    flushing = _FENV.from_buffer_copy(saved)
    flushing[_MXCSR_WORD] |= _DAZ_FTZ
    _LIBM.fesetenv(flushing)
    try:
        yield
    finally:
        _LIBM.fesetenv(saved)
