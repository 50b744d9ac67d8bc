"""Route table of the sandbox extension: thin, authenticated and authorised handlers."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async, url_path_join
from tornado import web

from hdh.errors import BadArgument
from hdh.jupyter.bridge import (
    BridgeUnavailable,
    bridge_get,
    bridge_request,
)
from hdh.jupyter.mounts import list_mounts
from hdh.templates import Template, template_path, templates

AUTH_RESOURCE = "hdh"


def hub_root(base_url: str, user: str, project: str) -> str:
    """The proxy's root URL path, from this server's ``/…/user/<user>/<project>/``."""
    tail = f"user/{user}/{project}/"
    return base_url[: -len(tail)] if user and project and base_url.endswith(tail) else "/"


class MountsHandler(APIHandler):
    """``GET /hdh/mounts``: the dataset versions mounted read-only in this sandbox (read from
    ``/data``), the versions the permit grants (from the control plane, when reachable) and
    the page where the member changes them (``change_url``: it restarts the sandbox)."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        user, project = os.environ.get("HDH_USER", ""), os.environ.get("HDH_PROJECT", "")
        out: dict[str, Any] = {"project": project, "user": user, "mounts": list_mounts()}
        try:
            status, plan = await bridge_get("/api/bridge/whoami")
        except BridgeUnavailable as exc:
            out["permitted_error"] = str(exc)
        else:
            if status == 200 and isinstance(plan, dict):
                here = {(m["dataset"], m["version"]) for m in out["mounts"]}
                out["permitted"] = [
                    {
                        "dataset": p.get("dataset"),
                        "version": p.get("version"),
                        "mounted": (p.get("dataset"), p.get("version")) in here,
                    }
                    for p in plan.get("permitted", [])
                    if isinstance(p, dict)
                ]
            else:
                out["permitted_error"] = str((plan or {}).get("detail", f"status {status}"))
        if project:
            root = hub_root(self.base_url, user, project)
            out["change_url"] = f"{root}services/hdh/ui/projects/{project}/datasets"
        self.finish(out)


class _BridgedHandler(APIHandler):
    """Relays one control-plane answer (status and JSON body) from the API bridge."""

    auth_resource = AUTH_RESOURCE

    async def relay(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        method: str = "GET",
        json_body: Any = None,
    ) -> None:
        try:
            status, body = await bridge_request(method, path, params=params, json_body=json_body)
        except BridgeUnavailable as exc:
            self.set_status(503)
            self.finish({"detail": str(exc)})
            return
        self.set_status(status)
        out = body if isinstance(body, dict) else {"results": body}
        if status < 400:
            self.decorate(out)
        self.finish(out)

    def decorate(self, body: dict[str, Any]) -> None:
        """Add links the browser needs to a successful answer (nothing by default)."""

    def json_body(self) -> Any:
        """The request's JSON body (an object), or a 400 with the reason."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the body must be a JSON object")
        return body


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


class _EgressHandler(_BridgedHandler):
    def decorate(self, body: dict[str, Any]) -> None:
        """Each request gets ``ui_url``: its page on the control plane (same origin), where
        the requester follows the review and downloads released files."""
        root = hub_root(
            self.base_url, os.environ.get("HDH_USER", ""), os.environ.get("HDH_PROJECT", "")
        )
        views = body["results"] if isinstance(body.get("results"), list) else [body]
        for view in views:
            if isinstance(view, dict) and isinstance(view.get("id"), int):
                view["ui_url"] = f"{root}services/hdh/ui/egress/requests/{view['id']}"


class EgressRequestsHandler(_EgressHandler):
    """``GET /hdh/egress/requests``: this sandbox's export requests; ``POST`` creates one
    (``{"title": …}``). Relayed to the control plane as this sandbox's user and project."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.relay("/api/bridge/egress/requests")

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self.relay("/api/bridge/egress/requests", method="POST", json_body=self.json_body())


