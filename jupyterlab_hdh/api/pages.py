"""The control plane's web pages (for people in a browser, logged in through the hub).

Owns ``/ui/...``: the list of one's projects, and each project's "dataset
versions" page where a member chooses which permitted versions their sandbox
mounts; saving restarts the sandbox (the page says so first): the selection
is stored (audited), the running server is stopped through the hub's REST
API, and the browser is sent to the hub's spawn page, which starts it again
with the new mounts. Pages are Jinja2 templates with autoescaping, no script,
and a strict Content-Security-Policy. Thin: the domain is
:mod:`jupyterlab_hdh.governance.projects`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from jupyterlab_hdh.api.browser import BrowserAuthError, BrowserUser, HubBrowserAuth, NotLoggedIn
from jupyterlab_hdh.api.hub_client import HubClient, HubRefused, HubUnavailable
from jupyterlab_hdh.api.templating import TEMPLATES
from jupyterlab_hdh.context import Hub
from jupyterlab_hdh.governance import projects
from jupyterlab_hdh.governance.accounts import get_user

HERE = Path(__file__).parent
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_FORM_BYTES = 64 * 2**10

_templates = TEMPLATES


def _page(name: str, status: int = 200, **ns: Any) -> HTMLResponse:
    html = _templates.get_template(name).render(**ns)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def _message(title: str, text: str, status: int, **ns: Any) -> HTMLResponse:
    return _page("message.html", status, title=title, text=text, **ns)


def register_pages(
    app: FastAPI,
    hub: Callable[[], Hub],
    auth: HubBrowserAuth | None,
    servers: HubClient | None = None,
) -> None:
    """Add ``/ui/...`` and ``/oauth_callback`` to the control-plane app."""
    hub_prefix = os.environ.get("JUPYTERHUB_BASE_URL", "/")
    prefix = auth.prefix if auth else "/"

    def common(user: str = "") -> dict[str, Any]:
        return {"prefix": prefix, "hub_prefix": hub_prefix, "user": user}

    async def browser_user(request: Request) -> BrowserUser:
        if auth is None:
            raise BrowserAuthError("the web pages need the hub: start with `hdh up`")
        return await auth.user(dict(request.cookies), prefix + request.url.path.lstrip("/"))

    def login_redirect(exc: NotLoggedIn) -> Response:
        r = RedirectResponse(exc.login_url, status_code=302, headers=PAGE_HEADERS)
        name, value = exc.state_cookie
        assert auth is not None
        r.set_cookie(name, value, max_age=600, **auth.cookie_options())
        return r

    @app.exception_handler(NotLoggedIn)
    async def _not_logged_in(_request: Request, exc: NotLoggedIn) -> Response:
        return login_redirect(exc)

    @app.exception_handler(BrowserAuthError)
    async def _auth_error(_request: Request, exc: BrowserAuthError) -> Response:
        status = 503 if auth is None else 400
        return _message("Cannot log in", str(exc), status, **common())

    @app.get("/ui/static/hdh.css", include_in_schema=False)
    def stylesheet() -> Response:
        return FileResponse(HERE / "static" / "hdh.css", media_type="text/css")

    @app.get("/oauth_callback", include_in_schema=False)
    async def oauth_callback(request: Request, code: str = "", state: str = "") -> Response:
        if auth is None:
            raise BrowserAuthError("the web pages need the hub: start with `hdh up`")
        token, next_url = await auth.callback(code, state, dict(request.cookies))
        r = RedirectResponse(next_url, status_code=302, headers=PAGE_HEADERS)
        r.set_cookie(auth.cookie_name, token, **auth.cookie_options())
        r.delete_cookie(auth.state_cookie_name, path=auth.prefix)
        return r

    @app.get("/ui/", include_in_schema=False)
    async def my_projects(request: Request) -> Response:
        me = await browser_user(request)

        def load() -> list[dict[str, Any]]:
            out = []
            with hub().sessions() as s:
                for p in projects.projects_of(s, me.name):
                    row: dict[str, Any] = {"slug": p.slug, "title": p.title, "access": False}
                    try:
                        permit = projects.active_permit(s, me.name, p.slug)
                    except projects.PermitError as exc:
                        row["reason"] = str(exc)
                    else:
                        view = projects.permit_view(permit, hub().data_dir)
                        row.update(access=True, permit=permit.id, expires_at=view["expires_at"])
                    out.append(row)
            return out

        rows = await asyncio.to_thread(load)
        return _page("projects.html", title="Your projects", projects=rows, **common(me.name))

    def plan_of(user: str, slug: str) -> dict[str, Any]:
        with hub().sessions() as s:
            permit = projects.active_permit(s, user, slug)
            return projects.mount_plan(s, permit, user, hub().data_dir)

    async def datasets_page(
        me: BrowserUser, slug: str, *, error: str = "", status: int = 200
    ) -> Response:
        try:
            plan = await asyncio.to_thread(plan_of, me.name, slug)
        except projects.PermitError as exc:
            return _message(f"Project {slug}", str(exc), 403, **common(me.name))
        running = servers is not None and await servers.running(me.name, slug)
        assert auth is not None
        return _page(
            "datasets.html",
            status=status,
            title=f"Dataset versions of {slug}",
            slug=slug,
            plan=plan,
            running=running,
            error=error,
            form_token=me.form_token(auth.form_secret),
            **common(me.name),
        )

    @app.get("/ui/projects/{slug}/datasets", include_in_schema=False)
    async def datasets(request: Request, slug: str) -> Response:
        me = await browser_user(request)
        return await datasets_page(me, slug)

    @app.post("/ui/projects/{slug}/datasets", include_in_schema=False)
    async def choose_datasets(request: Request, slug: str) -> Response:
        me = await browser_user(request)
        assert auth is not None
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _message("Dataset versions", "form too large", 413, **common(me.name))
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return _message("Dataset versions", "expected a form post", 415, **common(me.name))
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        except (UnicodeDecodeError, ValueError):
            return _message("Dataset versions", "malformed form", 400, **common(me.name))
        if not auth.check_form(me, (form.get("_form") or [""])[0]):
            return _message(
                "Dataset versions",
                "this form expired or came from another site: reload the page and try again",
                403,
                **common(me.name),
            )
        versions = form.get("version", [])

        def save() -> None:
            with hub().transaction() as s:
                user = get_user(s, me.name)
                projects.select_mounts(
                    s, slug, me.name, versions, hub().data_dir, actor=projects.Actor.of(user)
                )

        try:
            await asyncio.to_thread(save)
        except (projects.ProjectError, projects.NotAuthorised) as exc:
            return await datasets_page(me, slug, error=str(exc), status=422)
        except projects.PermitError as exc:
            return _message(f"Project {slug}", str(exc), 403, **common(me.name))
        if servers is not None:
            try:
                await servers.stop(me.name, slug)
            except (HubRefused, HubUnavailable, httpx.HTTPError) as exc:
                return await datasets_page(
                    me, slug, error=f"saved, but the sandbox was not restarted: {exc}", status=502
                )
        spawn = f"{hub_prefix}hub/spawn/{quote(me.name)}/{quote(slug)}"
        return RedirectResponse(spawn, status_code=303, headers=PAGE_HEADERS)
