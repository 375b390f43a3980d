"""Resident memory of a process, from /proc (Linux): how the reliability tests and the soak bound memory."""

from __future__ import annotations

import gc
import os

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib(pid: int | str = "self") -> float:
    """Resident set size of a process in MiB."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / (1024 * 1024)


def settled_rss_mib() -> float:
    """This process's RSS after a garbage collection, so that a measure does not count dead objects."""
    gc.collect()
    return rss_mib()
