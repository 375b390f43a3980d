"""The server's malloc settings, as glibc itself reports them in a fresh process: the arenas (malloc_stats) and
where a photo-sized block comes from (mallinfo2)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.malloc_arenas import SERVER_ARENAS, cap_malloc_arenas, keep_freed_blocks

REPO = Path(__file__).resolve().parent.parent

# Eight threads each allocate while all are alive, so none can take over an arena another has left.
ALLOCATING_THREADS = """
import ctypes, sys, threading
from service.malloc_arenas import cap_malloc_arenas
capped = cap_malloc_arenas() if sys.argv[1] == "cap" else False
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
together = threading.Barrier(8)
def allocate():
    block = libc.malloc(4096)
    together.wait()
    libc.free(block)
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc.malloc_stats()
print(capped)
"""

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                                reason="malloc arenas and malloc_stats are glibc's")


def arenas_after_threads(mode: str) -> tuple[int, str]:
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", ALLOCATING_THREADS, mode], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return len(re.findall(r"^Arena \d+:", done.stderr, re.MULTILINE)), done.stdout.strip()


@glibc_only
def test_capped_threads_share_the_servers_arenas() -> None:
    arenas, capped = arenas_after_threads("cap")
    assert capped == "True"
    assert 1 <= arenas <= SERVER_ARENAS


@glibc_only
def test_without_the_cap_glibc_gives_the_threads_more_arenas() -> None:
    arenas, capped = arenas_after_threads("default")
    assert capped == "False"
    assert arenas > SERVER_ARENAS


def test_an_arena_count_from_the_environment_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert cap_malloc_arenas() is False


# A block the size of a decoded Full HD photo, allocated and freed twice: by default glibc maps the first on
# its own (mallinfo2's hblkhd counts such blocks while they live) and, its threshold raised, the second from the
# heap; kept, both come from the heap.
PHOTO_SIZED_BLOCKS = """
import ctypes, sys
from service.malloc_arenas import keep_freed_blocks
kept = keep_freed_blocks() if sys.argv[1] == "keep" else False
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                       "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = Mallinfo2
mapped = []
for _ in range(2):
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(6 << 20)
    mapped.append(libc.mallinfo2().hblkhd - before >= 6 << 20)
    libc.free(block)
print(kept, mapped[0], mapped[1])
"""


def photo_sized_blocks(mode: str) -> list[str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")}
    done = subprocess.run([sys.executable, "-c", PHOTO_SIZED_BLOCKS, mode], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


@glibc_only
def test_kept_a_freed_photo_sized_block_stays_in_the_heap() -> None:
    assert photo_sized_blocks("keep") == ["True", "False", "False"]


@glibc_only
def test_by_default_glibc_maps_a_photo_sized_block_on_its_own() -> None:
    assert photo_sized_blocks("default") == ["False", "True", "False"]


def test_thresholds_from_the_environment_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert keep_freed_blocks() is False
