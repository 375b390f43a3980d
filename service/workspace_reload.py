"""The `workspaces` file of the configuration: applied at start, and again on SIGHUP while requests go on.

A reload is one SQLite transaction run off the event loop; requests read their workspace per request (WAL
readers never wait for the writer), so each one sees the workspaces wholly before or wholly after it. A bad
file is refused whole: the service keeps the workspaces it had and logs what is wrong.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from service import workspace_file
from service.workspaces import WorkspaceError, WorkspaceStore

log = logging.getLogger("facecompare.workspaces")


def apply_file(store: WorkspaceStore, path: Path) -> list[str]:
    """Make the store match the file and log what changed; WorkspaceError, with nothing changed, if it is bad."""
    changes = store.sync(workspace_file.load(path))
    log.info("workspaces file applied", extra={"fields": {"file": str(path), "changes": changes}})
    return changes


class WorkspacesReloader:
    """SIGHUP's handler: one reload at a time, each reading the file as it is when the reload starts."""

    def __init__(self, store: WorkspaceStore, path: Path) -> None:
        self._store, self._path = store, path
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def request(self) -> None:
        """Called by the event loop on SIGHUP."""
        task = asyncio.get_running_loop().create_task(self._reload(), name="workspaces-reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload(self) -> None:
        async with self._lock:
            try:
                await asyncio.to_thread(apply_file, self._store, self._path)
            except WorkspaceError as error:
                log.error("workspaces file refused; the workspaces are unchanged",
                          extra={"fields": {"file": str(self._path), "error": str(error)}})
