"""The HDH store as seen from inside the JupyterHub process: one opened installation.

Owns the process-wide cache of :class:`~jupyterlab_hdh.context.Installation` objects
(one per data directory) shared by the authenticator and the spawner, and
:func:`in_thread`, which runs blocking store work off the hub's event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from jupyterlab_hdh.context import Installation, open_installation
from jupyterlab_hdh.paths import DataDir

T = TypeVar("T")

_hubs: dict[str, Installation] = {}
_lock = threading.Lock()


def hdh_store(data_dir: str) -> Installation:
    """The opened installation at ``data_dir`` (opened once per process)."""
    with _lock:
        hub = _hubs.get(data_dir)
        if hub is None:
            hub = _hubs[data_dir] = open_installation(DataDir.resolve(data_dir))
        return hub


def close_stores() -> None:
    """Dispose every opened store (tests; a hub process just exits)."""
    with _lock:
        while _hubs:
            _hubs.popitem()[1].close()


async def in_thread(fn: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn)
