"""``/ui/egress/...``: the airlock for people in a browser (hub login, ``hdh up``), no script.

The list of requests, and each request's page (the reviewer page plus the forms the viewer
may use now: votes, decisions, release, comments; for members the same page without any
file rendered, and the download links once released). Forms carry a per-session
anti-forgery token. Every page, refusals included, is in the control plane's one layout
(``templates/base.html``, :func:`pages.page_context`); a request page is the body of
:func:`egress.render.review_page` in that layout, served with the layout's same-origin
stylesheet (no inline style) and images only from ``data:`` URLs. ``.../render?path=`` is
one file alone (``render.file_page``) for the review widget's sandboxed frame in
JupyterLab: the only route framable by the hub's origin (``frame-ancestors 'self'``), under
``render.FILE_CSP``. Thin: the workflow is :mod:`jupyterlab_hdh.egress`.
"""

from __future__ import annotations

import asyncio
from functools import partial
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
from jupyterlab_hdh.api.routes.pages import language_of, page_context
from jupyterlab_hdh.api.templating import (
    DEFAULT_LANGUAGE,
    N_,
    REVIEW_ROLES,
    format_when,
    status_phrase,
    templates,
    translator,
)
from jupyterlab_hdh.egress import manager, release
from jupyterlab_hdh.egress import states as st
from jupyterlab_hdh.egress.errors import EgressError, NotFound
from jupyterlab_hdh.egress.render import (
    FILE_CSP,
    RENDERED_FOR,
    VALUE_LABELS,
    file_page,
    review_page,
)
from jupyterlab_hdh.governance import projects
from jupyterlab_hdh.governance.projects import Actor
from jupyterlab_hdh.store.models import User

router = APIRouter(include_in_schema=False)

