"""Provenance for reviewers: the code that produced each file of an egress request.

Owns :func:`provenance`, a JSON-able list built from the audit log, which the
guard writes before any code reaches a sandbox: the ``code.execute`` events of
the request's project up to the moment the file was snapshotted (nothing run
later can have produced it), newest first and capped at :data:`MAX_EXECUTIONS`;
the ``file.save`` events of notebooks of the project up to then (newest save
of each notebook, capped at :data:`MAX_NOTEBOOKS`); and the request's own
``code`` files. The file's mtime is shown too but never used as a bound: the
sandbox controls it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ScalarResult, select
from sqlalchemy.orm import Session

from jupyterlab_hdh.store.models import AuditEvent, EgressFile, EgressRequest
from jupyterlab_hdh.timestamps import iso_utc

MAX_EXECUTIONS = 200
MAX_NOTEBOOKS = 50
MAX_CODE_CHARS = 20_000


def _iso(dt: Any) -> str:
    return iso_utc(dt, "microseconds") or ""


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _project_events(
    session: Session, slug: str, action: str, kind: str, until: str, limit: int | None = None
) -> ScalarResult[AuditEvent]:
    """``action`` events on ``project:<slug>/<kind>:…`` up to ``until``, newest first."""
    query = (
        select(AuditEvent)
        .where(
            AuditEvent.action == action,
            AuditEvent.target.like(_like_prefix(f"project:{slug}/{kind}:"), escape="\\"),
            AuditEvent.ts <= until,
        )
        .order_by(AuditEvent.seq.desc())
    )
    return session.scalars(query if limit is None else query.limit(limit))


def provenance(
    session: Session,
    req: EgressRequest,
    f: EgressFile,
    *,
    max_executions: int = MAX_EXECUTIONS,
    max_notebooks: int = MAX_NOTEBOOKS,
) -> list[dict[str, Any]]:
    """The code that may have produced ``f``: executions, notebooks and code files."""
    slug = req.project.slug
    until = _iso(f.snapshot_at)
    out: list[dict[str, Any]] = [
        {
            "kind": "file",
            "path": f.path,
            "sha256": f.sha256,
            "mtime": _iso(f.mtime),
            "snapshot_at": until,
        }
    ]
    executions = _project_events(
        session, slug, "code.execute", "kernel", until, limit=max_executions
    )
    for ev in executions:
        details = json.loads(ev.details)
        code = str(details.get("code", ""))
        out.append(
            {
                "kind": "execution",
                "seq": ev.seq,
                "time": ev.ts,
                "user": ev.actor,
                "kernel_id": details.get("kernel_id"),
                "sha256": details.get("sha256"),
                "code": code[:MAX_CODE_CHARS],
                "truncated": len(code) > MAX_CODE_CHARS,
            }
        )
    saves = _project_events(session, slug, "file.save", "file", until)
    seen: set[str] = set()
    for ev in saves:
        details = json.loads(ev.details)
        path = str(details.get("path", ""))
        if not path.endswith(".ipynb") or path in seen:
            continue
        seen.add(path)
        out.append(
            {
                "kind": "notebook",
                "seq": ev.seq,
                "time": ev.ts,
                "user": ev.actor,
                "path": path,
                "sha256": details.get("sha256"),
            }
        )
        if len(seen) >= max_notebooks:
            break
    for code_file in req.files:
        if code_file.role == "code":
            out.append(
                {
                    "kind": "code_file",
                    "path": code_file.path,
                    "sha256": code_file.sha256,
                    "snapshot_at": _iso(code_file.snapshot_at),
                }
            )
    return out
