"""REST routes of the airlock (export-control review), registered by ``api/app.py``.

(No ``from __future__ import annotations``: FastAPI must see the dependency
aliases defined inside :func:`register` as objects.)

Owns the HTTP face of :mod:`jupyterlab_hdh.egress`: thin handlers that
authenticate, call the workflow (which authorises every step from the caller's
role and project membership) and map its typed errors to HTTP statuses with a
one-line ``detail`` (``errors.EgressError.http_status``), never a traceback.

* ``/api/egress/...`` — bearer-token users: requesters (project members) create
  requests, add/remove files, submit, withdraw, download released files;
  reviewers vote, comment, record exceptions, approve/return/reject, release;
  everyone reads their notifications. ``GET .../{id}/review`` is the reviewer
  page: whole HTML, every file rendered inertly (``egress.render``) under a
  strict Content-Security-Policy with no script.
* ``/api/bridge/egress/...`` — the same requester steps for a sandbox, through
  the hub's API bridge: the caller is the bridged user in the bridged project,
  and only requests of that project are reachable (others are 404).

After each step that writes notifications, pending ones are e-mailed in a
background task (``egress.notify``; off unless SMTP is configured), so mail
never delays or undoes a step.
"""

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyterlab_hdh.api.models import AccessOut
from jupyterlab_hdh.context import Hub
from jupyterlab_hdh.egress import manager, release
from jupyterlab_hdh.egress import notify as mail
from jupyterlab_hdh.egress.errors import EgressError, NotFound
from jupyterlab_hdh.egress.render import PAGE_CSP, review_page
from jupyterlab_hdh.egress.snapshot import blob_path
from jupyterlab_hdh.governance.projects import Actor
from jupyterlab_hdh.store.models import ROLES, EgressRequest, User

# --- bodies ---------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestIn(_Body):
    project: str = Field(max_length=100)
    title: str = Field(max_length=200)


class BridgeRequestIn(_Body):
    title: str = Field(max_length=200)


class FileIn(_Body):
    path: str = Field(min_length=1, max_length=1024)
    role: Literal["output", "supporting", "code"] = "output"
    # an object (population, variables, degrees_of_freedom, description), or free text
    context: dict[str, Any] | str | None = None
    controls: str = Field(default="", max_length=10_000)


class ReasonIn(_Body):
    reason: str = Field(default="", max_length=10_000)


class VoteIn(_Body):
    path: str = Field(max_length=1024)
    decision: Literal["approve", "changes", "reject"]
    exception_reason: str | None = Field(default=None, max_length=10_000)


class ExceptionIn(_Body):
    path: str = Field(max_length=1024)
    reason: str = Field(max_length=10_000)


class CommentIn(_Body):
    body: str = Field(max_length=10_000)
    visibility: Literal["public", "private"] = "public"
    path: str | None = Field(default=None, max_length=1024)


class ReadIn(_Body):
    ids: list[int] | None = None  # None: all


def _context(value: dict[str, Any] | str | None) -> dict[str, Any] | None:
    """Free text (the JupyterLab panel sends a text box) is the context's description."""
    if isinstance(value, str):
        return {"description": value} if value.strip() else None
    return value


# --- registration ---------------------------------------------------------------------------------


