"""Route table of the sandbox extension: thin, authenticated and authorised handlers."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from jupyterlab_hdh.server_extension.mounts import list_mounts

AUTH_RESOURCE = "hdh"


class MountsHandler(APIHandler):
    """``GET /hdh/mounts``: the dataset versions mounted read-only in this sandbox."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.finish({"mounts": list_mounts()})


def route_table(base_url: str) -> list[tuple[str, Any]]:
    return [(url_path_join(base_url, "hdh", "mounts"), MountsHandler)]
