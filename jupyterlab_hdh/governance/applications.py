"""The single access desk: applications, the committee's opinions, the authority's decision.

Owns how access to data is obtained (issue 14). A project's lead **applies**
(:func:`submit`): a ``new`` project, the ``renewal`` of a project's permit (a new permit,
with its own duration), or an ``amendment`` of the active permit (datasets, members or the
compute profile added; its expiry stays). Committee members give an **opinion** on each
round (:func:`give_opinion`: favourable, unfavourable, or changes requested, with text); a
request for changes sends it back to the applicant, who **revises** it (:func:`revise`, a
new round). An administrator records the **authority's decision** and its reference
(:func:`decide`); a favourable one issues the permit in the same transaction: the project,
its members and the permit for a new project, a new permit for a renewal, an amendment of
the active permit otherwise (:mod:`jupyterlab_hdh.governance.projects` does each change).

Rules:

* The applicant is a researcher with an enabled account and becomes (or is) the project's
  lead; the members are researchers with an account. An operator (``admin``, e.g. the CLI)
  may submit or record an opinion for someone, and the audit says who did.
* A member of the applying team (the applicant, a listed member, a member of the project)
  never gives an opinion; each committee member gives one per round.
* A decision needs an opinion of the current round; a favourable one is refused while
  changes are requested. Everything a decision issues is checked before anything is made:
  a refusal (a dataset gone, a slug taken meanwhile) changes nothing.
* Each step is audited (``application.*``) and notifies, in the app and by e-mail
  (``egress.notify.send_pending``), those it concerns: the committee (and administrators)
  of a submission, a revision or a withdrawal, the applicant of an opinion, the whole team
  (the application's and the project's members) of the decision.
* Who may see an application: its team, the committee, data controllers and
  administrators. The applicant sees opinions without their authors' names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.projects import (
    COMPUTE_PROFILES,
    Actor,
    NotAuthorised,
    ProjectConflict,
    ProjectError,
)
from jupyterlab_hdh.store.db import is_row_id
from jupyterlab_hdh.store.models import (
    Application,
    ApplicationOpinion,
    Notification,
    Project,
    Role,
    User,
)
from jupyterlab_hdh.textfields import clean_text
from jupyterlab_hdh.timestamps import iso_utc

KINDS = ("new", "renewal", "amendment")
#: ``submitted``: awaiting opinions and the decision; ``changes_requested``: back with the
#: applicant; then one of the ended states.
OPEN_STATES = ("submitted", "changes_requested")
ENDED_STATES = ("approved", "rejected", "withdrawn")
OPINIONS = ("favourable", "unfavourable", "changes_requested")
DECISIONS = ("favourable", "unfavourable")
#: Who may record the authority's decision.
DECIDERS = (Role.ADMIN,)
#: Who sees every application (besides the committee).
OVERSEERS = (Role.DATA_CONTROLLER, Role.ADMIN)
MAX_DAYS = 5 * 366
TEXT_MAX, REFERENCE_MAX, OPINION_MAX = 10_000, 200, 10_000
DEFAULT_PROFILE = "cpu"


class UnknownApplication(HdhError, LookupError):
    """No application with that id (or none the caller may see)."""

    http_status = 404


@dataclass(frozen=True)
class Draft:
    """What an applicant writes. For an ``amendment``, ``datasets`` and ``members`` are what
    it adds, ``duration_days`` stays None (a renewal extends a permit) and a
    ``compute_profile`` of None keeps the permit's; otherwise None is :data:`DEFAULT_PROFILE`."""

    kind: str
    project: str
    title: str
    purpose: str
    public_interest: str
    methodology: str
    datasets: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    duration_days: int | None = None
    compute_profile: str | None = None


