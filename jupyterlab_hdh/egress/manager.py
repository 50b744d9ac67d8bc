"""The airlock's request workflow: requests, files, votes, comments, exceptions, decisions.

Owns every change to an egress request and the views of it; the REST API, the
CLI and the notebook client call these functions and map :mod:`errors` to HTTP
statuses. Every function takes the caller's session first and changes the store
only inside it: each step is audited (``egress.*`` actions, target
``egress:<id>``) and writes its notifications in the same transaction, so all
commit or roll back together. Files are named by their workspace-relative
path, unique in a request.

API (``actor`` is a :class:`jupyterlab_hdh.governance.projects.Actor`)::

    create_request(session, project, *, title, actor, quotas=None) -> EgressRequest
    add_file(session, data_dir, request_id, path, *, role, actor, context=None,
             controls="", limits=None, quotas=None) -> EgressFile  # snapshot now (airlock.toml)
    remove_file(session, request_id, path, *, actor) -> None
    submit(session, data_dir, request_id, *, actor, check_config=None) -> EgressRequest
    withdraw(session, request_id, *, actor, reason="") -> EgressRequest
    vote(session, request_id, path, decision, *, actor, exception_reason=None) -> EgressVote
    record_exception(session, request_id, path, reason, *, actor) -> EgressException
    comment(session, request_id, body, *, actor, visibility="public", path=None)
        -> EgressComment
    approve(session, request_id, *, actor) -> EgressRequest
    return_request(session, request_id, *, actor, reason) -> EgressRequest
    reject(session, request_id, *, actor, reason) -> EgressRequest
    start_release(session, request_id, *, actor) -> list[EgressOutbox]  # see release.py
    get_request(session, request_id, *, actor) -> dict   # blinded and redacted per viewer
    requester_report(report) -> dict | None            # a check report as members see it
    list_requests(session, *, actor, state=None, project=None) -> list[dict]
    notifications(session, user_name, unread_only=False) -> list[dict]
    mark_read(session, user_name, ids=None) -> int
    approval_problems(session, request) -> list[str]   # why it cannot be approved yet
    kinds(session, request, actor) -> set[str]         # the actor kinds (permissions.py)

Release, recovery and downloads are in :mod:`release`: ``release(hub, request_id, *,
actor)``, ``deliver(hub, request_id)``, ``recover(hub)``, ``released_files(session,
request_id, *, actor)``, ``released_file(session, data_dir, request_id, name, *, actor)``.

Rules (the transition table and actor kinds are in :mod:`states`, who is which kind of
actor for a request, and who sees it, in :mod:`permissions`):

* A request belongs to one project and is created by one of its members (its
  author), who alone adds, replaces and removes files while it is ``draft`` or
  ``returned``. Adding a file snapshots it at once (:mod:`snapshot`); adding
  the same path again replaces it and deletes its votes and exceptions.
* Submitting runs the automated checks on every file and stores each report.
  A request needs at least one ``output`` file; only output files are voted on
  and released (supporting files and code are shown to reviewers).
* Reviewers (:data:`states.REVIEWER_ROLES`, never the author or a member of the
  project) vote ``approve``, ``changes`` or ``reject`` on each output file,
  once each, two per file; a vote binds to the file's sha256. The view blinds
  a reviewer to the other reviewer's vote, exception and private comments on a
  file until both voted. When every output file has two votes the request is
  ``reviewed`` and a reviewer consolidates: :func:`approve` (only when every
  vote is ``approve`` on the current hash), :func:`return_request` or
  :func:`reject`.
* The gate: an ``approve`` vote on a file whose check status is ``fail`` (or
  whose checks could not run) needs an exception with a reason recorded by
  that reviewer for that hash (:func:`record_exception`, or ``exception_reason``).
* Resubmitting a returned request keeps the ``approve`` votes of files that
  were not replaced (an approval binds to the hash, which did not change) and
  drops the other votes, so those files are reviewed again.
* Slow work (the snapshot, the checks) runs before the request's lock is taken and is
  re-checked under it, so the store's write lock (SQLite) is never held for long. A blob
  left by a step refused afterwards is harmless (content-addressed, never served).
* Members see individual votes and exceptions once the request is decided;
  private comments are never shown to them. An actor who may not see a request
  gets :class:`NotFound`.
* Members (the author included) never get anything made from a snapshot's bytes
  beyond its hash, size and check status: their view of a check report keeps the
  status, the kind of file, each flag's rule, severity and row, and the counts, never
  a flag's message, column, labels or error text, which quote the file
  (:func:`requester_report`); the renderings are for reviewers and administrators
  (``render.review_page``). Otherwise a kernel could put data in a file, add it to a
  draft through the API bridge and read it back from outside the sandbox.
* What a sandbox writes into a request and people outside it read back is short
  and typed: a title of one line (:data:`TITLE_MAX`), a workspace path
  (:data:`PATH_MAX`), a context of known fields (:data:`CONTEXT_MAX` characters in
  all) and controls (:data:`CONTROLS_MAX`); a project creates at most
  ``max_requests_per_day`` requests and adds or replaces at most
  ``max_file_additions_per_day`` files a day (``settings.Quotas``, ``airlock.toml``).
  Everything is checked before anything is changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, cast, func, literal, select, update
from sqlalchemy.orm import Session, selectinload

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.egress import states as st
from jupyterlab_hdh.egress.downloads import download_names
from jupyterlab_hdh.egress.errors import (
    GateBlocked,
    InvalidFile,
    LimitExceeded,
    NotAllowed,
    NotFound,
    WrongState,
)
from jupyterlab_hdh.egress.permissions import is_member as _is_member
from jupyterlab_hdh.egress.permissions import (
    kinds,
    kinds_for,
    may_create,
    member_projects,
    role_of,
    visible_for,
)
from jupyterlab_hdh.egress.permissions import require as _require
from jupyterlab_hdh.egress.permissions import viewer as _viewer
from jupyterlab_hdh.egress.permissions import visible as _visible
from jupyterlab_hdh.egress.snapshot import Limits, blob_path, snapshot, strip_figure
from jupyterlab_hdh.governance.projects import (
    Actor,
    UnknownProject,
    get_project,
)
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.store.db import is_row_id
from jupyterlab_hdh.store.models import (
    AuditEvent,
    EgressComment,
    EgressException,
    EgressFile,
    EgressOutbox,
    EgressRequest,
    EgressVote,
    Notification,
    Project,
    ProjectMember,
    User,
)
from jupyterlab_hdh.textfields import CONTROL, LINE_BREAK, clean_text
from jupyterlab_hdh.timestamps import iso_utc

if TYPE_CHECKING:
    from jupyterlab_hdh.egress.settings import Quotas

ROLES = ("output", "supporting", "code")
DECISIONS = ("approve", "changes", "reject")
VISIBILITIES = ("public", "private")
CONTEXT_KEYS = ("population", "variables", "degrees_of_freedom", "description")
#: What a sandbox may write into a request (through the API bridge) and people outside it
#: read back: short, typed, bounded (characters).
TITLE_MAX = 200  # one line
PATH_MAX = 255  # a workspace-relative path, one line
CONTROLS_MAX = 1000
CONTEXT_MAX = 1000  # population + description + variable names, in all
POPULATION_MAX, DESCRIPTION_MAX = 200, 1000  # the population: one line
VARIABLES_MAX, VARIABLE_MAX = 50, 64  # names: one line each
DOF_MAX = 10**9
REASON_MAX = 1000  # the author's reason to withdraw
#: Reviewers' reasons and comments (written outside any sandbox).
TEXT_MAX = 10_000
VOTES_PER_FILE = 2
#: States after a decision: members see the individual votes from then on.
DECIDED = frozenset({st.APPROVED, st.RETURNED, st.REJECTED, st.RELEASING, st.RELEASED})


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime | None) -> str | None:
    return iso_utc(dt, "microseconds")


def _text(value: Any, what: str, limit: int, *, required: bool = True, line: bool = False) -> str:
    return clean_text(value, what, limit, error=InvalidFile, required=required, one_line=line)


def check_title(title: Any) -> str:
    """A request's title: one line of at most :data:`TITLE_MAX` characters."""
    return _text(title, "title", TITLE_MAX, line=True)


