"""``/api/bridge/...``: sandboxes, through the hub's API bridge (``hub/bridge.py``).

The caller's identity comes from ``X-HDH-User`` / ``X-HDH-Project`` only when
``X-HDH-Bridge`` carries the bridge token (``deps.bridged``, constant-time compare), and
the project's active permit is re-checked on every request: the control plane never
trusts who a sandbox says it is. The airlock's requester steps are here for a sandbox:
the caller is the bridged user in the bridged project, and only requests of that project
are reachable (others are 404).

(No ``from __future__ import annotations``: FastAPI reads the dependency aliases.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyterlab_hdh.api import egress_models as em
from jupyterlab_hdh.api import models
from jupyterlab_hdh.api.audit_models import CodeAuditOut
from jupyterlab_hdh.api.deps import BRIDGE_RESPONSES, Bridged, Config, Db, Inst
from jupyterlab_hdh.api.routes import audit, egress
from jupyterlab_hdh.catalogue.records import SLUG_PATTERN
from jupyterlab_hdh.egress import manager
from jupyterlab_hdh.egress.errors import NotFound
from jupyterlab_hdh.egress.settings import load_settings
from jupyterlab_hdh.governance import applications as ap
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.projects import Actor, ProjectConflict
from jupyterlab_hdh.sandbox.spec import DATA_ROOT
from jupyterlab_hdh.store.models import Application, EgressRequest, Project, ProjectMember, User

router = APIRouter(tags=["bridge"])


def in_sandbox(mount: models.MountOut) -> str:
    """Where the sandbox sees a mounted dataset version (``sandbox/spec.py``: ``/data/…``)."""
    return f"{DATA_ROOT}/{mount.dataset}/{mount.version}"


def bridged_actor(s: Session, me: models.AccessOut) -> Actor:
    user = s.scalar(select(User).where(User.name == me.user))
    if user is None:  # the permit check passed, so the user exists; be safe anyway
        raise HTTPException(403, f"unknown user {me.user!r}")
    return Actor.of(user)


def in_project(s: Session, request_id: int, me: models.AccessOut) -> None:
    """Only the bridged project's requests are reachable from its sandbox."""
    req = s.get(EgressRequest, request_id)
    if req is None or req.project.slug != me.project:
        raise NotFound(f"no egress request #{request_id} in project {me.project!r}")


@router.get("/api/bridge/whoami", responses=BRIDGE_RESPONSES)
def bridge_whoami(me: Bridged) -> models.AccessOut:
    """Who the control plane believes the calling sandbox is: user, project, permit, what
    it mounts and every version the permit grants (the data panel).

    (Bridged routes that change state will be audited; reads are not.) Paths are the
    sandbox's own (``/data/<dataset>/<version>``, as ``/hdh/mounts`` shows them), never
    the host's; a permitted version that is not mounted has none."""
    mounts = [m.model_copy(update={"path": in_sandbox(m)}) for m in me.mounts]
    permitted = [
        p.model_copy(update={"path": in_sandbox(p) if p.mounted else ""}) for p in me.permitted
    ]
    return me.model_copy(update={"mounts": mounts, "permitted": permitted})


class LeadOut(BaseModel):
    name: str
    email: str | None = None


class AccessApplicationOut(BaseModel):
    """The project's open application that asks for the dataset: its access request, still
    waiting for the decision (``governance/applications.py``: ``open_for_dataset``)."""

    id: int
    kind: str
    #: ``submitted`` or ``changes_requested``
    state: str
    title: str
    submitted_at: str | None = None
    updated_at: str | None = None


class DatasetAccessOut(BaseModel):
    """A dataset as the calling sandbox's project may use it (the catalogue's access badge)."""

    dataset: str
    project: str
    #: ``mounted`` (a version is mounted in the sandbox), ``permitted`` (the permit grants a
    #: version, none is mounted) or ``not_permitted``
    state: str
    mounted: list[str]
    permitted: list[str]
    leads: list[LeadOut]
    #: whether the caller leads the project (only a lead requests access: an amendment)
    you_lead: bool = False
    #: what to do to get (or use) access, in a sentence
    how: str
    #: the project's open application that asks for the dataset, if any (the badge's
    #: "Access requested"); only ever the caller's own project's
    application: AccessApplicationOut | None = None


def _leads(s: Session, project: str) -> list[LeadOut]:
    rows = s.execute(
        select(User.name, User.email)
        .join(ProjectMember, ProjectMember.user_id == User.id)
        .join(Project, Project.id == ProjectMember.project_id)
        .where(Project.slug == project, ProjectMember.role == "lead")
        .order_by(User.name)
    ).all()
    return [LeadOut(name=name, email=email) for name, email in rows]


