"""The airlock (export-control review) for bearer-token users: ``/api/egress/...``.

(Also for the review widget in JupyterLab: under the hub's service prefix these routes take
the pages' hub cookie with the session's ``X-HDH-Token`` instead, ``deps.browser_session``;
the list's rows carry the review queue's ``submitted_at``, ``reviewers``, ``awaiting_me``.)

Owns the HTTP face of :mod:`jupyterlab_hdh.egress`: thin handlers that authenticate and
call the workflow (which authorises every step from the caller's role and project
membership); its typed errors are ``HdhError`` subclasses that the app's one handler
answers with their ``http_status`` and a one-line ``detail``, never a traceback.

Requesters (project members) create requests, add/remove files, submit, withdraw,
download released files; reviewers vote, comment, record exceptions, approve/return/
reject, release; everyone reads their notifications. ``GET .../{id}/review`` is the
reviewer page: whole HTML, every file rendered inertly (``egress.render``) under a strict
Content-Security-Policy with no script, for the request's reviewers and administrators
only (403 for project members: a rendering, or any copy of a snapshot, shown to the
requester would carry out what a kernel wrote in a file; they get the state, the redacted
check results and the comments). The same requester steps for a sandbox are in
``routes/bridge.py``, the browser pages in ``routes/egress_pages.py``.

After each step that writes notifications, pending ones are e-mailed in a background task
(``egress.notify``; off unless SMTP is configured), so mail never delays or undoes a step.
When the app starts, releases a crash interrupted are finished (:func:`recover_at_start`).

(No ``from __future__ import annotations``: FastAPI reads the dependency aliases.)
"""

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Response
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy.orm import Session

from jupyterlab_hdh.api import egress_models as em
from jupyterlab_hdh.api.deps import Anyone, ApiConfig, Config, Db, Inst
from jupyterlab_hdh.context import Installation
from jupyterlab_hdh.egress import manager, release
from jupyterlab_hdh.egress import notify as mail
from jupyterlab_hdh.egress.errors import NotAllowed
from jupyterlab_hdh.egress.render import PAGE_CSP, RENDERED_FOR, review_page
from jupyterlab_hdh.egress.settings import load_settings
from jupyterlab_hdh.egress.snapshot import blob_path
from jupyterlab_hdh.governance.projects import Actor
from jupyterlab_hdh.store.models import EgressRequest

log = logging.getLogger(__name__)
router = APIRouter(tags=["egress"])

#: a request as its viewer sees it; a file's ``provenance`` stays absent where it is absent
VIEW: dict[str, Any] = {"response_model": em.RequestOut, "response_model_exclude_unset": True}

# --- the workflow's steps, shared with the bridge and the pages -----------------------------------

_sending = threading.Lock()  # one sender at a time in this process (SQLite has no row locks)


def send_mail(cfg: ApiConfig) -> None:
    """E-mail pending notifications (when SMTP is configured)."""
    settings = cfg.mail_settings()
    if not settings.enabled:
        return
    with _sending, cfg.opened().sessions() as s:
        mail.send_pending(s, settings)


def after(tasks: BackgroundTasks, cfg: ApiConfig) -> None:
    tasks.add_task(send_mail, cfg)


def view(s: Session, request_id: int, who: Actor) -> dict[str, Any]:
    return manager.get_request(s, request_id, actor=who)


def new_request(
    inst: Installation, s: Session, project: str, title: str, who: Actor
) -> dict[str, Any]:
    quotas = load_settings(inst.data_dir).quotas
    req = manager.create_request(s, project, title=title, actor=who, quotas=quotas)
    return view(s, req.id, who)


def add_file(inst: Installation, request_id: int, body: em.FileIn, who: Actor) -> dict[str, Any]:
    with inst.transaction() as s:
        f = manager.add_file(
            s,
            inst.data_dir,
            request_id,
            body.path,
            role=body.role,
            actor=who,
            context=em.file_context(body.context),
            controls=body.controls,
        )
        path = f.path
        files = view(s, request_id, who)["files"]
    return next(x for x in files if x["path"] == path)


def step(
    cfg: ApiConfig,
    request_id: int,
    who: Actor,
    tasks: BackgroundTasks,
    change: Callable[..., object],
) -> dict[str, Any]:
    """One workflow step: ``change(session, actor)`` and the request's new view, committed
    together; notifications are e-mailed after the reply."""
    with cfg.opened().transaction() as s:
        change(s, who)
        out = view(s, request_id, who)
    after(tasks, cfg)
    return out


