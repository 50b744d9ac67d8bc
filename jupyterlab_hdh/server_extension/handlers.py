"""Route table of the sandbox extension: thin, authenticated and authorised handlers."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from jupyterlab_hdh.server_extension.bridge import BridgeUnavailable, bridge_get
from jupyterlab_hdh.server_extension.mounts import list_mounts

AUTH_RESOURCE = "hdh"


class MountsHandler(APIHandler):
    """``GET /hdh/mounts``: the dataset versions mounted read-only in this sandbox."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.finish({"mounts": list_mounts()})


class _BridgedHandler(APIHandler):
    """Relays one control-plane answer (status and JSON body) from the API bridge."""

    auth_resource = AUTH_RESOURCE

    async def relay(self, path: str, params: dict[str, str] | None = None) -> None:
        try:
            status, body = await bridge_get(path, params)
        except BridgeUnavailable as exc:
            self.set_status(503)
            self.finish({"detail": str(exc)})
            return
        self.set_status(status)
        self.finish(body if isinstance(body, dict) else {"results": body})


class WhoamiHandler(_BridgedHandler):
    """``GET /hdh/whoami``: who the control plane believes this sandbox is (user, project,
    permit, mounts)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.relay("/api/bridge/whoami")


class CatalogueHandler(_BridgedHandler):
    """``GET /hdh/catalogue?q=``: catalogue search (``q``), or the dataset list without it."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        q = self.get_query_argument("q", "").strip()
        if q:
            await self.relay("/api/catalogue/search", {"q": q[:200]})
        else:
            await self.relay("/api/catalogue/datasets")


def route_table(base_url: str) -> list[tuple[str, Any]]:
    return [
        (url_path_join(base_url, "hdh", "mounts"), MountsHandler),
        (url_path_join(base_url, "hdh", "whoami"), WhoamiHandler),
        (url_path_join(base_url, "hdh", "catalogue"), CatalogueHandler),
    ]
