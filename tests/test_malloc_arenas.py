"""The server's glibc malloc settings, as glibc itself shows them in a fresh process: the arena cap (counted by
malloc_stats), where a photo-sized block comes from (mallinfo2), and the freed memory kept (page faults)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.malloc_arenas import SERVER_ARENAS, cap_malloc_arenas, keep_freed_memory

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

# A worker thread takes 24 MiB in blocks of 1 MiB, writes them and frees them, three times over, as a compare
# does with its images; the page faults of the last time say whether the kernel had the memory back meanwhile.
REUSED_BLOCKS = """
import ctypes, resource, sys, threading
from service.malloc_arenas import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
faults = []
def work():
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        blocks = [libc.malloc(1 << 20) for _ in range(24)]
        for block in blocks:
            ctypes.memset(block, 1, 1 << 20)
        for block in blocks:
            libc.free(block)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(kept, faults[-1])
"""
PAGES_WRITTEN = 24 * 256

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                                reason="malloc arenas and malloc_stats are glibc's")


def in_fresh_process(script: str, mode: str) -> subprocess.CompletedProcess:
    """The script run in a new interpreter, with none of glibc's malloc settings from this environment."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MALLOC_") and key != "GLIBC_TUNABLES"}
    return subprocess.run([sys.executable, "-c", script, mode], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=True)


def arenas_after_threads(mode: str) -> tuple[int, str]:
    done = in_fresh_process(ALLOCATING_THREADS, mode)
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
from service.malloc_arenas import keep_freed_memory, malloc_state
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
mapped = []
for _ in range(2):
    before = malloc_state()["mapped_mib"]
    block = libc.malloc(6 << 20)
    mapped.append(malloc_state()["mapped_mib"] - before >= 6)
    libc.free(block)
print(kept, mapped[0], mapped[1])
"""


def photo_sized_blocks(mode: str) -> list[str]:
    return in_fresh_process(PHOTO_SIZED_BLOCKS, mode).stdout.split()


@glibc_only
def test_kept_a_freed_photo_sized_block_stays_in_the_heap() -> None:
    assert photo_sized_blocks("keep") == ["True", "False", "False"]


@glibc_only
def test_by_default_glibc_maps_a_photo_sized_block_on_its_own() -> None:
    assert photo_sized_blocks("default") == ["False", "True", "False"]


def last_round_faults(mode: str) -> tuple[str, int]:
    kept, faults = in_fresh_process(REUSED_BLOCKS, mode).stdout.split()
    return kept, int(faults)


@glibc_only
def test_the_servers_heaps_keep_freed_memory_for_the_next_compare() -> None:
    kept, faults = last_round_faults("keep")
    assert kept == "True"
    assert faults < PAGES_WRITTEN // 10


@glibc_only
def test_without_it_glibc_hands_the_freed_memory_back_to_the_kernel() -> None:
    kept, faults = last_round_faults("default")
    assert kept == "False"
    assert faults > PAGES_WRITTEN // 2


@pytest.mark.parametrize(("variable", "value"), [("MALLOC_TOP_PAD_", "0"), ("MALLOC_TRIM_THRESHOLD_", "131072"),
                                                 ("MALLOC_MMAP_THRESHOLD_", "131072"),
                                                 ("GLIBC_TUNABLES", "glibc.malloc.top_pad=0")])
def test_heap_settings_from_the_environment_are_left_alone(monkeypatch: pytest.MonkeyPatch, variable: str,
                                                           value: str) -> None:
    monkeypatch.setenv(variable, value)
    assert keep_freed_memory() is False
