"""The public register: who uses health data, for what, since when, and what came out.

Owns what the platform publishes without login (issue 14, item 3), as plain data that the
register's pages, its JSON and ``hdh register export`` all render: every project that was
granted data or applied for it, with its holder (the project's lead), purpose, datasets,
status, dates, the authority's decisions and the titles of the outputs released from it;
for each dataset the projects that use or used it; the applications under review; the
latest signed audit checkpoint and the public key that verifies it; and who to write to
(:class:`RegisterSettings`, ``<data dir>/register.toml``) for the opt-out page.

Nothing here names a person of the data, a file, a comment or an opinion's author: only
what a register of processing publishes. Pure domain code: no web framework.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyterlab_hdh.audit import checkpoint as cp
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.applications import OPEN_STATES
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.store.models import (
    Application,
    Dataset,
    DatasetVersion,
    EgressRequest,
    Permit,
    Project,
)
from jupyterlab_hdh.timestamps import iso_utc

FORMAT = "hdh-register/1"
CONFIG_FILE = "register.toml"
#: the released state of an export request (``egress.states.RELEASED``: a layer above)
RELEASED = "released"


class RegisterConfigError(HdhError, ValueError):
    """``register.toml`` is unusable (the message names the key)."""


@dataclass(frozen=True)
class RegisterSettings:
    """Who publishes the register and how a person exercises their rights."""

    publisher: str = ""  # empty: the pages say "the data controller of this installation"
    contact: str = ""  # e-mail or postal address for opt-out requests
    dpo: str = ""  # the data protection officer's contact
    website: str = ""

    @classmethod
    def load(cls, data_dir: DataDir) -> RegisterSettings:
        path = data_dir.root / CONFIG_FILE
        if not path.exists():
            return cls()
        try:
            conf = tomllib.loads(path.read_text(encoding="utf-8")).get("register", {})
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RegisterConfigError(f"{path}: {exc}") from None
        known = set(cls.__dataclass_fields__)
        for key, value in conf.items():
            if key not in known:
                raise RegisterConfigError(
                    f"{path}: unknown key [register] {key!r} (known: {', '.join(sorted(known))})"
                )
            if not isinstance(value, str):
                raise RegisterConfigError(f"{path}: [register] {key} must be text")
        return cls(**conf)


def _iso(dt: datetime | None) -> str | None:
    return iso_utc(dt, "seconds")


def _spec(version: Any) -> str:
    return f"{version.dataset.name}/{version.label}"


def _project_status(permits: list[Permit], now: datetime) -> str:
    """``active``, ``ended`` (the last permit expired), ``revoked`` or ``no_permit``."""
    if not permits:
        return "no_permit"
    states = [pj.status(p, now) for p in permits]
    if "active" in states:
        return "active"
    return "revoked" if states[-1] == "revoked" else "ended"


def _leads(project: Project) -> list[str]:
    return [m.user.name for m in project.members if m.role == "lead"]


def _released(session: Session, project: Project) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(EgressRequest)
        .where(EgressRequest.project_id == project.id, EgressRequest.state == RELEASED)
        .order_by(EgressRequest.id)
    )
    return [{"title": r.title, "released_at": _iso(r.updated_at)} for r in rows]


def _decisions(apps: list[Application]) -> list[dict[str, Any]]:
    return [
        {
            "application": a.id,
            "kind": a.kind,
            "decision": a.decision,
            "reference": a.decision_reference,
            "decided_at": _iso(a.decided_at),
        }
        for a in apps
        if a.decision is not None
    ]


def _project_entry(session: Session, project: Project, now: datetime) -> dict[str, Any]:
    permits = pj.permits(session, project)
    apps = list(
        session.scalars(
            select(Application)
            .where(Application.project_slug == project.slug)
            .order_by(Application.id)
        )
    )
    datasets = sorted({_spec(v) for p in permits for v in p.dataset_versions})
    first = permits[0] if permits else None
    ends = max((pj.ended_at(p) for p in permits), default=None)
    return {
        "slug": project.slug,
        "title": project.title,
        "purpose": project.purpose,
        "holder": _leads(project),
        "status": _project_status(permits, now),
        "datasets": datasets,
        "compute_profile": permits[-1].compute_profile if permits else None,
        "created_at": _iso(project.created_at),
        "first_permit_at": _iso(first.issued_at) if first else None,
        "ends_at": _iso(ends),
        "permits": [
            {
                "id": p.id,
                "status": pj.status(p, now),
                "issued_at": _iso(p.issued_at),
                "expires_at": _iso(p.expires_at),
                "revoked_at": _iso(p.revoked_at),
                "datasets": sorted(_spec(v) for v in p.dataset_versions),
            }
            for p in permits
        ],
        "decisions": _decisions(apps),
        "released_outputs": _released(session, project),
    }


def _under_review(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Application)
        .where(Application.state.in_(OPEN_STATES), Application.kind == "new")
        .order_by(Application.id)
    )
    return [
        {
            "application": a.id,
            "project": a.project_slug,
            "title": a.title,
            "purpose": a.purpose,
            "holder": [a.applicant],
            "datasets": list(a.datasets),
            "submitted_at": _iso(a.submitted_at),
        }
        for a in rows
    ]


def _dataset_entries(session: Session, projects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each dataset, titled by its current version's record (else its newest), and the
    projects using it. Two queries whatever the number of versions: the public page is
    served to anyone, and a version's record carries its whole data dictionary."""
    shown: dict[str, tuple[int, str | None]] = {}  # name -> (version id, current label)
    for name, vid, number, state in session.execute(
        select(Dataset.name, DatasetVersion.id, DatasetVersion.number, DatasetVersion.status)
        .join(DatasetVersion)
        .order_by(Dataset.name, DatasetVersion.number)
    ):
        if state == "current" or shown.get(name, (0, None))[1] is None:
            shown[name] = (vid, f"v{number}" if state == "current" else None)
    wanted = [vid for vid, _ in shown.values()]
    records: dict[int, dict[str, Any]] = {
        vid: record
        for vid, record in session.execute(
            select(DatasetVersion.id, DatasetVersion.record).where(DatasetVersion.id.in_(wanted))
        )
    }
    out = []
    for name, (vid, current) in shown.items():
        record = records.get(vid) or {}
        publisher = record.get("publisher") or {}
        users = [
            {
                "slug": p["slug"],
                "status": p["status"],
                "versions": [d for d in p["datasets"] if d.split("/")[0] == name],
            }
            for p in projects
            if any(d.split("/")[0] == name for d in p["datasets"])
        ]
        out.append(
            {
                "name": name,
                "title": record.get("title") or name,
                "publisher": publisher.get("name") if isinstance(publisher, dict) else None,
                "current_version": current,
                "projects": users,
            }
        )
    return out


