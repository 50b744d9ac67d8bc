"""Projects, their members, and permits: who may open which project sandbox, with which data.

Owns the access model the hub and the sandboxes are driven by. A **project**
(slug = the JupyterHub named server) has **members** (researchers, as ``lead``
or ``member``). A **permit** names a project, the members it covers, the
exact dataset versions to mount, and an expiry; it ends when it expires or
is revoked. :func:`active_permit` answers the spawner's question "may user U
open project P now, and with which mounts?" or raises a :class:`PermitError`
saying why not; :func:`expiring` and :func:`revalidate` tell it which
sandboxes to stop.

Rules (see ``docs/architecture.md``, "Projects and permits"):

* Authorisation is checked here, from the acting :class:`Actor`'s role, not
  only at the edges: projects are created and permits granted or revoked by a
  ``data_controller`` or an ``admin``; members are added or removed by them or
  by the project's lead. The CLI acts as an administrator (``cli:<login>``).
* Only users whose role is ``researcher`` can be project members (and so
  permit holders): reviewers and committee members must stay independent of
  the projects they judge, and whoever grants permits cannot hold one.
* At most one permit per project is active at a time: granting a new one
  revokes the previous active permit ("superseded by permit #N") in the same
  transaction, so the spawner restarts sandboxes with the new mounts.
* A permit mounts only current dataset versions when it is granted
  (``name`` or ``name/vN``): a superseded version may lack opt-outs applied since.
* A member removed from the project loses access at once, whatever the permit says; added
  back, they need a new permit or an amendment (membership must predate the permit, or the
  amendment, that covers them: ``permit_members.covered_at``).
* A permit may name the compute profile its sandboxes run with (:data:`COMPUTE_PROFILES`;
  None: the installation's default).
* Every change is audited in the caller's transaction. Times are stored in UTC.
* The slug :data:`REVIEW_WORKSPACE` (``review``) is no project's: it is the hub's named
  server of a reviewer's own workspace (no dataset, no project), which
  :func:`access_problem` opens to the roles of :data:`REVIEW_WORKSPACE_ROLES` only.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.store.models import (
    PROJECT_ROLES,
    Dataset,
    DatasetVersion,
    MountSelection,
    OptOut,
    Permit,
    Project,
    ProjectMember,
    Role,
    User,
    permit_members,
)
from jupyterlab_hdh.textfields import clean_text
from jupyterlab_hdh.timestamps import iso_utc, utc

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,38}")
#: User roles that may be project members (and so hold permits).
MEMBER_ROLES = ("researcher",)
#: Roles that create projects and grant or revoke permits.
GRANTORS = ("data_controller", "admin")
DATASET_SPEC_RE = re.compile(r"(?P<name>[a-z0-9][a-z0-9_-]{0,62})(?:/(?P<version>v[0-9]{1,9}))?")
TITLE_MAX, PURPOSE_MAX, REASON_MAX = 200, 5000, 1000
#: The compute profiles a permit may name: those of ``images/`` and of the Kubernetes
#: spawner's defaults (``k8s.profiles.DEFAULT_PROFILES``, kept equal by a test).
COMPUTE_PROFILES = ("cpu", "gpu", "spark")
#: The hub's named server of a reviewer's own workspace (``/hub/spawn/<user>/review``): a
#: sandbox with no dataset and no project, so no project may take this slug.
REVIEW_WORKSPACE = "review"
#: Who may open it: the roles that review export requests (``egress.states.REVIEWER_ROLES``,
#: a layer above this one) and administrators.
REVIEW_WORKSPACE_ROLES = (Role.REVIEWER, Role.COMMITTEE, Role.ADMIN)


# --- errors -------------------------------------------------------------------------------------


class ProjectError(HdhError, ValueError):
    """Bad input for a project or permit change (an invalid slug, title, member, dataset…)."""

    http_status = 422


class ProjectConflict(ProjectError):
    """The change conflicts with what exists (the slug is taken, already a member…)."""

    http_status = 409


class NotAuthorised(HdhError, PermissionError):
    """The acting user's role does not allow this change."""

    http_status = 403


class UnknownPermit(HdhError, LookupError):
    """No permit with that id."""

    http_status = 404


class UnknownMember(HdhError, LookupError):
    """The user is not a member of the project (on removal)."""

    http_status = 404


class PermitError(HdhError, PermissionError):
    """User U may not open project P now; the subclass and message say why."""

    http_status = 403
    reason = "denied"

    def extra(self) -> dict[str, Any]:
        return {"reason": self.reason}


