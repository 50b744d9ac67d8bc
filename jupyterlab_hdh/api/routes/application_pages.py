"""``/ui/applications/...``: the access desk for people in a browser (hub login), no script.

The applications a person may see (:func:`applications.visible`: their team's, or every one
for the committee, data controllers and administrators), newest first; a researcher's form
to apply (a new project, a renewal, an amendment); and each application's page: everything
of it, its opinions (without their authors' names for the applicant:
:func:`applications.view`), the decision and the permit, and below it a form for each step
the viewer may take now (the view's ``actions``: an opinion, the decision, a revision, the
withdrawal). A refused form comes back with its one-line error and what was typed, nothing
made; a step that succeeds redirects (303) to the application's page and e-mails the
notifications it wrote (``routes.egress.send_mail``, as the airlock's pages). Forms carry
the session's anti-forgery token. Every page, refusals included, is in the one layout
(:func:`pages.page_context`). Thin: the domain is
:mod:`jupyterlab_hdh.governance.applications`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from jupyterlab_hdh.api.browser import BrowserUser
from jupyterlab_hdh.api.deps import ApiConfig, config
from jupyterlab_hdh.api.routes.egress import send_mail
from jupyterlab_hdh.api.routes.egress_pages import MAX_FORM_BYTES, actor_of
from jupyterlab_hdh.api.routes.pages import (
    PAGE_HEADERS,
    _message,
    _page,
    browser_user,
    language_of,
    page_context,
)
from jupyterlab_hdh.api.templating import N_, translator
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.governance import applications as ap
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.store.models import Dataset

router = APIRouter(include_in_schema=False)

#: What the pages call the domain's values (English: the msgids).
KIND_LABELS = {
    "new": N_("new project"),
    "renewal": N_("renewal"),
    "amendment": N_("amendment"),
}
STATE_LABELS = {
    "submitted": N_("submitted"),
    "changes_requested": N_("changes requested"),
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "withdrawn": N_("withdrawn"),
}
OPINION_LABELS = {
    "favourable": N_("favourable"),
    "unfavourable": N_("unfavourable"),
    "changes_requested": N_("changes requested"),
}
#: The steps a form of an application's page may ask for (the domain authorises each).
UI_ACTIONS = ("opinion", "decide", "revise", "withdraw")
#: The fields of the application form, as the form names them.
FIELDS = (
    "kind",
    "project",
    "title",
    "purpose",
    "public_interest",
    "methodology",
    "datasets",
    "members",
    "duration_days",
    "compute_profile",
)
_WORDS = re.compile(r"[\s,;]+")
_DAYS = re.compile(r"[0-9]{1,6}")


def _url(cfg: ApiConfig, app_id: int | None = None) -> str:
    prefix = cfg.browser_auth.prefix if cfg.browser_auth is not None else "/"
    return f"{prefix}ui/applications" + (f"/{app_id}" if app_id is not None else "")


def _labels(lang: str) -> dict[str, dict[str, str]]:
    _ = translator(lang)
    return {
        "kinds": {k: _(v) for k, v in KIND_LABELS.items()},
        "states": {k: _(v) for k, v in STATE_LABELS.items()},
        "opinions": {k: _(v) for k, v in OPINION_LABELS.items()},
    }


def _refused(cfg: ApiConfig, status: int, title: str, text: str, ctx: dict[str, Any]) -> Response:
    """A refusal in the layout, with the way back to the list of applications."""
    _ = translator(ctx["lang"])
    return _message(
        title,
        text,
        status,
        back_href=_url(cfg),
        back_label=_("Back to the applications"),
        **ctx,
    )


def _token(cfg: ApiConfig, me: BrowserUser) -> str:
    assert cfg.browser_auth is not None  # browser_user answered
    return me.form_token(cfg.browser_auth.form_secret)


async def _read_form(request: Request, lang: str) -> tuple[dict[str, str], int, str]:
    """The posted form (each field's first value), or the status and line saying why it is
    not one (the size, the type and the encoding of a same-site form post)."""
    _ = translator(lang)
    body = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if len(body) > MAX_FORM_BYTES or ctype != "application/x-www-form-urlencoded":
        return {}, 400, _("expected a small form post")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=40)
    except (UnicodeDecodeError, ValueError):
        return {}, 400, _("malformed form")
    return {k: v[0] for k, v in fields.items()}, 200, ""


def _words(text: str) -> tuple[str, ...]:
    """One per line (or separated by commas or spaces): names hold none of them."""
    return tuple(w for w in _WORDS.split(text) if w)


def _days(text: str, lang: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not _DAYS.fullmatch(text):
        _ = translator(lang)
        raise pj.ProjectError(_("the duration is a whole number of days"))
    return int(text)


def _draft(typed: dict[str, str], lang: str) -> ap.Draft:
    return ap.Draft(
        kind=typed["kind"],
        project=typed["project"].strip(),
        title=typed["title"],
        purpose=typed["purpose"],
        public_interest=typed["public_interest"],
        methodology=typed["methodology"],
        datasets=_words(typed["datasets"]),
        members=_words(typed["members"]),
        duration_days=_days(typed["duration_days"], lang),
        compute_profile=typed["compute_profile"] or None,
    )


def _revision(typed: dict[str, str], lang: str) -> ap.Revision:
    return ap.Revision(
        title=typed.get("title", ""),
        purpose=typed.get("purpose", ""),
        public_interest=typed.get("public_interest", ""),
        methodology=typed.get("methodology", ""),
        datasets=_words(typed.get("datasets", "")),
        members=_words(typed.get("members", "")),
        duration_days=_days(typed.get("duration_days", ""), lang),
        compute_profile=typed.get("compute_profile") or None,
        note=typed.get("note", ""),
    )


def _typed_of(view: dict[str, Any]) -> dict[str, str]:
    """An application's fields as its revision form shows them."""
    days = view.get("duration_days")
    return {
        "kind": view["kind"],
        "project": view["project"],
        "title": view["title"],
        "purpose": view["purpose"],
        "public_interest": view["public_interest"],
        "methodology": view["methodology"],
        "datasets": "\n".join(view["datasets"]),
        "members": "\n".join(view["members"]),
        "duration_days": "" if days is None else str(days),
        "compute_profile": view.get("compute_profile") or "",
        "note": "",
    }


def _catalogue(cfg: ApiConfig) -> list[str]:
    """The names of the catalogue's datasets (the form's hint)."""
    with cfg.opened().sessions() as s:
        return list(s.scalars(select(Dataset.name).order_by(Dataset.name)))


# --- the list -----------------------------------------------------------------------------------


@router.get("/ui/applications", response_class=HTMLResponse)
async def ui_applications(request: Request) -> Response:
    me = await browser_user(request)
    cfg = config(request)
    ctx = await page_context(cfg, me, "applications", request)
    _ = translator(ctx["lang"])

    def load() -> list[dict[str, Any]]:
        who = actor_of(cfg, me.name)
        with cfg.opened().sessions() as s:
            return [ap.summary(a) for a in ap.visible(s, who)]

    try:
        rows = await asyncio.to_thread(load)
    except HdhError as exc:
        return _message(_("Access applications"), str(exc), exc.http_status, **ctx)
    return _page(
        "applications.html",
        200,
        title=_("Access applications"),
        rows=rows,
        may_apply=ctx["role"] in pj.MEMBER_ROLES,
        **_labels(ctx["lang"]),
        **ctx,
    )


# --- applying -----------------------------------------------------------------------------------


async def form_page(
    cfg: ApiConfig,
    me: BrowserUser,
    request: Request,
    typed: dict[str, str] | None = None,
    *,
    error: str = "",
    status: int = 200,
) -> Response:
    """The application form, empty or with what was typed (and why it was refused)."""
    ctx = await page_context(cfg, me, "applications", request)
    _ = translator(ctx["lang"])
    if ctx["role"] not in pj.MEMBER_ROLES:
        return _refused(
            cfg,
            403,
            _("New application"),
            _("researchers apply for access to data: your role does not"),
            ctx,
        )
    known = await asyncio.to_thread(_catalogue, cfg)
    return _page(
        "application_form.html",
        status,
        title=_("New application"),
        typed=typed or {k: "new" if k == "kind" else "" for k in FIELDS},
        error=error,
        known=known,
        profiles=pj.COMPUTE_PROFILES,
        max_days=ap.MAX_DAYS,
        url=_url(cfg, None) + "/new",
        form_token=_token(cfg, me),
        **_labels(ctx["lang"]),
        **ctx,
    )


@router.get("/ui/applications/new", response_class=HTMLResponse)
async def ui_new(request: Request) -> Response:
    return await form_page(config(request), await browser_user(request), request)


@router.post("/ui/applications/new", response_class=HTMLResponse)
async def ui_apply(request: Request) -> Response:
    me = await browser_user(request)
    cfg = config(request)
    ctx = await page_context(cfg, me, "applications", request)
    lang = ctx["lang"]
    _ = translator(lang)
    form, status, problem = await _read_form(request, lang)
    if problem:
        return _refused(cfg, status, _("New application"), problem, ctx)
    typed = {k: form.get(k, "") for k in FIELDS}
    assert cfg.browser_auth is not None
    if not cfg.browser_auth.check_form(me, form.get("_form", "")):
        expired = _("this form expired or came from another site: reload the page and try again")
        return await form_page(cfg, me, request, typed, error=expired, status=403)
    inst = cfg.opened()

    def step() -> int:
        draft = _draft(typed, lang)
        who = actor_of(cfg, me.name)
        with inst.transaction() as s:
            return ap.submit(s, draft, actor=who).id

    try:
        app_id = await asyncio.to_thread(step)
    except HdhError as exc:
        return await form_page(cfg, me, request, typed, error=str(exc), status=exc.http_status)
    await asyncio.to_thread(send_mail, cfg)
    return RedirectResponse(_url(cfg, app_id), status_code=303, headers=PAGE_HEADERS)


# --- one application ----------------------------------------------------------------------------


async def application_page(
    cfg: ApiConfig,
    me: BrowserUser,
    app_id: int,
    request: Request,
    *,
    error: str = "",
    status: int = 200,
    failed: str = "",
    typed: dict[str, str] | None = None,
) -> Response:
    """An application as ``me`` may see it, with the forms of the steps they may take now;
    ``failed`` is the step refused (its form keeps what was ``typed``)."""
    ctx = await page_context(cfg, me, "applications", request)
    lang = ctx["lang"]
    _ = translator(lang)
    title = _("Application #%(id)s") % {"id": app_id}

    def load() -> tuple[dict[str, Any], list[str]]:
        who = actor_of(cfg, me.name)
        with cfg.opened().sessions() as s:
            view = ap.view(s, app_id, who)
        return view, _catalogue(cfg) if "revise" in view["actions"] else []

    try:
        view, known = await asyncio.to_thread(load)
    except HdhError as exc:
        return _refused(cfg, exc.http_status, title, str(exc), ctx)
    typed = typed or {}
    revise = {**_typed_of(view), **typed} if failed == "revise" else _typed_of(view)
    return _page(
        "application.html",
        status,
        title=title,
        app=view,
        error=error,
        failed=failed,
        typed=typed if failed else {},
        revise=revise,
        known=known,
        profiles=pj.COMPUTE_PROFILES,
        max_days=ap.MAX_DAYS,
        url=_url(cfg, app_id),
        list_url=_url(cfg),
        form_token=_token(cfg, me),
        **_labels(lang),
        **ctx,
    )


@router.get("/ui/applications/{app_id}", response_class=HTMLResponse)
async def ui_application(request: Request, app_id: int) -> Response:
    return await application_page(config(request), await browser_user(request), app_id, request)


@router.post("/ui/applications/{app_id}", response_class=HTMLResponse)
async def ui_step(request: Request, app_id: int) -> Response:
    me = await browser_user(request)
    cfg = config(request)
    lang = language_of(request)
    _ = translator(lang)
    form, status, problem = await _read_form(request, lang)
    if problem:
        ctx = await page_context(cfg, me, "applications", request)
        return _refused(cfg, status, _("Application #%(id)s") % {"id": app_id}, problem, ctx)
    action = form.get("action", "")
    assert cfg.browser_auth is not None
    if not cfg.browser_auth.check_form(me, form.get("_form", "")):
        expired = _("this form expired or came from another site: reload the page and try again")
        return await application_page(
            cfg, me, app_id, request, error=expired, status=403, failed=action, typed=form
        )
    if action not in UI_ACTIONS:
        unknown = _("unknown action %(action)r") % {"action": action}
        return await application_page(cfg, me, app_id, request, error=unknown, status=400)
    if action == "withdraw" and not form.get("confirm"):
        unconfirmed = _("tick the box to confirm the withdrawal")
        return await application_page(
            cfg, me, app_id, request, error=unconfirmed, status=422, failed=action, typed=form
        )
    inst = cfg.opened()

    def step() -> None:
        who = actor_of(cfg, me.name)
        with inst.transaction() as s:
            if action == "opinion":
                ap.give_opinion(s, app_id, form.get("opinion", ""), form.get("text", ""), actor=who)
            elif action == "decide":
                ap.decide(
                    s,
                    app_id,
                    form.get("decision", ""),
                    reference=form.get("reference", ""),
                    text=form.get("text", ""),
                    actor=who,
                )
            elif action == "revise":
                ap.revise(s, app_id, _revision(form, lang), actor=who)
            else:
                ap.withdraw(s, app_id, actor=who)

    try:
        await asyncio.to_thread(step)
    except HdhError as exc:
        return await application_page(
            cfg,
            me,
            app_id,
            request,
            error=str(exc),
            status=exc.http_status,
            failed=action,
            typed=form,
        )
    await asyncio.to_thread(send_mail, cfg)
    return RedirectResponse(_url(cfg, app_id), status_code=303, headers=PAGE_HEADERS)
