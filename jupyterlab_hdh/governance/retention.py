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
(:func:`verify`). Pure domain code: files and the store, no web framework.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tomllib
from collections.abc import Iterator
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

CONFIG_FILE = "governance.toml"
ARCHIVE_DIR = ".archive"  # under workspaces/: no project slug starts with a dot
DEFAULT_DAYS = 365
WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


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


def _walk(root: Path) -> Iterator[tuple[str, int, os.stat_result]]:
    """``(relative path, dir_fd, lstat)`` of everything under ``root``, never through a link.

    The stat is only a hint: a running sandbox may swap an entry meanwhile, so whatever is
    read or changed is opened again with :func:`_open_entry` and checked on its descriptor."""
    for top, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        rel = os.path.relpath(top, root)
        for name in sorted((*dirnames, *filenames)):
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield (name if rel == "." else f"{rel}/{name}"), dirfd, st


#: open what is there now, never through a link (ELOOP), never waiting on a FIFO
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _open_entry(name: str | Path, dir_fd: int | None) -> int | None:
    """A descriptor of the entry itself, or None when it is a link, a socket, or gone."""
    try:
        return os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
    except OSError:  # ELOOP: a link (perhaps swapped in meanwhile); ENXIO: a socket; gone
        return None


def manifest(root: Path) -> tuple[list[dict[str, Any]], str]:
    """Every regular file's relative path, size and SHA-256 (links by their target's text),
    and the digest of the whole list."""
    entries: list[dict[str, Any]] = []
    for rel, dirfd, st in _walk(root):
        name = os.path.basename(rel)
        if stat.S_ISLNK(st.st_mode):
            entries.append({"path": rel, "link": os.readlink(name, dir_fd=dirfd)})
            continue
        fd = _open_entry(name, dirfd)
        if fd is None:
            continue
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            os.close(fd)
            continue  # a folder, or a FIFO: nothing to read
        size = opened.st_size
        with os.fdopen(fd, "rb", buffering=0) as fh:
            digest = hashlib.sha256()
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        entries.append({"path": rel, "size": size, "sha256": digest.hexdigest()})
    entries.sort(key=lambda e: e["path"])
    text = "\n".join(json.dumps(e, sort_keys=True) for e in entries)
    return entries, hashlib.sha256(text.encode()).hexdigest()


def _set_writable(root: Path, writable: bool) -> None:
    """Owner write added back, or every write bit taken away, on ``root`` and everything
    under it, each changed through its own descriptor: a link swapped in by a sandbox is
    never followed to a file outside the workspace."""

    def fix(name: str | Path, dir_fd: int | None) -> None:
        fd = _open_entry(name, dir_fd)
        if fd is None:
            return
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            want = (mode | stat.S_IWUSR) if writable else (mode & ~WRITE)
            if want != mode:
                os.fchmod(fd, want)
        finally:
            os.close(fd)

    if not writable:  # the top first: nothing new is made while the rest is walked
        fix(root, None)
    for rel, dirfd, _st in _walk(root):
        fix(os.path.basename(rel), dirfd)
    if writable:
        fix(root, None)


def _audit(session: Session, actor: str, action: str, slug: str, **details: Any) -> None:
    record(
        session,
        actor=actor,
        action=action,
        target=f"workspace:{slug}",
        details={"project": slug, **details},
    )


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
    at = pj.moment(now)
    days = (settings or RetentionSettings.load(data_dir)).days
    root = data_dir.workspace(slug)
    if not root.is_dir() or root.is_symlink():
        raise RetentionError(f"project {slug!r} has no workspace folder to archive")
    _set_writable(root, False)
    entries, digest = manifest(root)
    marker = {
        "project": slug,
        "archived_at": iso_utc(at, "seconds"),
        "until": iso_utc(at + timedelta(days=days), "seconds"),
        "reason": reason,
        "files": sum(1 for e in entries if "sha256" in e),
        "bytes": sum(e.get("size", 0) for e in entries),
        "manifest_sha256": digest,
    }
    folder = data_dir.workspaces / ARCHIVE_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / f"{slug}.manifest.jsonl").write_text(
        "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
    )
    partial = folder / f".{slug}.json.partial"
    partial.write_text(json.dumps(marker, indent=2) + "\n")
    _audit(session, actor, "workspace.archive", slug, **marker)
    partial.replace(_marker(data_dir, slug))
    return marker