def access_sentence(state: str, dataset: str, project: str, leads: list[LeadOut]) -> str:
    """What a member reads next to the access badge."""
    if state == "mounted":
        return f"{dataset} is mounted read-only in this sandbox under {DATA_ROOT}/{dataset}/."
    if state == "permitted":
        return (
            f"The permit of project {project} covers {dataset}, but this sandbox does not mount"
            " it: choose it on the project's datasets page (the sandbox restarts)."
        )
    who = ", ".join(f"{lead.name} <{lead.email}>" if lead.email else lead.name for lead in leads)
    lead = f"the project lead ({who})" if who else "the project lead"
    return (
        f"The permit of project {project} does not cover {dataset}. Ask {lead} to request"
        f" access: the data controller adds {dataset} to the project's permit once the"
        " access request is approved."
    )


@router.get("/api/bridge/access/{dataset}", responses=BRIDGE_RESPONSES)
def bridge_access(
    dataset: Annotated[str, Path(pattern=SLUG_PATTERN)], s: Db, me: Bridged
) -> DatasetAccessOut:
    """Whether the calling sandbox's project may use ``dataset``: what the sandbox mounts and
    what the permit grants (versions), the project's leads, how to obtain access and the
    project's open application that asks for the dataset (``application``, or null). Only
    the caller's own project is ever described."""
    mounted = [m.version for m in me.mounts if m.dataset == dataset]
    permitted = [p.version for p in me.permitted if p.dataset == dataset]
    state = "mounted" if mounted else "permitted" if permitted else "not_permitted"
    leads = _leads(s, me.project)
    return DatasetAccessOut(
        dataset=dataset,
        project=me.project,
        state=state,
        mounted=mounted,
        permitted=permitted,
        leads=leads,
        you_lead=any(lead.name == me.user for lead in leads),
        how=access_sentence(state, dataset, me.project, leads),
        application=pending_request(s, me.project, dataset),
    )


def pending_request(s: Session, project: str, dataset: str) -> AccessApplicationOut | None:
    """``project``'s open application that asks for ``dataset``, as its sandboxes see it."""
    app = ap.open_for_dataset(s, project, dataset)
    if app is None:
        return None
    fields = ap.summary(app)
    return AccessApplicationOut(**{k: fields[k] for k in AccessApplicationOut.model_fields})


# --- access requests: the lead applies for an amendment of the project's permit --------------


class AccessRequestIn(BaseModel):
    """A lead's request, from the catalogue browser, to add ``dataset`` to the permit of the
    sandbox's project: an amendment application (``governance/applications.py``)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(pattern=SLUG_PATTERN)
    public_interest: str
    methodology: str
    #: default: "Add <dataset> to project <project>"
    title: str | None = None


class BridgeApplicationOut(BaseModel):
    """One application of the sandbox's project, as its sandbox sees it (no opinions)."""

    id: int
    kind: str
    project: str
    applicant: str
    title: str
    state: str
    round: int
    datasets: list[str]
    submitted_at: str | None = None
    updated_at: str | None = None
    decision_reference: str | None = None
    permit: int | None = None


def application_out(app: Application) -> BridgeApplicationOut:
    return BridgeApplicationOut(**ap.summary(app), datasets=list(app.datasets))


@router.get("/api/bridge/applications", responses=BRIDGE_RESPONSES)
def bridge_applications(s: Db, me: Bridged) -> list[BridgeApplicationOut]:
    """The applications of the calling sandbox's project (newest first). Never another
    project's. (A dataset's open request comes with ``/api/bridge/access/{dataset}``.)"""
    actor = bridged_actor(s, me)
    return [application_out(a) for a in ap.visible(s, actor, project=me.project)]