@dataclass(frozen=True)
class Revision:
    """What a revision changes (None: unchanged)."""

    title: str | None = None
    purpose: str | None = None
    public_interest: str | None = None
    methodology: str | None = None
    datasets: tuple[str, ...] | None = None
    members: tuple[str, ...] | None = None
    duration_days: int | None = None
    compute_profile: str | None = None
    note: str = ""


@dataclass
class _Checked:
    """A draft once checked, with what its decision would issue."""

    draft: Draft
    users: list[User] = field(default_factory=list)


def _text(value: Any, what: str, limit: int = TEXT_MAX, *, one_line: bool = False) -> str:
    return clean_text(value, what, limit, error=ProjectError, one_line=one_line)


def _user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name)) if isinstance(name, str) else None


def _researcher(session: Session, name: str, what: str) -> User:
    user = _user(session, name)
    if user is None:
        raise ProjectError(f"the {what} {name!r} has no account: create it first (hdh user add)")
    if user.role not in pj.MEMBER_ROLES:
        raise ProjectError(
            f"the {what} {name!r} is a {user.role}: only researchers apply and join projects"
        )
    if user.disabled_at is not None:
        raise ProjectError(f"the account of the {what} {name!r} is disabled")
    return user


def _project(session: Session, slug: str) -> Project | None:
    return session.scalar(select(Project).where(Project.slug == slug))


def _open_for(session: Session, slug: str, but: int | None = None) -> Application | None:
    query = select(Application).where(
        Application.project_slug == slug, Application.state.in_(OPEN_STATES)
    )
    if but is not None:
        query = query.where(Application.id != but)
    return session.scalar(query.order_by(Application.id))


def open_for_dataset(session: Session, project: str, dataset: str) -> Application | None:
    """The open application of ``project`` (newest first) that asks for ``dataset`` (named
    ``NAME`` or ``NAME/vN`` among its datasets), or None: the dataset's pending access
    request as the project's sandboxes show it. Never another project's application."""
    query = (
        select(Application)
        .where(Application.project_slug == project, Application.state.in_(OPEN_STATES))
        .order_by(Application.id.desc())
    )
    return next(
        (
            app
            for app in session.scalars(query)
            if any(str(spec).split("/")[0] == dataset for spec in app.datasets or ())
        ),
        None,
    )


def _active_permit(session: Session, project: Project, at: datetime) -> Any:
    return next(
        (p for p in reversed(pj.permits(session, project)) if pj.status(p, at) == "active"), None
    )