class UnknownProject(PermitError, LookupError):
    http_status = 404
    reason = "unknown_project"


class NotAMember(PermitError):
    reason = "not_a_member"


class NoPermit(PermitError):
    reason = "no_permit"


class NotCovered(PermitError):
    reason = "not_covered"


class PermitExpired(PermitError):
    reason = "expired"


class PermitRevoked(PermitError):
    reason = "revoked"


class AccountDisabled(PermitError):
    reason = "account_disabled"


# --- values -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who makes a change: the name written to the audit log and the role that authorises it."""

    name: str
    role: str

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.name, user.role)

    @classmethod
    def administrator(cls, name: str) -> Actor:
        """An operator at the console (the CLI): acts with the ``admin`` role."""
        return cls(name, "admin")


@dataclass(frozen=True)
class Mount:
    """A dataset version a sandbox mounts read-only (at ``/data/<dataset>/<version>``)."""

    dataset: str
    version: str
    path: Path


def moment(now: datetime | None) -> datetime:
    """``now`` in UTC (the current time when None); a naive time is a ProjectError. Every
    governance module takes its "now" through this one rule."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ProjectError("times must be timezone-aware")
    return now.astimezone(UTC)


def _iso(dt: datetime | None) -> str | None:
    return iso_utc(dt, "seconds")


def status(permit: Permit, now: datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked`` at ``now`` (``revoked`` wins if both);
    ``not_yet_issued`` when asked about a time before it was issued."""
    at = moment(now)
    if permit.revoked_at is not None and utc(permit.revoked_at) <= at:
        return "revoked"
    if utc(permit.expires_at) <= at:
        return "expired"
    if utc(permit.issued_at) > at:
        return "not_yet_issued"
    return "active"


def check_profile(name: str | None) -> str | None:
    if name is not None and name not in COMPUTE_PROFILES:
        raise ProjectError(
            f"unknown compute profile {name!r}: choose one of {', '.join(COMPUTE_PROFILES)}"
        )
    return name


def check_slug(slug: str) -> str:
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug):
        raise ProjectError(
            f"invalid project slug {slug!r}: use 1-39 lowercase ASCII letters, digits or '-',"
            " starting with a letter or digit"
        )
    if slug == REVIEW_WORKSPACE:
        raise ProjectError(
            f"project slug {slug!r} is reserved for the reviewers' workspaces"
            f" (/hub/spawn/<user>/{REVIEW_WORKSPACE}): choose another"
        )
    return slug


def _text(value: str, what: str, limit: int, *, multiline: bool = False) -> str:
    return clean_text(value, what, limit, error=ProjectError, one_line=not multiline)


def _flush(session: Session, conflict: str) -> None:
    """Flush; a unique constraint hit by a concurrent writer becomes a ProjectConflict."""
    try:
        session.flush()
    except IntegrityError:
        raise ProjectConflict(conflict) from None


def _require(actor: Actor, roles: tuple[str, ...], doing: str) -> None:
    if actor.role not in roles:
        raise NotAuthorised(
            f"{actor.name} (role {actor.role!r}) may not {doing} (needs {' or '.join(roles)})"
        )


# --- lookups ------------------------------------------------------------------------------------


def get_project(session: Session, slug: str) -> Project:
    project = (
        session.scalar(select(Project).where(Project.slug == slug))
        if isinstance(slug, str) and SLUG_RE.fullmatch(slug)
        else None
    )
    if project is None:
        raise UnknownProject(f"no project {slug!r}")
    return project


def get_permit(session: Session, permit_id: int) -> Permit:
    permit = session.get(Permit, permit_id)
    if permit is None:
        raise UnknownPermit(f"no permit #{permit_id}")
    return permit


def _lock(session: Session, project: Project) -> None:
    """Serialise changes to a project's permits: a no-op UPDATE of its row takes the row lock
    on PostgreSQL and the database write lock on SQLite (whose driver would otherwise run
    the SELECTs before it outside any transaction). Read the permits after this."""
    session.execute(
        update(Project)
        .where(Project.id == project.id)
        .values(slug=Project.slug)
        .execution_options(synchronize_session=False)
    )


def _user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def membership(session: Session, project: Project, user_name: str) -> ProjectMember | None:
    return session.scalar(
        select(ProjectMember)
        .join(User)
        .where(ProjectMember.project_id == project.id, User.name == user_name)
    )


