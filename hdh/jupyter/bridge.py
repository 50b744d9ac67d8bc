"""Calls to the control plane from inside the sandbox, through the API bridge.

Owns :func:`bridge_request` (and :func:`bridge_get`). The sandbox has no network; where the
bridge is comes from :func:`hdh._bridge.bridge_endpoint`: ``HDH_BRIDGE_URL`` on Kubernetes
(the guard's bridge port, with the project's path prefix), else the socket the hub serves
at ``/bridge/api.sock`` (bound read-only; ``HDH_BRIDGE_SOCKET`` overrides the path, in
tests). The hub or the guard adds this sandbox's identity to what it forwards. No secret
lives here: the socket or the pod's address is the credential, and anything this code (or
a user's kernel) sends about who it is gets stripped by the bridge. Redirects are never
followed and no proxy or ``.netrc`` from the environment is used.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import httpx

from hdh._bridge import BridgeEndpoint, BridgeURLError, bridge_endpoint


class BridgeUnavailable(Exception):  # noqa: N818 - answered 503 with the message
    """The bridge is absent, misconfigured or does not answer."""


def _endpoint() -> BridgeEndpoint:
    try:
        endpoint = bridge_endpoint()
    except BridgeURLError as exc:
        raise BridgeUnavailable(
            f"the control plane is not reachable from this sandbox: {exc}"
        ) from None
    if endpoint.is_tcp:
        return endpoint
    try:
        is_socket = stat.S_ISSOCK(os.stat(str(endpoint.socket)).st_mode)
    except OSError:
        is_socket = False
    if not is_socket:
        raise BridgeUnavailable(
            "the control plane is not reachable from this sandbox: no API bridge at"
            f" {endpoint.socket} (the hub serves it while the sandbox runs)"
        )
    return endpoint


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
    """``method path`` (GET, or POST with a JSON body) via the bridge: ``(status, JSON body)``
    whatever the status; :class:`BridgeUnavailable` when there is no bridge to ask or it
    does not answer."""
    endpoint = _endpoint()
    transport = (
        httpx.AsyncHTTPTransport(uds=endpoint.socket)
        if endpoint.socket
        else httpx.AsyncHTTPTransport()
    )
    async with httpx.AsyncClient(
        transport=transport,
        base_url=endpoint.origin,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    ) as client:
        target = endpoint.target(path)
        try:
            if method == "POST":
                r = await client.post(target, json=json_body if json_body is not None else {})
            else:
                r = await client.get(target, params=params)
        except httpx.HTTPError as exc:
            raise BridgeUnavailable(
                f"the API bridge at {endpoint.where} did not answer: {type(exc).__name__}"
            ) from None
    try:
        body = r.json()
    except ValueError:
        body = {"detail": r.text[:500]}
    return r.status_code, body
