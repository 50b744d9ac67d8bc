"""REST routes of the airlock (export-control review), registered by ``api/app.py``.

(No ``from __future__ import annotations``: FastAPI must see the dependency
aliases defined inside :func:`register` as objects.)

Owns the HTTP face of :mod:`jupyterlab_hdh.egress`: thin handlers that
authenticate, call the workflow (which authorises every step from the caller's
role and project membership); its typed errors are ``HdhError`` subclasses that the app's
one handler answers with their ``http_status`` and a one-line ``detail``, never a
traceback.

* ``/api/egress/...`` — bearer-token users: requesters (project members) create
  requests, add/remove files, submit, withdraw, download released files;
  reviewers vote, comment, record exceptions, approve/return/reject, release;
  everyone reads their notifications. ``GET .../{id}/review`` is the reviewer
  page: whole HTML, every file rendered inertly (``egress.render``) under a
  strict Content-Security-Policy with no script, for the request's reviewers and
  administrators only (403 for project members: a rendering, or any copy of a
  snapshot, shown to the requester would carry out what a kernel wrote in a file;
  they get the state, the redacted check results and the comments).
* ``/api/bridge/egress/...`` — the same requester steps for a sandbox, through
  the hub's API bridge: the caller is the bridged user in the bridged project,
  and only requests of that project are reachable (others are 404).

What a sandbox writes (a title, a file's path, context and controls, a reason)
is short and typed at this edge (the bodies below, bounds from ``egress.manager``,
which checks them again for every caller), and a refusal is a 422 with a
one-line ``detail`` naming the field, before anything is changed.

After each step that writes notifications, pending ones are e-mailed in a
background task (``egress.notify``; off unless SMTP is configured), so mail
never delays or undoes a step. When the app starts, releases a crash
interrupted are finished (``release.recover``).

``/ui/egress/...`` (under ``hdh up``, people logged in through the hub): the
list of requests, and each request's page (the reviewer page plus the forms
the viewer may use now: votes, decisions, release, comments; for members the same
page without any file rendered, and the download links once released). Forms carry
a per-session anti-forgery token.
"""

import asyncio
import logging
import re
import threading
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
)
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyterlab_hdh.api.models import AccessOut
from jupyterlab_hdh.api.templating import TEMPLATES
from jupyterlab_hdh.context import Hub
from jupyterlab_hdh.egress import manager, release
from jupyterlab_hdh.egress import notify as mail
from jupyterlab_hdh.egress.errors import EgressError, NotAllowed, NotFound
from jupyterlab_hdh.egress.manager import (
    CONTROLS_MAX,
    DESCRIPTION_MAX,
    DOF_MAX,
    PATH_MAX,
    POPULATION_MAX,
    REASON_MAX,
    TITLE_MAX,
    VARIABLE_MAX,
    VARIABLES_MAX,
)
from jupyterlab_hdh.egress.render import PAGE_CSP, RENDERED_FOR, review_page
from jupyterlab_hdh.egress.settings import load_settings
from jupyterlab_hdh.egress.snapshot import blob_path
from jupyterlab_hdh.governance.projects import Actor
from jupyterlab_hdh.store.models import ROLES, EgressRequest, User

log = logging.getLogger(__name__)

# --- bodies ---------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(value: str) -> str:
    if _CONTROL.search(value) or any(c in value for c in "\t\n\r"):
        raise ValueError("must be one line, without tabs or control characters")
    return value


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not hold control characters")
    return value


OneLine = AfterValidator(_one_line)
NoControl = AfterValidator(_no_control)
Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX), OneLine]
WorkspacePath = Annotated[str, Field(min_length=1, max_length=PATH_MAX), OneLine]
Population = Annotated[str, Field(max_length=POPULATION_MAX), OneLine]
VariableName = Annotated[str, Field(min_length=1, max_length=VARIABLE_MAX), OneLine]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX), NoControl]
Controls = Annotated[str, Field(max_length=CONTROLS_MAX), NoControl]
WithdrawReason = Annotated[str, Field(max_length=REASON_MAX), NoControl]


class RequestIn(_Body):
    project: str = Field(max_length=100)
    title: Title


class BridgeRequestIn(_Body):
    title: Title


class ContextIn(_Body):
    """What a reviewer needs to know about an output (its text: ``CONTEXT_MAX`` in all)."""

    population: Population | None = None
    variables: (
        Annotated[list[VariableName], Field(max_length=VARIABLES_MAX)] | VariableName | None
    ) = None
    degrees_of_freedom: Annotated[StrictInt, Field(ge=0, le=DOF_MAX)] | None = None
    description: Description | None = None