def projects_of(session: Session, user_name: str | None = None) -> list[Project]:
    """Every project (``user_name`` None) or those ``user_name`` is a member of, by slug."""
    query = select(Project).order_by(Project.slug)
    if user_name is not None:
        query = query.join(ProjectMember).join(User).where(User.name == user_name)
    return list(session.scalars(query))


def permits(session: Session, project: Project | None = None) -> list[Permit]:
    query = select(Permit).order_by(Permit.id)
    if project is not None:
        query = query.where(Permit.project_id == project.id)
    return list(session.scalars(query))


# --- changes ------------------------------------------------------------------------------------


def create_project(
    session: Session, slug: str, *, title: str, purpose: str, actor: Actor
) -> Project:
    _require(actor, GRANTORS, "create projects")
    check_slug(slug)
    title = _text(title, "title", TITLE_MAX)
    purpose = _text(purpose, "purpose", PURPOSE_MAX, multiline=True)
    if session.scalar(select(Project).where(Project.slug == slug)) is not None:
        raise ProjectConflict(f"project {slug!r} already exists")
    project = Project(slug=slug, title=title, purpose=purpose, created_by=actor.name)
    session.add(project)
    _flush(session, f"project {slug!r} already exists")
    record(
        session,
        actor=actor.name,
        action="project.create",
        target=f"project:{slug}",
        details={"title": title, "purpose": purpose},
    )
    return project


def _may_manage_members(session: Session, project: Project, actor: Actor) -> None:
    if actor.role in GRANTORS:
        return
    own = membership(session, project, actor.name)
    if own is None or own.role != "lead" or actor.role not in MEMBER_ROLES:
        raise NotAuthorised(
            f"{actor.name} (role {actor.role!r}) may not change the members of {project.slug!r}"
            " (needs data_controller, admin or the project's lead)"
        )


def add_member(
    session: Session,
    slug: str,
    user_name: str,
    *,
    role: str = "member",
    actor: Actor,
    now: datetime | None = None,
) -> ProjectMember:
    project = get_project(session, slug)
    _may_manage_members(session, project, actor)
    if role not in PROJECT_ROLES:
        raise ProjectError(
            f"unknown project role {role!r}: choose one of {', '.join(PROJECT_ROLES)}"
        )
    user = _user(session, user_name) if isinstance(user_name, str) else None
    if user is None:
        raise ProjectError(f"no user named {user_name!r}")
    if user.role not in MEMBER_ROLES:
        raise ProjectError(
            f"user {user.name!r} has role {user.role!r}: only {', '.join(MEMBER_ROLES)}s can be"
            " project members"
        )
    if membership(session, project, user.name) is not None:
        raise ProjectConflict(f"{user.name!r} is already a member of {slug!r}")
    member = ProjectMember(
        project_id=project.id, user_id=user.id, role=role, added_by=actor.name, added_at=moment(now)
    )
    session.add(member)
    _flush(session, f"{user.name!r} is already a member of {slug!r}")
    record(
        session,
        actor=actor.name,
        action="project.member.add",
        target=f"project:{slug}",
        details={"user": user.name, "role": role},
    )
    return member


def remove_member(session: Session, slug: str, user_name: str, *, actor: Actor) -> None:
    """Remove a member; they lose access at once (:func:`active_permit` checks membership)."""
    project = get_project(session, slug)
    _may_manage_members(session, project, actor)
    member = membership(session, project, user_name)
    if member is None:
        raise UnknownMember(f"{user_name!r} is not a member of {slug!r}")
    session.delete(member)
    session.flush()
    record(
        session,
        actor=actor.name,
        action="project.member.remove",
        target=f"project:{slug}",
        details={"user": user_name},
    )


def resolve_dataset(session: Session, spec: str) -> DatasetVersion:
    """``name`` (its current version) or ``name/vN`` (that version).

    An older version (superseded by a newer extract) may be granted only if every opt-out
    registered so far is applied to it; otherwise the current version must be granted."""
    match = DATASET_SPEC_RE.fullmatch(spec) if isinstance(spec, str) else None
    if match is None:
        raise ProjectError(f"invalid dataset {spec!r}: write NAME or NAME/vN")
    name, label = match["name"], match["version"]
    query = select(DatasetVersion).join(Dataset).where(Dataset.name == name)
    if label is None:
        query = query.where(DatasetVersion.status == "current")
    else:
        query = query.where(DatasetVersion.number == int(label[1:]))
    version = session.scalar(query)
    if version is None:
        what = f"version {label} of dataset {name!r}" if label else f"dataset {name!r}"
        raise ProjectError(f"no {what} in the catalogue")
    if version.status != "current":
        missing = session.scalar(
            select(func.count()).select_from(OptOut).where(OptOut.id > version.optout_seq)
        )
        if missing:
            raise ProjectError(
                f"{name} {version.label} is {version.status} and lacks {missing} opt-out(s)"
                " registered since: grant the current version (it has them applied)"
            )
    return version


