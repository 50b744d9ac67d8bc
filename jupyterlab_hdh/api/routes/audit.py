"""The audit log: its events and the check of its hash chain (administrators), and the code
audit view: a project's audited code (cells, terminal lines, saved files, template runs) for
the project's leads, the reviewers who may review it and administrators.

Who sees a project's code (:func:`code_audit_refusal`): an administrator; a lead of the
project; a reviewer (``reviewer`` or ``committee`` role, as the airlock's
``states.REVIEWER_ROLES``) who is not a member of the project, as the airlock decides who
may review a project's exports. Everyone else is refused with the reason.

(No ``from __future__ import annotations``: FastAPI reads the dependency aliases.)
"""

import json
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyterlab_hdh.api import models
from jupyterlab_hdh.api.audit_models import ChainStatusOut, CodeAuditOut, CodeEventOut, CodeKind
from jupyterlab_hdh.api.deps import ACCESS_RESPONSES, Admin, Anyone, Db
from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.audit.query import CODE_KINDS, AuditFilter, code_kind, parse_moment
from jupyterlab_hdh.audit.query import events as audit_events_query
from jupyterlab_hdh.egress.states import REVIEWER_ROLES
from jupyterlab_hdh.governance.projects import get_project, membership
from jupyterlab_hdh.store.models import AuditEvent, Role

router = APIRouter(tags=["audit"])

#: the largest page of the code audit view
MAX_CODE_LIMIT = 500
#: what a refused caller reads (the JupyterLab view shows it as is)
WHO_MAY_SEE = "Only the project lead, its reviewers and administrators can see the audited code."


@router.get("/api/audit/verify")
def audit_verify(s: Db, _user: Admin) -> models.AuditVerifyOut:
    return models.AuditVerifyOut(**verify(s).to_dict())


@router.get("/api/audit/events")
def audit_events(
    s: Db,
    _user: Admin,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[models.AuditEventOut]:
    rows = s.scalars(
        select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(limit)
    )
    return [
        models.AuditEventOut(
            seq=e.seq,
            ts=e.ts,
            actor=e.actor,
            action=e.action,
            target=e.target,
            details=json.loads(e.details),
            hash=e.hash,
        )
        for e in rows
    ]


# --------------------------------------------------------------- the code audit view


def code_audit_refusal(s: Session, slug: str, user_name: str, role: str) -> str | None:
    """Why ``user_name`` (platform ``role``) may not see project ``slug``'s audited code
    (None: they may). ``UnknownProject`` (404) for a project that does not exist."""
    project = get_project(s, slug)
    if role == Role.ADMIN:
        return None
    member = membership(s, project, user_name)
    if member is not None and member.role == "lead":
        return None
    if role in REVIEWER_ROLES and member is None:
        return None
    if member is not None and role in REVIEWER_ROLES:
        return f"{WHO_MAY_SEE} A reviewer never reviews a project they are a member of."
    return WHO_MAY_SEE


def _code_event(e: AuditEvent, broken: int | None) -> CodeEventOut:
    d: dict[str, Any] = json.loads(e.details)
    kind = cast(CodeKind, code_kind(e.action, d) or "cell")
    if kind == "save":
        code = f"saved {d.get('path', '?')} ({d.get('size', '?')} bytes)"
    elif kind == "terminal" or e.action == CODE_KINDS["terminal"]:
        code = str(d.get("input", ""))
    elif kind == "template":
        # the launcher's copy (the guard's template.run): which template, into which notebook
        code = f"template {d.get('template', '?')} copied to {d.get('path') or '?'}"
    else:
        code = str(d.get("code", ""))
    terminal = e.target.rpartition("/terminal:")[2] if "/terminal:" in e.target else None
    notebook = d.get("notebook") or d.get("path")
    return CodeEventOut(
        seq=e.seq,
        ts=e.ts,
        user=str(d.get("user") or e.actor),
        project=d.get("project"),
        kind=kind,
        notebook=str(notebook) if notebook else None,
        kernel=d.get("kernel_id") or None,
        terminal=terminal,
        code=code,
        sha256=d.get("sha256"),
        verified=broken is None or e.seq < broken,
    )


def code_page(s: Session, project: str | None, q: "CodeQuery") -> CodeAuditOut:
    """One page of audited code, newest first, and the chain's state (shared by the routes)."""
    try:
        start = parse_moment(q.since) if q.since else None
        end = parse_moment(q.until, end=True) if q.until else None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    where = AuditFilter(
        user=q.user or None,
        project=project,
        actions=tuple(CODE_KINDS.values()),
        code=q.kind or None,
        since=start,
        until=end,
        before=q.cursor,
        path=q.notebook or None,
    )
    limit = q.limit
    rows = audit_events_query(s, where, limit=limit + 1)
    chain = verify(s)
    out = [_code_event(e, chain.broken_seq) for e in rows[:limit]]
    return CodeAuditOut(
        project=project,
        events=out,
        next_cursor=out[-1].seq if len(rows) > limit and out else None,
        chain=ChainStatusOut(
            ok=chain.ok,
            verified_to=chain.checked,
            broken_seq=chain.broken_seq,
            reason=chain.reason,
        ),
        limit=limit,
    )


Limit = Annotated[int, Query(ge=1, le=MAX_CODE_LIMIT)]
Cursor = Annotated[int, Query(ge=0, description="the next_cursor of the previous page")]
Text = Annotated[str | None, Query(max_length=500)]
Moment = Annotated[str | None, Query(max_length=40, description="ISO date or date-time (UTC)")]
SLUG = Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")


class CodeQuery:
    """The code audit view's filters and page as query parameters, defined once for the
    routes that serve it (the project's, the administrators' and the bridge's)."""

    def __init__(
        self,
        user: Text = None,
        kind: CodeKind | None = None,
        since: Moment = None,
        until: Moment = None,
        notebook: Text = None,
        limit: Limit = 100,
        cursor: Cursor = 0,
    ) -> None:
        self.user, self.kind, self.since, self.until = user, kind, since, until
        self.notebook, self.limit, self.cursor = notebook, limit, cursor


CodeFilters = Annotated[CodeQuery, Depends()]


@router.get("/api/projects/{slug}/audit/code", responses=ACCESS_RESPONSES)
def project_code(slug: Annotated[str, SLUG], s: Db, me: Anyone, q: CodeFilters) -> CodeAuditOut:
    """A project's audited code, newest first: for its leads, the reviewers who may review
    it (not its members) and administrators; 403 with the reason for anyone else."""
    refusal = code_audit_refusal(s, slug, me.name, me.role)
    if refusal is not None:
        raise HTTPException(403, refusal)
    return code_page(s, slug, q)


@router.get("/api/audit/code")
def all_code(s: Db, _user: Admin, q: CodeFilters, project: Text = None) -> CodeAuditOut:
    """Administrators: every project's audited code, with filters by project, user, kind and
    time."""
    return code_page(s, project or None, q)