def _check(
    session: Session,
    applicant: str,
    draft: Draft,
    at: datetime,
    *,
    own: int | None,
    deciding: bool = False,
) -> _Checked:
    """``draft`` with its text cleaned, or a ProjectError naming the first problem (when
    ``deciding``, an amendment the permit meanwhile grants is no error: nothing to add)."""
    if draft.kind not in KINDS:
        raise ProjectError(f"unknown kind of application {draft.kind!r}: choose {', '.join(KINDS)}")
    pj.check_slug(draft.project)
    lead = _researcher(session, applicant, "applicant")
    clean = replace(
        draft,
        title=_text(draft.title, "title", pj.TITLE_MAX, one_line=True),
        purpose=_text(draft.purpose, "purpose", pj.PURPOSE_MAX),
        public_interest=_text(draft.public_interest, "public-interest justification"),
        methodology=_text(draft.methodology, "methodology"),
        datasets=tuple(dict.fromkeys(draft.datasets)),
        members=tuple(m for m in dict.fromkeys(draft.members) if m != applicant),
        compute_profile=(
            draft.compute_profile or (None if draft.kind == "amendment" else DEFAULT_PROFILE)
        ),
    )
    project = _project(session, draft.project)
    if draft.kind == "new":
        if project is not None:
            raise ProjectConflict(
                f"project {draft.project!r} exists: apply for a renewal or an amendment of it"
            )
    else:
        if project is None:
            raise ProjectError(
                f"no project {draft.project!r}: a {draft.kind} is of an existing project"
            )
        own_role = pj.membership(session, project, applicant)
        if own_role is None or own_role.role != "lead":
            raise NotAuthorised(
                f"{applicant} does not lead project {draft.project!r}: its lead applies"
            )
    other = _open_for(session, draft.project, but=own)
    if other is not None:
        raise ProjectConflict(
            f"application #{other.id} for project {draft.project!r} is still open: revise or"
            " withdraw it first"
        )
    if draft.kind == "amendment":
        if draft.duration_days is not None:
            raise ProjectError(
                "an amendment keeps the permit's expiry: apply for a renewal to extend it"
            )
        assert project is not None
        permit = _active_permit(session, project, at)
        if permit is None:
            raise ProjectError(
                f"project {draft.project!r} has no active permit to amend: apply for a renewal"
            )
        if not (clean.datasets or clean.members or clean.compute_profile):
            raise ProjectError(
                "an amendment adds a dataset or a member, or changes the compute profile"
            )
        granted = {_key(v) for v in permit.dataset_versions}
        covered = {u.name for u in permit.members}
        new = [d for d in clean.datasets if _key(pj.resolve_dataset(session, d)) not in granted]
        unchanged = clean.compute_profile in (None, permit.compute_profile)
        if not deciding and not new and set(clean.members) <= covered and unchanged:
            raise ProjectConflict(
                f"permit #{permit.id} of {draft.project!r} already grants what this amendment"
                " asks for: nothing to request"
            )
    else:
        days = draft.duration_days
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
            raise ProjectError(f"the duration must be 1 to {MAX_DAYS} days")
        if not clean.datasets:
            raise ProjectError("an application names at least one dataset")
    if clean.compute_profile is not None and clean.compute_profile not in COMPUTE_PROFILES:
        raise ProjectError(
            f"unknown compute profile {clean.compute_profile!r}:"
            f" choose one of {', '.join(COMPUTE_PROFILES)}"
        )
    for spec in clean.datasets:
        pj.resolve_dataset(session, spec)  # unknown dataset, bad version: a clear error
    users = [lead] + [_researcher(session, m, "member") for m in clean.members]
    return _Checked(clean, users)


def _draft_of(app: Application) -> Draft:
    """What ``app`` asks for now, as its applicant would write it."""
    return Draft(
        kind=app.kind,
        project=app.project_slug,
        title=app.title,
        purpose=app.purpose,
        public_interest=app.public_interest,
        methodology=app.methodology,
        datasets=tuple(app.datasets),
        members=tuple(app.members),
        duration_days=app.duration_days,
        compute_profile=app.compute_profile,
    )


def _key(version: Any) -> tuple[str, str]:
    return (version.dataset.name, version.label)


def _team(session: Session, app: Application) -> set[str]:
    team = {app.applicant, *app.members}
    project = _project(session, app.project_slug)
    if project is not None:
        team |= {m.user.name for m in project.members}
    return team


def _committee(session: Session, app: Application) -> list[str]:
    team = _team(session, app)
    names = session.scalars(
        select(User.name)
        .where(User.role == Role.COMMITTEE, User.disabled_at.is_(None))
        .order_by(User.name)
    )
    return [n for n in names if n not in team]


def _admins(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(User.name)
            .where(User.role == Role.ADMIN, User.disabled_at.is_(None))
            .order_by(User.name)
        )
    )


def _notify(
    session: Session, users: Sequence[str], app: Application, kind: str, subject: str, body: str
) -> None:
    at = datetime.now(UTC)
    for name in dict.fromkeys(users):
        session.add(
            Notification(
                user_name=name,
                link=f"ui/applications/{app.id}",
                kind=kind,
                subject=subject[:200],
                body=body,
                created_at=at,
            )
        )
    session.flush()


def _audit(session: Session, app: Application, actor: Actor, action: str, **details: Any) -> None:
    record(
        session,
        actor=actor.name,
        action=action,
        target=f"application:{app.id}",
        details={"application": app.id, "project": app.project_slug, **details},
    )


