"""The control plane as the notebook library sees it: ``GET`` through the hub's API bridge.

Owns :func:`get`, a blocking call on the bridge socket ``/bridge/api.sock`` (the sandbox
has no network; the hub adds the project's identity). ``HDH_BRIDGE_SOCKET`` overrides the
path (tests). Never raises for an absent or silent bridge: the caller gets ``None``.
"""

from __future__ import annotations

import os
import stat
from typing import Any

BRIDGE_SOCKET_ENV = "HDH_BRIDGE_SOCKET"
DEFAULT_SOCKET = "/bridge/api.sock"


def get(path: str, timeout: float = 10.0) -> Any:
    """The JSON body of ``GET path`` (200 only), or None when the bridge is not reachable."""
    sock = os.environ.get(BRIDGE_SOCKET_ENV, DEFAULT_SOCKET)
    try:
        if not stat.S_ISSOCK(os.stat(sock).st_mode):
            return None
    except OSError:
        return None
    import httpx

    try:
        with httpx.Client(
            transport=httpx.HTTPTransport(uds=sock), base_url="http://bridge", timeout=timeout
        ) as client:
            r = client.get(path)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    try:
        return r.json()
    except ValueError:
        return None