def grant_permit(
    session: Session,
    slug: str,
    *,
    members: list[str],
    datasets: list[str],
    expires_at: datetime,
    actor: Actor,
    now: datetime | None = None,
    compute_profile: str | None = None,
) -> Permit:
    """Issue a permit; the project's previous active permit, if any, is revoked (superseded)."""
    _require(actor, GRANTORS, "grant permits")
    check_profile(compute_profile)
    project = get_project(session, slug)
    _lock(session, project)
    at = moment(now)  # after the lock: grants on a project are ordered as they commit
    if not isinstance(expires_at, datetime) or expires_at.tzinfo is None:
        raise ProjectError("the expiry must be a timezone-aware date and time")
    expires = expires_at.astimezone(UTC)
    if expires <= at:
        raise ProjectError(f"the expiry {_iso(expires)} is not in the future")
    names = list(dict.fromkeys(members))
    if not names:
        raise ProjectError("a permit must cover at least one project member")
    users = []
    for name in names:
        member = membership(session, project, name) if isinstance(name, str) else None
        if member is None:
            raise ProjectError(
                f"{name!r} is not a member of {slug!r}: add them to the project first"
            )
        users.append(member.user)
    specs = list(dict.fromkeys(datasets))
    if not specs:
        raise ProjectError("a permit must name at least one dataset")
    versions = list({v.id: v for v in (resolve_dataset(session, s) for s in specs)}.values())
    # every permit not yet ended is superseded (also one issued "later" by a skewed clock)
    previous = [
        p for p in permits(session, project) if p.revoked_at is None and utc(p.expires_at) > at
    ]
    permit = Permit(
        project_id=project.id,
        issued_by=actor.name,
        issued_at=at,
        expires_at=expires,
        members=users,
        dataset_versions=versions,
        compute_profile=compute_profile,
    )
    session.add(permit)
    session.flush()
    for old in previous:
        _revoke(session, old, f"superseded by permit #{permit.id}", actor, at)
    record(
        session,
        actor=actor.name,
        action="permit.grant",
        target=f"permit:{permit.id}",
        details={
            "project": slug,
            "members": sorted(u.name for u in users),
            "datasets": [f"{v.dataset.name}/{v.label}" for v in versions],
            "expires_at": _iso(expires),
            "compute_profile": compute_profile,
            "supersedes": [p.id for p in previous],
        },
    )
    return permit


def _optout_successor(session: Session, version: DatasetVersion) -> DatasetVersion:
    """The last version derived from ``version`` by ``reapply-optout`` (itself if none)."""
    current = version
    while True:
        derived = session.scalar(
            select(DatasetVersion)
            .where(
                DatasetVersion.dataset_id == current.dataset_id,
                DatasetVersion.source == current.label,
                DatasetVersion.number > current.number,
            )
            .order_by(DatasetVersion.number)
        )
        if derived is None:
            return current
        current = derived


def follow_optout_versions(
    session: Session, *, actor: Actor, now: datetime | None = None
) -> list[tuple[int, int | None, str]]:
    """Re-issue active permits whose mounts were re-issued without opted-out persons.

    A version made by ``reapply-optout`` from vN is vN minus the persons who
    objected since, so a permit mounting vN moves to it: a new permit with the
    same members and expiry, the old one revoked as superseded (both audited).
    A permit that cannot move is revoked. Idempotent.
    Returns ``(old permit, new permit or None, what happened)``.
    """
    _require(actor, GRANTORS, "re-issue permits")
    at = moment(now)
    outcomes: list[tuple[int, int | None, str]] = []
    active = session.scalars(select(Permit).where(Permit.revoked_at.is_(None))).all()
    for permit in sorted(active, key=lambda p: p.id):
        if utc(permit.expires_at) <= at:
            continue
        successors = [_optout_successor(session, v) for v in permit.dataset_versions]
        if all(
            new.id == old.id for new, old in zip(successors, permit.dataset_versions, strict=True)
        ):
            continue
        members = [u.name for u in permit.members if membership(session, permit.project, u.name)]
        try:
            new_permit = grant_permit(
                session,
                permit.project.slug,
                members=members,
                datasets=[f"{v.dataset.name}/{v.label}" for v in successors],
                expires_at=utc(permit.expires_at),
                actor=actor,
                now=at,
                compute_profile=permit.compute_profile,
            )
        except ProjectError as exc:
            # It cannot move (no member left, a newer ingestion superseded the derived
            # version...): it must not keep mounting persons who objected.
            reason = f"mounts data without the latest opt-outs and could not move: {exc}"
            _revoke(session, permit, reason, actor, at)
            outcomes.append((permit.id, None, f"revoked: {reason}"))
            continue
        outcomes.append(
            (
                permit.id,
                new_permit.id,
                "now mounts " + ", ".join(f"{v.dataset.name}/{v.label}" for v in successors),
            )
        )
    return outcomes