def _acting_for(actor: Actor, name: str, doing: str) -> None:
    """``actor`` may act as ``name``: it is them, or an administrator recording it."""
    if actor.name != name and actor.role != Role.ADMIN:
        raise NotAuthorised(f"{actor.name} may not {doing} for {name} (only an administrator)")


def get(session: Session, app_id: int) -> Application:
    app = session.get(Application, app_id) if is_row_id(app_id) else None
    if app is None:
        raise UnknownApplication(f"no application #{app_id}")
    return app


def _lock(session: Session, app: Application) -> Application:
    """The application as committed, its row locked (PostgreSQL) or the database (SQLite)."""
    session.execute(
        update(Application)
        .where(Application.id == app.id)
        .values(round=Application.round)
        .execution_options(synchronize_session=False)
    )
    session.refresh(app)
    return app


# --- the steps ----------------------------------------------------------------------------------


def submit(
    session: Session,
    draft: Draft,
    *,
    actor: Actor,
    applicant: str | None = None,
    now: datetime | None = None,
) -> Application:
    """File an application by ``applicant`` (default: the actor), and tell the committee."""
    at = pj.moment(now)
    name = applicant or actor.name
    _acting_for(actor, name, "apply")
    if actor.name == name and actor.role not in pj.MEMBER_ROLES:
        raise NotAuthorised(f"{actor.name} (role {actor.role!r}) may not apply: researchers do")
    checked = _check(session, name, draft, at, own=None)
    d = checked.draft
    app = Application(
        kind=d.kind,
        project_slug=d.project,
        applicant=name,
        submitted_by=actor.name,
        title=d.title,
        purpose=d.purpose,
        public_interest=d.public_interest,
        methodology=d.methodology,
        datasets=list(d.datasets),
        members=list(d.members),
        duration_days=d.duration_days,
        compute_profile=d.compute_profile,
        state="submitted",
        round=1,
        submitted_at=at,
        updated_at=at,
    )
    session.add(app)
    session.flush()
    _audit(session, app, actor, "application.submit", **_content(app), applicant=name)
    _notify(
        session,
        _committee(session, app) + _admins(session),
        app,
        "application_submitted",
        f"Application #{app.id} ({d.kind}) for project {d.project}: your opinion",
        f"{name} applied for {_kind_text(app)}: {d.title}. Give your opinion.",
    )
    return app


def give_opinion(
    session: Session,
    app_id: int,
    opinion: str,
    text: str,
    *,
    actor: Actor,
    member: str | None = None,
    now: datetime | None = None,
) -> ApplicationOpinion:
    """Record committee ``member``'s (default: the actor's) opinion on the current round."""
    at = pj.moment(now)
    name = member or actor.name
    _acting_for(actor, name, "give an opinion")
    app = _lock(session, get(session, app_id))
    if opinion not in OPINIONS:
        raise ProjectError(f"unknown opinion {opinion!r}: choose {', '.join(OPINIONS)}")
    text = _text(text, "opinion's text", OPINION_MAX)
    user = _user(session, name)
    if user is None or user.role != Role.COMMITTEE or user.disabled_at is not None:
        raise NotAuthorised(f"{name} is not a committee member: only they give opinions")
    if name in _team(session, app):
        raise NotAuthorised(
            f"{name} belongs to the team of application #{app.id}: a conflict of interest"
        )
    if app.state != "submitted":
        raise ProjectConflict(f"application #{app.id} is {_state_text(app)}: no opinion now")
    if any(o.member == name and o.round == app.round for o in app.opinions):
        raise ProjectConflict(f"{name} already gave an opinion on round {app.round}")
    row = ApplicationOpinion(
        application_id=app.id,
        member=name,
        opinion=opinion,
        text=text,
        round=app.round,
        recorded_by=actor.name,
        created_at=at,
    )
    session.add(row)
    if opinion == "changes_requested":
        app.state = "changes_requested"
    app.updated_at = at
    session.flush()
    _audit(
        session, app, actor, "application.opinion", member=name, opinion=opinion, round=app.round
    )
    _notify(
        session,
        [app.applicant],
        app,
        "application_opinion",
        f"Application #{app.id}: an opinion of the committee ({_opinion_text(opinion)})",
        f"A committee member's opinion on round {app.round}: {_opinion_text(opinion)}.\n\n{text}",
    )
    return row


