"""The JupyterHub REST API as HDH calls it: one client for the control plane and the CLI.

Owns every call HDH makes to the hub's ``/hub/api``: whether a person's project server
runs, stopping it (the control plane's dataset-versions page restarts a sandbox), and
issuing a hub token (``hdh token``). The control plane authenticates with its service
token (``JUPYTERHUB_API_TOKEN``, :meth:`HubClient.from_env`); the CLI with the ``hdh-cli``
service token ``hdh up`` wrote (``hub.config.hub_api``). Failures are
:class:`HubUnavailable` (no answer) and :class:`HubRefused` (an error status), each one line.
"""

from __future__ import annotations

import asyncio
import os
import time
from urllib.parse import quote

import httpx

from jupyterlab_hdh.errors import HdhError

#: how long a stop may take, the hub's own stop included
STOP_TIMEOUT = 60.0


class HubUnavailable(HdhError):
    """The hub does not answer."""

    http_status = 503


class HubRefused(HdhError):
    """The hub answered with an error status."""

    http_status = 502


class HubClient:
    """Calls on the hub's REST API with one token (``Authorization: token ...``)."""

    def __init__(self, api_url: str, token: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.headers = {"Authorization": f"token {token}"}

    @classmethod
    def from_env(cls) -> HubClient | None:
        """The client of a hub-managed service (``JUPYTERHUB_API_URL`` and ``_TOKEN``)."""
        url, token = os.environ.get("JUPYTERHUB_API_URL"), os.environ.get("JUPYTERHUB_API_TOKEN")
        return cls(url, token) if url and token else None

    def _user(self, user: str) -> str:
        return f"{self.api_url}/users/{quote(user, safe='')}"

    async def running(self, user: str, server: str) -> bool:
        """Whether ``user``'s named server ``server`` is known to the hub (started or starting)."""
        async with httpx.AsyncClient(timeout=10) as c:
            r = await c.get(self._user(user), headers=self.headers)
        if r.status_code != 200:
            return False
        return server in (r.json().get("servers") or {})

    async def stop(self, user: str, server: str) -> None:
        """Stop ``user``'s server ``server`` and wait until the hub has forgotten it."""
        url = f"{self._user(user)}/servers/{quote(server, safe='')}"
        async with httpx.AsyncClient(timeout=STOP_TIMEOUT) as c:
            r = await c.delete(url, headers=self.headers)
            if r.status_code not in (202, 204, 404):
                raise HubRefused(f"the hub refused to stop the sandbox ({r.status_code})")
        deadline = time.monotonic() + STOP_TIMEOUT
        while await self.running(user, server):
            if time.monotonic() > deadline:
                raise HubUnavailable("the sandbox did not stop in time: try again in a minute")
            await asyncio.sleep(0.5)

    def issue_token(self, user: str, *, note: str, expires_in: int) -> str:
        """A new hub API token of ``user`` (the hub's user is created if it is not there yet)."""
        try:
            with httpx.Client(headers=self.headers, timeout=30) as c:
                if c.get(self._user(user)).status_code == 404:
                    c.post(self._user(user)).raise_for_status()
                r = c.post(
                    f"{self._user(user)}/tokens", json={"note": note, "expires_in": expires_in}
                )
                r.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise HubRefused(
                f"the hub refused: {exc.response.status_code} {exc.response.text[:200]}"
            ) from None
        except httpx.HTTPError as exc:
            raise HubUnavailable(
                f"the hub at {self.api_url} does not answer ({exc}): is `hdh up` running?"
            ) from None
        return str(r.json()["token"])