def recover_at_start(inst: Installation) -> None:
    """Finish releases a crash interrupted (the app's start, once the installation is open)."""
    try:
        done = release.recover(inst)
    except Exception:  # never keep the control plane from starting
        log.exception("airlock: recovering interrupted releases failed")
    else:
        for request_id, outcome in done:
            log.warning("airlock: request #%s after recovery: %s", request_id, outcome)


def attachment(path: Path, filename: str) -> FileResponse:
    """A released file as a download (saved as ``filename``) the browser never renders or
    sniffs."""
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=filename,
        content_disposition_type="attachment",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


#: Headers of the reviewer page: no script, nothing fetched, not framed, not cached, not sniffed.
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def no_blob(_sha256: str) -> bytes | None:
    return None


def blob_reader(blobs: Path) -> Callable[[str], bytes | None]:
    """Snapshot bytes by sha256 (their size is bounded by the airlock's per-file limit)."""

    def read(sha256: str) -> bytes | None:
        try:
            return blob_path(blobs, sha256).read_bytes()
        except (OSError, ValueError):
            return None

    return read


# --- requesters and reviewers (bearer token) ------------------------------------------------------


@router.post("/api/egress/requests", status_code=201, **VIEW)
def create_request(body: em.RequestIn, user: Anyone, inst: Inst) -> dict[str, Any]:
    with inst.transaction() as s:
        return new_request(inst, s, body.project, body.title, Actor.of(user))


@router.get("/api/egress/requests", response_model=list[em.RequestSummaryOut])
def list_requests(
    s: Db,
    user: Anyone,
    state: Annotated[str | None, Query(max_length=32)] = None,
    project: Annotated[str | None, Query(max_length=100)] = None,
) -> list[dict[str, Any]]:
    return manager.list_requests(s, actor=Actor.of(user), state=state, project=project)


@router.get("/api/egress/requests/{request_id}", **VIEW)
def get_request(request_id: int, s: Db, user: Anyone) -> dict[str, Any]:
    return view(s, request_id, Actor.of(user))


@router.post(
    "/api/egress/requests/{request_id}/files",
    status_code=201,
    response_model=em.FileOut,
    response_model_exclude_unset=True,
)
def add_request_file(request_id: int, body: em.FileIn, user: Anyone, inst: Inst) -> dict[str, Any]:
    return add_file(inst, request_id, body, Actor.of(user))


@router.delete(
    "/api/egress/requests/{request_id}/files/{path:path}",
    status_code=204,
    response_class=Response,
)
def remove_file(request_id: int, path: str, user: Anyone, inst: Inst) -> Response:
    with inst.transaction() as s:
        manager.remove_file(s, request_id, path, actor=Actor.of(user))
    return Response(status_code=204)


@router.post("/api/egress/requests/{request_id}/submit", **VIEW)
def submit(request_id: int, user: Anyone, cfg: Config, tasks: BackgroundTasks) -> dict[str, Any]:
    data_dir = cfg.opened().data_dir
    return step(
        cfg,
        request_id,
        Actor.of(user),
        tasks,
        lambda s, who: manager.submit(s, data_dir, request_id, actor=who),
    )


@router.post("/api/egress/requests/{request_id}/withdraw", **VIEW)
def withdraw(
    request_id: int,
    user: Anyone,
    cfg: Config,
    tasks: BackgroundTasks,
    body: em.WithdrawIn | None = None,
) -> dict[str, Any]:
    reason = (body or em.WithdrawIn()).reason
    return step(
        cfg,
        request_id,
        Actor.of(user),
        tasks,
        lambda s, who: manager.withdraw(s, request_id, actor=who, reason=reason),
    )


@router.post("/api/egress/requests/{request_id}/votes", status_code=201)
def vote(
    request_id: int, body: em.VoteIn, user: Anyone, cfg: Config, tasks: BackgroundTasks
) -> em.VoteResultOut:
    with cfg.opened().transaction() as s:
        v = manager.vote(
            s,
            request_id,
            body.path,
            body.decision,
            actor=Actor.of(user),
            exception_reason=body.exception_reason,
        )
        state = s.get(EgressRequest, request_id).state  # type: ignore[union-attr]
        out = em.VoteResultOut(path=body.path, decision=v.decision, sha256=v.sha256, state=state)
    after(tasks, cfg)
    return out


