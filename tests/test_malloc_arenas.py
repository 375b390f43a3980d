"""The server's cap on glibc's malloc arenas, counted by glibc itself (malloc_stats) in a fresh process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.malloc_arenas import SERVER_ARENAS, cap_malloc_arenas

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