def check_path(path: Any) -> str:
    """A file's workspace-relative path as given: one line of at most :data:`PATH_MAX`
    characters (the snapshot checks that it names a regular file inside the workspace)."""
    if not isinstance(path, str) or not path:
        raise InvalidFile("give the path of a file in the workspace")
    if len(path) > PATH_MAX:
        raise InvalidFile(f"the path is longer than {PATH_MAX} characters ({len(path)})")
    bad = CONTROL.search(path) or LINE_BREAK.search(path)
    if bad is not None:
        raise InvalidFile(f"the path contains a control character (U+{ord(bad.group()):04X})")
    return path


def check_context(context: Any) -> dict[str, Any]:
    """Validate a file's context: population, variables, degrees of freedom, description."""
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise InvalidFile("the context must be an object (population, variables, ...)")
    unknown = sorted(set(context) - set(CONTEXT_KEYS))
    if unknown:
        raise InvalidFile(
            f"unknown context field(s) {', '.join(map(repr, unknown))}:"
            f" use {', '.join(CONTEXT_KEYS)}"
        )
    out: dict[str, Any] = {}
    if "population" in context:
        out["population"] = _text(
            context["population"], "population", POPULATION_MAX, required=False, line=True
        )
    if "description" in context:
        out["description"] = _text(
            context["description"], "description", DESCRIPTION_MAX, required=False
        )
    if "variables" in context:
        variables = context["variables"]
        if isinstance(variables, str):
            variables = [variables]
        if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
            raise InvalidFile("the context's variables must be a list of names")
        if len(variables) > VARIABLES_MAX:
            raise InvalidFile(
                f"the context names {len(variables)} variables, more than {VARIABLES_MAX}"
            )
        out["variables"] = [_text(v, "variable name", VARIABLE_MAX, line=True) for v in variables]
    if "degrees_of_freedom" in context:
        dof = context["degrees_of_freedom"]
        if dof is not None and (
            isinstance(dof, bool) or not isinstance(dof, int) or not 0 <= dof <= DOF_MAX
        ):
            raise InvalidFile(
                f"the context's degrees_of_freedom must be an integer from 0 to {DOF_MAX}"
            )
        out["degrees_of_freedom"] = dof
    size = sum(len(out.get(k) or "") for k in ("population", "description"))
    size += sum(len(v) for v in out.get("variables") or [])
    if size > CONTEXT_MAX:
        raise InvalidFile(
            f"the context holds {size} characters of text, more than {CONTEXT_MAX} in all"
        )
    return out


# --- lookups and actors -------------------------------------------------------------------------


def find(session: Session, request_id: int) -> EgressRequest | None:
    """The request as the session sees it, or None (also for an id no request can have)."""
    return session.get(EgressRequest, request_id) if is_row_id(request_id) else None


def _lock(session: Session, request_id: int) -> EgressRequest:
    """The request, locked for this transaction (a no-op UPDATE first: the row lock on
    PostgreSQL, the write lock on SQLite), read fresh after the lock."""
    if not is_row_id(request_id):
        raise NotFound(f"no egress request {request_id!r}")
    result = session.execute(
        update(EgressRequest)
        .where(EgressRequest.id == request_id)
        .values(state=EgressRequest.state)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"no egress request #{request_id}")
    session.expire_all()  # what a concurrent transaction committed before the lock
    req = session.get(EgressRequest, request_id)
    assert req is not None
    return req


def _file(req: EgressRequest, path: str) -> EgressFile:
    for f in req.files:
        if f.path == path:
            return f
    raise NotFound(f"request #{req.id} has no file {path!r}")


