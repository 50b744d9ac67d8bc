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


#: the filters of ``/hdh/audit/code``, passed through to the control plane (which checks them)
AUDIT_ARGS = ("user", "kind", "since", "until", "notebook", "limit", "cursor")


class AuditCodeHandler(_BridgedHandler):
    """``GET /hdh/audit/code?user=&kind=&since=&until=&notebook=&limit=&cursor=``: the audited
    code of this sandbox's project (the code audit view), newest first, with the chain's state.
    The control plane decides who may see it (the project's leads; 403 with the reason
    otherwise) and only ever answers for this sandbox's project."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        params = {k: self.get_query_argument(k, "")[:500] for k in AUDIT_ARGS}
        await self.relay("/api/bridge/audit/code", {k: v for k, v in params.items() if v})


#: path segments of catalogue names, as the catalogue validates them (``catalogue/records.py``)
DATASET_RE = r"[a-z0-9][a-z0-9_-]{0,62}"
VERSION_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}"
TABLE_RE = r"[A-Za-z][A-Za-z0-9_]{0,62}"
#: the filters of ``/hdh/catalogue/search`` (query arguments) and their allowed values
ACCESS_RIGHTS = ("public", "restricted", "non-public")
#: how many search hits are asked of the control plane (before the filters)
SEARCH_LIMIT = 100
#: the dataset fields the search answer carries for each dataset (no tables, no publisher)
SUMMARY_FIELDS = (
    "name",
    "version",
    "title",
    "description",
    "theme",
    "coding_systems",
    "access_rights",
    "synthetic",
    "temporal_start",
    "temporal_end",
    "records",
    "individuals",
)


def _year(value: str, name: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not (len(value) == 4 and value.isdigit()):
        raise BadArgument(f"{name} is a year (four digits), not {value[:20]!r}")
    return int(value)


def catalogue_filters(args: dict[str, str]) -> dict[str, Any]:
    """The search filters of a request's query arguments, checked (``BadArgument``: why)."""
    out: dict[str, Any] = {}
    if theme := args.get("theme", "").strip():
        out["theme"] = theme[:40]
    if coding := args.get("coding_system", "").strip():
        out["coding_system"] = coding[:100]
    if rights := args.get("access_rights", "").strip():
        if rights not in ACCESS_RIGHTS:
            raise BadArgument(f"access_rights is one of {', '.join(ACCESS_RIGHTS)}")
        out["access_rights"] = rights
    if synthetic := args.get("synthetic", "").strip():
        if synthetic not in ("yes", "no"):
            raise BadArgument("synthetic is yes or no")
        out["synthetic"] = synthetic == "yes"
    start, end = _year(args.get("from", ""), "from"), _year(args.get("to", ""), "to")
    if start is not None and end is not None and start > end:
        raise BadArgument("from is after to")
    if start is not None:
        out["from"] = start
    if end is not None:
        out["to"] = end
    return out


def _years(dataset: dict[str, Any]) -> tuple[int | None, int | None]:
    def year(v: Any) -> int | None:
        return int(v[:4]) if isinstance(v, str) and v[:4].isdigit() else None

    return year(dataset.get("temporal_start")), year(dataset.get("temporal_end"))


def dataset_matches(dataset: dict[str, Any], filters: dict[str, Any]) -> bool:
    """Whether a dataset summary passes the filters; time coverage: the dataset's years
    overlap ``[from, to]`` (a dataset without coverage passes no time filter)."""
    if "theme" in filters and filters["theme"] not in (dataset.get("theme") or []):
        return False
    if "coding_system" in filters and filters["coding_system"] not in (
        dataset.get("coding_systems") or []
    ):
        return False
    if "access_rights" in filters and dataset.get("access_rights") != filters["access_rights"]:
        return False
    if "synthetic" in filters and bool(dataset.get("synthetic")) != filters["synthetic"]:
        return False
    if "from" in filters or "to" in filters:
        first, last = _years(dataset)
        if first is None and last is None:
            return False
        first, last = first or last, last or first
        assert first is not None and last is not None
        if "from" in filters and last < filters["from"]:
            return False
        if "to" in filters and first > filters["to"]:
            return False
    return True


def catalogue_facets(datasets: list[dict[str, Any]]) -> dict[str, Any]:
    """The values each filter can take over the whole catalogue (the filter controls)."""
    years = [y for d in datasets for y in _years(d) if y is not None]
    return {
        "theme": sorted({t for d in datasets for t in d.get("theme") or []}),
        "coding_system": sorted({c for d in datasets for c in d.get("coding_systems") or []}),
        "access_rights": sorted({str(d.get("access_rights")) for d in datasets} - {"None"}),
        "synthetic": sorted({bool(d.get("synthetic")) for d in datasets}),
        "years": [min(years), max(years)] if years else None,
    }


