"""Workspaces of projects whose permit ended: archived read-only for the retention period.

Owns what happens to a project's workspace (``<data dir>/workspaces/<slug>``) when no permit
of the project is active any more (expired or revoked; its sandboxes are stopped by the
hub's and the guard's re-checks): :func:`sweep` **archives** it, every file and folder
made read-only (never through a symbolic link), with a manifest of every file's size and
SHA-256 and a marker ``workspaces/.archive/<slug>.json`` saying until when it is kept
(:class:`RetentionSettings`, ``<data dir>/governance.toml``, ``[retention] days``). A new
permit (a renewal) **reopens** it (owner write back), at the next sweep or when a
sandbox of the project starts. After the retention period the archive is **due**:
:func:`purge` deletes it, on an operator's command only (``hdh workspace purge``).

Every archive, reopening and purge is audited (``workspace.archive``, ``workspace.reopen``,
``workspace.purge``) with the manifest's digest, so a changed archive is detectable
(:func:`verify`). The files are handled by :mod:`jupyterlab_hdh.workspace_files`.

On Kubernetes the workspace is a claim the control plane cannot mount: the same
:func:`steps` say what to do, a Job in the project's namespace does it
(:mod:`jupyterlab_hdh.k8s.workspaces`), and :func:`keep` / :func:`release` record it; its
marker names the claim (:func:`on_claim`), and each side leaves the other's archives alone.
Pure domain code: files and the store, no web framework.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.timestamps import iso_utc, utc
from jupyterlab_hdh.workspace_files import differences, manifest, set_writable, totals

CONFIG_FILE = "governance.toml"
ARCHIVE_DIR = ".archive"  # under workspaces/: no project slug starts with a dot
DEFAULT_DAYS = 365


class RetentionError(HdhError, ValueError):
    """A bad retention setting, or a workspace that cannot be archived, reopened or purged."""


@dataclass(frozen=True)
class RetentionSettings:
    days: int = DEFAULT_DAYS

    @classmethod
    def load(cls, data_dir: DataDir) -> RetentionSettings:
        path = data_dir.root / CONFIG_FILE
        if not path.exists():
            return cls()
        try:
            conf = tomllib.loads(path.read_text(encoding="utf-8")).get("retention", {})
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RetentionError(f"{path}: {exc}") from None
        unknown = set(conf) - {"days"}
        if unknown:
            raise RetentionError(f"{path}: unknown key [retention] {sorted(unknown)[0]!r}")
        days = conf.get("days", DEFAULT_DAYS)
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 36600:
            raise RetentionError(f"{path}: [retention] days must be a whole number 0..36600")
        return cls(days)


@dataclass(frozen=True)
class Outcome:
    project: str
    action: str  # archived | reopened | due
    detail: str


def _marker(data_dir: DataDir, slug: str) -> Path:
    return data_dir.workspaces / ARCHIVE_DIR / f"{slug}.json"


def archive_of(data_dir: DataDir, slug: str) -> dict[str, Any] | None:
    """The archive marker of ``slug``'s workspace, or None when it is not archived."""
    path = _marker(data_dir, slug)
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def _audit(session: Session, actor: str, action: str, slug: str, **details: Any) -> None:
    record(
        session,
        actor=actor,
        action=action,
        target=f"workspace:{slug}",
        details={"project": slug, **details},
    )


#: the archive of a workspace claim on Kubernetes says so in its marker (``"claim"``): its
#: files are reached only through a Job in the project's namespace (``k8s.workspaces``)
CLAIM = "claim"


def on_claim(marker: dict[str, Any]) -> bool:
    """Whether an archive marker is of a Kubernetes workspace claim, not a local folder."""
    return CLAIM in marker


def _refuse_claim(marker: dict[str, Any], slug: str, what: str) -> None:
    if on_claim(marker):
        raise RetentionError(
            f"the workspace of {slug!r} is the Kubernetes claim {marker[CLAIM]}:"
            f" `hdh k8s workspace {what} {slug}` {what}s it"
        )