def register(
    app: FastAPI,
    *,
    hub: Callable[[], Hub],
    require: Callable[..., Callable[..., User]],
    bridged: Callable[..., AccessOut],
    email: mail.EmailSettings | None = None,
) -> None:
    """Add the airlock routes to ``app`` (called once by ``create_app``).

    ``hub`` gives the opened installation, ``require(*roles)`` the bearer-token
    dependency and ``bridged`` the API-bridge identity dependency of ``app``;
    ``email`` defaults to :meth:`EmailSettings.load` of the data directory.
    """

    @app.exception_handler(EgressError)
    async def egress_error(_r: Request, exc: EgressError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

    @app.exception_handler(release.ReleaseError)
    async def release_error(_r: Request, exc: release.ReleaseError) -> JSONResponse:
        # a snapshot missing or altered on disk: the release stays pending for `hdh egress recover`
        return JSONResponse({"detail": f"release not completed: {exc}"}, status_code=500)

    def session() -> Any:
        with hub().sessions() as s:
            yield s

    Db = Annotated[Session, Depends(session)]
    Anyone = Annotated[User, Depends(require(*ROLES))]
    Bridged = Annotated[AccessOut, Depends(bridged)]
    settings_box: dict[str, mail.EmailSettings] = {}

    def settings() -> mail.EmailSettings:
        if "s" not in settings_box:
            settings_box["s"] = email or mail.EmailSettings.load(hub().data_dir.root)
        return settings_box["s"]

    def send_mail() -> None:
        if not settings().enabled:
            return
        with hub().sessions() as s:
            mail.send_pending(s, settings())

    def after(tasks: BackgroundTasks) -> None:
        tasks.add_task(send_mail)

    def actor(user: User) -> Actor:
        return Actor.of(user)

    def view(s: Session, request_id: int, who: Actor) -> dict[str, Any]:
        return manager.get_request(s, request_id, actor=who)

    # --- requesters and reviewers (bearer token) -----------------------------------------------

    tags: list[str | Enum] = ["egress"]

    @app.post("/api/egress/requests", tags=tags, status_code=201)
    def create_request(body: RequestIn, user: Anyone) -> dict[str, Any]:
        with hub().transaction() as s:
            req = manager.create_request(s, body.project, title=body.title, actor=actor(user))
            return view(s, req.id, actor(user))

    @app.get("/api/egress/requests", tags=tags)
    def list_requests(
        s: Db,
        user: Anyone,
        state: Annotated[str | None, Query(max_length=32)] = None,
        project: Annotated[str | None, Query(max_length=100)] = None,
    ) -> list[dict[str, Any]]:
        return manager.list_requests(s, actor=actor(user), state=state, project=project)

    @app.get("/api/egress/requests/{request_id}", tags=tags)
    def get_request(request_id: int, s: Db, user: Anyone) -> dict[str, Any]:
        return view(s, request_id, actor(user))

    @app.post("/api/egress/requests/{request_id}/files", tags=tags, status_code=201)
    def add_file(request_id: int, body: FileIn, user: Anyone) -> dict[str, Any]:
        return _add_file(request_id, body, actor(user))

    def _add_file(request_id: int, body: FileIn, who: Actor) -> dict[str, Any]:
        with hub().transaction() as s:
            f = manager.add_file(
                s,
                hub().data_dir,
                request_id,
                body.path,
                role=body.role,
                actor=who,
                context=_context(body.context),
                controls=body.controls,
            )
            path = f.path
            files = view(s, request_id, who)["files"]
        return next(x for x in files if x["path"] == path)

    @app.delete("/api/egress/requests/{request_id}/files/{path:path}", tags=tags, status_code=204)
    def remove_file(request_id: int, path: str, user: Anyone) -> Response:
        with hub().transaction() as s:
            manager.remove_file(s, request_id, path, actor=actor(user))
        return Response(status_code=204)

    @app.post("/api/egress/requests/{request_id}/submit", tags=tags)
    def submit(request_id: int, user: Anyone, tasks: BackgroundTasks) -> dict[str, Any]:
        with hub().transaction() as s:
            manager.submit(s, hub().data_dir, request_id, actor=actor(user))
            out = view(s, request_id, actor(user))
        after(tasks)
        return out

    @app.post("/api/egress/requests/{request_id}/withdraw", tags=tags)
    def withdraw(
        request_id: int, user: Anyone, tasks: BackgroundTasks, body: ReasonIn | None = None
    ) -> dict[str, Any]:
        with hub().transaction() as s:
            manager.withdraw(s, request_id, actor=actor(user), reason=(body or ReasonIn()).reason)
            out = view(s, request_id, actor(user))
        after(tasks)
        return out

    @app.post("/api/egress/requests/{request_id}/votes", tags=tags, status_code=201)
    def vote(request_id: int, body: VoteIn, user: Anyone, tasks: BackgroundTasks) -> dict[str, Any]:
        with hub().transaction() as s:
            v = manager.vote(
                s,
                request_id,
                body.path,
                body.decision,
                actor=actor(user),
                exception_reason=body.exception_reason,
            )
            out = {"path": body.path, "decision": v.decision, "sha256": v.sha256}
            out["state"] = s.get(EgressRequest, request_id).state  # type: ignore[union-attr]
        after(tasks)
        return out

    @app.post("/api/egress/requests/{request_id}/exceptions", tags=tags, status_code=201)
    def record_exception(request_id: int, body: ExceptionIn, user: Anyone) -> dict[str, Any]:
        with hub().transaction() as s:
            e = manager.record_exception(s, request_id, body.path, body.reason, actor=actor(user))
            return {"path": body.path, "reason": e.reason, "sha256": e.sha256}

    @app.post("/api/egress/requests/{request_id}/comments", tags=tags, status_code=201)
    def comment(request_id: int, body: CommentIn, user: Anyone) -> dict[str, Any]:
        with hub().transaction() as s:
            c = manager.comment(
                s,
                request_id,
                body.body,
                actor=actor(user),
                visibility=body.visibility,
                path=body.path,
            )
            return {"author": c.author, "visibility": c.visibility, "path": c.file_path}

    @app.post("/api/egress/requests/{request_id}/approve", tags=tags)
    def approve(request_id: int, user: Anyone, tasks: BackgroundTasks) -> dict[str, Any]:
        with hub().transaction() as s:
            manager.approve(s, request_id, actor=actor(user))
            out = view(s, request_id, actor(user))
        after(tasks)
        return out

    @app.post("/api/egress/requests/{request_id}/return", tags=tags)
    def return_request(
        request_id: int, body: ReasonIn, user: Anyone, tasks: BackgroundTasks
    ) -> dict[str, Any]:
        with hub().transaction() as s:
            manager.return_request(s, request_id, actor=actor(user), reason=body.reason)
            out = view(s, request_id, actor(user))
        after(tasks)
        return out

    @app.post("/api/egress/requests/{request_id}/reject", tags=tags)
    def reject(
        request_id: int, body: ReasonIn, user: Anyone, tasks: BackgroundTasks
    ) -> dict[str, Any]:
        with hub().transaction() as s:
            manager.reject(s, request_id, actor=actor(user), reason=body.reason)
            out = view(s, request_id, actor(user))
        after(tasks)
        return out

    @app.post("/api/egress/requests/{request_id}/release", tags=tags)
    def release_request(request_id: int, user: Anyone, tasks: BackgroundTasks) -> dict[str, Any]:
        done = release.release(hub(), request_id, actor=actor(user))
        after(tasks)
        with hub().sessions() as s:
            out = view(s, request_id, actor(user))
        out["release_complete"] = done
        return out

    @app.get("/api/egress/requests/{request_id}/released", tags=tags)
    def released_files(request_id: int, s: Db, user: Anyone) -> list[dict[str, Any]]:
        return release.released_files(s, request_id, actor=actor(user))

    @app.get(
        "/api/egress/requests/{request_id}/released/{name}",
        tags=tags,
        responses={200: {"content": {"application/octet-stream": {}}}},
    )
    def download(request_id: int, name: str, s: Db, user: Anyone) -> FileResponse:
        """A released file, to a member of the request's project (never from a sandbox)."""
        path = release.released_file(s, hub().data_dir, request_id, name, actor=actor(user))
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=path.name,
            content_disposition_type="attachment",
            headers={
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )

    @app.get(
        "/api/egress/requests/{request_id}/review",
        tags=tags,
        response_class=HTMLResponse,
        responses={200: {"content": {"text/html": {}}}},
    )
    def review(request_id: int, s: Db, user: Anyone) -> HTMLResponse:
        """The reviewer page: files rendered inertly, checks, provenance, blinded votes."""
        page = review_page(
            view(s, request_id, actor(user)), _blob_reader(hub().data_dir.egress_blobs)
        )
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/api/egress/notifications", tags=tags)
    def notifications(s: Db, user: Anyone, unread: bool = False) -> list[dict[str, Any]]:
        return manager.notifications(s, user.name, unread_only=unread)

    @app.post("/api/egress/notifications/read", tags=tags)
    def mark_read(user: Anyone, body: ReadIn | None = None) -> dict[str, int]:
        with hub().transaction() as s:
            return {"marked": manager.mark_read(s, user.name, (body or ReadIn()).ids)}

    # --- sandboxes, through the API bridge -----------------------------------------------------

    def bridged_actor(s: Session, me: AccessOut) -> Actor:
        user = s.scalar(select(User).where(User.name == me.user))
        if user is None:  # the permit check passed, so the user exists; be safe anyway
            raise HTTPException(403, f"unknown user {me.user!r}")
        return Actor.of(user)

    def in_project(s: Session, request_id: int, me: AccessOut) -> None:
        """Only the bridged project's requests are reachable from its sandbox."""
        req = s.get(EgressRequest, request_id)
        if req is None or req.project.slug != me.project:
            raise NotFound(f"no egress request #{request_id} in project {me.project!r}")

    btags: list[str | Enum] = ["bridge"]

    @app.get("/api/bridge/egress/requests", tags=btags)
    def bridge_list(
        s: Db, me: Bridged, state: Annotated[str | None, Query(max_length=32)] = None
    ) -> list[dict[str, Any]]:
        return manager.list_requests(s, actor=bridged_actor(s, me), state=state, project=me.project)

    @app.post("/api/bridge/egress/requests", tags=btags, status_code=201)
    def bridge_create(body: BridgeRequestIn, me: Bridged) -> dict[str, Any]:
        with hub().transaction() as s:
            who = bridged_actor(s, me)
            req = manager.create_request(s, me.project, title=body.title, actor=who)
            return view(s, req.id, who)

    @app.get("/api/bridge/egress/requests/{request_id}", tags=btags)
    def bridge_get(request_id: int, s: Db, me: Bridged) -> dict[str, Any]:
        in_project(s, request_id, me)
        return view(s, request_id, bridged_actor(s, me))

    @app.post("/api/bridge/egress/requests/{request_id}/files", tags=btags, status_code=201)
    def bridge_add_file(request_id: int, body: FileIn, s: Db, me: Bridged) -> dict[str, Any]:
        in_project(s, request_id, me)
        who = bridged_actor(s, me)
        s.rollback()  # the lookups above are done; the step runs in its own transaction
        return _add_file(request_id, body, who)

    @app.post("/api/bridge/egress/requests/{request_id}/submit", tags=btags)
    def bridge_submit(
        request_id: int, s: Db, me: Bridged, tasks: BackgroundTasks
    ) -> dict[str, Any]:
        in_project(s, request_id, me)
        who = bridged_actor(s, me)
        s.rollback()
        with hub().transaction() as t:
            manager.submit(t, hub().data_dir, request_id, actor=who)
            out = view(t, request_id, who)
        after(tasks)
        return out

    @app.post("/api/bridge/egress/requests/{request_id}/withdraw", tags=btags)
    def bridge_withdraw(
        request_id: int,
        s: Db,
        me: Bridged,
        tasks: BackgroundTasks,
        body: ReasonIn | None = None,
    ) -> dict[str, Any]:
        in_project(s, request_id, me)
        who = bridged_actor(s, me)
        s.rollback()
        with hub().transaction() as t:
            manager.withdraw(t, request_id, actor=who, reason=(body or ReasonIn()).reason)
            out = view(t, request_id, who)
        after(tasks)
        return out


#: Headers of the reviewer page: no script, nothing fetched, not framed, not cached, not sniffed.
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def _blob_reader(blobs: Path) -> Callable[[str], bytes | None]:
    """Snapshot bytes by sha256 (their size is bounded by the airlock's per-file limit)."""

    def read(sha256: str) -> bytes | None:
        try:
            return blob_path(blobs, sha256).read_bytes()
        except (OSError, ValueError):
            return None

    return read