class EgressRequestHandler(_EgressHandler):
    """``GET /hdh/egress/requests/<id>``: one request (files, check results, state)."""

    @web.authenticated
    @authorized
    async def get(self, request_id: str) -> None:
        await self.relay(f"/api/bridge/egress/requests/{int(request_id)}")


class EgressActionHandler(_EgressHandler):
    """``POST /hdh/egress/requests/<id>/(files|submit|withdraw)``: add a workspace file
    (``{"path", "role", "context", "controls"}``), submit, or withdraw."""

    @web.authenticated
    @authorized
    async def post(self, request_id: str, action: str) -> None:
        await self.relay(
            f"/api/bridge/egress/requests/{int(request_id)}/{action}",
            method="POST",
            json_body=self.json_body(),
        )


#: the workspace folder templates are copied into (``templates/<name>.ipynb``)
TEMPLATE_FOLDER = "templates"
#: one copy at a time: two clicks never pick the same free name
_copy_lock = asyncio.Lock()


def _template_view(template: Template) -> dict[str, Any]:
    return {
        "name": template.name,
        "title": template.title,
        "description": template.description,
        "parameters": [
            {"name": p.name, "type": p.type, "default": p.default, "help": p.help}
            for p in template.parameters.values()
        ],
    }


class TemplatesHandler(APIHandler):
    """``GET /hdh/templates``: the template studies (``hdh template list``): name, title,
    description and parameters (name, type, default as written, help)."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        # the first listing imports papermill and parses the notebooks: off the event loop
        found = await asyncio.get_running_loop().run_in_executor(None, templates)
        self.finish({"results": [_template_view(t) for t in found]})


class TemplateCopyHandler(APIHandler):
    """``POST /hdh/templates/<name>/copy``: a copy of the template's notebook in the
    workspace, ``templates/<name>.ipynb`` (``<name>-1.ipynb``, ``-2``… when taken: never
    overwritten), saved through the contents manager like any save; answers ``{path}``."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        import nbformat

        try:
            path = template_path(name)
        except BadArgument:
            self.set_status(404)
            self.finish({"detail": f"no template {name!r}"})
            return
        notebook = nbformat.read(path, as_version=4)
        cm = self.contents_manager
        async with _copy_lock:
            if not await ensure_async(cm.dir_exists(TEMPLATE_FOLDER)):
                if await ensure_async(cm.file_exists(TEMPLATE_FOLDER)):
                    self.set_status(409)
                    self.finish({"detail": f"{TEMPLATE_FOLDER} is a file: rename it"})
                    return
                await ensure_async(cm.save({"type": "directory"}, TEMPLATE_FOLDER))
            target, n = f"{TEMPLATE_FOLDER}/{name}.ipynb", 0
            while await ensure_async(cm.exists(target)):
                n += 1
                target = f"{TEMPLATE_FOLDER}/{name}-{n}.ipynb"
            model = {"type": "notebook", "format": "json", "content": notebook}
            saved = await ensure_async(cm.save(model, target))
        self.set_status(201)
        self.finish({"path": saved["path"]})


def route_table(base_url: str) -> list[tuple[str, Any]]:
    egress = url_path_join(base_url, "hdh", "egress", "requests")
    return [
        (url_path_join(base_url, "hdh", "mounts"), MountsHandler),
        (url_path_join(base_url, "hdh", "whoami"), WhoamiHandler),
        (url_path_join(base_url, "hdh", "catalogue"), CatalogueHandler),
        (egress, EgressRequestsHandler),
        (egress + r"/([0-9]{1,9})", EgressRequestHandler),
        (egress + r"/([0-9]{1,9})/(files|submit|withdraw)", EgressActionHandler),
        (url_path_join(base_url, "hdh", "templates"), TemplatesHandler),
        (
            url_path_join(base_url, "hdh", "templates", r"([^/]{1,100})", "copy"),
            TemplateCopyHandler,
        ),
    ]