def keep(
    session: Session,
    data_dir: DataDir,
    slug: str,
    *,
    summary: dict[str, Any],
    actor: str,
    reason: str,
    now: datetime | None = None,
    settings: RetentionSettings | None = None,
    entries: list[dict[str, Any]] | None = None,
    claim: str | None = None,
) -> dict[str, Any]:
    """Record that ``slug``'s workspace was made read-only, with ``summary`` of its manifest
    (:func:`~jupyterlab_hdh.workspace_files.totals`: files, bytes, digest, and anything
    else to say): audited, and marked kept until now + the retention. ``entries``: the
    manifest itself, kept beside the marker (a local folder); ``claim``: a Kubernetes
    claim, whose manifest stays in the claim (only the summary is kept here)."""
    at = pj.moment(now)
    days = (settings or RetentionSettings.load(data_dir)).days
    marker: dict[str, Any] = {
        "project": slug,
        "archived_at": iso_utc(at, "seconds"),
        "until": iso_utc(at + timedelta(days=days), "seconds"),
        "reason": reason,
        **summary,
    }
    if claim is not None:
        marker[CLAIM] = claim
    folder = data_dir.workspaces / ARCHIVE_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if entries is not None:
        (folder / f"{slug}.manifest.jsonl").write_text(
            "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
        )
    partial = folder / f".{slug}.json.partial"
    partial.write_text(json.dumps(marker, indent=2) + "\n")
    _audit(session, actor, "workspace.archive", slug, **marker)
    partial.replace(_marker(data_dir, slug))
    return marker


def archive(
    session: Session,
    data_dir: DataDir,
    slug: str,
    *,
    actor: str,
    reason: str,
    now: datetime | None = None,
    settings: RetentionSettings | None = None,
) -> dict[str, Any]:
    """Make ``slug``'s workspace read-only and mark it kept until now + the retention."""
    root = data_dir.workspace(slug)
    if not root.is_dir() or root.is_symlink():
        raise RetentionError(f"project {slug!r} has no workspace folder to archive")
    set_writable(root, False)
    entries, digest = manifest(root)
    return keep(
        session, data_dir, slug, summary=totals(entries, digest), actor=actor, reason=reason,
        now=now, settings=settings, entries=entries,
    )  # fmt: skip


def release(
    session: Session, data_dir: DataDir, slug: str, *, actor: str, reason: str
) -> dict[str, Any] | None:
    """Record that an archived workspace is writable again (a new permit): audited, marker
    and manifest dropped. The marker it had, or None when it was not archived."""
    marker = archive_of(data_dir, slug)
    if marker is None:
        return None
    _audit(
        session, actor, "workspace.reopen", slug, reason=reason, archived_at=marker["archived_at"]
    )
    # the control plane's sweep and a starting sandbox may both reopen it
    _marker(data_dir, slug).unlink(missing_ok=True)
    (data_dir.workspaces / ARCHIVE_DIR / f"{slug}.manifest.jsonl").unlink(missing_ok=True)
    return marker


def reopen(session: Session, data_dir: DataDir, slug: str, *, actor: str, reason: str) -> bool:
    """Make an archived workspace writable again (a new permit); False if it was not."""
    marker = archive_of(data_dir, slug)
    if marker is None:
        return False
    _refuse_claim(marker, slug, "reopen")
    root = data_dir.workspace(slug)
    if root.is_dir() and not root.is_symlink():
        set_writable(root, True)
    return release(session, data_dir, slug, actor=actor, reason=reason) is not None


def kept_manifest(data_dir: DataDir, slug: str) -> list[dict[str, Any]]:
    """The manifest recorded when ``slug``'s (local) workspace was archived."""
    path = data_dir.workspaces / ARCHIVE_DIR / f"{slug}.manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def verify(data_dir: DataDir, slug: str) -> list[str]:
    """What changed in an archived workspace since it was archived (empty: nothing)."""
    marker = archive_of(data_dir, slug)
    if marker is None:
        raise RetentionError(f"the workspace of {slug!r} is not archived")
    _refuse_claim(marker, slug, "verify")
    return differences(kept_manifest(data_dir, slug), manifest(data_dir.workspace(slug))[0])


def _active(session: Session, project: Any, at: datetime) -> bool:
    return any(pj.status(p, at) == "active" for p in pj.permits(session, project))


@dataclass(frozen=True)
class Step:
    """What a sweep has to do for one project: ``archive`` (no active permit any more),
    ``reopen`` (an active permit again) or nothing but say it is ``due`` (past retention)."""

    project: str
    project_id: int
    action: str
    reason: str


