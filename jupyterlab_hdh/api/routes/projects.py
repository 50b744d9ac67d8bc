"""Projects, members, permits, and a member's access (which dataset versions are mounted).

Routes authenticate; the domain functions (``governance/projects.py``) authorise from the
caller's role (and, for member changes, whether the caller leads the project).

(No ``from __future__ import annotations``: FastAPI reads the dependency aliases.)
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy.orm import Session

from jupyterlab_hdh.api import models
from jupyterlab_hdh.api.deps import (
    ACCESS_RESPONSES,
    CONTROLLERS,
    Anyone,
    Controller,
    Db,
    Inst,
    access,
)
from jupyterlab_hdh.context import Installation
from jupyterlab_hdh.governance import projects

router = APIRouter()


def project_out(s: Session, inst: Installation, slug: str) -> models.ProjectOut:
    view = projects.project_view(s, projects.get_project(s, slug), inst.data_dir)
    return models.ProjectOut.model_validate(view)


def permit_out(inst: Installation, permit: Any) -> models.PermitOut:
    return models.PermitOut.model_validate(projects.permit_view(permit, inst.data_dir))


@router.post("/api/projects", tags=["projects"], status_code=201)
def create_project(body: models.ProjectIn, user: Anyone, inst: Inst) -> models.ProjectOut:
    with inst.transaction() as s:
        projects.create_project(
            s, body.slug, title=body.title, purpose=body.purpose, actor=projects.Actor.of(user)
        )
        return project_out(s, inst, body.slug)


@router.get("/api/projects", tags=["projects"])
def list_projects(s: Db, user: Anyone, inst: Inst) -> list[models.ProjectOut]:
    """Researchers see the projects they are members of; other roles see all."""
    mine = user.name if user.role == "researcher" else None
    return [project_out(s, inst, p.slug) for p in projects.projects_of(s, mine)]


@router.get("/api/projects/{slug}", tags=["projects"])
def get_project(slug: str, s: Db, user: Anyone, inst: Inst) -> models.ProjectOut:
    project = projects.get_project(s, slug)
    if user.role == "researcher" and projects.membership(s, project, user.name) is None:
        raise projects.NotAMember(f"{user.name!r} is not a member of project {slug!r}")
    return project_out(s, inst, slug)


@router.post("/api/projects/{slug}/members", tags=["projects"], status_code=201)
def add_member(slug: str, body: models.MemberIn, user: Anyone, inst: Inst) -> models.ProjectOut:
    with inst.transaction() as s:
        projects.add_member(s, slug, body.user, role=body.role, actor=projects.Actor.of(user))
        return project_out(s, inst, slug)


@router.delete(
    "/api/projects/{slug}/members/{member}",
    tags=["projects"],
    status_code=204,
    response_class=Response,
)
def remove_member(slug: str, member: str, user: Anyone, inst: Inst) -> Response:
    with inst.transaction() as s:
        projects.remove_member(s, slug, member, actor=projects.Actor.of(user))
    return Response(status_code=204)


@router.post("/api/projects/{slug}/permits", tags=["permits"], status_code=201)
def grant_permit(slug: str, body: models.PermitIn, user: Anyone, inst: Inst) -> models.PermitOut:
    if (body.expires_at is None) == (body.days is None):
        raise HTTPException(422, "give exactly one of expires_at and days")
    expires_at = body.expires_at or datetime.now(UTC) + timedelta(days=body.days or 0)
    with inst.transaction() as s:
        permit = projects.grant_permit(
            s,
            slug,
            members=body.members,
            datasets=body.datasets,
            expires_at=expires_at,
            actor=projects.Actor.of(user),
            compute_profile=body.compute_profile,
        )
        return permit_out(inst, permit)


@router.post("/api/permits/{permit_id}/amend", tags=["permits"])
def amend_permit(
    permit_id: int, body: models.AmendIn, user: Anyone, inst: Inst
) -> models.PermitOut:
    """Change an active permit in place (``governance.projects.amend_permit``)."""
    if body.expires_at is not None and body.days is not None:
        raise HTTPException(422, "give at most one of expires_at and days")
    expires_at = body.expires_at
    if body.days is not None:
        expires_at = datetime.now(UTC) + timedelta(days=body.days)
    change = projects.Amendment(
        add_members=tuple(body.add_members),
        remove_members=tuple(body.remove_members),
        add_datasets=tuple(body.add_datasets),
        remove_datasets=tuple(body.remove_datasets),
        expires_at=expires_at,
        compute_profile=body.compute_profile,
    )
    with inst.transaction() as s:
        permit = projects.amend_permit(s, permit_id, change, actor=projects.Actor.of(user))
        return permit_out(inst, permit)


@router.post("/api/permits/{permit_id}/revoke", tags=["permits"])
def revoke_permit(
    permit_id: int, body: models.RevokeIn, user: Anyone, inst: Inst
) -> models.PermitOut:
    with inst.transaction() as s:
        permit = projects.revoke_permit(
            s, permit_id, reason=body.reason, actor=projects.Actor.of(user)
        )
        return permit_out(inst, permit)


@router.get("/api/permits", tags=["permits"])
def list_permits(
    s: Db, _user: Controller, inst: Inst, project: str | None = None
) -> list[models.PermitOut]:
    only = projects.get_project(s, project) if project is not None else None
    return [permit_out(inst, p) for p in projects.permits(s, only)]


@router.get("/api/projects/{slug}/access", tags=["permits"], responses=ACCESS_RESPONSES)
def check_access(
    slug: str,
    s: Db,
    caller: Anyone,
    inst: Inst,
    user: Annotated[str | None, Query(max_length=100)] = None,
) -> models.AccessOut:
    """May ``user`` (default: the caller) open the project now, with which mounts?

    Asking about someone else needs data_controller or admin (the spawner and guard
    run as services with such a token)."""
    who = user or caller.name
    if who != caller.name and caller.role not in CONTROLLERS:
        raise HTTPException(403, "only data_controller or admin may check another user")
    return access(s, inst, who, slug)


@router.get("/api/me/projects/{slug}/access", tags=["permits"], responses=ACCESS_RESPONSES)
def my_access(slug: str, s: Db, caller: Anyone, inst: Inst) -> models.AccessOut:
    return access(s, inst, caller.name, slug)


@router.put("/api/me/projects/{slug}/mounts", tags=["permits"], responses=ACCESS_RESPONSES)
def choose_mounts(slug: str, body: models.MountsIn, caller: Anyone, inst: Inst) -> models.AccessOut:
    """Choose which of the permit's dataset versions your sandbox of ``slug`` mounts
    (``NAME/vN`` each; empty: the newest of each dataset). Takes effect when the sandbox
    next starts: the hub's "change mounted versions" page restarts it."""
    with inst.transaction() as s:
        projects.select_mounts(
            s, slug, caller.name, body.versions, inst.data_dir, actor=projects.Actor.of(caller)
        )
        return access(s, inst, caller.name, slug)
