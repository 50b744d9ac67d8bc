"""Data controllers: ingestion of an extract from ``incoming/``, the opt-out register.

(No ``from __future__ import annotations``: FastAPI reads the dependency aliases.)
"""

from pathlib import Path

from fastapi import APIRouter, HTTPException

from jupyterlab_hdh import ingestion, linkage
from jupyterlab_hdh.api import models
from jupyterlab_hdh.api.deps import Controller, Inst
from jupyterlab_hdh.data import optout
from jupyterlab_hdh.governance import projects

router = APIRouter(tags=["data"])


@router.post("/api/datasets/{name}/versions", status_code=201)
def ingest(
    name: str, body: models.IngestRequest, user: Controller, inst: Inst
) -> models.VersionOut:
    incoming = inst.data_dir.incoming.resolve()
    source = (incoming / body.source).resolve()
    if not source.is_relative_to(incoming) or "\x00" in body.source:
        raise HTTPException(422, "source must be a folder inside the data directory's incoming/")
    desc = ingestion.DatasetDescription(
        title=body.title,
        description=body.description,
        population=body.population,
        synthetic=body.synthetic,
    )
    if body.controller:
        desc.controller = body.controller
    if body.contact:
        desc.contact = body.contact
    version = ingestion.ingest(
        inst, Path(source), name, actor=user.name, description=desc, identifiers=body.identifiers
    )
    return models.VersionOut(
        dataset=name,
        version=version.label,
        status=version.status,
        records=version.record.get("records"),
        individuals=version.record.get("individuals"),
        content_sha256=version.content_sha256,
        quality=version.quality.get("summary", {}),
    )


@router.post("/api/optout", status_code=201)
def add_optout(body: models.OptOutRequest, user: Controller, inst: Inst) -> models.OptOutOut:
    with inst.transaction() as s:
        reg_id, added = optout.add(s, inst.keys, body.identifier, actor=user.name)
    return models.OptOutOut(register_id=reg_id, added=added)


@router.post("/api/optout/reapply")
def reapply(user: Controller, inst: Inst, dataset: str | None = None) -> models.ReapplyOut:
    outcomes = ingestion.reapply_optout(inst, actor=user.name, dataset=dataset)
    with inst.transaction() as s:
        moved = projects.follow_optout_versions(s, actor=projects.Actor.of(user))
        linkage.follow(s, inst.data_dir, moved, actor=projects.Actor.of(user))
    return models.ReapplyOut(
        outcomes=dict(outcomes),
        permits=[models.PermitMoveOut(permit=o, new_permit=n, outcome=w) for o, n, w in moved],
    )