def _outputs(req: EgressRequest) -> list[EgressFile]:
    return [f for f in req.files if f.role == "output"]


def _audit(session: Session, req: EgressRequest, actor: str, action: str, **details: Any) -> None:
    record(
        session,
        actor=actor,
        action=action,
        target=f"egress:{req.id}",
        details={"request": req.id, "project": req.project.slug, **details},
    )


def _notify(
    session: Session, users: Sequence[str], req: EgressRequest, kind: str, subject: str, body: str
) -> None:
    for name in dict.fromkeys(users):
        session.add(
            Notification(
                user_name=name,
                request_id=req.id,
                kind=kind,
                subject=subject[:200],
                body=body,
                created_at=_now(),
            )
        )
    session.flush()


def _reviewers_of(session: Session, req: EgressRequest) -> list[str]:
    members = set(
        session.scalars(
            select(User.name).join(ProjectMember).where(ProjectMember.project_id == req.project_id)
        )
    )
    names = session.scalars(
        select(User.name).where(User.role.in_(st.REVIEWER_ROLES)).order_by(User.name)
    )
    return [n for n in names if n not in members and n != req.author]


def _move(
    session: Session,
    req: EgressRequest,
    target: str,
    actor_name: str,
    have: set[str],
    **details: Any,
) -> None:
    """Apply one transition of the table, audited."""
    source = req.state
    st.check(source, target, have, who=actor_name)
    req.state = target
    req.updated_at = _now()
    session.flush()
    _audit(session, req, actor_name, f"egress.{target}", **{"from": source, **details})


def _advance(session: Session, req: EgressRequest) -> None:
    """The system's steps after a submission or a vote: partially reviewed, reviewed."""
    outputs = _outputs(req)
    counts = [len(f.votes) for f in outputs]
    if req.state in st.VOTING and outputs and all(c >= VOTES_PER_FILE for c in counts):
        _move(session, req, st.REVIEWED, "system", {st.SYSTEM})
        _notify(
            session,
            sorted({v.reviewer for f in outputs for v in f.votes}),
            req,
            "reviewed",
            f"Egress request #{req.id} is fully reviewed",
            f"Every output of request #{req.id} ({req.title}) has two votes: it awaits a"
            " decision (approve, return or reject).",
        )
    elif req.state == st.SUBMITTED and any(counts):
        _move(session, req, st.PARTIALLY_REVIEWED, "system", {st.SYSTEM})


# --- the author's steps -------------------------------------------------------------------------


class QuotaExceeded(LimitExceeded):
    """The project used its daily quota of requests or file additions (``settings.Quotas``)."""

    http_status = 429


def _quotas(quotas: Quotas | None) -> Quotas:
    if quotas is not None:
        return quotas
    from jupyterlab_hdh.egress.settings import DEFAULT_QUOTAS

    return DEFAULT_QUOTAS


def _day_ago() -> datetime:
    return _now() - timedelta(days=1)


def _lock_project(session: Session, project_id: int) -> None:
    """Serialise the quota checks of one project (a no-op UPDATE: its row lock on
    PostgreSQL, the write lock on SQLite)."""
    session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(slug=Project.slug)
        .execution_options(synchronize_session=False)
    )


def _check_request_quota(session: Session, proj: Project, quotas: Quotas) -> None:
    _lock_project(session, proj.id)
    made = session.scalar(
        select(func.count())
        .select_from(EgressRequest)
        .where(EgressRequest.project_id == proj.id, EgressRequest.created_at >= _day_ago())
    )
    if (made or 0) >= quotas.max_requests_per_day:
        raise QuotaExceeded(
            f"project {proj.slug!r} already created {made} export requests in the last 24"
            f" hours, its daily quota of {quotas.max_requests_per_day}: try again later"
        )


def _check_addition_quota(session: Session, req: EgressRequest, quotas: Quotas) -> None:
    """Files added or replaced in any request of the project over the last 24 hours (the
    audit log is the record: a removed or replaced file still counts)."""
    _lock_project(session, req.project_id)
    targets = select(literal("egress:") + cast(EgressRequest.id, String)).where(
        EgressRequest.project_id == req.project_id
    )
    added = session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action.in_(("egress.file.add", "egress.file.replace")),
            AuditEvent.ts >= _day_ago().isoformat(timespec="microseconds"),
            AuditEvent.target.in_(targets),
        )
    )
    if (added or 0) >= quotas.max_file_additions_per_day:
        raise QuotaExceeded(
            f"project {req.project.slug!r} already added or replaced {added} files in export"
            f" requests in the last 24 hours, its daily quota of"
            f" {quotas.max_file_additions_per_day}: try again later"
        )


def create_request(
    session: Session, project: str, *, title: str, actor: Actor, quotas: Quotas | None = None
) -> EgressRequest:
    """A new draft request of ``project`` by one of its members (``quotas``: default
    :data:`settings.DEFAULT_QUOTAS`; the API passes the installation's)."""
    try:
        proj = get_project(session, project)
    except UnknownProject:
        raise NotFound(f"no project {project!r}") from None
    title = check_title(title)
    if not may_create(session, proj, actor):
        raise NotAllowed(f"{actor.name} is not a member of project {project!r}")
    _check_request_quota(session, proj, _quotas(quotas))
    req = EgressRequest(
        project_id=proj.id,
        project=proj,
        author=actor.name,
        title=title,
        state=st.DRAFT,
        round=0,
        created_at=_now(),
        updated_at=_now(),
    )
    session.add(req)
    session.flush()
    _audit(session, req, actor.name, "egress.create", title=title)
    return req


def _unlocked(session: Session, request_id: int) -> EgressRequest:
    """The request as committed now, without a lock (checks before slow work; the step
    re-checks under :func:`_lock`)."""
    req = find(session, request_id)
    if req is None:
        raise NotFound(f"no egress request #{request_id!r}")
    return req


