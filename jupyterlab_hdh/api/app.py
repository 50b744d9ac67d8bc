"""The control-plane API: the app, its one error shape, and its route table.

Catalogue metadata (``/api/catalogue/...``, and ``/catalogue/...``: the landing
and table pages the DCAT export links to) is public and read-only; every other
route needs a bearer token (``hdh user token NAME``: ``Authorization: Bearer``,
not JupyterHub's ``token`` scheme) of a user whose role allows it (``deps.py``); under the
hub's service prefix, the airlock's routes also take the pages' hub cookie with the
session's ``X-HDH-Token`` (``GET /ui/api/session``: the review widget in JupyterLab).
Every error is ``{"detail": "one line"}``, plus ``reason`` (permit refusals) or
``errors`` (FastAPI's list, for invalid input): one handler maps every domain error,
an :class:`~jupyterlab_hdh.errors.HdhError`, to its ``http_status``. The OpenAPI
document is served at ``/api/openapi.json`` (under the hub's service prefix too); every
operation in it has a response schema or a declared media type.

The routes are ``APIRouter`` modules under ``routes/``, one per area, each thin: parse,
call the domain, return a pydantic model (``models.py``, ``egress_models.py``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from jupyterlab_hdh import __version__
from jupyterlab_hdh.api.browser import BrowserAuthError, HubBrowserAuth, NotLoggedIn, StripPrefix
from jupyterlab_hdh.api.deps import ApiConfig
from jupyterlab_hdh.api.hub_client import HubClient
from jupyterlab_hdh.api.routes import (
    application_pages,
    applications,
    audit,
    bridge,
    catalogue,
    data,
    egress,
    egress_pages,
    pages,
    projects,
    register,
    service,
    session,
)
from jupyterlab_hdh.context import Installation, open_installation
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.paths import DataDir

ROUTERS = (
    service.router,  # /api/health, /api/docs (Swagger, offline)
    catalogue.router,  # /api/catalogue/..., /catalogue/... (public, read-only)
    data.router,  # /api/datasets/{name}/versions, /api/optout (data controllers)
    audit.router,  # /api/audit/... (administrators)
    projects.router,  # /api/projects/..., /api/permits/..., /api/me/... (projects, permits)
    applications.router,  # /api/applications/... (the access desk: opinions, decisions)
    bridge.router,  # /api/bridge/... (sandboxes, through the hub's API bridge)
    egress.router,  # /api/egress/... (the airlock)
    egress_pages.router,  # /ui/egress/... (the airlock's browser pages)
    application_pages.router,  # /ui/applications/... (the access desk's browser pages)
    register.router,  # /ui/register/..., /api/register (the public register: no login)
    session.router,  # /ui/api/session (who the browser is, for the review widget)
    pages.router,  # /ui/..., /oauth_callback (project pages, hub login)
)


log = logging.getLogger(__name__)

#: how often ``hdh serve`` (and so ``hdh up``) archives the workspaces of ended permits and
#: reopens renewed ones (``governance.retention.sweep``: two cheap queries when idle)
SWEEP_SECONDS = 10.0


def _sweep_once(inst: Installation) -> None:
    from jupyterlab_hdh.governance import retention

    with inst.transaction() as s:
        changed = [o for o in retention.sweep(s, inst.data_dir) if o.action != "due"]
    for o in changed:  # a due archive waits for `hdh workspace purge`: not logged every round
        log.info("workspace of %s: %s %s", o.project, o.action, o.detail)


async def sweep_workspaces(inst: Installation, every: float = SWEEP_SECONDS) -> None:
    """Run :func:`_sweep_once` now and every ``every`` seconds until cancelled; a failure is
    logged and tried again at the next round (it never stops the control plane)."""
    while True:
        try:
            await asyncio.to_thread(_sweep_once, inst)
        except Exception:  # a bad governance.toml, a disk error: logged, retried
            log.exception("the workspace retention sweep failed (will retry)")
        await asyncio.sleep(every)


def create_app(
    data_dir: DataDir,
    *,
    base_url: str = "http://127.0.0.1:8000",
    bridge_token: str | None = None,
    browser_auth: HubBrowserAuth | None = None,
    hub_servers: HubClient | None = None,
    sweep_every: float | None = None,
) -> FastAPI:
    """The API of one installation; ``bridge_token`` enables ``/api/bridge/...`` (else 503).

    ``browser_auth`` (the hub's OAuth client when the hub runs this as its ``hdh``
    service) enables the web pages under ``/ui/`` and serves everything under the
    service prefix too; ``hub_servers`` lets those pages restart a sandbox; ``sweep_every``
    (seconds) runs the workspaces' retention sweep while the app runs."""
    cfg = ApiConfig(
        data_dir,
        base_url=base_url,
        bridge_token=bridge_token,
        browser_auth=browser_auth,
        hub_servers=hub_servers,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        cfg.installation = open_installation(data_dir)
        sweeper = None
        try:
            # finish the releases a crash interrupted (never keeps the app from starting)
            await asyncio.to_thread(egress.recover_at_start, cfg.installation)
            if sweep_every is not None:
                sweeper = asyncio.create_task(sweep_workspaces(cfg.installation, sweep_every))
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
            cfg.installation.close()
            cfg.installation = None

    app = FastAPI(
        title="HDH control plane",
        version=__version__,
        description="Catalogue (public, read-only), ingestion, opt-out register, audit log,"
        " projects and permits, applications for access, and the airlock.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # routes/service.py serves it, with its assets from the package
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.hdh = cfg
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(HdhError, domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected)
    app.add_exception_handler(NotLoggedIn, pages.not_logged_in)  # the pages: to the hub's login
    app.add_exception_handler(BrowserAuthError, pages.auth_error)
    if browser_auth is not None:
        app.add_middleware(StripPrefix, prefix=browser_auth.prefix)
    return app


# --- the one error shape ------------------------------------------------------------------------


async def domain_error(_r: Request, exc: HdhError) -> JSONResponse:
    """The one mapping of HDH's error vocabulary (``jupyterlab_hdh/errors.py``) to HTTP."""
    return JSONResponse({"detail": exc.detail(), **exc.extra()}, status_code=exc.http_status)


async def unexpected(_r: Request, exc: Exception) -> JSONResponse:
    # Starlette still logs the traceback (uvicorn's log); the caller gets the same shape
    return JSONResponse(
        {"detail": "internal error of the control plane: see its log for the traceback"},
        status_code=500,
    )


def validation_error(_r: Request, exc: RequestValidationError) -> JSONResponse:
    """422 in the API's one error shape: ``detail`` (one line: the first problem and its
    field) and ``errors`` (FastAPI's list of every problem: ``loc``, ``msg``, ``type``…)."""
    errors = jsonable_encoder(exc.errors())
    return JSONResponse({"detail": validation_detail(errors), "errors": errors}, status_code=422)


#: Names pydantic puts in an error's location for the branch of a union it tried.
_BRANCH = re.compile(r"[A-Z].*|.*[\[\]-].*|str|int")
#: Errors of a union's branch of another type than the value's.
_WRONG_BRANCH = frozenset(
    {"model_type", "model_attributes_type", "dict_type", "string_type", "list_type", "int_type"}
)


def validation_detail(errors: Sequence[Any]) -> str:
    """One line for an invalid body: the first problem and the field it is in."""
    found = [e for e in errors if isinstance(e, dict)]
    if not found:
        return "invalid input"
    # a value that fits none of a union's types: the branch of its own type says why
    first = next((e for e in found if e.get("type") not in _WRONG_BRANCH), found[0])
    loc = [
        str(x)
        for x in first.get("loc", ())[1:]
        if not (isinstance(x, str) and _BRANCH.fullmatch(x))
    ]
    msg = str(first.get("msg") or "invalid value").removeprefix("Value error, ")
    text = f"{'.'.join(loc)}: {msg}" if loc else msg
    return " ".join(text.split())[:300]
