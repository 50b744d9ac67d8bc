"""The single access desk over HTTP: ``/api/applications/...`` (issue 14, item 1).

Owns the HTTP face of :mod:`jupyterlab_hdh.governance.applications`: thin handlers that
authenticate and call the domain, which authorises every step from the caller's role and
the application's team. A researcher applies (an administrator may apply for one:
``applicant``); a committee member outside the team gives an opinion on the current round
(an administrator may record one for them: ``member``); the applicant revises or withdraws
(or an administrator); an administrator records the authority's decision, and a favourable
one issues the permit in the same transaction.

Who may see an application (its team, the committee, data controllers, administrators)
reads it; anyone else gets 404 for it, on every route (no hint that it exists). After each
step, the notifications it wrote are e-mailed in a background task (``routes.egress.after``;
off unless SMTP is configured), so mail never delays or undoes a step.

(No ``from __future__ import annotations``: FastAPI reads the dependency aliases.)
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query
from sqlalchemy.orm import Session

from jupyterlab_hdh.api import application_models as am
from jupyterlab_hdh.api.deps import Anyone, ApiConfig, Config, Db
from jupyterlab_hdh.api.routes.egress import after
from jupyterlab_hdh.governance import applications
from jupyterlab_hdh.governance.projects import Actor
from jupyterlab_hdh.store.models import User

router = APIRouter(tags=["applications"])

#: an application's number (the store's integer: a larger one is a 422, not an overflow)
AppId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def application_out(s: Session, app_id: int, who: Actor) -> am.ApplicationOut:
    return am.ApplicationOut.model_validate(applications.view(s, app_id, who))


def _seen(s: Session, app_id: int, who: Actor) -> None:
    """404 for an application ``who`` may not see (as ``GET`` answers), before any step."""
    if not applications.may_see(s, applications.get(s, app_id), who):
        raise applications.UnknownApplication(f"no application #{app_id}")


def _step(
    cfg: ApiConfig,
    app_id: int,
    user: User,
    tasks: BackgroundTasks,
    change: Callable[[Session, Actor], object],
) -> am.ApplicationOut:
    """One step: ``change(session, actor)`` and the application's new view, committed
    together; the notifications it wrote are e-mailed after the reply."""
    who = Actor.of(user)
    with cfg.opened().transaction() as s:
        _seen(s, app_id, who)
        change(s, who)
        out = application_out(s, app_id, who)
    after(tasks, cfg)
    return out


@router.post("/api/applications", status_code=201)
def submit(
    body: am.ApplicationIn, user: Anyone, cfg: Config, tasks: BackgroundTasks
) -> am.ApplicationOut:
    """Apply (a researcher, for themselves; an administrator for ``applicant``)."""
    who = Actor.of(user)
    with cfg.opened().transaction() as s:
        app = applications.submit(s, body.draft(), actor=who, applicant=body.applicant)
        out = application_out(s, app.id, who)
    after(tasks, cfg)
    return out


@router.get("/api/applications")
def list_applications(
    s: Db,
    user: Anyone,
    state: Annotated[str | None, Query(max_length=32)] = None,
    project: Annotated[str | None, Query(max_length=100)] = None,
) -> list[am.ApplicationSummaryOut]:
    """The applications the caller may see, newest first."""
    found = applications.visible(s, Actor.of(user), state=state, project=project)
    return [am.ApplicationSummaryOut.model_validate(applications.summary(a)) for a in found]


@router.get("/api/applications/{app_id}")
def get_application(app_id: AppId, s: Db, user: Anyone) -> am.ApplicationOut:
    return application_out(s, app_id, Actor.of(user))


@router.post("/api/applications/{app_id}/opinion")
def give_opinion(
    app_id: AppId, body: am.OpinionIn, user: Anyone, cfg: Config, tasks: BackgroundTasks
) -> am.ApplicationOut:
    """A committee member's opinion on the current round (an administrator may record one
    for ``member``)."""
    return _step(
        cfg,
        app_id,
        user,
        tasks,
        lambda s, who: applications.give_opinion(
            s, app_id, body.opinion, body.text, actor=who, member=body.member
        ),
    )


@router.post("/api/applications/{app_id}/revise")
def revise(
    app_id: AppId, body: am.RevisionIn, user: Anyone, cfg: Config, tasks: BackgroundTasks
) -> am.ApplicationOut:
    """The applicant answers a request for changes: a new round."""
    change = body.revision()
    return _step(
        cfg,
        app_id,
        user,
        tasks,
        lambda s, who: applications.revise(s, app_id, change, actor=who),
    )


@router.post("/api/applications/{app_id}/withdraw")
def withdraw(app_id: AppId, user: Anyone, cfg: Config, tasks: BackgroundTasks) -> am.ApplicationOut:
    """The applicant (or an administrator) withdraws an open application."""
    return _step(
        cfg, app_id, user, tasks, lambda s, who: applications.withdraw(s, app_id, actor=who)
    )


@router.post("/api/applications/{app_id}/decide")
def decide(
    app_id: AppId, body: am.DecisionIn, user: Anyone, cfg: Config, tasks: BackgroundTasks
) -> am.ApplicationOut:
    """The authority's decision (an administrator); a favourable one issues the permit."""
    return _step(
        cfg,
        app_id,
        user,
        tasks,
        lambda s, who: applications.decide(
            s, app_id, body.decision, reference=body.reference, text=body.text, actor=who
        ),
    )
