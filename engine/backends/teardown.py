"""Releasing a TensorRT backend's CUDA objects: in dependency order, with its CUDA context current.

TensorRT's objects and pycuda's allocations free device memory when the last reference goes; with no context
current (a dropped backend in `engines build`'s loop, the service's shutdown on a thread that never pushed
the context, a test's teardown) that release fails or leaks. The execution context uses the engine, the
engine the runtime, and all of them the buffers (the engine's, then the preprocessing uploads) and the
stream, so they go in that order. Plain Python, so
the order is tested without a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

# Attribute names on the backend, in the order they are released.
CLOSE_ORDER = ("_context", "_engine", "_runtime", "_buffers", "_preprocessor", "_stream")


def _release(value: Any) -> None:
    """Explicitly free what can be freed (pycuda allocations, our buffers); the rest goes with its reference."""
    for item in value.values() if isinstance(value, dict) else (value,):
        free = getattr(item, "free", None)
        if callable(free):
            free()


def release_in_order(owner: object, active: Callable[[], AbstractContextManager[Any]],
                     order: tuple[str, ...] = CLOSE_ORDER) -> None:
    """Drop `owner`'s attributes named in `order`, one by one, inside `active()`; a second call does nothing."""
    present = [name for name in order if name in vars(owner)]
    if not present:
        return
    with active():
        for name in present:
            value = vars(owner).pop(name)
            _release(value)
            del value