def _editable(
    session: Session, request_id: int, actor: Actor, doing: str, *, lock: bool = True
) -> EgressRequest:
    req = _lock(session, request_id) if lock else _unlocked(session, request_id)
    have = kinds(session, req, actor)
    if not have and not _visible(session, req, actor):
        raise NotFound(f"no egress request #{request_id}")
    _require(st.AUTHOR, have, actor, doing)
    if req.state not in st.EDITABLE:
        raise WrongState(
            f"request #{req.id} is {req.state}: files can be changed only while it is"
            f" {' or '.join(sorted(st.EDITABLE))}"
        )
    return req


def _drop_reviews(session: Session, f: EgressFile) -> None:
    for v in list(f.votes):
        f.votes.remove(v)
    for e in session.scalars(select(EgressException).where(EgressException.file_id == f.id)):
        session.delete(e)
    session.flush()


def add_file(
    session: Session,
    data_dir: DataDir,
    request_id: int,
    path: str,
    *,
    role: str,
    actor: Actor,
    context: dict[str, Any] | None = None,
    controls: str = "",
    limits: Limits | None = None,
    quotas: Quotas | None = None,
) -> EgressFile:
    """Snapshot ``path`` of the project workspace into the request now (or replace it).

    ``limits``, ``quotas``: default, the installation's (``airlock.toml``, :mod:`settings`)."""
    if limits is None or quotas is None:
        from jupyterlab_hdh.egress.settings import load_settings  # pulls in the checks

        settings = load_settings(data_dir)
        limits = limits or settings.limits
        quotas = quotas or settings.quotas
    if role not in ROLES:
        raise InvalidFile(f"unknown file role {role!r}: choose one of {', '.join(ROLES)}")
    path = check_path(path)
    ctx = check_context(context)
    controls = _text(controls, "controls", CONTROLS_MAX, required=False)
    doing = "add files to this request"
    # copy the file before taking the request's lock (on SQLite, the store's write lock):
    # a large snapshot must not hold up other writers, the guard's audit records above all
    pre = _editable(session, request_id, actor, doing, lock=False)
    _check_count(pre, path, limits)
    snap = snapshot(
        data_dir.workspace(pre.project.slug),
        path,
        data_dir.egress_blobs,
        max_bytes=limits.max_file_bytes,
    )
    stripped: list[str] = []
    if role == "output":  # what is reviewed and released carries no figure metadata
        snap, stripped = strip_figure(snap, data_dir.egress_blobs)
    req = _editable(session, request_id, actor, doing)
    _check_count(req, snap.path, limits)
    _check_addition_quota(session, req, quotas)
    others = sum(f.size for f in req.files if f.path != snap.path)
    if others + snap.size > limits.max_request_bytes:
        raise LimitExceeded(
            f"request #{req.id} would hold {others + snap.size} bytes, over the limit of"
            f" {limits.max_request_bytes} bytes per request"
        )
    now = _now()
    existing = next((f for f in req.files if f.path == snap.path), None)
    if existing is not None:
        _drop_reviews(session, existing)
        previous = existing.sha256
        f = existing
    else:
        previous = None
        f = EgressFile(request_id=req.id, path=snap.path)
        req.files.append(f)
    f.role = role
    f.sha256 = snap.sha256
    f.size = snap.size
    f.mtime = snap.mtime
    f.snapshot_at = now
    f.added_by = actor.name
    f.context = ctx
    f.controls = controls
    f.check_status = None
    f.check_report = None
    req.updated_at = now
    session.flush()
    _audit(
        session,
        req,
        actor.name,
        "egress.file.replace" if previous else "egress.file.add",
        path=f.path,
        role=role,
        sha256=f.sha256,
        size=f.size,
        previous_sha256=previous,
        metadata_stripped=stripped,
    )
    return f


def _check_count(req: EgressRequest, path: str, limits: Limits) -> None:
    if all(f.path != path for f in req.files) and len(req.files) >= limits.max_files:
        raise LimitExceeded(
            f"request #{req.id} already has the maximum of {limits.max_files} files"
        )


def remove_file(session: Session, request_id: int, path: str, *, actor: Actor) -> None:
    req = _editable(session, request_id, actor, "remove files from this request")
    f = _file(req, path)
    _drop_reviews(session, f)
    req.files.remove(f)
    req.updated_at = _now()
    session.flush()
    _audit(session, req, actor.name, "egress.file.remove", path=path, sha256=f.sha256)


def _earlier_releases(session: Session, data_dir: DataDir, req: EgressRequest) -> list[Any]:
    from hdh.disclosure import CheckInput

    rows = session.execute(
        select(EgressOutbox, EgressFile.role)
        .join(EgressRequest, EgressOutbox.request_id == EgressRequest.id)
        .join(
            EgressFile,
            (EgressFile.request_id == EgressOutbox.request_id)
            & (EgressFile.path == EgressOutbox.path),
        )
        .where(
            EgressRequest.project_id == req.project_id,
            EgressRequest.state == st.RELEASED,
            EgressRequest.id != req.id,
        )
        .order_by(EgressOutbox.id)
    ).all()
    return [
        CheckInput(blob_path(data_dir.egress_blobs, row.sha256), row.path, role)
        for row, role in rows
    ]


def check_reports(
    session: Session, data_dir: DataDir, req: EgressRequest, check_config: Any = None
) -> list[dict[str, Any]]:
    """The automated checks' report of every file of ``req`` (in order); changes nothing.

    A check that cannot run at all gives a ``fail`` report saying why: the gate then needs a
    reviewer's exception, as for any failing file.
    """
    try:
        from hdh.disclosure import CheckInput, check_files

        inputs = [
            CheckInput(blob_path(data_dir.egress_blobs, f.sha256), f.path, f.role)
            for f in req.files
        ]
        reports = [
            r.to_dict()
            for r in check_files(
                inputs,
                config=check_config,
                earlier_releases=_earlier_releases(session, data_dir, req),
            )
        ]
        if len(reports) != len(inputs):
            raise RuntimeError(f"{len(reports)} reports for {len(inputs)} files")
    except Exception as exc:  # the gate treats a check that could not run as a failure
        reason = f"the automated checks could not run: {type(exc).__name__}: {exc}"
        reports = [{"status": "fail", "error": reason[:2000]} for _ in req.files]
    return [json.loads(json.dumps(report, default=str)) for report in reports]