def latest_checkpoint(data_dir: DataDir) -> dict[str, Any] | None:
    """The newest kept checkpoint (``hdh audit checkpoint``), or None."""
    path = cp.latest_kept(data_dir.root)
    return None if path is None else cp.parse_checkpoint(path.read_text(), str(path))


def public_key(data_dir: DataDir) -> str | None:
    """The PEM public key of the audit checkpoints, or None before the first checkpoint."""
    try:
        key, _ = cp.signing_key(data_dir.keys)
    except cp.CheckpointError:
        return None
    return cp.public_key_pem(key.public_key())


def snapshot(session: Session, data_dir: DataDir, now: datetime | None = None) -> dict[str, Any]:
    """The whole register at ``now``: what its pages, its JSON and its export show."""
    at = pj.moment(now)
    projects = [
        _project_entry(session, project, at)
        for project in pj.projects_of(session)
        if project.permits
        or session.scalar(select(Application.id).where(Application.project_slug == project.slug))
    ]
    return {
        "format": FORMAT,
        "generated_at": _iso(at),
        "publisher": asdict(RegisterSettings.load(data_dir)),
        "projects": projects,
        "under_review": _under_review(session),
        "datasets": _dataset_entries(session, projects),
        "audit": {"checkpoint": latest_checkpoint(data_dir), "public_key": public_key(data_dir)},
    }


def project_entry(register: dict[str, Any], slug: str) -> dict[str, Any] | None:
    return next((p for p in register["projects"] if p["slug"] == slug), None)


def dataset_entry(register: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((d for d in register["datasets"] if d["name"] == name), None)


def to_json(register: dict[str, Any]) -> str:
    return json.dumps(register, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def write_json(register: dict[str, Any], path: Path) -> None:
    """Write atomically (a reader never sees half a register)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(to_json(register), encoding="utf-8")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