class FileIn(_Body):
    path: WorkspacePath
    role: Literal["output", "supporting", "code"] = "output"
    # an object (population, variables, degrees_of_freedom, description), or free text
    context: ContextIn | Description | None = None
    controls: Controls = ""


class ReasonIn(_Body):
    reason: str = Field(default="", max_length=10_000)


class WithdrawIn(_Body):
    """The author's reason to withdraw (also what a sandbox may send)."""

    reason: WithdrawReason = ""


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


def _context(value: ContextIn | str | None) -> dict[str, Any] | None:
    """Free text (the JupyterLab panel sends a text box) is the context's description."""
    if isinstance(value, str):
        return {"description": value} if value.strip() else None
    return None if value is None else value.model_dump(exclude_unset=True)


#: Names pydantic puts in an error's location for the branch of a union it tried.
_BRANCH = re.compile(r"[A-Z].*|.*[\[\]-].*|str|int")
#: Errors of a union's branch of another type than the value's.
_WRONG_BRANCH = frozenset(
    {"model_type", "model_attributes_type", "dict_type", "string_type", "list_type", "int_type"}
)


def _validation_detail(errors: Sequence[Any]) -> str:
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


# --- registration ---------------------------------------------------------------------------------


def register(
    app: FastAPI,
    *,
    hub: Callable[[], Hub],
    require: Callable[..., Callable[..., User]],
    bridged: Callable[..., AccessOut],
    browser_auth: Any = None,
    email: mail.EmailSettings | None = None,
) -> None:
    """Add the airlock routes to ``app`` (called once by ``create_app``).

    ``hub`` gives the opened installation, ``require(*roles)`` the bearer-token
    dependency and ``bridged`` the API-bridge identity dependency of ``app``;
    ``browser_auth`` (``api.browser.HubBrowserAuth``, under ``hdh up``) enables the
    ``/ui/egress/`` pages; ``email`` defaults to :meth:`EmailSettings.load` of the
    data directory.
    """

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

    sending = threading.Lock()  # one sender at a time in this process (SQLite has no row locks)

    def send_mail() -> None:
        if not settings().enabled:
            return
        with sending, hub().sessions() as s:
            mail.send_pending(s, settings())

    def after(tasks: BackgroundTasks) -> None:
        tasks.add_task(send_mail)

    def actor(user: User) -> Actor:
        return Actor.of(user)

    def view(s: Session, request_id: int, who: Actor) -> dict[str, Any]:
        return manager.get_request(s, request_id, actor=who)

    def new_request(s: Session, project: str, title: str, who: Actor) -> dict[str, Any]:
        quotas = load_settings(hub().data_dir).quotas
        req = manager.create_request(s, project, title=title, actor=who, quotas=quotas)
        return view(s, req.id, who)

    # --- requesters and reviewers (bearer token) -----------------------------------------------

    tags: list[str | Enum] = ["egress"]

    @app.post("/api/egress/requests", tags=tags, status_code=201)
    def create_request(body: RequestIn, user: Anyone) -> dict[str, Any]:
        with hub().transaction() as s:
            return new_request(s, body.project, body.title, actor(user))

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

    def step(
        request_id: int, user: User, tasks: BackgroundTasks, change: Callable[..., object]
    ) -> dict[str, Any]:
        """One workflow step: ``change(session, actor)`` and the request's new view, committed
        together; notifications are e-mailed after the reply."""
        who = actor(user)
        with hub().transaction() as s:
            change(s, who)
            out = view(s, request_id, who)
        after(tasks)
        return out

    @app.post("/api/egress/requests/{request_id}/submit", tags=tags)
    def submit(request_id: int, user: Anyone, tasks: BackgroundTasks) -> dict[str, Any]:
        return step(
            request_id,
            user,
            tasks,
            lambda s, who: manager.submit(s, hub().data_dir, request_id, actor=who),
        )

    @app.post("/api/egress/requests/{request_id}/withdraw", tags=tags)
    def withdraw(
        request_id: int, user: Anyone, tasks: BackgroundTasks, body: WithdrawIn | None = None
    ) -> dict[str, Any]:
        reason = (body or WithdrawIn()).reason
        return step(
            request_id,
            user,
            tasks,
            lambda s, who: manager.withdraw(s, request_id, actor=who, reason=reason),
        )

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
        return step(
            request_id, user, tasks, lambda s, who: manager.approve(s, request_id, actor=who)
        )

    @app.post("/api/egress/requests/{request_id}/return", tags=tags)
    def return_request(
        request_id: int, body: ReasonIn, user: Anyone, tasks: BackgroundTasks
    ) -> dict[str, Any]:
        return step(
            request_id,
            user,
            tasks,
            lambda s, who: manager.return_request(s, request_id, actor=who, reason=body.reason),
        )

    @app.post("/api/egress/requests/{request_id}/reject", tags=tags)
    def reject(
        request_id: int, body: ReasonIn, user: Anyone, tasks: BackgroundTasks
    ) -> dict[str, Any]:
        return step(
            request_id,
            user,
            tasks,
            lambda s, who: manager.reject(s, request_id, actor=who, reason=body.reason),
        )

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
        path, filename = release.released_download(
            s, hub().data_dir, request_id, name, actor=actor(user)
        )
        return _attachment(path, filename)

    @app.get(
        "/api/egress/requests/{request_id}/review",
        tags=tags,
        response_class=HTMLResponse,
        responses={200: {"content": {"text/html": {}}}},
    )
    def review(request_id: int, s: Db, user: Anyone) -> HTMLResponse:
        """The reviewer page: files rendered inertly, checks, provenance, blinded votes
        (reviewers and administrators only)."""
        seen = view(s, request_id, actor(user))
        if seen.get("viewer") not in RENDERED_FOR:
            raise NotAllowed(
                f"{user.name} may not open the review page of request #{request_id}: it is for"
                f" its reviewers and administrators (GET /api/egress/requests/{request_id}"
                " gives its state, check results and comments)"
            )
        page = review_page(seen, _blob_reader(hub().data_dir.egress_blobs))
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/api/egress/notifications", tags=tags)
    def notifications(s: Db, user: Anyone, unread: bool = False) -> list[dict[str, Any]]:
        return manager.notifications(s, user.name, unread_only=unread)

    @app.post("/api/egress/notifications/read", tags=tags)
    def mark_read(user: Anyone, body: ReadIn | None = None) -> dict[str, int]:
        with hub().transaction() as s:
            return {"marked": manager.mark_read(s, user.name, (body or ReadIn()).ids)}

    _register_browser(app, hub, browser_auth, send_mail)
    _recover_at_start(app, hub)

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

    @app.get("/api/bridge/egress/checks", tags=btags)
    def bridge_checks(me: Bridged) -> dict[str, Any]:
        """The installation's disclosure-check thresholds (``airlock.toml``): what a submit
        applies, so that ``hdh egress check`` in a sandbox answers the same."""
        return {"checks": load_settings(hub().data_dir).checks.to_dict()}

    @app.get("/api/bridge/egress/requests", tags=btags)
    def bridge_list(
        s: Db, me: Bridged, state: Annotated[str | None, Query(max_length=32)] = None
    ) -> list[dict[str, Any]]:
        return manager.list_requests(s, actor=bridged_actor(s, me), state=state, project=me.project)

    @app.post("/api/bridge/egress/requests", tags=btags, status_code=201)
    def bridge_create(body: BridgeRequestIn, me: Bridged) -> dict[str, Any]:
        with hub().transaction() as s:
            return new_request(s, me.project, body.title, bridged_actor(s, me))

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
        body: WithdrawIn | None = None,
    ) -> dict[str, Any]:
        in_project(s, request_id, me)
        who = bridged_actor(s, me)
        s.rollback()
        with hub().transaction() as t:
            manager.withdraw(t, request_id, actor=who, reason=(body or WithdrawIn()).reason)
            out = view(t, request_id, who)
        after(tasks)
        return out