def _fingerprint(req: EgressRequest) -> list[tuple[str, str, str]]:
    return [(f.path, f.role, f.sha256) for f in req.files]


def submit(
    session: Session,
    data_dir: DataDir,
    request_id: int,
    *,
    actor: Actor,
    check_config: Any = None,
) -> EgressRequest:
    """Submit (or resubmit) for review: run the checks, notify the reviewers.

    The checks run before the request's lock is taken (they may take seconds); if the files
    changed meanwhile the submission is refused (WrongState) and can simply be repeated.
    """
    pre = _unlocked(session, request_id)
    have = kinds(session, pre, actor)
    if not have and not _visible(session, pre, actor):
        raise NotFound(f"no egress request #{request_id}")
    st.check(pre.state, st.SUBMITTED, have, who=actor.name)
    if not _outputs(pre):
        raise InvalidFile(f"request #{pre.id} has no output file: add one before submitting")
    checked = _fingerprint(pre)
    if check_config is None:
        from jupyterlab_hdh.egress.settings import load_settings

        check_config = load_settings(data_dir).checks  # airlock.toml (bad file: refused)
    reports = check_reports(session, data_dir, pre, check_config)
    req = _lock(session, request_id)
    have = kinds(session, req, actor)
    st.check(req.state, st.SUBMITTED, have, who=actor.name)
    if _fingerprint(req) != checked:
        raise WrongState(
            f"the files of request #{req.id} changed while they were checked: submit again"
        )
    resubmission = req.state == st.RETURNED
    kept = 0
    if resubmission:
        for f in req.files:
            for v in list(f.votes):
                if v.decision == "approve" and v.sha256 == f.sha256:
                    kept += 1
                else:
                    f.votes.remove(v)
        session.flush()
    for f, report in zip(req.files, reports, strict=True):
        status = report.get("status")
        f.check_status = status if status in ("pass", "fail", "review") else "fail"
        f.check_report = report
    req.round += 1
    _move(
        session,
        req,
        st.SUBMITTED,
        actor.name,
        have,
        round=req.round,
        files={f.path: f.sha256 for f in req.files},
        checks={f.path: f.check_status for f in req.files},
        kept_votes=kept,
    )
    _notify(
        session,
        _reviewers_of(session, req),
        req,
        "submitted",
        f"Egress request #{req.id} of {req.project.slug} awaits review",
        f"{req.author} {'re' if resubmission else ''}submitted request #{req.id}"
        f" ({req.title}) with {len(req.files)} file(s) for export-control review.",
    )
    _advance(session, req)
    return req


def withdraw(session: Session, request_id: int, *, actor: Actor, reason: str = "") -> EgressRequest:
    reason = _text(reason, "reason", REASON_MAX, required=False)
    req = _lock(session, request_id)
    have = kinds(session, req, actor)
    if not have and not _visible(session, req, actor):
        raise NotFound(f"no egress request #{request_id}")
    _move(session, req, st.WITHDRAWN, actor.name, have, reason=reason)
    return req


# --- the reviewers' steps -----------------------------------------------------------------------


def _as_reviewer(session: Session, request_id: int, actor: Actor, doing: str) -> EgressRequest:
    req = _lock(session, request_id)
    have = kinds(session, req, actor)
    if not _visible(session, req, actor):
        raise NotFound(f"no egress request #{request_id}")
    _require(st.REVIEWER, have, actor, doing)
    return req


def _has_exception(session: Session, f: EgressFile, reviewer: str) -> bool:
    return (
        session.scalar(
            select(EgressException.id).where(
                EgressException.file_id == f.id,
                EgressException.reviewer == reviewer,
                EgressException.sha256 == f.sha256,
            )
        )
        is not None
    )


def _gated(f: EgressFile) -> bool:
    return f.check_status not in ("pass", "review")


def record_exception(
    session: Session, request_id: int, path: str, reason: str, *, actor: Actor
) -> EgressException:
    """A reviewer's reasoned exception to the failing checks of one file (this hash)."""
    reason = _text(reason, "reason", TEXT_MAX)
    req = _as_reviewer(session, request_id, actor, "record exceptions")
    if req.state not in st.VOTING:
        raise WrongState(f"request #{req.id} is {req.state}: exceptions go with votes")
    f = _file(req, path)
    if not _gated(f):
        raise InvalidFile(f"{path!r} passed the automated checks: no exception is needed")
    if _has_exception(session, f, actor.name):
        raise WrongState(f"{actor.name} already recorded an exception for {path!r}")
    exc = EgressException(
        file_id=f.id, reviewer=actor.name, sha256=f.sha256, reason=reason, created_at=_now()
    )
    session.add(exc)
    session.flush()
    _audit(session, req, actor.name, "egress.exception", path=path, sha256=f.sha256, reason=reason)
    return exc


