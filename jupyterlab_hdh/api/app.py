"""Routes of the control-plane API: one table, thin handlers mapping domain errors to HTTP.

(No ``from __future__ import annotations`` here: FastAPI must see the dependency
aliases defined inside ``create_app`` as objects, not strings.)

Catalogue metadata (``/api/catalogue/...``, and ``/catalogue/...``: the landing
and table pages the DCAT export links to) is public and read-only; every other
route needs a bearer token (``hdh user token NAME``: ``Authorization: Bearer``,
not JupyterHub's ``token`` scheme) of a user whose role allows it. Every error
is ``{"detail": "one line"}``, plus ``reason`` (permit refusals) or ``errors``
(FastAPI's list, for invalid input): one handler maps every domain error, an
:class:`~jupyterlab_hdh.errors.HdhError`, to its ``http_status``. The OpenAPI spec is served at
``/api/openapi.json`` (under the hub's service prefix too).

``/api/bridge/...`` routes serve sandboxes through the hub's API bridge
(``hub/bridge.py``): they take the caller's identity from ``X-HDH-User`` /
``X-HDH-Project`` only when ``X-HDH-Bridge`` carries the bridge token
(constant-time compare), and then re-check the project's active permit here,
on every request: the control plane never trusts who a sandbox says it is.
"""

import hmac
import json
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyterlab_hdh import __version__, ingestion
from jupyterlab_hdh.api import egress as egress_api
from jupyterlab_hdh.api import models
from jupyterlab_hdh.api.browser import HubBrowserAuth, StripPrefix
from jupyterlab_hdh.api.hub_client import HubClient
from jupyterlab_hdh.api.pages import register_pages
from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.catalogue import manager as catalogue
from jupyterlab_hdh.catalogue.dictionary import dictionary_csv
from jupyterlab_hdh.context import Hub, open_hub
from jupyterlab_hdh.data import optout
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.governance import projects
from jupyterlab_hdh.governance.accounts import authenticate
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.sandbox.spec import DATA_ROOT
from jupyterlab_hdh.store.models import ROLES, AuditEvent, User

bearer = HTTPBearer(auto_error=False)
CONTROLLERS = ("data_controller", "admin")


def missing_bearer(request: Request) -> str:
    """Why a request without a usable bearer token is refused, and what to send instead."""
    scheme = request.headers.get("authorization", "").strip().partition(" ")[0]
    how = "send `Authorization: Bearer TOKEN` (`hdh user token NAME`)"
    if scheme.lower() == "token":
        return f"`Authorization: token` is JupyterHub's scheme, for the hub's API; here {how}"
    if scheme.lower() == "bearer":
        return f"the bearer token is missing: {how}"
    if scheme:
        return f"authentication scheme {scheme[:20]!r} not accepted: {how}"
    return f"authentication required: {how}"


def in_sandbox(mount: models.MountOut) -> str:
    """Where the sandbox sees a mounted dataset version (``sandbox/spec.py``: ``/data/…``)."""
    return f"{DATA_ROOT}/{mount.dataset}/{mount.version}"


def validation_error(r: Request, exc: RequestValidationError) -> JSONResponse:
    """422 in the API's one error shape: ``detail`` (one line: the first problem and its
    field) and ``errors`` (FastAPI's list of every problem: ``loc``, ``msg``, ``type``…)."""
    errors = jsonable_encoder(exc.errors())
    return JSONResponse(
        {"detail": egress_api._validation_detail(errors), "errors": errors}, status_code=422
    )


#: the Swagger page's files, from the fastapi-offline package (name → media type)
SWAGGER_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}


