"""The control plane's web pages (for people in a browser, logged in through the hub).

Owns ``/ui/...``: the list of one's projects, and each project's "dataset
versions" page where a member chooses which permitted versions their sandbox
mounts; saving restarts the sandbox (the page says so first): the selection
is stored (audited), the running server is stopped through the hub's REST
API, and the browser is sent to the hub's spawn page, which starts it again
with the new mounts. Pages are Jinja2 templates with autoescaping, no script,
and a strict Content-Security-Policy, in the one layout of ``templates/base.html``
(:func:`page_context`: the person's name, role and the navigation that role may
follow). Thin: the domain is :mod:`jupyterlab_hdh.governance.projects`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from jupyterlab_hdh.api.browser import BrowserAuthError, BrowserUser, HubBrowserAuth, NotLoggedIn
from jupyterlab_hdh.api.deps import ApiConfig, config
from jupyterlab_hdh.api.hub_client import HubRefused, HubUnavailable
from jupyterlab_hdh.api.templating import (
    DEFAULT_LANGUAGE,
    LANG_COOKIE,
    LANG_COOKIE_MAX_AGE,
    N_,
    layout,
    negotiate,
    safe_next,
    status_phrase,
    supported,
    templates,
    translator,
)
from jupyterlab_hdh.governance import projects
from jupyterlab_hdh.governance.accounts import AccountError, get_user

HERE = Path(__file__).resolve().parent.parent  # api/: static/ and templates/
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

#: How a member's role in a project is named on the pages (English: the msgids).
MEMBER_ROLES = {"lead": N_("lead"), "member": N_("member")}


def _page(name: str, status: int = 200, **ns: Any) -> HTMLResponse:
    """``name`` rendered in the page's language (``ns["lang"]``, from :func:`layout`)."""
    html = templates(ns.get("lang", DEFAULT_LANGUAGE)).get_template(name).render(**ns)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def _message(title: str, text: str, status: int, **ns: Any) -> HTMLResponse:
    """A refusal or an error in the layout: the one line, its status, a link back."""
    phrase = status_phrase(status, ns.get("lang", DEFAULT_LANGUAGE))
    return _page(
        "message.html", status, title=title, text=text, code=status, status_phrase=phrase, **ns
    )


router = APIRouter(include_in_schema=False)


def _hub_prefix() -> str:
    return os.environ.get("JUPYTERHUB_BASE_URL", "/")


def language_of(request: Request | None) -> str:
    """The page's language for this browser: its choice (the cookie of the header's switch),
    else its ``Accept-Language``, else English."""
    if request is None:
        return DEFAULT_LANGUAGE
    return negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def _prefix(cfg: ApiConfig) -> str:
    return cfg.browser_auth.prefix if cfg.browser_auth else "/"


def _common(
    cfg: ApiConfig,
    user: str = "",
    role: str | None = None,
    current: str = "",
    request: Request | None = None,
) -> dict[str, Any]:
    prefix = _prefix(cfg)
    here = prefix + request.url.path.lstrip("/") if request is not None else ""
    return layout(
        user=user,
        role=role,
        prefix=prefix,
        hub_prefix=_hub_prefix(),
        current=current,
        lang=language_of(request),
        here=here,
    )


def role_of(cfg: ApiConfig, name: str) -> str | None:
    """``name``'s platform role in the store (None: a hub account the store does not know)."""
    with cfg.opened().sessions() as s:
        try:
            return str(get_user(s, name).role)
        except AccountError:
            return None


async def page_context(
    cfg: ApiConfig, me: BrowserUser, current: str = "", request: Request | None = None
) -> dict[str, Any]:
    """The layout's namespace for the signed-in ``me``: name, role and navigation, in the
    language of ``request``'s browser (English without one)."""
    role = await asyncio.to_thread(role_of, cfg, me.name)
    return _common(cfg, me.name, role, current, request)


def _auth(cfg: ApiConfig) -> HubBrowserAuth:
    if cfg.browser_auth is None:
        raise BrowserAuthError("the web pages need the hub: start with `hdh up`")
    return cfg.browser_auth


async def browser_user(request: Request) -> BrowserUser:
    auth = _auth(config(request))
    return await auth.user(dict(request.cookies), auth.prefix + request.url.path.lstrip("/"))


async def not_logged_in(request: Request, exc: Exception) -> Response:
    """The handler of :class:`NotLoggedIn`: to the hub's login, with the OAuth state cookie."""
    assert isinstance(exc, NotLoggedIn)
    auth = _auth(config(request))
    r = RedirectResponse(exc.login_url, status_code=302, headers=PAGE_HEADERS)
    name, value = exc.state_cookie
    r.set_cookie(name, value, max_age=600, **auth.cookie_options())
    return r


async def auth_error(request: Request, exc: Exception) -> Response:
    """The handler of :class:`BrowserAuthError`: a page saying why one cannot log in."""
    cfg = config(request)
    status = 503 if cfg.browser_auth is None else 400
    common = _common(cfg, request=request)
    _ = translator(common["lang"])
    return _message(_("Cannot log in"), str(exc), status, **common)


@router.get("/ui/static/hdh.css", response_class=FileResponse)
def stylesheet() -> Response:
    return FileResponse(HERE / "static" / "hdh.css", media_type="text/css")