def vote(
    session: Session,
    request_id: int,
    path: str,
    decision: str,
    *,
    actor: Actor,
    exception_reason: str | None = None,
) -> EgressVote:
    """One reviewer's vote on one output file (final; two per file).

    ``exception_reason`` records this reviewer's exception in the same step when the gate
    needs one (an ``approve`` of a file that failed the checks); it is unused otherwise.
    """
    if decision not in DECISIONS:
        raise InvalidFile(f"unknown vote {decision!r}: choose one of {', '.join(DECISIONS)}")
    req = _as_reviewer(session, request_id, actor, "vote")
    if req.state not in st.VOTING:
        raise WrongState(
            f"request #{req.id} is {req.state}: votes are cast while it is submitted or"
            " partially reviewed"
        )
    f = _file(req, path)
    if f.role != "output":
        raise InvalidFile(f"{path!r} is a {f.role} file: only output files are voted on")
    if any(v.reviewer == actor.name for v in f.votes):
        raise WrongState(f"{actor.name} already voted on {path!r} (votes are final)")
    if len(f.votes) >= VOTES_PER_FILE:
        raise WrongState(f"{path!r} already has {VOTES_PER_FILE} votes")
    if decision == "approve" and _gated(f) and not _has_exception(session, f, actor.name):
        if exception_reason is not None:
            record_exception(session, request_id, path, exception_reason, actor=actor)
        else:
            raise GateBlocked(
                f"{path!r} failed the automated checks ({f.check_status}): record an exception"
                " with a reason before approving it"
            )
    v = EgressVote(reviewer=actor.name, decision=decision, sha256=f.sha256, created_at=_now())
    f.votes.append(v)
    session.flush()
    _audit(session, req, actor.name, "egress.vote", path=path, decision=decision, sha256=f.sha256)
    _advance(session, req)
    return v


def approval_problems(session: Session, req: EgressRequest) -> list[str]:
    """Why ``req`` cannot be approved now (empty: it can)."""
    problems = []
    outputs = _outputs(req)
    if not outputs:
        problems.append("the request has no output file")
    for f in outputs:
        votes = [v for v in f.votes if v.sha256 == f.sha256]
        approvals = [v for v in votes if v.decision == "approve"]
        if len({v.reviewer for v in approvals}) < VOTES_PER_FILE:
            problems.append(f"{f.path}: {len(approvals)} approval(s) of {VOTES_PER_FILE}")
        if _gated(f):
            for v in approvals:
                if not _has_exception(session, f, v.reviewer):
                    problems.append(
                        f"{f.path}: failed the checks and {v.reviewer} recorded no exception"
                    )
        for v in approvals:
            if _is_member(session, req, v.reviewer) or v.reviewer == req.author:
                problems.append(f"{f.path}: {v.reviewer} is a member of the project")
    return problems


def approve(session: Session, request_id: int, *, actor: Actor) -> EgressRequest:
    """Consolidate: approve when every output file has two approvals on its current hash."""
    req = _as_reviewer(session, request_id, actor, "approve requests")
    st.check(req.state, st.APPROVED, {st.REVIEWER}, who=actor.name)
    problems = approval_problems(session, req)
    if problems:
        raise GateBlocked(f"request #{req.id} cannot be approved: " + "; ".join(problems))
    _move(
        session,
        req,
        st.APPROVED,
        actor.name,
        {st.REVIEWER},
        files={f.path: f.sha256 for f in _outputs(req)},
    )
    req.decided_by = actor.name
    _notify(
        session,
        [req.author],
        req,
        "approved",
        f"Egress request #{req.id} was approved",
        f"Request #{req.id} ({req.title}) was approved by {actor.name}; it will be released.",
    )
    return req


def _decide(
    session: Session, request_id: int, target: str, reason: str, actor: Actor, verb: str
) -> EgressRequest:
    reason = _text(reason, "reason", TEXT_MAX)
    req = _as_reviewer(session, request_id, actor, f"{verb} requests")
    _move(session, req, target, actor.name, {st.REVIEWER}, reason=reason)
    req.decided_by = actor.name
    session.add(
        EgressComment(
            request_id=req.id,
            file_path=None,
            author=actor.name,
            visibility="public",
            body=reason,
            round=req.round,
            created_at=_now(),
        )
    )
    _notify(
        session,
        [req.author],
        req,
        target,
        f"Egress request #{req.id} was {target}",
        f"Request #{req.id} ({req.title}) was {target} by {actor.name}: {reason}",
    )
    return req


def return_request(
    session: Session, request_id: int, *, actor: Actor, reason: str
) -> EgressRequest:
    """Send a reviewed request back to its author for changes (then resubmission)."""
    return _decide(session, request_id, st.RETURNED, reason, actor, "return")


def reject(session: Session, request_id: int, *, actor: Actor, reason: str) -> EgressRequest:
    """Refuse a reviewed request for good."""
    return _decide(session, request_id, st.REJECTED, reason, actor, "reject")


def comment(
    session: Session,
    request_id: int,
    body: str,
    *,
    actor: Actor,
    visibility: str = "public",
    path: str | None = None,
) -> EgressComment:
    """A comment on the request (or one of its files); ``private`` ones only by reviewers."""
    if visibility not in VISIBILITIES:
        raise InvalidFile(f"unknown visibility {visibility!r}: choose public or private")
    body = _text(body, "comment", TEXT_MAX)
    req = _lock(session, request_id)
    if not _visible(session, req, actor):
        raise NotFound(f"no egress request #{request_id}")
    have = kinds(session, req, actor)
    member = _is_member(session, req, actor.name)
    if visibility == "private":
        _require(st.REVIEWER, have, actor, "write private comments")
    elif not (member or st.REVIEWER in have):
        raise NotAllowed(f"{actor.name} may not comment: members and reviewers may")
    if req.state in st.FINAL:
        raise WrongState(f"request #{req.id} is {req.state}: it takes no more comments")
    if path is not None:
        _file(req, path)
    c = EgressComment(
        request_id=req.id,
        file_path=path,
        author=actor.name,
        visibility=visibility,
        body=body,
        round=req.round,
        created_at=_now(),
    )
    session.add(c)
    session.flush()
    _audit(session, req, actor.name, "egress.comment", path=path, visibility=visibility, body=body)
    return c