def reopen(session: Session, data_dir: DataDir, slug: str, *, actor: str, reason: str) -> bool:
    """Make an archived workspace writable again (a new permit); False if it was not."""
    marker = archive_of(data_dir, slug)
    if marker is None:
        return False
    root = data_dir.workspace(slug)
    if root.is_dir() and not root.is_symlink():
        _set_writable(root, True)
    _audit(
        session, actor, "workspace.reopen", slug, reason=reason, archived_at=marker["archived_at"]
    )
    # the control plane's sweep and a starting sandbox may both reopen it
    _marker(data_dir, slug).unlink(missing_ok=True)
    (data_dir.workspaces / ARCHIVE_DIR / f"{slug}.manifest.jsonl").unlink(missing_ok=True)
    return True


def verify(data_dir: DataDir, slug: str) -> list[str]:
    """What changed in an archived workspace since it was archived (empty: nothing)."""
    marker = archive_of(data_dir, slug)
    if marker is None:
        raise RetentionError(f"the workspace of {slug!r} is not archived")
    kept = {
        e["path"]: e
        for e in map(
            json.loads,
            (data_dir.workspaces / ARCHIVE_DIR / f"{slug}.manifest.jsonl").read_text().splitlines(),
        )
    }
    now = {e["path"]: e for e in manifest(data_dir.workspace(slug))[0]}
    changes = [f"removed: {p}" for p in sorted(set(kept) - set(now))]
    changes += [f"added: {p}" for p in sorted(set(now) - set(kept))]
    changes += [f"changed: {p}" for p in sorted(set(kept) & set(now)) if kept[p] != now[p]]
    return changes


def _active(session: Session, project: Any, at: datetime) -> bool:
    return any(pj.status(p, at) == "active" for p in pj.permits(session, project))


def sweep(
    session: Session,
    data_dir: DataDir,
    *,
    actor: str = "hdh:retention",
    now: datetime | None = None,
    settings: RetentionSettings | None = None,
) -> list[Outcome]:
    """Archive the workspaces of projects with no active permit any more, reopen those with
    one again, and list the archives past their retention. Idempotent."""
    at = pj.moment(now)
    settings = settings or RetentionSettings.load(data_dir)
    outcomes = []
    for project in pj.projects_of(session):
        marker = archive_of(data_dir, project.slug)
        active = _active(session, project, at)
        if marker is None and not active and project.permits:
            if not data_dir.workspace(project.slug).is_dir():
                continue
            last = max(project.permits, key=pj.ended_at)
            reason = f"permit #{last.id} {pj.status(last, at)}"
            done = archive(
                session, data_dir, project.slug, actor=actor, reason=reason, now=at,
                settings=settings,
            )  # fmt: skip
            outcomes.append(Outcome(project.slug, "archived", f"until {done['until']}: {reason}"))
        elif marker is not None and active:
            reopen(session, data_dir, project.slug, actor=actor, reason="an active permit again")
            outcomes.append(Outcome(project.slug, "reopened", "an active permit again"))
        elif marker is not None and utc(datetime.fromisoformat(marker["until"])) <= at:
            outcomes.append(Outcome(project.slug, "due", f"kept until {marker['until']}"))
    return outcomes


def purge(
    session: Session, data_dir: DataDir, slug: str, *, actor: str, now: datetime | None = None
) -> dict[str, Any]:
    """Record the purge of an archived workspace whose retention period is over; the caller
    commits, then :func:`remove` deletes it (a failed commit deletes nothing)."""
    at = pj.moment(now)
    marker = archive_of(data_dir, slug)
    if marker is None:
        raise RetentionError(f"the workspace of {slug!r} is not archived: nothing to purge")
    if utc(datetime.fromisoformat(marker["until"])) > at:
        raise RetentionError(
            f"the workspace of {slug!r} is kept until {marker['until']}: not purged before"
        )
    _audit(session, actor, "workspace.purge", slug, **marker)
    return marker


def remove(data_dir: DataDir, slug: str) -> None:
    """Delete a purged workspace and its archive marker (after :func:`purge` committed)."""
    root = data_dir.workspace(slug)
    if root.is_dir() and not root.is_symlink():
        _set_writable(root, True)
        shutil.rmtree(root)
    (data_dir.workspaces / ARCHIVE_DIR / f"{slug}.manifest.jsonl").unlink(missing_ok=True)
    _marker(data_dir, slug).unlink(missing_ok=True)
