"""Who may do what with an export request: the actor kinds, visibility and viewers.

Owns the airlock's permissions, beside its transition table (:mod:`states`, which says
which kind of actor may take which step): ``kinds`` (is this person the request's
author, a reviewer of it, or the operator?), :func:`require` (refuse a step with one line
naming who may), :func:`visible` and :func:`viewer` (who sees a request, and as whom:
member, reviewer or operator; renderings and snapshots are for reviewers and
operators only), :func:`may_create` (who opens a request in a project). Roles are the
store's (:class:`~jupyterlab_hdh.store.models.Role`); an actor the store does not know
(the CLI's ``cli:<login>``) keeps the role it was given.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyterlab_hdh.egress import states as st
from jupyterlab_hdh.egress.errors import NotAllowed, NotFound
from jupyterlab_hdh.governance.projects import MEMBER_ROLES, Actor, membership
from jupyterlab_hdh.store.models import EgressRequest, Project, ProjectMember, Role, User


def role_of(session: Session, actor: Actor) -> str:
    """The actor's role as the store records it (an unknown name keeps the given role:
    the CLI acts as ``cli:<login>`` with the admin role)."""
    user = session.scalar(select(User).where(User.name == actor.name))
    return user.role if user is not None else actor.role


def is_member(session: Session, req: EgressRequest, name: str) -> bool:
    return membership(session, req.project, name) is not None


def member_projects(session: Session, name: str) -> set[int]:
    """The ids of the projects ``name`` is a member of (one query, for a list of requests)."""
    rows = session.scalars(select(ProjectMember.project_id).join(User).where(User.name == name))
    return set(rows)


def kinds(session: Session, req: EgressRequest, actor: Actor) -> set[str]:
    """The actor kinds (:mod:`states`) ``actor`` has for ``req``."""
    return kinds_for(req, actor, role_of(session, actor), is_member(session, req, actor.name))


def kinds_for(req: EgressRequest, actor: Actor, role: str, member: bool) -> set[str]:
    """:func:`kinds` from the actor's role and membership, already known."""
    out: set[str] = set()
    if actor.name == req.author and member:
        out.add(st.AUTHOR)
    if role in st.REVIEWER_ROLES and not member and actor.name != req.author:
        out.add(st.REVIEWER)
    if role == Role.ADMIN and not member and actor.name != req.author:
        out.add(st.OPERATOR)
    return out


def require(kind: str, have: set[str], actor: Actor, doing: str) -> None:
    if kind not in have:
        who = {
            st.AUTHOR: "the request's author",
            st.REVIEWER: "a reviewer who is not a member of the project",
            st.OPERATOR: "an administrator",
        }[kind]
        raise NotAllowed(f"{actor.name} may not {doing}: only {who} may")


def may_create(session: Session, project: Project, actor: Actor) -> bool:
    """Whether ``actor`` may open an export request in ``project``: a member with a
    researcher's role."""
    return (
        membership(session, project, actor.name) is not None
        and role_of(session, actor) in MEMBER_ROLES
    )


def visible(session: Session, req: EgressRequest, actor: Actor) -> bool:
    if is_member(session, req, actor.name):
        return True
    return visible_for(req, actor, role_of(session, actor), member=False)


def visible_for(req: EgressRequest, actor: Actor, role: str, member: bool) -> bool:
    """:func:`visible` from the actor's role and membership, already known."""
    if member or role == Role.ADMIN:
        return True
    return role in st.REVIEWER_ROLES and req.round > 0 and actor.name != req.author


def viewer(session: Session, req: EgressRequest, actor: Actor) -> str:
    """``member``, ``reviewer`` or ``operator`` (NotFound if the request is not visible)."""
    if not visible(session, req, actor):
        raise NotFound(f"no egress request #{req.id}")
    if is_member(session, req, actor.name):
        return "member"
    return "operator" if role_of(session, actor) == Role.ADMIN else "reviewer"