def start_release(session: Session, request_id: int, *, actor: Actor) -> list[EgressOutbox]:
    """Mark an approved request ``releasing`` and write its outbox rows (one transaction).

    One row per approved output file, named ``<sha256>-<basename>``; the worker in
    :mod:`release` copies them. Approval is re-checked against the hashes.
    """
    req = _lock(session, request_id)
    have = kinds(session, req, actor)
    if not _visible(session, req, actor):
        raise NotFound(f"no egress request #{request_id}")
    st.check(req.state, st.RELEASING, have, who=actor.name)
    problems = approval_problems(session, req)
    if problems:
        raise GateBlocked(f"request #{req.id} cannot be released: " + "; ".join(problems))
    rows: dict[str, EgressOutbox] = {}
    for f in _outputs(req):
        name = f"{f.sha256}-{PurePosixPath(f.path).name}"
        rows.setdefault(
            name,
            EgressOutbox(
                request_id=req.id, path=f.path, sha256=f.sha256, name=name, created_at=_now()
            ),
        )
    session.add_all(rows.values())
    _move(session, req, st.RELEASING, actor.name, have, files=sorted(rows))
    return list(rows.values())


# --- views --------------------------------------------------------------------------------------


def _summary(req: EgressRequest) -> dict[str, Any]:
    return {
        "id": req.id,
        "project": req.project.slug,
        "title": req.title,
        "author": req.author,
        "state": req.state,
        "round": req.round,
        "created_at": _iso(req.created_at),
        "updated_at": _iso(req.updated_at),
        "decided_by": req.decided_by,
        "files": len(req.files),
    }


def get_request(
    session: Session, request_id: int, *, actor: Actor, provenance: bool = True
) -> dict[str, Any]:
    """A JSON-able view of the request for ``actor``, blinded as the module docstring says."""
    from jupyterlab_hdh.egress import provenance as prov

    req = find(session, request_id)
    if req is None:
        raise NotFound(f"no egress request #{request_id}")
    viewer = _viewer(session, req, actor)
    view = _summary(req)
    files = []
    for f in req.files:
        both = len(f.votes) >= VOTES_PER_FILE

        def shown(who: str, both: bool = both) -> bool:
            if viewer == "operator" or who == actor.name:
                return True
            if viewer == "member":
                return req.state in DECIDED
            return both

        exceptions = session.scalars(
            select(EgressException)
            .where(EgressException.file_id == f.id)
            .order_by(EgressException.id)
        ).all()
        entry: dict[str, Any] = {
            "path": f.path,
            "role": f.role,
            "sha256": f.sha256,
            "size": f.size,
            "mtime": _iso(f.mtime),
            "snapshot_at": _iso(f.snapshot_at),
            "added_by": f.added_by,
            "context": f.context,
            "controls": f.controls,
            "check_status": f.check_status,
            "check_report": (
                f.check_report if viewer != "member" else requester_report(f.check_report)
            ),
            "vote_count": len(f.votes),
            "votes": [
                {
                    "reviewer": v.reviewer,
                    "decision": v.decision,
                    "sha256": v.sha256,
                    "at": _iso(v.created_at),
                }
                for v in f.votes
                if shown(v.reviewer)
            ],
            "exceptions": [
                {"reviewer": e.reviewer, "reason": e.reason, "sha256": e.sha256}
                for e in exceptions
                if shown(e.reviewer)
            ],
        }
        if provenance and viewer in ("reviewer", "operator"):
            entry["provenance"] = prov.provenance(session, req, f)
        files.append(entry)
    view["files"] = files
    by_path = {f.path: f for f in req.files}
    comments = []
    for c in session.scalars(
        select(EgressComment).where(EgressComment.request_id == req.id).order_by(EgressComment.id)
    ):
        if c.visibility == "private":
            if viewer == "member":
                continue
            if viewer == "reviewer" and c.author != actor.name and c.round == req.round:
                target = by_path.get(c.file_path) if c.file_path else None
                lifted = (
                    len(target.votes) >= VOTES_PER_FILE
                    if target is not None
                    else req.state not in st.VOTING
                )
                if not lifted:
                    continue
        comments.append(
            {
                "author": c.author,
                "visibility": c.visibility,
                "path": c.file_path,
                "body": c.body,
                "round": c.round,
                "at": _iso(c.created_at),
            }
        )
    view["comments"] = comments
    view["viewer"] = viewer
    outbox = list(
        session.scalars(
            select(EgressOutbox).where(EgressOutbox.request_id == req.id).order_by(EgressOutbox.id)
        )
    )
    view["released"] = [
        {
            "name": o.name,
            "filename": filename,
            "path": o.path,
            "sha256": o.sha256,
            "done": o.done_at is not None,
        }
        for o, filename in zip(outbox, download_names([o.path for o in outbox]), strict=True)
    ]
    return view


#: A rule name the checks' code makes (``acro-<check>`` names come from ACRO's file: not one).
_RULE = re.compile(r"[a-z][a-z0-9-]{0,39}")
_MORE = re.compile(r"[0-9,]{1,15} more [a-z][a-z0-9-]{0,39} flag\(s\) not listed")
REPORT_KINDS = ("table", "figure", "model", "code", "other")
EVIDENCE_KINDS = ("acro", "sdc-sidecar", "")
#: The message of a flag in a member's view.
FOR_REVIEWERS = "the flagged value and where it lies are shown to the reviewers only"