@router.post("/api/bridge/applications", status_code=201, responses=BRIDGE_RESPONSES)
def bridge_request_access(body: AccessRequestIn, me: Bridged, inst: Inst) -> BridgeApplicationOut:
    """The calling user, a lead of the sandbox's project, applies for an amendment of the
    project's active permit that adds ``dataset`` (its current version): the committee gives
    its opinion, an administrator records the authority's decision, which amends the permit.
    Always for the caller's own project, as the caller. 403 (naming the leads) for a member
    who does not lead it, 409 when the permit already grants the dataset or another
    application of the project is open, 422 for an unknown dataset or empty text."""
    granted = sorted(p.version for p in me.permitted if p.dataset == body.dataset)
    if granted:
        raise ProjectConflict(
            f"the permit of project {me.project} already covers {body.dataset}"
            f" ({', '.join(granted)}): nothing to request"
        )
    with inst.transaction() as s:
        actor = bridged_actor(s, me)
        leads = _leads(s, me.project)
        if not any(lead.name == actor.name for lead in leads):
            who = ", ".join(lead.name for lead in leads) or "none named"
            raise HTTPException(
                403,
                f"only a lead of project {me.project} requests access to a dataset: ask the"
                f" project lead ({who})",
            )
        project = pj.get_project(s, me.project)
        title = (body.title or "").strip() or f"Add {body.dataset} to project {me.project}"
        app = ap.submit(
            s,
            ap.Draft(
                kind="amendment",
                project=me.project,
                title=title,
                purpose=project.purpose,
                public_interest=body.public_interest,
                methodology=body.methodology,
                datasets=(body.dataset,),
            ),
            actor=actor,
        )
        return application_out(app)


@router.get("/api/bridge/audit/code", responses=BRIDGE_RESPONSES)
def bridge_audit_code(s: Db, me: Bridged, q: audit.CodeFilters) -> CodeAuditOut:
    """The audited code of the calling sandbox's project (the JupyterLab code audit view), if
    the calling user may see it (a lead of the project, or an administrator: a reviewer is
    never a member, so never reaches it from a sandbox of the project); 403 with the reason
    otherwise. Never another project's."""
    actor = bridged_actor(s, me)
    refusal = audit.code_audit_refusal(s, me.project, actor.name, actor.role)
    if refusal is not None:
        raise HTTPException(403, refusal)
    return audit.code_page(s, me.project, q)


@router.get("/api/bridge/egress/checks")
def bridge_checks(me: Bridged, inst: Inst) -> em.ChecksOut:
    """The installation's disclosure-check thresholds (``airlock.toml``): what a submit
    applies, so that ``hdh egress check`` in a sandbox answers the same."""
    return em.ChecksOut(checks=load_settings(inst.data_dir).checks.to_dict())


@router.get("/api/bridge/egress/requests", response_model=list[em.RequestSummaryOut])
def bridge_list(
    s: Db, me: Bridged, state: Annotated[str | None, Query(max_length=32)] = None
) -> list[dict[str, Any]]:
    return manager.list_requests(s, actor=bridged_actor(s, me), state=state, project=me.project)


@router.post("/api/bridge/egress/requests", status_code=201, **egress.VIEW)
def bridge_create(body: em.BridgeRequestIn, me: Bridged, inst: Inst) -> dict[str, Any]:
    with inst.transaction() as s:
        return egress.new_request(inst, s, me.project, body.title, bridged_actor(s, me))


@router.get("/api/bridge/egress/requests/{request_id}", **egress.VIEW)
def bridge_get(request_id: int, s: Db, me: Bridged) -> dict[str, Any]:
    in_project(s, request_id, me)
    return egress.view(s, request_id, bridged_actor(s, me))


@router.post(
    "/api/bridge/egress/requests/{request_id}/files",
    status_code=201,
    response_model=em.FileOut,
    response_model_exclude_unset=True,
)
def bridge_add_file(
    request_id: int, body: em.FileIn, s: Db, me: Bridged, inst: Inst
) -> dict[str, Any]:
    in_project(s, request_id, me)
    who = bridged_actor(s, me)
    s.rollback()  # the lookups above are done; the step runs in its own transaction
    return egress.add_file(inst, request_id, body, who)


@router.post("/api/bridge/egress/requests/{request_id}/submit", **egress.VIEW)
def bridge_submit(
    request_id: int, s: Db, me: Bridged, cfg: Config, tasks: BackgroundTasks
) -> dict[str, Any]:
    in_project(s, request_id, me)
    who = bridged_actor(s, me)
    s.rollback()
    data_dir = cfg.opened().data_dir
    return egress.step(
        cfg,
        request_id,
        who,
        tasks,
        lambda t, w: manager.submit(t, data_dir, request_id, actor=w),
    )


@router.post("/api/bridge/egress/requests/{request_id}/withdraw", **egress.VIEW)
def bridge_withdraw(
    request_id: int,
    s: Db,
    me: Bridged,
    cfg: Config,
    tasks: BackgroundTasks,
    body: em.WithdrawIn | None = None,
) -> dict[str, Any]:
    in_project(s, request_id, me)
    who = bridged_actor(s, me)
    s.rollback()
    reason = (body or em.WithdrawIn()).reason
    return egress.step(
        cfg,
        request_id,
        who,
        tasks,
        lambda t, w: manager.withdraw(t, request_id, actor=w, reason=reason),
    )