def _recover_at_start(app: FastAPI, hub: Callable[[], Hub]) -> None:
    """Finish releases a crash interrupted, once the app's own start-up opened the hub.

    (Wraps the app's lifespan: ``create_app`` owns it, the airlock adds this step.)"""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> Any:
        async with inner(a) as state:
            try:
                done = await asyncio.to_thread(release.recover, hub())
            except Exception:  # never keep the control plane from starting
                log.exception("airlock: recovering interrupted releases failed")
            else:
                for request_id, outcome in done:
                    log.warning("airlock: request #%s after recovery: %s", request_id, outcome)
            yield state

    app.router.lifespan_context = lifespan


def _attachment(path: Path, filename: str) -> FileResponse:
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


def _no_blob(_sha256: str) -> bytes | None:
    return None


def _blob_reader(blobs: Path) -> Callable[[str], bytes | None]:
    """Snapshot bytes by sha256 (their size is bounded by the airlock's per-file limit)."""

    def read(sha256: str) -> bytes | None:
        try:
            return blob_path(blobs, sha256).read_bytes()
        except (OSError, ValueError):
            return None

    return read


# --- the browser UI (logged in through the hub) ---------------------------------------------------

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


def _simple_page(title: str, message: str) -> str:
    from jupyterlab_hdh.egress.render import PAGE_STYLE

    return TEMPLATES.get_template("egress_page.html").render(
        title=title, message=message, style=PAGE_STYLE
    )


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


