"""Calls to the control plane from inside the sandbox, through the hub's API bridge socket.

Owns :func:`bridge_request` (and :func:`bridge_get`). The sandbox has no network; the hub serves
``/bridge/api.sock`` (bound read-only) and adds this sandbox's identity to what
it forwards. No secret lives here: the socket is the credential, and anything
this code (or a user's kernel) sends about who it is gets stripped by the
bridge. ``HDH_BRIDGE_SOCKET`` overrides the socket path (tests).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx

from hdh._bridge import BRIDGE_SOCKET_ENV, DEFAULT_SOCKET


class BridgeUnavailable(Exception):  # noqa: N818 - answered 503 with the message
    """The bridge socket is absent or does not answer."""


def bridge_socket() -> Path:
    return Path(os.environ.get(BRIDGE_SOCKET_ENV, DEFAULT_SOCKET))


async def bridge_get(
    path: str, params: dict[str, str] | None = None, timeout: float = 30.0
) -> tuple[int, Any]:
    """``GET path`` on the control plane via the bridge: ``(status, decoded JSON body)``."""
    return await bridge_request("GET", path, params=params, timeout=timeout)


async def bridge_request(
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    json_body: Any = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """``method path`` (GET, or POST with a JSON body) via the bridge: ``(status, JSON body)``."""
    sock = bridge_socket()
    try:
        is_socket = stat.S_ISSOCK(os.stat(sock).st_mode)
    except OSError:
        is_socket = False
    if not is_socket:
        raise BridgeUnavailable(
            f"the control plane is not reachable from this sandbox: no API bridge at {sock}"
            " (the hub serves it while the sandbox runs)"
        )
    transport = httpx.AsyncHTTPTransport(uds=str(sock))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bridge", timeout=timeout
    ) as client:
        try:
            if method == "POST":
                r = await client.post(path, json=json_body if json_body is not None else {})
            else:
                r = await client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise BridgeUnavailable(
                f"the API bridge at {sock} did not answer: {type(exc).__name__}"
            ) from None
    try:
        body = r.json()
    except ValueError:
        body = {"detail": r.text[:500]}
    return r.status_code, body