@router.post("/api/egress/requests/{request_id}/exceptions", status_code=201)
def record_exception(
    request_id: int, body: em.ExceptionIn, user: Anyone, inst: Inst
) -> em.ExceptionResultOut:
    with inst.transaction() as s:
        e = manager.record_exception(s, request_id, body.path, body.reason, actor=Actor.of(user))
        return em.ExceptionResultOut(path=body.path, reason=e.reason, sha256=e.sha256)


@router.post("/api/egress/requests/{request_id}/comments", status_code=201)
def comment(request_id: int, body: em.CommentIn, user: Anyone, inst: Inst) -> em.CommentResultOut:
    with inst.transaction() as s:
        c = manager.comment(
            s,
            request_id,
            body.body,
            actor=Actor.of(user),
            visibility=body.visibility,
            path=body.path,
        )
        return em.CommentResultOut(author=c.author, visibility=c.visibility, path=c.file_path)


@router.post("/api/egress/requests/{request_id}/approve", **VIEW)
def approve(request_id: int, user: Anyone, cfg: Config, tasks: BackgroundTasks) -> dict[str, Any]:
    return step(
        cfg,
        request_id,
        Actor.of(user),
        tasks,
        lambda s, who: manager.approve(s, request_id, actor=who),
    )


@router.post("/api/egress/requests/{request_id}/return", **VIEW)
def return_request(
    request_id: int, body: em.ReasonIn, user: Anyone, cfg: Config, tasks: BackgroundTasks
) -> dict[str, Any]:
    return step(
        cfg,
        request_id,
        Actor.of(user),
        tasks,
        lambda s, who: manager.return_request(s, request_id, actor=who, reason=body.reason),
    )


@router.post("/api/egress/requests/{request_id}/reject", **VIEW)
def reject(
    request_id: int, body: em.ReasonIn, user: Anyone, cfg: Config, tasks: BackgroundTasks
) -> dict[str, Any]:
    return step(
        cfg,
        request_id,
        Actor.of(user),
        tasks,
        lambda s, who: manager.reject(s, request_id, actor=who, reason=body.reason),
    )


@router.post(
    "/api/egress/requests/{request_id}/release",
    response_model=em.ReleaseOut,
    response_model_exclude_unset=True,
)
def release_request(
    request_id: int, user: Anyone, cfg: Config, tasks: BackgroundTasks
) -> dict[str, Any]:
    inst = cfg.opened()
    done = release.release(inst, request_id, actor=Actor.of(user))
    after(tasks, cfg)
    with inst.sessions() as s:
        out = view(s, request_id, Actor.of(user))
    out["release_complete"] = done
    return out


@router.get("/api/egress/requests/{request_id}/released", response_model=list[em.ReleasedFileOut])
def released_files(request_id: int, s: Db, user: Anyone) -> list[dict[str, Any]]:
    return release.released_files(s, request_id, actor=Actor.of(user))


@router.get(
    "/api/egress/requests/{request_id}/released/{name}",
    response_class=FileResponse,
    responses={
        200: {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "description": "the released file, as an attachment",
        }
    },
)
def download(request_id: int, name: str, s: Db, user: Anyone, inst: Inst) -> FileResponse:
    """A released file, to a member of the request's project (never from a sandbox)."""
    path, filename = release.released_download(
        s, inst.data_dir, request_id, name, actor=Actor.of(user)
    )
    return attachment(path, filename)


@router.get(
    "/api/egress/requests/{request_id}/review",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
)
def review(request_id: int, s: Db, user: Anyone, inst: Inst) -> HTMLResponse:
    """The reviewer page: files rendered inertly, checks, provenance, blinded votes
    (reviewers and administrators only)."""
    seen = view(s, request_id, Actor.of(user))
    if seen.get("viewer") not in RENDERED_FOR:
        raise NotAllowed(
            f"{user.name} may not open the review page of request #{request_id}: it is for"
            f" its reviewers and administrators (GET /api/egress/requests/{request_id}"
            " gives its state, check results and comments)"
        )
    page = review_page(seen, blob_reader(inst.data_dir.egress_blobs))
    return HTMLResponse(page, headers=PAGE_HEADERS)


@router.get("/api/egress/notifications", response_model=list[em.NotificationOut])
def notifications(s: Db, user: Anyone, unread: bool = False) -> list[dict[str, Any]]:
    return manager.notifications(s, user.name, unread_only=unread)


@router.post("/api/egress/notifications/read")
def mark_read(user: Anyone, inst: Inst, body: em.ReadIn | None = None) -> em.MarkedOut:
    with inst.transaction() as s:
        return em.MarkedOut(marked=manager.mark_read(s, user.name, (body or em.ReadIn()).ids))