def revise(
    session: Session,
    app_id: int,
    change: Revision,
    *,
    actor: Actor,
    now: datetime | None = None,
) -> Application:
    """The applicant answers a request for changes: a new round, submitted again."""
    at = pj.moment(now)
    app = _lock(session, get(session, app_id))
    _acting_for(actor, app.applicant, "revise this application")
    if app.state != "changes_requested":
        raise ProjectConflict(
            f"application #{app.id} is {_state_text(app)}: revise it when changes are requested"
        )
    note = clean_text(change.note, "note", OPINION_MAX, error=ProjectError, required=False)
    changed = {k: v for k, v in vars(change).items() if k != "note" and v is not None}
    draft = replace(_draft_of(app), **changed)
    d = _check(session, app.applicant, draft, at, own=app.id).draft
    before = _content(app)
    app.title, app.purpose = d.title, d.purpose
    app.public_interest, app.methodology = d.public_interest, d.methodology
    app.datasets, app.members = list(d.datasets), list(d.members)
    app.duration_days, app.compute_profile = d.duration_days, d.compute_profile
    app.round += 1
    app.state = "submitted"
    app.updated_at = at
    session.flush()
    _audit(
        session,
        app,
        actor,
        "application.revise",
        round=app.round,
        before=before,
        after=_content(app),
        note=note,
    )
    _notify(
        session,
        _committee(session, app),
        app,
        "application_revised",
        f"Application #{app.id} for project {app.project_slug} revised: round {app.round}",
        f"{app.applicant} revised the application ({app.title}). {note}".strip(),
    )
    return app


def withdraw(
    session: Session, app_id: int, *, actor: Actor, now: datetime | None = None
) -> Application:
    """The applicant (or an administrator) withdraws an open application."""
    at = pj.moment(now)
    app = _lock(session, get(session, app_id))
    _acting_for(actor, app.applicant, "withdraw this application")
    if app.state not in OPEN_STATES:
        raise ProjectConflict(f"application #{app.id} is {_state_text(app)}: nothing to withdraw")
    app.state = "withdrawn"
    app.updated_at = at
    session.flush()
    _audit(session, app, actor, "application.withdraw")
    _notify(
        session,
        _committee(session, app) + _admins(session),
        app,
        "application_withdrawn",
        f"Application #{app.id} for project {app.project_slug} withdrawn",
        f"{app.applicant} withdrew the application ({app.title}): no opinion is needed.",
    )
    return app