@router.post("/ui/language")
async def choose_language(request: Request) -> Response:
    """The header's FR | EN switch: remember the choice (a cookie, for a year) and go back to
    the page it was on. Anyone may use it, signed in or not: a language is not a secret, and
    a forged post could only change the language of the pages."""
    cfg = config(request)
    prefix = _prefix(cfg)
    body = await request.body()
    form: dict[str, list[str]] = {}
    if len(body) <= 4096:
        try:
            form = parse_qs(body.decode("utf-8"), max_num_fields=5)
        except (UnicodeDecodeError, ValueError):
            form = {}
    lang = supported((form.get("lang") or [""])[0])
    r = RedirectResponse(
        safe_next((form.get("next") or [""])[0], prefix), status_code=303, headers=PAGE_HEADERS
    )
    if lang is not None:
        r.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE, path=prefix, samesite="lax")
    return r


@router.get("/oauth_callback")
async def oauth_callback(request: Request, code: str = "", state: str = "") -> Response:
    auth = _auth(config(request))
    token, next_url = await auth.callback(code, state, dict(request.cookies))
    r = RedirectResponse(next_url, status_code=302, headers=PAGE_HEADERS)
    r.set_cookie(auth.cookie_name, token, **auth.cookie_options())
    r.delete_cookie(auth.state_cookie_name, path=auth.prefix)
    return r


@router.get("/ui/", response_class=HTMLResponse)
async def my_projects(request: Request) -> Response:
    me = await browser_user(request)
    cfg = config(request)
    inst = cfg.opened()

    def load() -> list[dict[str, Any]]:
        out = []
        with inst.sessions() as s:
            for p in projects.projects_of(s, me.name):
                member = projects.membership(s, p, me.name)
                row: dict[str, Any] = {
                    "slug": p.slug,
                    "title": p.title,
                    "access": False,
                    "member_role": member.role if member is not None else "",
                }
                try:
                    permit = projects.active_permit(s, me.name, p.slug)
                except projects.PermitError as exc:
                    row["reason"] = str(exc)
                else:
                    view = projects.permit_view(permit, inst.data_dir)
                    row.update(access=True, permit=permit.id, expires_at=view["expires_at"])
                out.append(row)
        return out

    rows = await asyncio.to_thread(load)
    ctx = await page_context(cfg, me, "projects", request)
    _ = translator(ctx["lang"])
    return _page(
        "projects.html",
        title=_("Your projects"),
        projects=rows,
        member_roles={k: _(v) for k, v in MEMBER_ROLES.items()},
        **ctx,
    )


async def datasets_page(
    cfg: ApiConfig,
    me: BrowserUser,
    slug: str,
    *,
    error: str = "",
    status: int = 200,
    request: Request | None = None,
) -> Response:
    inst = cfg.opened()

    def plan_of() -> dict[str, Any]:
        with inst.sessions() as s:
            permit = projects.active_permit(s, me.name, slug)
            return projects.mount_plan(s, permit, me.name, inst.data_dir)

    ctx = await page_context(cfg, me, "projects", request)
    _ = translator(ctx["lang"])
    try:
        plan = await asyncio.to_thread(plan_of)
    except projects.PermitError as exc:
        return _message(_("Project %(slug)s") % {"slug": slug}, str(exc), 403, **ctx)
    servers = cfg.hub_servers
    running = servers is not None and await servers.running(me.name, slug)
    return _page(
        "datasets.html",
        status=status,
        title=_("Dataset versions of %(slug)s") % {"slug": slug},
        slug=slug,
        plan=plan,
        running=running,
        error=error,
        form_token=me.form_token(_auth(cfg).form_secret),
        **ctx,
    )


@router.get("/ui/projects/{slug}/datasets", response_class=HTMLResponse)
async def datasets(request: Request, slug: str) -> Response:
    me = await browser_user(request)
    return await datasets_page(config(request), me, slug, request=request)


@router.post("/ui/projects/{slug}/datasets", response_class=HTMLResponse)
async def choose_datasets(request: Request, slug: str) -> Response:
    me = await browser_user(request)
    cfg = config(request)
    auth = _auth(cfg)
    common = await page_context(cfg, me, "projects", request)
    _ = translator(common["lang"])
    heading = _("Dataset versions")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _message(heading, _("form too large"), 413, **common)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return _message(heading, _("expected a form post"), 415, **common)
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        return _message(heading, _("malformed form"), 400, **common)
    if not auth.check_form(me, (form.get("_form") or [""])[0]):
        return _message(
            heading,
            _("this form expired or came from another site: reload the page and try again"),
            403,
            **common,
        )
    versions = form.get("version", [])
    inst = cfg.opened()

    def save() -> None:
        with inst.transaction() as s:
            user = get_user(s, me.name)
            projects.select_mounts(
                s, slug, me.name, versions, inst.data_dir, actor=projects.Actor.of(user)
            )

    try:
        await asyncio.to_thread(save)
    except (projects.ProjectError, projects.NotAuthorised) as exc:
        return await datasets_page(cfg, me, slug, error=str(exc), status=422, request=request)
    except projects.PermitError as exc:
        return _message(_("Project %(slug)s") % {"slug": slug}, str(exc), 403, **common)
    if cfg.hub_servers is not None:
        try:
            await cfg.hub_servers.stop(me.name, slug)
        except (HubRefused, HubUnavailable, httpx.HTTPError) as exc:
            return await datasets_page(
                cfg,
                me,
                slug,
                error=_("saved, but the sandbox was not restarted: %(error)s") % {"error": exc},
                status=502,
                request=request,
            )
    spawn = f"{_hub_prefix()}hub/spawn/{quote(me.name)}/{quote(slug)}"
    return RedirectResponse(spawn, status_code=303, headers=PAGE_HEADERS)