def _summary(dataset: dict[str, Any]) -> dict[str, Any]:
    out = {k: dataset.get(k) for k in SUMMARY_FIELDS}
    if isinstance(out["description"], str) and len(out["description"]) > 400:
        out["description"] = out["description"][:399] + "…"
    return out


def _detail(status: int, body: Any) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else f"the control plane answered {status}"


class CatalogueSearchHandler(APIHandler):
    """``GET /hdh/catalogue/search?q=&theme=&coding_system=&access_rights=&synthetic=&from=&to=``:
    the catalogue browser's search. ``results``: the control plane's hits for ``q`` (datasets,
    tables, variables) in the datasets that pass the filters, or those datasets themselves
    without ``q``; ``datasets``: their summaries; ``facets``: every filter's values over the
    whole catalogue. Read-only; both calls go through the API bridge."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        q = self.get_query_argument("q", "").strip()[:200]
        try:
            filters = catalogue_filters({k: self.get_query_argument(k, "") for k in _FILTER_ARGS})
        except BadArgument as exc:
            self.set_status(400)
            self.finish({"detail": str(exc)})
            return
        try:
            calls = [bridge_get("/api/catalogue/datasets")]
            if q:
                calls.append(
                    bridge_get("/api/catalogue/search", {"q": q, "limit": str(SEARCH_LIMIT)})
                )
            answers = await asyncio.gather(*calls)
        except BridgeUnavailable as exc:
            self.set_status(503)
            self.finish({"detail": str(exc)})
            return
        for status, body in answers:
            if status >= 400 or not isinstance(body, list):
                self.set_status(status if status >= 400 else 502)
                self.finish({"detail": _detail(status, body)})
                return
        every = [d for d in answers[0][1] if isinstance(d, dict)]
        chosen = [d for d in every if dataset_matches(d, filters)]
        titles = {d.get("name"): d.get("title") for d in chosen}
        if q:
            results = [
                {**h, "title": titles[h.get("dataset")]}
                for h in answers[1][1]
                if isinstance(h, dict) and h.get("dataset") in titles
            ]
        else:
            results = [
                {
                    "kind": "dataset",
                    "dataset": d.get("name"),
                    "version": d.get("version"),
                    "table": None,
                    "variable": None,
                    "snippet": _summary(d)["description"],
                    "field": "description",
                    "title": d.get("title"),
                }
                for d in chosen
            ]
        self.finish(
            {
                "query": q,
                "filters": filters,
                "facets": catalogue_facets(every),
                "datasets": [_summary(d) for d in chosen],
                "results": results,
            }
        )


_FILTER_ARGS = ("theme", "coding_system", "access_rights", "synthetic", "from", "to")


def access_request(bridged: dict[str, Any] | None) -> dict[str, Any] | None:
    """The open access request the control plane names for the dataset (``application`` of
    ``/api/bridge/access/<name>``: it picks the project's open one) as the panel reads it:
    ``{id, state, title}``, or None."""
    app = (bridged or {}).get("application")
    if not isinstance(app, dict) or not isinstance(app.get("id"), int):
        return None
    return {"id": app["id"], "state": app.get("state"), "title": app.get("title")}


def local_access(dataset: str, bridged: dict[str, Any] | None) -> dict[str, Any]:
    """The access badge: what this sandbox mounts (read from ``/data``, the truth here) and
    what the control plane says the permit grants, with how to obtain access and the open
    access request for it (``application``), if any."""
    mounted = [m["version"] for m in list_mounts() if m["dataset"] == dataset]
    out: dict[str, Any] = dict(bridged or {})
    out["dataset"] = dataset
    out["mounted"] = mounted
    out.setdefault("permitted", [])
    out.setdefault("leads", [])
    out.setdefault("you_lead", False)
    out["application"] = access_request(bridged)
    if mounted:
        if out.get("state") != "mounted":
            out["how"] = f"{dataset} is mounted read-only in this sandbox under /data/{dataset}/."
        out["state"] = "mounted"
    elif bridged is None:
        out["state"] = "unknown"
    elif out.get("state") == "mounted":  # the permit's choice, not mounted yet: restart
        out["state"] = "permitted"
        out["restart"] = True
        out["how"] = (
            f"{dataset} is chosen for this sandbox but not mounted yet: restart the sandbox"
            " from the project's datasets page."
        )
    return out


class CatalogueDatasetHandler(APIHandler):
    """``GET /hdh/catalogue/datasets/<name>``: a dataset's page: its current record (description,
    coverage, counts, tables with their column counts, quality summary) and every version
    (``dataset``), the current version's quality report (``quality``, null when it has none)
    and this member's access in this project (``access``: mounted / permitted /
    not_permitted, leads, whether this member leads the project, how to obtain it, the open
    access request for it), with ``change_url`` (the project's datasets page). Read-only;
    every call goes through the API bridge."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        try:
            status, record = await bridge_get(f"/api/catalogue/datasets/{name}")
            if status >= 400 or not isinstance(record, dict):
                self.set_status(status if status >= 400 else 502)
                self.finish({"detail": _detail(status, record)})
                return
            version = str(record.get("version", ""))
            (q_status, quality), (a_status, access) = await asyncio.gather(
                bridge_get(f"/api/catalogue/datasets/{name}/versions/{version}/quality"),
                bridge_get(f"/api/bridge/access/{name}"),
            )
        except BridgeUnavailable as exc:
            self.set_status(503)
            self.finish({"detail": str(exc)})
            return
        # the page lists tables; their columns come with each dictionary (the answer stays
        # small for catalogues of hundreds of wide tables: the guard caps API reads)
        for table in record.get("tables") or []:
            if isinstance(table, dict):
                table["column_count"] = len(table.pop("columns", None) or [])
        out: dict[str, Any] = {"dataset": record, "quality": None}
        if q_status == 200 and isinstance(quality, dict):
            out["quality"] = quality
        elif q_status != 404:
            out["quality_error"] = _detail(q_status, quality)
        ok = a_status == 200 and isinstance(access, dict)
        out["access"] = local_access(name, access if ok else None)
        if not ok:
            out["access"]["error"] = _detail(a_status, access)
            out["access"].setdefault(
                "how", "Your access could not be checked now: " + out["access"]["error"]
            )
        user, project = os.environ.get("HDH_USER", ""), os.environ.get("HDH_PROJECT", "")
        if project:
            root = hub_root(self.base_url, user, project)
            out["change_url"] = f"{root}services/hdh/ui/projects/{project}/datasets"
        self.finish(out)


#: what the browser sends with an access request (the dataset is the URL's)
ACCESS_REQUEST_FIELDS = ("public_interest", "methodology", "title")


class CatalogueAccessRequestHandler(_BridgedHandler):
    """``POST /hdh/catalogue/datasets/<name>/request-access`` (``{"public_interest",
    "methodology"}``, optional ``"title"``): this sandbox's user, a lead of its project,
    applies for an amendment of the project's permit that adds the dataset. The control
    plane files it for this sandbox's project as its user, and refuses a member who does not
    lead the project (403, naming the leads), a dataset already granted or an application
    still open (409), empty text (422): its one-line reason is relayed."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        body = self.json_body()
        payload = {k: body[k] for k in ACCESS_REQUEST_FIELDS if k in body}
        await self.relay(
            "/api/bridge/applications", method="POST", json_body={"dataset": name, **payload}
        )


class CatalogueTableHandler(_BridgedHandler):
    """``GET /hdh/catalogue/datasets/<name>/versions/<version>/tables/<table>``: the table's
    data dictionary (its columns: name, type, description, code list, constraints, keys)."""

    @web.authenticated
    @authorized
    async def get(self, name: str, version: str, table: str) -> None:
        await self.relay(f"/api/catalogue/datasets/{name}/versions/{version}/tables/{table}")


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
    catalogue = url_path_join(base_url, "hdh", "catalogue")
    return [
        (url_path_join(base_url, "hdh", "mounts"), MountsHandler),
        (url_path_join(base_url, "hdh", "whoami"), WhoamiHandler),
        (url_path_join(base_url, "hdh", "catalogue"), CatalogueHandler),
        (catalogue + "/search", CatalogueSearchHandler),
        (catalogue + f"/datasets/({DATASET_RE})", CatalogueDatasetHandler),
        (catalogue + f"/datasets/({DATASET_RE})/request-access", CatalogueAccessRequestHandler),
        (
            catalogue + f"/datasets/({DATASET_RE})/versions/({VERSION_RE})/tables/({TABLE_RE})",
            CatalogueTableHandler,
        ),
        (egress, EgressRequestsHandler),
        (egress + r"/([0-9]{1,9})", EgressRequestHandler),
        (egress + r"/([0-9]{1,9})/(files|submit|withdraw)", EgressActionHandler),
        (url_path_join(base_url, "hdh", "audit", "code"), AuditCodeHandler),
        (url_path_join(base_url, "hdh", "templates"), TemplatesHandler),
        (
            url_path_join(base_url, "hdh", "templates", r"([^/]{1,100})", "copy"),
            TemplateCopyHandler,
        ),
    ]