def _register_browser(
    app: FastAPI, hub: Callable[[], Hub], auth: Any, after_step: Callable[[], None]
) -> None:
    """``/ui/egress/...``: the airlock for people in a browser (hub login), no script."""
    from urllib.parse import parse_qs

    prefix = auth.prefix if auth is not None else "/"

    async def browser_user(request: Request) -> Any:
        if auth is None:
            raise HTTPException(503, "the web pages need the hub: start with `hdh up`")
        return await auth.user(dict(request.cookies), prefix + request.url.path.lstrip("/"))

    def actor_of(name: str) -> Actor:
        with hub().sessions() as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None:
                raise NotFound(f"no user {name!r} in the store")
            return Actor.of(user)

    def page(status: int, title: str, message: str) -> HTMLResponse:
        return HTMLResponse(_simple_page(title, message), status_code=status, headers=UI_HEADERS)

    @app.get("/ui/egress/", include_in_schema=False)
    async def ui_list(request: Request) -> Response:
        me = await browser_user(request)

        def load() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            who = actor_of(me.name)
            with hub().sessions() as s:
                return (
                    manager.list_requests(s, actor=who),
                    manager.notifications(s, me.name, unread_only=True),
                )

        try:
            rows, notes = await asyncio.to_thread(load)
        except EgressError as exc:
            return page(exc.http_status, "Export requests", str(exc))
        from jupyterlab_hdh.egress.render import PAGE_STYLE

        body = TEMPLATES.get_template("egress_list.html").render(
            title=f"Export requests visible to {me.name}",
            style=PAGE_STYLE,
            prefix=prefix,
            rows=rows,
            notes=notes,
        )
        return HTMLResponse(body, status_code=200, headers=UI_HEADERS)

    async def request_page(
        me: Any, request_id: int, error: str = "", status: int = 200
    ) -> Response:
        url = f"{prefix}ui/egress/requests/{request_id}"

        def load() -> dict[str, Any]:
            with hub().sessions() as s:
                return manager.get_request(s, request_id, actor=actor_of(me.name))

        try:
            view = await asyncio.to_thread(load)
        except EgressError as exc:
            return page(exc.http_status, f"Export request #{request_id}", str(exc))
        actions = _actions(view, me.name, url, me.form_token(auth.form_secret), error)
        # members (the requester) get no rendering: their page never reads a snapshot
        read = (
            _blob_reader(hub().data_dir.egress_blobs)
            if view.get("viewer") in RENDERED_FOR
            else _no_blob
        )
        html_page = review_page(view, read, actions_html=actions)
        return HTMLResponse(html_page, status_code=status, headers=UI_HEADERS)

    @app.get("/ui/egress/requests/{request_id}", include_in_schema=False)
    async def ui_request(request: Request, request_id: int) -> Response:
        return await request_page(await browser_user(request), request_id)

    @app.post("/ui/egress/requests/{request_id}", include_in_schema=False)
    async def ui_action(request: Request, request_id: int) -> Response:
        me = await browser_user(request)
        body = await request.body()
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if len(body) > MAX_FORM_BYTES or ctype != "application/x-www-form-urlencoded":
            return page(400, "Export request", "expected a small form post")
        try:
            fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
            form = {k: v[0] for k, v in fields.items()}
        except (UnicodeDecodeError, ValueError):
            return page(400, "Export request", "malformed form")
        if not auth.check_form(me, form.get("_form", "")):
            return await request_page(
                me, request_id, "this form expired or came from another site: try again", 403
            )
        action = form.get("action", "")
        if action not in UI_ACTIONS:
            return await request_page(me, request_id, f"unknown action {action!r}", 400)

        def step() -> None:
            who = actor_of(me.name)
            if action == "release":
                release.release(hub(), request_id, actor=who)
                return
            with hub().transaction() as s:
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
                    manager.submit(s, hub().data_dir, request_id, actor=who)
                else:
                    manager.withdraw(s, request_id, actor=who, reason=form.get("reason", ""))

        try:
            await asyncio.to_thread(step)
        except EgressError as exc:
            return await request_page(me, request_id, str(exc), exc.http_status)
        await asyncio.to_thread(after_step)
        return RedirectResponse(
            f"{prefix}ui/egress/requests/{request_id}", status_code=303, headers=UI_HEADERS
        )

    @app.get("/ui/egress/requests/{request_id}/released/{name}", include_in_schema=False)
    async def ui_download(request: Request, request_id: int, name: str) -> Response:
        me = await browser_user(request)

        def locate() -> tuple[Path, str]:
            with hub().sessions() as s:
                return release.released_download(
                    s, hub().data_dir, request_id, name, actor=actor_of(me.name)
                )

        try:
            path, filename = await asyncio.to_thread(locate)
        except EgressError as exc:
            return page(exc.http_status, "Download", str(exc))
        return _attachment(path, filename)
