"""Administrators: the audit log, its events and the check of its hash chain.

(No ``from __future__ import annotations``: FastAPI reads the dependency aliases.)
"""

import json
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from jupyterlab_hdh.api import models
from jupyterlab_hdh.api.deps import Admin, Db
from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.store.models import AuditEvent

router = APIRouter(tags=["audit"])


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