def _revoke(session: Session, permit: Permit, reason: str, actor: Actor, at: datetime) -> None:
    permit.revoked_at = at
    permit.revoked_by = actor.name
    permit.revoke_reason = reason
    session.flush()
    record(
        session,
        actor=actor.name,
        action="permit.revoke",
        target=f"permit:{permit.id}",
        details={"project": permit.project.slug, "reason": reason},
    )


def revoke_permit(
    session: Session, permit_id: int, *, reason: str, actor: Actor, now: datetime | None = None
) -> Permit:
    """Revoke a permit now; sandboxes using it must stop (see :func:`expiring`)."""
    _require(actor, GRANTORS, "revoke permits")
    at = moment(now)
    permit = get_permit(session, permit_id)
    reason = _text(reason, "reason", REASON_MAX)
    _lock(session, permit.project)
    session.refresh(permit)  # as committed by a concurrent revocation or grant
    if permit.revoked_at is not None:
        raise ProjectConflict(
            f"permit #{permit.id} was already revoked at {_iso(permit.revoked_at)}"
        )
    _revoke(session, permit, reason, actor, at)
    return permit


@dataclass(frozen=True)
class Amendment:
    """What :func:`amend_permit` changes: members and dataset versions added or removed
    (datasets as ``NAME`` or ``NAME/vN``), a new expiry and a new compute profile (None:
    unchanged)."""

    add_members: tuple[str, ...] = ()
    remove_members: tuple[str, ...] = ()
    add_datasets: tuple[str, ...] = ()
    remove_datasets: tuple[str, ...] = ()
    expires_at: datetime | None = None
    compute_profile: str | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.add_members
            or self.remove_members
            or self.add_datasets
            or self.remove_datasets
            or self.expires_at is not None
            or self.compute_profile is not None
        )


def _version_spec(v: DatasetVersion) -> str:
    return f"{v.dataset.name}/{v.label}"


