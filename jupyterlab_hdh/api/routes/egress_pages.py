"""``/ui/egress/...``: the airlock for people in a browser (hub login, ``hdh up``), no script.

The list of requests, and each request's page (the reviewer page plus the forms the viewer
may use now: votes, decisions, release, comments; for members the same page without any
file rendered, and the download links once released). Forms carry a per-session
anti-forgery token. Thin: the workflow is :mod:`jupyterlab_hdh.egress`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from jupyterlab_hdh.api.deps import ApiConfig, config
from jupyterlab_hdh.api.routes.egress import (
    PAGE_HEADERS,
    attachment,
    blob_reader,
    no_blob,
    send_mail,
)
from jupyterlab_hdh.api.templating import TEMPLATES
from jupyterlab_hdh.egress import manager, release
from jupyterlab_hdh.egress.errors import EgressError, NotFound
from jupyterlab_hdh.egress.render import PAGE_CSP, PAGE_STYLE, RENDERED_FOR, review_page
from jupyterlab_hdh.governance.projects import Actor
from jupyterlab_hdh.store.models import User

router = APIRouter(include_in_schema=False)

#: The browser pages' CSP: as the reviewer page's, but their own forms may post back.
UI_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": PAGE_CSP.replace("form-action 'none'", "form-action 'self'"),
}
MAX_FORM_BYTES = 64 * 2**10
#: The steps a form of the request page may ask for (the workflow authorises each).
UI_ACTIONS = (
    "vote",
    "approve",
    "return",
    "reject",
    "release",
    "comment",
    "submit",
    "withdraw",
)


def _prefix(cfg: ApiConfig) -> str:
    return cfg.browser_auth.prefix if cfg.browser_auth is not None else "/"


async def browser_user(request: Request) -> Any:
    auth = config(request).browser_auth
    if auth is None:
        raise HTTPException(503, "the web pages need the hub: start with `hdh up`")
    path = _prefix(config(request)) + request.url.path.lstrip("/")
    return await auth.user(dict(request.cookies), path)


def actor_of(cfg: ApiConfig, name: str) -> Actor:
    with cfg.opened().sessions() as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFound(f"no user {name!r} in the store")
        return Actor.of(user)


def page(status: int, title: str, message: str) -> HTMLResponse:
    html = TEMPLATES.get_template("egress_page.html").render(
        title=title, message=message, style=PAGE_STYLE
    )
    return HTMLResponse(html, status_code=status, headers=UI_HEADERS)


def _actions(view: dict[str, Any], me: str, url: str, token: str, error: str) -> str:
    """The forms this viewer may use now (the workflow still checks every step)."""
    state, viewer = view.get("state"), view.get("viewer")
    voting = viewer == "reviewer" and state in ("submitted", "partially_reviewed")
    vote_on = [
        f
        for f in (view.get("files") or [])
        if voting
        if f.get("role") == "output" and not any(v["reviewer"] == me for v in f.get("votes", []))
    ]
    mine = view.get("author") == me
    released = [
        {**r, "href": f"{url}/released/{quote(r['name'], safe='')}"}
        for r in (view.get("released") or [])
    ]
    return TEMPLATES.get_template("egress_actions.html").render(
        url=url,
        token=token,
        error=error,
        vote_on=vote_on,
        decide=viewer == "reviewer" and state == "reviewed",
        release=viewer in ("reviewer", "operator") and state == "approved",
        submit=mine and state in ("draft", "returned"),
        withdraw=mine
        and state not in ("rejected", "released", "withdrawn", "approved", "releasing"),
        comment=state not in ("rejected", "released", "withdrawn"),
        private=viewer == "reviewer",
        released=released if viewer == "member" and state == "released" else [],
    )


@router.get("/ui/egress/", response_class=HTMLResponse)
async def ui_list(request: Request) -> Response:
    me = await browser_user(request)
    cfg = config(request)

    def load() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        who = actor_of(cfg, me.name)
        with cfg.opened().sessions() as s:
            return (
                manager.list_requests(s, actor=who),
                manager.notifications(s, me.name, unread_only=True),
            )

    try:
        rows, notes = await asyncio.to_thread(load)
    except EgressError as exc:
        return page(exc.http_status, "Export requests", str(exc))
    body = TEMPLATES.get_template("egress_list.html").render(
        title=f"Export requests visible to {me.name}",
        style=PAGE_STYLE,
        prefix=_prefix(cfg),
        rows=rows,
        notes=notes,
    )
    return HTMLResponse(body, status_code=200, headers=UI_HEADERS)


async def request_page(
    cfg: ApiConfig, me: Any, request_id: int, error: str = "", status: int = 200
) -> Response:
    url = f"{_prefix(cfg)}ui/egress/requests/{request_id}"

    def load() -> dict[str, Any]:
        with cfg.opened().sessions() as s:
            return manager.get_request(s, request_id, actor=actor_of(cfg, me.name))

    try:
        view = await asyncio.to_thread(load)
    except EgressError as exc:
        return page(exc.http_status, f"Export request #{request_id}", str(exc))
    assert cfg.browser_auth is not None
    actions = _actions(view, me.name, url, me.form_token(cfg.browser_auth.form_secret), error)
    # members (the requester) get no rendering: their page never reads a snapshot
    read = (
        blob_reader(cfg.opened().data_dir.egress_blobs)
        if view.get("viewer") in RENDERED_FOR
        else no_blob
    )
    html_page = review_page(view, read, actions_html=actions)
    return HTMLResponse(html_page, status_code=status, headers=UI_HEADERS)


@router.get("/ui/egress/requests/{request_id}", response_class=HTMLResponse)
async def ui_request(request: Request, request_id: int) -> Response:
    return await request_page(config(request), await browser_user(request), request_id)


@router.post("/ui/egress/requests/{request_id}", response_class=HTMLResponse)
async def ui_action(request: Request, request_id: int) -> Response:
    me = await browser_user(request)
    cfg = config(request)
    assert cfg.browser_auth is not None
    body = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if len(body) > MAX_FORM_BYTES or ctype != "application/x-www-form-urlencoded":
        return page(400, "Export request", "expected a small form post")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
        form = {k: v[0] for k, v in fields.items()}
    except (UnicodeDecodeError, ValueError):
        return page(400, "Export request", "malformed form")
    if not cfg.browser_auth.check_form(me, form.get("_form", "")):
        return await request_page(
            cfg, me, request_id, "this form expired or came from another site: try again", 403
        )
    action = form.get("action", "")
    if action not in UI_ACTIONS:
        return await request_page(cfg, me, request_id, f"unknown action {action!r}", 400)
    inst = cfg.opened()

    def step() -> None:
        who = actor_of(cfg, me.name)
        if action == "release":
            release.release(inst, request_id, actor=who)
            return
        with inst.transaction() as s:
            if action == "vote":
                manager.vote(
                    s,
                    request_id,
                    form.get("path", ""),
                    form.get("decision", ""),
                    actor=who,
                    exception_reason=form.get("exception_reason") or None,
                )
            elif action == "approve":
                manager.approve(s, request_id, actor=who)
            elif action == "return":
                manager.return_request(s, request_id, actor=who, reason=form.get("reason", ""))
            elif action == "reject":
                manager.reject(s, request_id, actor=who, reason=form.get("reason", ""))
            elif action == "comment":
                manager.comment(
                    s,
                    request_id,
                    form.get("body", ""),
                    actor=who,
                    visibility="private" if form.get("private") else "public",
                )
            elif action == "submit":
                manager.submit(s, inst.data_dir, request_id, actor=who)
            else:
                manager.withdraw(s, request_id, actor=who, reason=form.get("reason", ""))

    try:
        await asyncio.to_thread(step)
    except EgressError as exc:
        return await request_page(cfg, me, request_id, str(exc), exc.http_status)
    await asyncio.to_thread(send_mail, cfg)
    return RedirectResponse(
        f"{_prefix(cfg)}ui/egress/requests/{request_id}", status_code=303, headers=UI_HEADERS
    )


@router.get("/ui/egress/requests/{request_id}/released/{name}")
async def ui_download(request: Request, request_id: int, name: str) -> Response:
    me = await browser_user(request)
    cfg = config(request)

    def locate() -> tuple[Path, str]:
        with cfg.opened().sessions() as s:
            return release.released_download(
                s, cfg.opened().data_dir, request_id, name, actor=actor_of(cfg, me.name)
            )

    try:
        path, filename = await asyncio.to_thread(locate)
    except EgressError as exc:
        return page(exc.http_status, "Download", str(exc))
    return attachment(path, filename)