def create_app(
    data_dir: DataDir,
    *,
    base_url: str = "http://127.0.0.1:8000",
    bridge_token: str | None = None,
    browser_auth: HubBrowserAuth | None = None,
    hub_servers: HubClient | None = None,
) -> FastAPI:
    """The API of one installation; ``bridge_token`` enables ``/api/bridge/...`` (else 503).

    ``browser_auth`` (the hub's OAuth client when the hub runs this as its ``hdh``
    service) enables the web pages under ``/ui/`` and serves everything under the
    service prefix too; ``hub_servers`` lets those pages restart a sandbox."""
    hub_box: dict[str, Hub] = {}
    cat = catalogue.Catalogue()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        hub_box["hub"] = open_hub(data_dir)
        try:
            yield
        finally:
            hub_box.pop("hub").close()

    app = FastAPI(
        title="HDH control plane",
        version=__version__,
        description="Catalogue (public, read-only), ingestion, opt-out register and audit log.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served below, with its assets from the package
        redoc_url=None,
        lifespan=lifespan,
    )

    # The Swagger page's scripts and styles come from the fastapi-offline package, never from
    # a CDN: an offline installation shows it, and no third-party script runs in this origin.
    @app.get("/api/docs", include_in_schema=False)
    def swagger_page(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}/api/openapi.json",
            title="HDH control plane — API",
            swagger_js_url=f"{root}/api/docs-static/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/api/docs-static/swagger-ui.css",
            swagger_favicon_url=f"{root}/api/docs-static/favicon.png",
        )

    @app.get("/api/docs-static/{name}", include_in_schema=False)
    def swagger_asset(name: str) -> FileResponse:
        media = SWAGGER_ASSETS.get(name)
        if media is None:
            raise HTTPException(404, f"no such file: {name}")
        return FileResponse(Path(str(files("fastapi_offline") / "static" / name)), media_type=media)

    def hub() -> Hub:
        return hub_box["hub"]

    def session() -> Iterator[Session]:
        with hub().sessions() as s:
            yield s

    Db = Annotated[Session, Depends(session)]

    def require(*roles: str) -> Callable[..., User]:
        def check(
            request: Request,
            creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
            s: Db,
        ) -> User:
            if creds is None:
                raise HTTPException(401, missing_bearer(request), {"WWW-Authenticate": "Bearer"})
            user = authenticate(s, creds.credentials)
            if user is None:
                raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"})
            if user.role not in roles:
                raise HTTPException(
                    403, f"role {user.role!r} may not do this (needs {' or '.join(roles)})"
                )
            return user

        return check

    Controller = Annotated[User, Depends(require(*CONTROLLERS))]
    Admin = Annotated[User, Depends(require("admin"))]
    Anyone = Annotated[User, Depends(require(*ROLES))]

    @app.exception_handler(HdhError)
    async def domain_error(_r: Request, exc: HdhError) -> JSONResponse:
        # the one mapping of HDH's error vocabulary (jupyterlab_hdh/errors.py) to HTTP
        return JSONResponse({"detail": exc.detail(), **exc.extra()}, status_code=exc.http_status)

    @app.exception_handler(Exception)
    async def unexpected(_r: Request, exc: Exception) -> JSONResponse:
        # Starlette still logs the traceback (uvicorn's log); the caller gets the same shape
        return JSONResponse(
            {"detail": "internal error of the control plane: see its log for the traceback"},
            status_code=500,
        )

    # --- public -----------------------------------------------------------------------------

    @app.get("/api/health", tags=["public"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/api/catalogue/datasets", tags=["catalogue"])
    def list_datasets(s: Db) -> list[dict[str, Any]]:
        return [r.model_dump(mode="json", exclude={"tables"}) for r in catalogue.records(s)]

    @app.get("/api/catalogue/datasets/{name}", tags=["catalogue"])
    def get_dataset(name: str, s: Db) -> dict[str, Any]:
        out = catalogue.get_record(s, name).model_dump(mode="json")
        out["versions"] = catalogue.versions(s, name)
        return out

    @app.get("/api/catalogue/datasets/{name}/versions/{version}", tags=["catalogue"])
    def get_version(name: str, version: str, s: Db) -> dict[str, Any]:
        return catalogue.get_record(s, name, version).model_dump(mode="json")

    @app.get("/api/catalogue/datasets/{name}/versions/{version}/quality", tags=["catalogue"])
    def get_quality(name: str, version: str, s: Db) -> dict[str, Any]:
        return catalogue.version_row(s, name, version).quality

    @app.get(
        "/api/catalogue/datasets/{name}/versions/{version}/tables/{table}",
        tags=["catalogue"],
        responses={200: {"content": {"text/csv": {}}}},
    )
    def get_dictionary(
        name: str,
        version: str,
        table: str,
        s: Db,
        format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
    ) -> Response:
        record = catalogue.get_record(s, name, version)
        try:
            table_record = record.table(table)
        except KeyError:
            raise catalogue.NotInCatalogue(f"{name} {version} has no table {table!r}") from None
        if format == "csv":
            return PlainTextResponse(
                dictionary_csv(table_record), media_type="text/csv; charset=utf-8"
            )
        return JSONResponse(table_record.model_dump(mode="json"))

    @app.get("/api/catalogue/search", tags=["catalogue"])
    def search(
        s: Db,
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> list[models.HitOut]:
        try:
            hits = cat.search(s, q, limit)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return [models.HitOut(**asdict(h)) for h in hits]

    @app.get(
        "/api/catalogue/dcat.jsonld",
        tags=["catalogue"],
        responses={200: {"content": {"application/ld+json": {}}}},
    )
    def dcat(s: Db) -> Response:
        body = json.dumps(cat.dcat(s, base_url), ensure_ascii=False, indent=1)
        return Response(body, media_type="application/ld+json")

    # The DCAT export's links (``catalogue/records.py``: landing and table pages): the same
    # answers as the routes above, so every URL a harvester finds resolves.
    @app.get("/catalogue", tags=["catalogue"], summary="DCAT: the catalogue's homepage")
    def catalogue_home(s: Db) -> list[dict[str, Any]]:
        return list_datasets(s)

    @app.get(
        "/catalogue/{name}/{version}", tags=["catalogue"], summary="DCAT: a version's landing page"
    )
    def catalogue_landing(name: str, version: str, s: Db) -> dict[str, Any]:
        return get_version(name, version, s)

    @app.get(
        "/catalogue/{name}/{version}/tables/{table}",
        tags=["catalogue"],
        summary="DCAT: a table's access URL (its data dictionary)",
        responses={200: {"content": {"text/csv": {}}}},
    )
    def catalogue_table(
        name: str,
        version: str,
        table: str,
        s: Db,
        format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
    ) -> Response:
        return get_dictionary(name, version, table, s, format)

    # --- data controllers ----------------------------------------------------------------------

    @app.post("/api/datasets/{name}/versions", tags=["data"], status_code=201)
    def ingest(name: str, body: models.IngestRequest, user: Controller) -> models.VersionOut:
        incoming = hub().data_dir.incoming.resolve()
        source = (incoming / body.source).resolve()
        if not source.is_relative_to(incoming) or "\x00" in body.source:
            raise HTTPException(
                422, "source must be a folder inside the data directory's incoming/"
            )
        desc = ingestion.DatasetDescription(
            title=body.title,
            description=body.description,
            population=body.population,
            synthetic=body.synthetic,
        )
        if body.controller:
            desc.controller = body.controller
        if body.contact:
            desc.contact = body.contact
        version = ingestion.ingest(
            hub(),
            Path(source),
            name,
            actor=user.name,
            description=desc,
            identifiers=body.identifiers,
        )
        return models.VersionOut(
            dataset=name,
            version=version.label,
            status=version.status,
            records=version.record.get("records"),
            individuals=version.record.get("individuals"),
            content_sha256=version.content_sha256,
            quality=version.quality.get("summary", {}),
        )

    @app.post("/api/optout", tags=["data"], status_code=201)
    def add_optout(body: models.OptOutRequest, user: Controller) -> models.OptOutOut:
        with hub().transaction() as s:
            reg_id, added = optout.add(s, hub().keys, body.identifier, actor=user.name)
        return models.OptOutOut(register_id=reg_id, added=added)

    @app.post("/api/optout/reapply", tags=["data"])
    def reapply(user: Controller, dataset: str | None = None) -> models.ReapplyOut:
        outcomes = ingestion.reapply_optout(hub(), actor=user.name, dataset=dataset)
        with hub().transaction() as s:
            moved = projects.follow_optout_versions(s, actor=projects.Actor.of(user))
        return models.ReapplyOut(
            outcomes=dict(outcomes),
            permits=[models.PermitMoveOut(permit=o, new_permit=n, outcome=w) for o, n, w in moved],
        )

    # --- administrators ------------------------------------------------------------------------

    @app.get("/api/audit/verify", tags=["audit"])
    def audit_verify(s: Db, _user: Admin) -> models.AuditVerifyOut:
        return models.AuditVerifyOut(**verify(s).to_dict())

    @app.get("/api/audit/events", tags=["audit"])
    def audit_events(
        s: Db,
        _user: Admin,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[models.AuditEventOut]:
        rows = s.scalars(
            select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(limit)
        )
        return [
            models.AuditEventOut(
                seq=e.seq,
                ts=e.ts,
                actor=e.actor,
                action=e.action,
                target=e.target,
                details=json.loads(e.details),
                hash=e.hash,
            )
            for e in rows
        ]

    # --- projects and permits -----------------------------------------------------------------
    # Routes authenticate; the domain functions authorise from the caller's role (and, for
    # member changes, whether the caller leads the project).

    def project_out(s: Session, slug: str) -> models.ProjectOut:
        view = projects.project_view(s, projects.get_project(s, slug), hub().data_dir)
        return models.ProjectOut.model_validate(view)

    def permit_out(permit: Any) -> models.PermitOut:
        return models.PermitOut.model_validate(projects.permit_view(permit, hub().data_dir))

    @app.post("/api/projects", tags=["projects"], status_code=201)
    def create_project(body: models.ProjectIn, user: Anyone) -> models.ProjectOut:
        with hub().transaction() as s:
            projects.create_project(
                s, body.slug, title=body.title, purpose=body.purpose, actor=projects.Actor.of(user)
            )
            return project_out(s, body.slug)

    @app.get("/api/projects", tags=["projects"])
    def list_projects(s: Db, user: Anyone) -> list[models.ProjectOut]:
        """Researchers see the projects they are members of; other roles see all."""
        mine = user.name if user.role == "researcher" else None
        return [project_out(s, p.slug) for p in projects.projects_of(s, mine)]

    @app.get("/api/projects/{slug}", tags=["projects"])
    def get_project(slug: str, s: Db, user: Anyone) -> models.ProjectOut:
        project = projects.get_project(s, slug)
        if user.role == "researcher" and projects.membership(s, project, user.name) is None:
            raise projects.NotAMember(f"{user.name!r} is not a member of project {slug!r}")
        return project_out(s, slug)

    @app.post("/api/projects/{slug}/members", tags=["projects"], status_code=201)
    def add_member(slug: str, body: models.MemberIn, user: Anyone) -> models.ProjectOut:
        with hub().transaction() as s:
            projects.add_member(s, slug, body.user, role=body.role, actor=projects.Actor.of(user))
            return project_out(s, slug)

    @app.delete("/api/projects/{slug}/members/{member}", tags=["projects"], status_code=204)
    def remove_member(slug: str, member: str, user: Anyone) -> Response:
        with hub().transaction() as s:
            projects.remove_member(s, slug, member, actor=projects.Actor.of(user))
        return Response(status_code=204)

    @app.post("/api/projects/{slug}/permits", tags=["permits"], status_code=201)
    def grant_permit(slug: str, body: models.PermitIn, user: Anyone) -> models.PermitOut:
        if (body.expires_at is None) == (body.days is None):
            raise HTTPException(422, "give exactly one of expires_at and days")
        expires_at = body.expires_at or datetime.now(UTC) + timedelta(days=body.days or 0)
        with hub().transaction() as s:
            permit = projects.grant_permit(
                s,
                slug,
                members=body.members,
                datasets=body.datasets,
                expires_at=expires_at,
                actor=projects.Actor.of(user),
            )
            return permit_out(permit)

    @app.post("/api/permits/{permit_id}/revoke", tags=["permits"])
    def revoke_permit(permit_id: int, body: models.RevokeIn, user: Anyone) -> models.PermitOut:
        with hub().transaction() as s:
            permit = projects.revoke_permit(
                s, permit_id, reason=body.reason, actor=projects.Actor.of(user)
            )
            return permit_out(permit)

    @app.get("/api/permits", tags=["permits"])
    def list_permits(
        s: Db, _user: Controller, project: str | None = None
    ) -> list[models.PermitOut]:
        only = projects.get_project(s, project) if project is not None else None
        return [permit_out(p) for p in projects.permits(s, only)]

    access_responses: dict[int | str, dict[str, Any]] = {
        403: {"model": models.AccessDeniedOut, "description": "no access now, and why"},
        404: {"model": models.AccessDeniedOut, "description": "no such project"},
    }

    def access(s: Session, user_name: str, slug: str) -> models.AccessOut:
        permit = projects.active_permit(s, user_name, slug)
        plan = projects.mount_plan(s, permit, user_name, hub().data_dir)
        return models.AccessOut(
            user=user_name,
            project=slug,
            permit=permit.id,
            expires_at=projects.permit_view(permit, hub().data_dir)["expires_at"],
            mounts=plan["mounts"],
            permitted=plan["permitted"],  # with "mounted": the data panel's list
        )

    @app.get("/api/projects/{slug}/access", tags=["permits"], responses=access_responses)
    def check_access(
        slug: str,
        s: Db,
        caller: Anyone,
        user: Annotated[str | None, Query(max_length=100)] = None,
    ) -> models.AccessOut:
        """May ``user`` (default: the caller) open the project now, with which mounts?

        Asking about someone else needs data_controller or admin (the spawner and guard
        run as services with such a token)."""
        who = user or caller.name
        if who != caller.name and caller.role not in CONTROLLERS:
            raise HTTPException(403, "only data_controller or admin may check another user")
        return access(s, who, slug)

    @app.get("/api/me/projects/{slug}/access", tags=["permits"], responses=access_responses)
    def my_access(slug: str, s: Db, caller: Anyone) -> models.AccessOut:
        return access(s, caller.name, slug)

    @app.put("/api/me/projects/{slug}/mounts", tags=["permits"], responses=access_responses)
    def choose_mounts(slug: str, body: models.MountsIn, caller: Anyone) -> models.AccessOut:
        """Choose which of the permit's dataset versions your sandbox of ``slug`` mounts
        (``NAME/vN`` each; empty: the newest of each dataset). Takes effect when the sandbox
        next starts: the hub's "change mounted versions" page restarts it."""
        with hub().transaction() as s:
            projects.select_mounts(
                s, slug, caller.name, body.versions, hub().data_dir, actor=projects.Actor.of(caller)
            )
            return access(s, caller.name, slug)

    # --- the API bridge: sandboxes, identified by the hub's bridge ------------------------------

    def bridged(
        s: Db,
        x_hdh_bridge: Annotated[str | None, Header()] = None,
        x_hdh_user: Annotated[str | None, Header(max_length=100)] = None,
        x_hdh_project: Annotated[str | None, Header(max_length=100)] = None,
    ) -> models.AccessOut:
        """The (user, project) the bridge vouches for, with the permit that lets them in now."""
        if not bridge_token:
            raise HTTPException(503, "the API bridge is not configured on this control plane")
        if not x_hdh_bridge:
            raise HTTPException(401, "bridge routes are reached through a sandbox's API bridge")
        if not hmac.compare_digest(x_hdh_bridge.encode(), bridge_token.encode()):
            raise HTTPException(403, "invalid bridge token")
        if not x_hdh_user or not x_hdh_project:
            raise HTTPException(400, "the bridge sent no user or project")
        return access(s, x_hdh_user, x_hdh_project)  # PermitError → 403 with the reason

    Bridged = Annotated[models.AccessOut, Depends(bridged)]
    bridge_responses: dict[int | str, dict[str, Any]] = {
        **access_responses,
        401: {"description": "no bridge token"},
        403: {"model": models.AccessDeniedOut, "description": "bad token, or no access now"},
    }

    @app.get("/api/bridge/whoami", tags=["bridge"], responses=bridge_responses)
    def bridge_whoami(me: Bridged) -> models.AccessOut:
        """Who the control plane believes the calling sandbox is: user, project, permit, what
        it mounts and every version the permit grants (the data panel).

        (Bridged routes that change state will be audited; reads are not.) Paths are the
        sandbox's own (``/data/<dataset>/<version>``, as ``/hdh/mounts`` shows them), never
        the host's; a permitted version that is not mounted has none."""
        mounts = [m.model_copy(update={"path": in_sandbox(m)}) for m in me.mounts]
        permitted = [
            p.model_copy(update={"path": in_sandbox(p) if p.mounted else ""}) for p in me.permitted
        ]
        return me.model_copy(update={"mounts": mounts, "permitted": permitted})

    egress_api.register(  # the airlock
        app, hub=hub, require=require, bridged=bridged, browser_auth=browser_auth
    )
    register_pages(app, hub, browser_auth, hub_servers)
    # registered last: replaces FastAPI's ``{"detail": [...]}`` (and the airlock's own) handler
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    if browser_auth is not None:
        app.add_middleware(StripPrefix, prefix=browser_auth.prefix)
    return app