def steps(
    session: Session, data_dir: DataDir, *, claims: bool, now: datetime | None = None
) -> list[Step]:
    """What to do to the workspaces of the projects: local folders (``claims=False``: the
    control plane's sweep) or Kubernetes claims (``claims=True``: ``k8s.workspaces``). Each
    side leaves the other's archives alone; the caller checks the workspace exists."""
    at = pj.moment(now)
    out = []
    for project in pj.projects_of(session):
        marker = archive_of(data_dir, project.slug)
        if marker is not None and on_claim(marker) != claims:
            continue
        active = _active(session, project, at)
        if marker is None and not active and project.permits:
            last = max(project.permits, key=pj.ended_at)
            reason = f"permit #{last.id} {pj.status(last, at)}"
            out.append(Step(project.slug, project.id, "archive", reason))
        elif marker is not None and active:
            out.append(Step(project.slug, project.id, "reopen", "an active permit again"))
        elif marker is not None and utc(datetime.fromisoformat(marker["until"])) <= at:
            out.append(Step(project.slug, project.id, "due", f"kept until {marker['until']}"))
    return out


def sweep(
    session: Session,
    data_dir: DataDir,
    *,
    actor: str = "hdh:retention",
    now: datetime | None = None,
    settings: RetentionSettings | None = None,
) -> list[Outcome]:
    """Archive the local workspaces of projects with no active permit any more, reopen
    those with one again, and list the archives past their retention. Idempotent."""
    at = pj.moment(now)
    settings = settings or RetentionSettings.load(data_dir)
    outcomes = []
    for step in steps(session, data_dir, claims=False, now=at):
        if step.action == "archive":
            if not data_dir.workspace(step.project).is_dir():
                continue
            done = archive(
                session, data_dir, step.project, actor=actor, reason=step.reason, now=at,
                settings=settings,
            )  # fmt: skip
            outcomes.append(
                Outcome(step.project, "archived", f"until {done['until']}: {step.reason}")
            )
        elif step.action == "reopen":
            reopen(session, data_dir, step.project, actor=actor, reason=step.reason)
            outcomes.append(Outcome(step.project, "reopened", step.reason))
        else:
            outcomes.append(Outcome(step.project, "due", step.reason))
    return outcomes


def purge(
    session: Session,
    data_dir: DataDir,
    slug: str,
    *,
    actor: str,
    now: datetime | None = None,
    claim: bool = False,
) -> dict[str, Any]:
    """Record the purge of an archived workspace whose retention period is over; the caller
    commits, then deletes it (:func:`remove`, or the claim on Kubernetes) and
    :func:`forget`s it (a failed commit deletes nothing). ``claim``: the archive is of a
    Kubernetes claim (and must be; a local one must not)."""
    at = pj.moment(now)
    marker = archive_of(data_dir, slug)
    if marker is None:
        raise RetentionError(f"the workspace of {slug!r} is not archived: nothing to purge")
    if not claim:
        _refuse_claim(marker, slug, "purge")
    elif not on_claim(marker):
        raise RetentionError(
            f"the workspace of {slug!r} is a folder of the data directory, not a Kubernetes"
            f" claim: `hdh workspace purge {slug}` purges it"
        )
    if utc(datetime.fromisoformat(marker["until"])) > at:
        raise RetentionError(
            f"the workspace of {slug!r} is kept until {marker['until']}: not purged before"
        )
    _audit(session, actor, "workspace.purge", slug, **marker)
    return marker


def forget(data_dir: DataDir, slug: str) -> None:
    """Drop the archive marker and manifest of a purged workspace."""
    (data_dir.workspaces / ARCHIVE_DIR / f"{slug}.manifest.jsonl").unlink(missing_ok=True)
    _marker(data_dir, slug).unlink(missing_ok=True)


def remove(data_dir: DataDir, slug: str) -> None:
    """Delete a purged local workspace and its archive marker (after :func:`purge`
    committed)."""
    root = data_dir.workspace(slug)
    if root.is_dir() and not root.is_symlink():
        set_writable(root, True)
        shutil.rmtree(root)
    forget(data_dir, slug)
