"""The contents manager the sandbox's Jupyter server runs with: confined to the workspace.

jupyter-server's root check is lexical: ``/workspace/link.parquet`` is inside
the root even when it is a symlink to ``/data/...``, so the contents API
follows it. This manager resolves symlinks and refuses any path whose real
location is outside the workspace (403). It is defense in depth only: the
server runs inside the untrusted sandbox (a kernel could replace it), so the
guard's own contents policy is what enforces; this closes the casual path and
keeps what the browser is shown consistent with it.

Imported inside the sandbox only (by the server's configuration).
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web


class ConfinedContentsManager(AsyncLargeFileManager):  # type: ignore[misc]
    """An ``AsyncLargeFileManager`` that never reads or writes through a link out of the root."""

    def _confine(self, path: str) -> None:
        root = os.path.realpath(self.root_dir)
        real = os.path.realpath(self._get_os_path(path.strip("/")))
        if real != root and not real.startswith(root + os.sep):
            raise web.HTTPError(403, f"{path!r} leads outside the project workspace")

    async def get(  # type: ignore[override]
        self, path: str, content: bool = True, **kwargs: Any
    ) -> Any:
        if content:  # a folder listing asks each entry's model without content: allowed
            self._confine(path)
        return await super().get(path, content=content, **kwargs)

    async def save(self, model: dict[str, Any], path: str = "") -> Any:
        self._confine(path)
        return await super().save(model, path)

    async def rename_file(self, old_path: str, new_path: str) -> Any:
        self._confine(old_path)
        self._confine(new_path)
        return await super().rename_file(old_path, new_path)

    async def delete_file(self, path: str) -> Any:
        # a link itself may be deleted (it is in the workspace); never what it points to
        if not os.path.islink(self._get_os_path(path.strip("/"))):
            self._confine(path)
        return await super().delete_file(path)

    async def copy(self, from_path: str, to_path: str | None = None) -> Any:
        self._confine(from_path)
        if to_path:
            self._confine(to_path)
        return await super().copy(from_path, to_path)