def amend_permit(
    session: Session,
    permit_id: int,
    change: Amendment,
    *,
    actor: Actor,
    now: datetime | None = None,
) -> Permit:
    """Change an active permit in place (its number, the decision's reference, stays).

    A member or version added, or a later expiry, counts from each person's next spawn (a
    running sandbox keeps what it mounted); a member removed or an earlier expiry is
    enforced at once, as any loss of a permit (the guard's and the hub's re-checks). Every
    change is checked before any is made: a bad one changes nothing. Renewing an ended
    permit is not an amendment (a new permit: :func:`grant_permit`)."""
    _require(actor, GRANTORS, "amend permits")
    if change.empty:
        raise ProjectError(
            "nothing to amend: add or remove a member or dataset, move the expiry or change"
            " the compute profile"
        )
    check_profile(change.compute_profile)
    permit = get_permit(session, permit_id)
    project = permit.project
    _lock(session, project)
    session.refresh(permit)
    at = moment(now)
    state = status(permit, at)
    if state != "active":
        raise ProjectConflict(
            f"permit #{permit.id} is {state}: an ended permit is renewed by a new one, not amended"
        )
    members = {u.name: u for u in permit.members}
    for name in dict.fromkeys(change.add_members):
        if name in members:
            raise ProjectError(f"{name!r} is already covered by permit #{permit.id}")
        member = membership(session, project, name) if isinstance(name, str) else None
        if member is None:
            raise ProjectError(
                f"{name!r} is not a member of {project.slug!r}: add them to the project first"
            )
        members[name] = member.user
    for name in dict.fromkeys(change.remove_members):
        if members.pop(name, None) is None:
            raise ProjectError(f"{name!r} is not covered by permit #{permit.id}")
    if not members:
        raise ProjectError("a permit must cover at least one project member: revoke it instead")
    versions = {_version_spec(v): v for v in permit.dataset_versions}
    for spec in dict.fromkeys(change.remove_datasets):
        found = [k for k in versions if k == spec or k.split("/")[0] == spec]
        if not found:
            raise ProjectError(f"permit #{permit.id} grants no {spec!r}")
        for k in found:
            del versions[k]
    for spec in dict.fromkeys(change.add_datasets):
        version = resolve_dataset(session, spec)
        if _version_spec(version) in versions:
            raise ProjectError(f"permit #{permit.id} already grants {_version_spec(version)}")
        versions[_version_spec(version)] = version
    if not versions:
        raise ProjectError("a permit must grant at least one dataset: revoke it instead")
    expires = utc(permit.expires_at)
    if change.expires_at is not None:
        if change.expires_at.tzinfo is None:
            raise ProjectError("the expiry must be a timezone-aware date and time")
        expires = change.expires_at.astimezone(UTC)
        if expires <= at:
            raise ProjectError(f"the expiry {_iso(expires)} is not in the future")
    profile = change.compute_profile or permit.compute_profile
    covered = {u.name for u in permit.members}
    added = [u.id for n, u in members.items() if n not in covered]
    before = {
        "members": sorted(u.name for u in permit.members),
        "datasets": sorted(_version_spec(v) for v in permit.dataset_versions),
        "expires_at": _iso(permit.expires_at),
        "compute_profile": permit.compute_profile,
    }
    permit.members = sorted(members.values(), key=lambda u: u.name)
    permit.dataset_versions = list(versions.values())
    permit.expires_at = expires
    permit.compute_profile = profile
    session.flush()
    if added:  # covered from now: who joined the project before now (see active_permit)
        session.execute(
            update(permit_members)
            .where(permit_members.c.permit_id == permit.id, permit_members.c.user_id.in_(added))
            .values(covered_at=at)
        )
    after = {
        "members": sorted(members),
        "datasets": sorted(versions),
        "expires_at": _iso(expires),
        "compute_profile": profile,
    }
    record(
        session,
        actor=actor.name,
        action="permit.amend",
        target=f"permit:{permit.id}",
        details={
            "project": project.slug,
            "before": before,
            "after": after,
        },
    )
    return permit


# --- the spawner's questions --------------------------------------------------------------------


def active_permit(
    session: Session, user_name: str, slug: str, now: datetime | None = None
) -> Permit:
    """The permit that lets ``user_name`` open project ``slug`` at ``now``, or a PermitError."""
    at = moment(now)
    project = get_project(session, slug)
    member = membership(session, project, user_name)
    if member is None:
        raise NotAMember(f"{user_name!r} is not a member of project {slug!r}")
    if member.user.disabled_at is not None:  # `hdh user disable`
        raise AccountDisabled(
            f"the account of {user_name!r} is disabled"
            f" (an administrator can `hdh user enable {user_name}`)"
        )
    history = list(reversed(permits(session, project)))
    current = next((p for p in history if status(p, at) == "active"), None)
    covering = [p for p in history if any(u.name == user_name for u in p.members)]
    if current is not None:
        if current in covering:
            if utc(member.added_at) > covered_since(session, current, member.user):
                # removed, then added again: only a new permit or amendment restores access
                raise NotCovered(
                    f"{user_name!r} rejoined project {slug!r} after permit #{current.id}"
                    " covered them: a new permit, or an amendment, must cover them again"
                )
            return current
        raise NotCovered(f"permit #{current.id} of project {slug!r} does not cover {user_name!r}")
    issued = [p for p in covering if utc(p.issued_at) <= at]
    if not issued:
        raise NoPermit(f"project {slug!r} has no permit covering {user_name!r}")
    last = issued[0]
    if status(last, at) == "revoked":
        raise PermitRevoked(
            f"permit #{last.id} of project {slug!r} was revoked at {_iso(last.revoked_at)}"
            f" by {last.revoked_by} because: {last.revoke_reason}"
        )
    raise PermitExpired(f"permit #{last.id} of project {slug!r} expired at {_iso(last.expires_at)}")


def covered_since(session: Session, permit: Permit, user: User) -> datetime:
    """When ``permit`` began to cover ``user``: its issue, or the amendment that added them."""
    at = session.scalar(
        select(permit_members.c.covered_at).where(
            permit_members.c.permit_id == permit.id, permit_members.c.user_id == user.id
        )
    )
    return utc(at) if at is not None else utc(permit.issued_at)


def _mount(version: DatasetVersion, data_dir: DataDir) -> Mount:
    name = version.dataset.name
    return Mount(name, version.label, data_dir.dataset_version_dir(name, version.label))


