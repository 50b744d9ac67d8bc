"""Routes of the control-plane API: one table, thin handlers mapping domain errors to HTTP.

(No ``from __future__ import annotations`` here: FastAPI must see the dependency
aliases defined inside ``create_app`` as objects, not strings.)

Catalogue metadata (``/api/catalogue/...``) is public and read-only; every
other route needs a bearer token (``hdh user token NAME``) of a user whose role
allows it. The OpenAPI spec is served at ``/api/openapi.json``.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyterlab_hdh import __version__
from jupyterlab_hdh.api import models
from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.catalogue import manager as catalogue
from jupyterlab_hdh.catalogue.dictionary import dictionary_csv
from jupyterlab_hdh.context import Hub, open_hub
from jupyterlab_hdh.data import ingest as ingestion
from jupyterlab_hdh.data import optout
from jupyterlab_hdh.data.pseudonymise import KeyFileError
from jupyterlab_hdh.governance.accounts import authenticate
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.store.models import AuditEvent, User

bearer = HTTPBearer(auto_error=False)
CONTROLLERS = ("data_controller", "admin")


def create_app(data_dir: DataDir, *, base_url: str = "http://127.0.0.1:8000") -> FastAPI:
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
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )

    def hub() -> Hub:
        return hub_box["hub"]

    def session() -> Iterator[Session]:
        with hub().sessions() as s:
            yield s

    Db = Annotated[Session, Depends(session)]

    def require(*roles: str) -> Callable[..., User]:
        def check(
            creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)], s: Db
        ) -> User:
            if creds is None:
                raise HTTPException(401, "authentication required", {"WWW-Authenticate": "Bearer"})
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

    @app.exception_handler(catalogue.NotInCatalogue)
    async def not_found(_r: Request, exc: catalogue.NotInCatalogue) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ingestion.IngestError)
    async def bad_ingest(_r: Request, exc: ingestion.IngestError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(optout.OptOutError)
    async def bad_optout(_r: Request, exc: optout.OptOutError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(KeyFileError)
    async def keys_unusable(_r: Request, exc: KeyFileError) -> JSONResponse:
        return JSONResponse({"detail": f"pseudonymisation keys unusable: {exc}"}, status_code=503)

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
        return models.ReapplyOut(outcomes=dict(outcomes))

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

    return app