def requester_report(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """A file's check report as project members (the requester) see it: nothing of the
    file's content.

    The full report quotes the file (a flag's message gives the cell's value, its
    location the column name and the row's labels; an error may quote a parse error):
    a kernel could write data there and read it back from outside the sandbox. Kept:
    the status, the kind of file, the kind of evidence, each flag's rule (a name the
    checks' code makes, else ``other``), severity and row number, the count per rule,
    and the checks' own "N more ... flag(s) not listed" lines. To see the values, the
    requester runs ``hdh egress check`` on the file inside the sandbox."""
    if not isinstance(report, dict):
        return None
    flags: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for fl in report.get("flags") or []:
        if not isinstance(fl, dict):
            continue
        rule = str(fl.get("rule") or "")
        if not _RULE.fullmatch(rule) or rule.startswith("acro-"):
            rule = "other"
        message = str(fl.get("message") or "")
        location = fl.get("location") if isinstance(fl.get("location"), dict) else {}
        row = location.get("row") if location else None
        flags.append(
            {
                "rule": rule,
                "severity": "review" if fl.get("severity") == "review" else "fail",
                "message": message if _MORE.fullmatch(message) else FOR_REVIEWERS,
                "location": (
                    {"row": row} if isinstance(row, int) and not isinstance(row, bool) else {}
                ),
            }
        )
        counts[rule] = counts.get(rule, 0) + 1
    status = report.get("status")
    kind = report.get("kind")
    out: dict[str, Any] = {
        "status": status if status in ("pass", "fail", "review") else "fail",
        "redacted": True,
    }
    if kind is not None:
        out["kind"] = kind if kind in REPORT_KINDS else "other"
    if report.get("evidence") in EVIDENCE_KINDS:
        out["evidence"] = report["evidence"]
    if report.get("error"):
        out["error"] = "the automated checks could not run on this file (the reviewers see why)"
    if flags or "summary" in report:
        label = out.get("kind", "file")
        out["summary"] = (
            f"{label}: {len(flags)} flag(s): "
            + ", ".join(f"{rule} x{n}" for rule, n in counts.items())
            if flags
            else f"{label}: no disclosure risk found by the automated checks"
        )
    out["flags"] = flags
    out["flag_counts"] = counts
    return out


def list_requests(
    session: Session, *, actor: Actor, state: str | None = None, project: str | None = None
) -> list[dict[str, Any]]:
    """Summaries of the requests ``actor`` may see, newest first, with the review queue's
    fields for this caller (:func:`_queue`): ``submitted_at``, ``reviewers``, ``awaiting_me``."""
    if state is not None and state not in st.STATES:
        raise InvalidFile(f"unknown state {state!r}: choose one of {', '.join(st.STATES)}")
    query = select(EgressRequest).order_by(EgressRequest.id.desc())
    if state is not None:
        query = query.where(EgressRequest.state == state)
    if project is not None:
        query = query.join(Project).where(Project.slug == project)
    # the caller's role and projects once, the files and votes with the requests: a few
    # queries for the whole list, not several per request (the review widget polls it)
    query = query.options(selectinload(EgressRequest.files).selectinload(EgressFile.votes))
    role, mine = role_of(session, actor), member_projects(session, actor.name)
    shown = [
        (r, r.project_id in mine)
        for r in session.scalars(query)
        if visible_for(r, actor, role, r.project_id in mine)
    ]
    submitted = _submitted_at(session, [r.id for r, _ in shown])
    return [
        {**_summary(r), **_queue(r, actor, role, member, submitted.get(r.id))}
        for r, member in shown
    ]


def _submitted_at(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """When each request's current round entered review: its latest ``egress.submitted``."""
    out: dict[int, str] = {}
    targets = [f"egress:{i}" for i in ids]
    for chunk in range(0, len(targets), 500):
        rows = session.execute(
            select(AuditEvent.target, AuditEvent.ts)
            .where(
                AuditEvent.action == f"egress.{st.SUBMITTED}",
                AuditEvent.target.in_(targets[chunk : chunk + 500]),
            )
            .order_by(AuditEvent.seq)
        )
        for target, ts in rows:
            out[int(target.removeprefix("egress:"))] = ts  # the last one wins
    return out


def _queue(
    req: EgressRequest, actor: Actor, role: str, member: bool, submitted_at: str | None
) -> dict[str, Any]:
    """The review queue's fields of ``req`` for ``actor``.

    ``reviewers``: who has a vote on an output file of the current round (the approvals a
    resubmission kept count), names only, never a decision, and only for reviewers and
    administrators (empty for project members, as in their view of the votes).
    ``awaiting_me``: ``actor`` is a reviewer of it, it takes votes now, and an output file
    with fewer than two votes has none of theirs."""
    if req.round == 0:
        submitted_at = None
    if member:
        return {"submitted_at": submitted_at, "reviewers": [], "awaiting_me": False}
    outputs = _outputs(req)
    voters = sorted({v.reviewer for f in outputs for v in f.votes})
    awaiting = (
        req.state in st.VOTING
        and st.REVIEWER in kinds_for(req, actor, role, member)
        and any(
            len(f.votes) < VOTES_PER_FILE and all(v.reviewer != actor.name for v in f.votes)
            for f in outputs
        )
    )
    return {"submitted_at": submitted_at, "reviewers": voters, "awaiting_me": awaiting}


def notifications(
    session: Session, user_name: str, unread_only: bool = False
) -> list[dict[str, Any]]:
    """The in-app notifications of ``user_name``, newest first."""
    query = (
        select(Notification)
        .where(Notification.user_name == user_name)
        .order_by(Notification.id.desc())
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return [
        {
            "id": n.id,
            "request_id": n.request_id,
            "link": n.link,
            "kind": n.kind,
            "subject": n.subject,
            "body": n.body,
            "created_at": _iso(n.created_at),
            "read_at": _iso(n.read_at),
        }
        for n in session.scalars(query)
    ]


def mark_read(session: Session, user_name: str, ids: Sequence[int] | None = None) -> int:
    """Mark ``user_name``'s notifications ``ids`` (all if None) read; returns how many."""
    query = update(Notification).where(
        Notification.user_name == user_name, Notification.read_at.is_(None)
    )
    if ids is not None:
        query = query.where(Notification.id.in_(list(ids)))
    result = session.execute(
        query.values(read_at=_now()).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def blob_of(data_dir: DataDir, f: EgressFile) -> Path:
    """Where the snapshot of ``f`` is stored."""
    return blob_path(data_dir.egress_blobs, f.sha256)