#: The browser pages' CSP: no script, the layout's same-origin stylesheet only, images only
#: as ``data:`` URLs (a reviewed figure), nothing else fetched; their own forms post back.
UI_CSP = (
    "default-src 'none'; style-src 'self'; img-src data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
UI_HEADERS = {**PAGE_HEADERS, "Content-Security-Policy": UI_CSP}
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


def page(
    status: int, title: str, message: str, ctx: dict[str, Any], *, back: str = ""
) -> HTMLResponse:
    """A refusal or an error in the layout, with a link back to the list of requests."""
    lang = ctx.get("lang", DEFAULT_LANGUAGE)
    _ = translator(lang)
    back_label = (
        _("Back to review") if ctx.get("role") in REVIEW_ROLES else _("Back to export requests")
    )
    html = (
        templates(lang)
        .get_template("message.html")
        .render(
            title=title,
            text=message,
            code=status,
            status_phrase=status_phrase(status, lang),
            back_href=back or f"{ctx['prefix']}ui/egress/",
            back_label=back_label,
            **ctx,
        )
    )
    return HTMLResponse(html, status_code=status, headers=UI_HEADERS)


def _list_label(role: str | None) -> str:
    """The list's name for ``role`` (a msgid: translate it)."""
    return N_("Review") if role in REVIEW_ROLES else N_("Export requests")


def value_labels(lang: str) -> dict[str, str]:
    """A request's states, a file's checks (...) as the pages name them in ``lang``."""
    _ = translator(lang)
    return {k: _(v) for k, v in VALUE_LABELS.items()}


def _actions(
    view: dict[str, Any],
    me: str,
    url: str,
    token: str,
    error: str,
    lang: str = DEFAULT_LANGUAGE,
) -> str:
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
    return (
        templates(lang)
        .get_template("egress_actions.html")
        .render(
            check_labels=value_labels(lang),
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
    )


@router.get("/ui/egress/", response_class=HTMLResponse)
async def ui_list(request: Request) -> Response:
    me = await browser_user(request)
    cfg = config(request)
    ctx = await page_context(cfg, me, "egress", request)
    lang = ctx["lang"]
    _ = translator(lang)

    def load() -> tuple[list[dict[str, Any]], list[dict[str, Any]], set[str]]:
        who = actor_of(cfg, me.name)
        with cfg.opened().sessions() as s:
            return (
                manager.list_requests(s, actor=who),
                manager.notifications(s, me.name, unread_only=True),
                {p.slug for p in projects.projects_of(s, me.name)},
            )

    try:
        rows, notes, mine = await asyncio.to_thread(load)
    except EgressError as exc:
        return page(exc.http_status, _("Export requests"), str(exc), ctx, back=f"{_prefix(cfg)}ui/")
    role = ctx["role"]
    others = [r for r in rows if r["project"] not in mine]
    members = [r for r in rows if r["project"] in mine]
    # which lists this person gets: a reviewer's queue, an administrator's view of every
    # project, the requests of one's own projects (always for researchers, else when any)
    open_states = st.UNDER_REVIEW - st.FINAL - {st.RETURNED}  # a vote, a decision, a release
    review_rows = [r for r in others if r["state"] in open_states] if role in REVIEW_ROLES else None
    decided_rows = (
        [r for r in others if r["state"] not in open_states] if review_rows is not None else None
    )
    operator_rows = others if role == "admin" else None
    member_rows = members if (mine or role not in REVIEW_ROLES | {"admin"}) else None
    body = (
        templates(lang)
        .get_template("egress_list.html")
        .render(
            title=_(_list_label(role)),
            heading=_("Export requests to review")
            if role in REVIEW_ROLES
            else _("Export requests"),
            state_labels=value_labels(lang),
            review_rows=review_rows,
            decided_rows=decided_rows,
            operator_rows=operator_rows,
            member_rows=member_rows,
            notes=notes,
            **ctx,
        )
    )
    return HTMLResponse(body, status_code=200, headers=UI_HEADERS)


async def request_page(
    cfg: ApiConfig,
    me: Any,
    request_id: int,
    error: str = "",
    status: int = 200,
    request: Request | None = None,
) -> Response:
    url = f"{_prefix(cfg)}ui/egress/requests/{request_id}"
    ctx = await page_context(cfg, me, "egress", request)
    lang = ctx["lang"]
    _ = translator(lang)

    def load() -> dict[str, Any]:
        with cfg.opened().sessions() as s:
            return manager.get_request(s, request_id, actor=actor_of(cfg, me.name))

    try:
        view = await asyncio.to_thread(load)
    except EgressError as exc:
        return page(
            exc.http_status, _("Export request #%(id)s") % {"id": request_id}, str(exc), ctx
        )
    assert cfg.browser_auth is not None
    token = me.form_token(cfg.browser_auth.form_secret)
    actions = _actions(view, me.name, url, token, error, lang)
    # members (the requester) get no rendering: their page never reads a snapshot
    read = (
        blob_reader(cfg.opened().data_dir.egress_blobs)
        if view.get("viewer") in RENDERED_FOR
        else no_blob
    )
    whole = review_page(
        view, read, actions_html=actions, gettext=_, lang=lang, when=partial(format_when, lang=lang)
    )
    # its body (the page's <h1> onwards) goes into the layout: review_page starts with a fixed
    # head whose first "<body>" is its own, and ends with "</body></html>"
    start = whole.index("<body>") + len("<body>")
    end = whole.rindex("</body></html>")
    html_page = (
        templates(lang)
        .get_template("egress_request.html")
        .render(
            title=_("Export request #%(id)s") % {"id": request_id},
            request_id=request_id,
            list_label=_(_list_label(ctx["role"])),
            content=whole[start:end],
            **ctx,
        )
    )
    return HTMLResponse(html_page, status_code=status, headers=UI_HEADERS)


@router.get("/ui/egress/requests/{request_id}", response_class=HTMLResponse)
async def ui_request(request: Request, request_id: int) -> Response:
    return await request_page(
        config(request), await browser_user(request), request_id, request=request
    )


@router.post("/ui/egress/requests/{request_id}", response_class=HTMLResponse)
async def ui_action(request: Request, request_id: int) -> Response:
    me = await browser_user(request)
    cfg = config(request)
    assert cfg.browser_auth is not None
    body = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    _ = translator(language_of(request))
    if len(body) > MAX_FORM_BYTES or ctype != "application/x-www-form-urlencoded":
        ctx = await page_context(cfg, me, "egress", request)
        return page(400, _("Export request"), _("expected a small form post"), ctx)
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
        form = {k: v[0] for k, v in fields.items()}
    except (UnicodeDecodeError, ValueError):
        ctx = await page_context(cfg, me, "egress", request)
        return page(400, _("Export request"), _("malformed form"), ctx)
    if not cfg.browser_auth.check_form(me, form.get("_form", "")):
        return await request_page(
            cfg,
            me,
            request_id,
            _("this form expired or came from another site: try again"),
            403,
            request,
        )
    action = form.get("action", "")
    if action not in UI_ACTIONS:
        return await request_page(
            cfg, me, request_id, _("unknown action %(action)r") % {"action": action}, 400, request
        )
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
        return await request_page(cfg, me, request_id, str(exc), exc.http_status, request)
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
        ctx = await page_context(cfg, me, "egress", request)
        _ = translator(ctx["lang"])
        return page(exc.http_status, _("Download"), str(exc), ctx)
    return attachment(path, filename)


# --- one file, rendered, for the review widget's frame ----------------------------------------

#: The headers of a file's rendering (``render.FILE_CSP``: sandboxed, no script, its own style
#: only, framable by the hub's origin: the review widget in JupyterLab shows it in an iframe).
RENDER_HEADERS = {
    "Content-Security-Policy": FILE_CSP,
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
#: ... and of its refusals (the layout's page, in that frame too)
RENDER_REFUSAL_HEADERS = {
    **UI_HEADERS,
    "Content-Security-Policy": UI_CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'"),
    "X-Frame-Options": "SAMEORIGIN",
}


def _framable(response: HTMLResponse) -> HTMLResponse:
    for name, value in RENDER_REFUSAL_HEADERS.items():
        response.headers[name] = value
    return response


@router.get("/ui/egress/requests/{request_id}/render", response_class=HTMLResponse)
async def ui_render(request: Request, request_id: int, path: str = "") -> Response:
    """One file of the request's current round as a whole inert document (``render.file_page``)
    for its reviewers and administrators: 403 for anyone else, 404 for an unknown path, 410
    when its snapshot is gone."""
    me = await browser_user(request)
    cfg = config(request)
    lang = language_of(request)
    _ = translator(lang)
    title = _("Export request #%(id)s") % {"id": request_id}

    async def refused(status: int, why: str) -> HTMLResponse:
        # the layout's page (the person's name and role: one more lookup) only for refusals
        ctx = await page_context(cfg, me, "egress", request)
        return _framable(page(status, title, why, ctx))

    def load() -> dict[str, Any]:
        with cfg.opened().sessions() as s:
            return manager.get_request(
                s, request_id, actor=actor_of(cfg, me.name), provenance=False
            )

    try:
        view = await asyncio.to_thread(load)
    except EgressError as exc:
        return await refused(exc.http_status, str(exc))
    if view.get("viewer") not in RENDERED_FOR:
        return await refused(
            403, _("the files of a request are rendered for its reviewers and administrators only")
        )
    found = next((f for f in view.get("files") or [] if f.get("path") == path), None)
    if found is None:
        return await refused(
            404, _("request #%(id)s has no file %(path)s") % {"id": request_id, "path": repr(path)}
        )
    data = await asyncio.to_thread(
        blob_reader(cfg.opened().data_dir.egress_blobs), str(found["sha256"])
    )
    if data is None:
        missing = _("the snapshot of %(path)s is missing from the airlock's store")
        return await refused(410, missing % {"path": repr(path)})
    html = await asyncio.to_thread(partial(file_page, path, data, gettext=_, lang=lang))
    return HTMLResponse(html, headers=RENDER_HEADERS)