def decide(
    session: Session,
    app_id: int,
    decision: str,
    *,
    reference: str,
    text: str = "",
    actor: Actor,
    now: datetime | None = None,
) -> Application:
    """Record the authority's decision (an administrator); a favourable one issues the permit.

    Everything is checked again first (the catalogue, the accounts and the project may have
    changed since the submission): a decision that cannot be carried out changes nothing."""
    at = pj.moment(now)
    if actor.role not in DECIDERS:
        raise NotAuthorised(
            f"{actor.name} (role {actor.role!r}) may not record the authority's decision"
            " (an administrator does)"
        )
    app = _lock(session, get(session, app_id))
    if decision not in DECISIONS:
        raise ProjectError(f"unknown decision {decision!r}: choose {', '.join(DECISIONS)}")
    reference = _text(reference, "decision's reference", REFERENCE_MAX, one_line=True)
    text = clean_text(text, "decision's text", TEXT_MAX, error=ProjectError, required=False)
    if app.state not in OPEN_STATES:
        raise ProjectConflict(f"application #{app.id} is {_state_text(app)}: already ended")
    if not any(o.round == app.round for o in app.opinions):
        raise ProjectConflict(
            f"application #{app.id} has no opinion of the committee on round {app.round}:"
            " a decision follows an opinion"
        )
    if decision == "favourable" and app.state == "changes_requested":
        raise ProjectConflict(
            f"the committee requested changes to application #{app.id}: the applicant revises"
            " it first (or the decision is unfavourable)"
        )
    permit = None
    if decision == "favourable":
        permit = _issue(session, app, actor, at)
    app.state = "approved" if decision == "favourable" else "rejected"
    app.decision, app.decision_reference, app.decision_text = decision, reference, text
    app.decided_by, app.decided_at, app.updated_at = actor.name, at, at
    app.permit_id = permit.id if permit is not None else None
    session.flush()
    _audit(
        session,
        app,
        actor,
        "application.decide",
        decision=decision,
        reference=reference,
        permit=app.permit_id,
    )
    outcome = f"favourable: permit #{permit.id} is issued" if permit is not None else "unfavourable"
    _notify(
        session,
        [app.applicant, *sorted(_team(session, app) - {app.applicant})],
        app,
        "application_decided",
        f"Application #{app.id} for project {app.project_slug}: decision {decision}",
        f"The authority's decision ({reference}) is {outcome}.\n\n{text}".strip(),
    )
    return app


def _issue(session: Session, app: Application, actor: Actor, at: datetime) -> Any:
    """Carry out a favourable decision; returns the permit (new or amended)."""
    checked = _check(session, app.applicant, _draft_of(app), at, own=app.id, deciding=True)
    # the projects functions authorise from the role: the decision is an administrator's
    grantor = Actor(actor.name, Role.ADMIN)
    slug = app.project_slug
    if app.kind == "new":
        pj.create_project(session, slug, title=app.title, purpose=app.purpose, actor=grantor)
    project = pj.get_project(session, slug)
    for user in checked.users:
        if pj.membership(session, project, user.name) is None:
            role = "lead" if user.name == app.applicant else "member"
            pj.add_member(session, slug, user.name, role=role, actor=grantor, now=at)
    if app.kind == "amendment":
        permit = _active_permit(session, project, at)
        assert permit is not None  # _check
        covered = {u.name for u in permit.members}
        granted = {_key(v) for v in permit.dataset_versions}
        datasets = [d for d in app.datasets if _key(pj.resolve_dataset(session, d)) not in granted]
        change = pj.Amendment(
            add_members=tuple(u.name for u in checked.users if u.name not in covered),
            add_datasets=tuple(datasets),
            compute_profile=(
                app.compute_profile
                if app.compute_profile and app.compute_profile != permit.compute_profile
                else None
            ),
        )
        if change.empty:
            return permit  # what it asked for is granted already
        return pj.amend_permit(session, permit.id, change, actor=grantor, now=at)
    return pj.grant_permit(
        session,
        slug,
        members=[u.name for u in checked.users],
        datasets=list(app.datasets),
        expires_at=at + timedelta(days=app.duration_days or 0),
        actor=grantor,
        now=at,
        compute_profile=app.compute_profile,
    )


# --- reading ------------------------------------------------------------------------------------


def may_see(session: Session, app: Application, viewer: Actor) -> bool:
    if viewer.role in (*OVERSEERS, Role.COMMITTEE):
        return True
    return viewer.name in _team(session, app)