def access_problem(
    session: Session, user_name: str, slug: str, now: datetime | None = None
) -> str | None:
    """Why ``user_name`` may not open ``slug`` now (one line), or None if they may.

    ``slug`` :data:`REVIEW_WORKSPACE` asks about the review workspace instead
    (:func:`review_problem`): the spawner and the guard ask this one question of every
    named server."""
    if slug == REVIEW_WORKSPACE:
        return review_problem(session, user_name)
    try:
        active_permit(session, user_name, slug, now)
    except PermitError as exc:
        return str(exc)
    return None


def review_problem(session: Session, user_name: str) -> str | None:
    """Why ``user_name`` may not open the review workspace (one line), or None if they may:
    an enabled account whose role is in :data:`REVIEW_WORKSPACE_ROLES`."""
    user = _user(session, user_name)
    if user is None:
        return f"{REVIEW_WORKSPACE} is the reviewers' workspace: {user_name} is no HDH user"
    if user.disabled_at is not None:
        return (
            f"the account of {user_name!r} is disabled"
            f" (an administrator can `hdh user enable {user_name}`)"
        )
    if user.role not in REVIEW_WORKSPACE_ROLES:
        return f"{REVIEW_WORKSPACE} is the reviewers' workspace: {user_name} is a {user.role}"
    return None


def mounts(
    permit: Permit, data_dir: DataDir, selected: Collection[int] | None = None
) -> list[Mount]:
    """The dataset versions to mount read-only, with their absolute folders.

    For each dataset of the permit: the versions in ``selected`` (dataset version ids, a
    member's :func:`select_mounts`) that the permit still grants, else its newest permitted
    version. Nothing outside the permit is ever mounted."""
    chosen = set(selected or ())
    by_dataset: dict[str, list[DatasetVersion]] = {}
    for v in permit.dataset_versions:
        by_dataset.setdefault(v.dataset.name, []).append(v)
    out: list[Mount] = []
    for name in sorted(by_dataset):
        versions = sorted(by_dataset[name], key=lambda v: v.number)
        picked = [v for v in versions if v.id in chosen] or versions[-1:]
        out.extend(_mount(v, data_dir) for v in picked)
    return out


def permitted(permit: Permit, data_dir: DataDir) -> list[Mount]:
    """Every dataset version the permit grants (each may be mounted)."""
    versions = sorted(permit.dataset_versions, key=lambda v: (v.dataset.name, v.number))
    return [_mount(v, data_dir) for v in versions]


def mount_selection(session: Session, project: Project, user_name: str) -> set[int]:
    """The dataset version ids ``user_name`` chose to mount in ``project`` (maybe empty)."""
    user = _user(session, user_name)
    if user is None:
        return set()
    return set(
        session.scalars(
            select(MountSelection.dataset_version_id).where(
                MountSelection.project_id == project.id, MountSelection.user_id == user.id
            )
        )
    )


def member_mounts(
    session: Session, permit: Permit, user_name: str, data_dir: DataDir
) -> list[Mount]:
    """What ``user_name``'s sandbox of the permit's project mounts now."""
    return mounts(permit, data_dir, mount_selection(session, permit.project, user_name))


def mount_plan(
    session: Session, permit: Permit, user_name: str, data_dir: DataDir
) -> dict[str, Any]:
    """Mounted and permitted dataset versions of a member's sandbox, for the panels."""
    mounted = member_mounts(session, permit, user_name, data_dir)
    keys = {(m.dataset, m.version) for m in mounted}
    return {
        "project": permit.project.slug,
        "user": user_name,
        "permit": permit.id,
        "mounts": [_mount_view(m) for m in mounted],
        "permitted": [
            {**_mount_view(m), "mounted": (m.dataset, m.version) in keys}
            for m in permitted(permit, data_dir)
        ],
    }


def _mount_view(m: Mount) -> dict[str, str]:
    return {"dataset": m.dataset, "version": m.version, "path": str(m.path)}