def visible(
    session: Session, viewer: Actor, *, state: str | None = None, project: str | None = None
) -> list[Application]:
    """The applications ``viewer`` may see, newest first (optionally by state or project)."""
    query = select(Application).order_by(Application.id.desc())
    if state is not None:
        query = query.where(Application.state == state)
    if project is not None:
        query = query.where(Application.project_slug == project)
    rows = list(session.scalars(query))
    if viewer.role in (*OVERSEERS, Role.COMMITTEE):
        return rows
    mine = {p.slug for p in pj.projects_of(session, viewer.name)}  # one query, not one per row
    return [
        a
        for a in rows
        if a.applicant == viewer.name or viewer.name in a.members or a.project_slug in mine
    ]


def view(session: Session, app_id: int, viewer: Actor) -> dict[str, Any]:
    """The application as ``viewer`` may see it (404 if they may not see it at all)."""
    app = get(session, app_id)
    if not may_see(session, app, viewer):
        raise UnknownApplication(f"no application #{app_id}")  # no hint it exists
    named = viewer.role in (*OVERSEERS, Role.COMMITTEE)
    out = {
        "id": app.id,
        "kind": app.kind,
        "project": app.project_slug,
        "applicant": app.applicant,
        "submitted_by": app.submitted_by,
        **_content(app),
        "state": app.state,
        "round": app.round,
        "submitted_at": iso_utc(app.submitted_at, "seconds"),
        "updated_at": iso_utc(app.updated_at, "seconds"),
        "opinions": [
            {
                "member": o.member if named or o.member == viewer.name else None,
                "opinion": o.opinion,
                "text": o.text,
                "round": o.round,
                "at": iso_utc(o.created_at, "seconds"),
            }
            for o in app.opinions
        ],
        "decision": app.decision,
        "decision_reference": app.decision_reference,
        "decision_text": app.decision_text,
        "decided_by": app.decided_by,
        "decided_at": iso_utc(app.decided_at, "seconds"),
        "permit": app.permit_id,
        "actions": actions(session, app, viewer),
    }
    return out


def actions(session: Session, app: Application, viewer: Actor) -> list[str]:
    """What ``viewer`` may do with it now (the pages show these buttons)."""
    can = []
    mine = viewer.name == app.applicant or viewer.role == Role.ADMIN
    if app.state == "changes_requested" and mine:
        can.append("revise")
    if app.state in OPEN_STATES and mine:
        can.append("withdraw")
    if (
        app.state == "submitted"
        and viewer.role == Role.COMMITTEE
        and viewer.name not in _team(session, app)
        and not any(o.member == viewer.name and o.round == app.round for o in app.opinions)
    ):
        can.append("opinion")
    if (
        app.state in OPEN_STATES
        and viewer.role in DECIDERS
        and any(o.round == app.round for o in app.opinions)
    ):
        can.append("decide")
    return can


def _content(app: Application) -> dict[str, Any]:
    return {
        "title": app.title,
        "purpose": app.purpose,
        "public_interest": app.public_interest,
        "methodology": app.methodology,
        "datasets": list(app.datasets),
        "members": list(app.members),
        "duration_days": app.duration_days,
        "compute_profile": app.compute_profile,
    }


def _kind_text(app: Application) -> str:
    return {
        "new": f"a new project {app.project_slug}",
        "renewal": f"the renewal of project {app.project_slug}'s permit",
        "amendment": f"an amendment of project {app.project_slug}'s permit",
    }[app.kind]


def _state_text(app: Application) -> str:
    return app.state.replace("_", " ")


def _opinion_text(opinion: str) -> str:
    return opinion.replace("_", " ")


def summary(app: Application) -> dict[str, Any]:
    """One line of a list."""
    return {
        "id": app.id,
        "kind": app.kind,
        "project": app.project_slug,
        "applicant": app.applicant,
        "title": app.title,
        "state": app.state,
        "round": app.round,
        "submitted_at": iso_utc(app.submitted_at, "seconds"),
        "updated_at": iso_utc(app.updated_at, "seconds"),
        "decision_reference": app.decision_reference,
        "permit": app.permit_id,
    }