def select_mounts(
    session: Session,
    slug: str,
    user_name: str,
    versions: Sequence[str],
    data_dir: DataDir,
    *,
    actor: Actor,
    now: datetime | None = None,
) -> list[Mount]:
    """Choose which permitted versions ``user_name`` mounts (``NAME/vN`` each; empty list:
    back to the newest version of each dataset). Takes effect at the sandbox's next start.

    Only the member themself (or a data controller / admin) may choose; every version must be
    in the project's active permit. Replaces the previous choice in one transaction, audited."""
    if actor.name != user_name and actor.role not in ("data_controller", "admin"):
        raise NotAuthorised(f"{actor.name} may not choose {user_name}'s mounts")
    permit = active_permit(session, user_name, slug, now)
    granted = {(v.dataset.name, v.label): v for v in permit.dataset_versions}
    picked: dict[int, DatasetVersion] = {}
    for spec in versions:
        match = DATASET_SPEC_RE.fullmatch(spec) if isinstance(spec, str) else None
        if match is None or match["version"] is None:
            raise ProjectError(f"invalid dataset version {spec!r}: write NAME/vN")
        version = granted.get((match["name"], match["version"]))
        if version is None:
            offered = ", ".join(f"{n}/{label}" for n, label in sorted(granted))
            raise ProjectError(
                f"{spec} is not in permit #{permit.id} of project {slug!r} (it grants: {offered})"
            )
        picked[version.id] = version
    user = _user(session, user_name)
    assert user is not None  # active_permit found them
    session.execute(
        delete(MountSelection).where(
            MountSelection.project_id == permit.project_id, MountSelection.user_id == user.id
        )
    )
    at = moment(now)
    for version_id in sorted(picked):
        session.add(
            MountSelection(
                project_id=permit.project_id,
                user_id=user.id,
                dataset_version_id=version_id,
                selected_at=at,
            )
        )
    session.flush()
    result = mounts(permit, data_dir, set(picked))
    record(
        session,
        actor=actor.name,
        action="mounts.select",
        target=f"project:{slug}/user:{user_name}",
        details={
            "permit": permit.id,
            "requested": list(versions),
            "mounts": [f"{m.dataset}/{m.version}" for m in result],
        },
    )
    return result


def expiring(
    session: Session, now: datetime | None = None, *, since: datetime | None = None
) -> list[Permit]:
    """Permits that have ended (expired or revoked) by ``now``: stop their sandboxes.

    With ``since``, only those that ended after it (the spawner's last sweep).
    """
    at = moment(now)
    rows = session.scalars(
        select(Permit)
        .where(or_(Permit.expires_at <= at, Permit.revoked_at <= at))
        .order_by(Permit.id)
    )
    ended = [p for p in rows if status(p, at) in ("expired", "revoked")]
    if since is None:
        return ended
    after = moment(since)
    return [p for p in ended if ended_at(p) > after]


def ended_at(permit: Permit) -> datetime:
    """When the permit stopped (or will stop) being usable: revocation or expiry, first."""
    ends = [utc(permit.expires_at)]
    if permit.revoked_at is not None:
        ends.append(utc(permit.revoked_at))
    return min(ends)


def revalidate(
    session: Session, running: list[tuple[str, str]], now: datetime | None = None
) -> list[tuple[str, str, PermitError]]:
    """For running sandboxes ``(user, slug)``, those that must stop now, and why.

    Covers what :func:`expiring` cannot: a member removed from the project, a new
    permit that no longer covers someone.
    """
    stop = []
    for user_name, slug in running:
        try:
            active_permit(session, user_name, slug, now)
        except PermitError as exc:
            stop.append((user_name, slug, exc))
    return stop


# --- views --------------------------------------------------------------------------------------


def permit_view(permit: Permit, data_dir: DataDir, now: datetime | None = None) -> dict[str, Any]:
    return {
        "id": permit.id,
        "project": permit.project.slug,
        "status": status(permit, now),
        "issued_by": permit.issued_by,
        "issued_at": _iso(permit.issued_at),
        "expires_at": _iso(permit.expires_at),
        "revoked_at": _iso(permit.revoked_at),
        "revoked_by": permit.revoked_by,
        "revoke_reason": permit.revoke_reason,
        "compute_profile": permit.compute_profile,
        "members": sorted(u.name for u in permit.members),
        "mounts": [_mount_view(m) for m in mounts(permit, data_dir)],
        "datasets": [_mount_view(m) for m in permitted(permit, data_dir)],
    }


def project_view(
    session: Session, project: Project, data_dir: DataDir, now: datetime | None = None
) -> dict[str, Any]:
    return {
        "slug": project.slug,
        "title": project.title,
        "purpose": project.purpose,
        "created_at": _iso(project.created_at),
        "created_by": project.created_by,
        "members": [
            {"user": m.user.name, "role": m.role}
            for m in session.scalars(
                select(ProjectMember)
                .where(ProjectMember.project_id == project.id)
                .order_by(ProjectMember.id)
            )
        ],
        "permits": [permit_view(p, data_dir, now) for p in permits(session, project)],
    }
