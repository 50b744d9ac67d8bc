"""Exactly-once release of approved airlock files to the outbox (a transactional outbox).

Owns the only code that writes under ``<data_dir>/outbox``. A release is three
kinds of step, each safe to repeat:

1. :func:`release` — in ONE store transaction, the approved request becomes
   ``releasing`` and gets one outbox row per approved output file, named
   ``<sha256>-<basename>`` (:func:`manager.start_release`). Until that commits
   nothing is released; once it has, the release will complete.
2. :func:`deliver` — for each row not done: verify the blob's sha256 while
   copying it to ``<outbox>/<request id>/tmp/<name>``, fsync, rename to
   ``<outbox>/<request id>/<name>``, fsync the folder, then mark the row done.
   A final file is only ever created by ``rename`` of a complete, verified,
   fsynced copy, so it is never partial; if it already exists with the right
   sha256 (a crash after the rename) the copy is skipped.
3. When every row is done the request becomes ``released`` (audited, the
   author notified), in one transaction with the last check.

A crash (``kill -9``) anywhere leaves either no ``releasing`` request (nothing
happened) or one whose steps :func:`recover` finishes: it is run by
``hdh egress recover`` and at control-plane start-up and removes stray
temporary copies. :func:`released_file` gives a project member the path of a
released file to download (the control plane serves it; never the sandbox), and
:func:`download_names` the readable name it downloads under: the file's own name,
or, when two released files share it, its workspace path joined by ``_``.

``STEP_HOOK`` is called with the name of each step (tests use it to kill the
process at every point); it is ``None`` in production.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyterlab_hdh.egress import manager, permissions
from jupyterlab_hdh.egress import states as st
from jupyterlab_hdh.egress.downloads import download_names
from jupyterlab_hdh.egress.errors import InvalidFile, NotFound, WrongState
from jupyterlab_hdh.egress.snapshot import blob_path, fsync_dir
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.governance.projects import Actor
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.store.models import EgressFile, EgressOutbox, EgressRequest

STEP_HOOK: Callable[[str], None] | None = None
CHUNK = 1 << 20


class ReleaseError(HdhError, RuntimeError):
    """A stored snapshot is missing or does not match its hash: the release cannot finish.

    The release stays pending for ``hdh egress recover``."""

    http_status = 500

    def detail(self) -> str:
        return f"release not completed: {self}"


def _step(name: str) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(name)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def request_dir(data_dir: DataDir, request_id: int) -> Path:
    return data_dir.outbox / str(int(request_id))


def _copy_one(data_dir: DataDir, row: EgressOutbox) -> None:
    """Make ``<outbox>/<request>/<name>`` a complete, verified copy of the blob (idempotent)."""
    folder = request_dir(data_dir, row.request_id)
    final = folder / row.name
    if final.is_file() and not final.is_symlink() and _sha256_file(final) == row.sha256:
        return  # copied and renamed before a crash
    tmp_dir = folder / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    blob = blob_path(data_dir.egress_blobs, row.sha256)
    digest = hashlib.sha256()
    try:
        src = open(blob, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise ReleaseError(f"the snapshot {row.sha256} of {row.path!r} is missing") from None
    # a private temporary name: two workers (a release and a recover) never share a copy
    tmp_fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix=f"{row.sha256[:16]}-")
    tmp = Path(tmp_name)
    with src, os.fdopen(tmp_fd, "wb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            _step("copying")
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != row.sha256:
        tmp.unlink()
        raise ReleaseError(f"the snapshot of {row.path!r} does not match its sha256 {row.sha256}")
    os.chmod(tmp, 0o440)
    _step("copied")
    os.replace(tmp, final)
    fsync_dir(folder)
    _step("renamed")


def deliver(hub: Any, request_id: int) -> bool:
    """Finish a ``releasing`` request: copy each outbox row, then mark it ``released``.

    Returns True when the request is released (now or already). Safe to run
    again after a crash at any point, and concurrently (each step re-checks
    under the request's lock).
    """
    data_dir: DataDir = hub.data_dir
    with hub.sessions() as s:
        req = s.get(EgressRequest, request_id)
        if req is None:
            raise NotFound(f"no egress request #{request_id}")
        if req.state == st.RELEASED:
            return True
        if req.state != st.RELEASING:
            raise WrongState(f"request #{request_id} is {req.state}, not releasing")
        pending = list(
            s.scalars(
                select(EgressOutbox)
                .where(EgressOutbox.request_id == request_id, EgressOutbox.done_at.is_(None))
                .order_by(EgressOutbox.id)
            )
        )
    for row in pending:
        _copy_one(data_dir, row)
        with hub.transaction() as s:
            fresh = s.get(EgressOutbox, row.id)
            if fresh is not None and fresh.done_at is None:
                fresh.done_at = datetime.now(UTC)
        _step("row_done")
    with hub.transaction() as s:
        req = manager._lock(s, request_id)
        if req.state == st.RELEASED:
            return True
        rows = list(s.scalars(select(EgressOutbox).where(EgressOutbox.request_id == request_id)))
        if any(r.done_at is None for r in rows):
            return False
        folder = request_dir(data_dir, request_id)
        missing = [r.name for r in rows if not (folder / r.name).is_file()]
        if missing:
            raise ReleaseError(f"released files are missing from {folder}: {missing}")
        manager._move(
            s,
            req,
            st.RELEASED,
            "system",
            {st.SYSTEM},
            files=[{"name": r.name, "sha256": r.sha256} for r in rows],
        )
        manager._notify(
            s,
            [req.author],
            req,
            "released",
            f"Egress request #{req.id} was released",
            f"The approved files of request #{req.id} ({req.title}) are ready to download.",
        )
    shutil.rmtree(request_dir(data_dir, request_id) / "tmp", ignore_errors=True)
    _step("released")
    return True


def release(hub: Any, request_id: int, *, actor: Actor) -> bool:
    """Release an approved request: the outbox rows in one transaction, then deliver."""
    with hub.transaction() as s:
        manager.start_release(s, request_id, actor=actor)
        _step("outbox_written")  # not committed yet: a crash here releases nothing
    _step("committed")
    return deliver(hub, request_id)


def recover(hub: Any) -> list[tuple[int, str]]:
    """Finish every ``releasing`` request, remove stray temporary copies and old orphan
    snapshots (:func:`remove_orphan_blobs`).

    Returns ``(request id, outcome)`` per request looked at.
    """
    data_dir: DataDir = hub.data_dir
    with hub.sessions() as s:
        stuck = list(
            s.scalars(
                select(EgressRequest.id)
                .where(EgressRequest.state == st.RELEASING)
                .order_by(EgressRequest.id)
            )
        )
    outcomes: list[tuple[int, str]] = []
    for request_id in stuck:
        try:
            done = deliver(hub, request_id)
            outcomes.append((request_id, "released" if done else "pending"))
        except (ReleaseError, OSError) as exc:
            outcomes.append((request_id, f"failed: {exc}"))
    if data_dir.outbox.is_dir():
        for tmp in data_dir.outbox.glob("*/tmp"):
            with hub.sessions() as s:
                req = (
                    s.get(EgressRequest, int(tmp.parent.name))
                    if tmp.parent.name.isdigit()
                    else None
                )
                state = req.state if req is not None else None
            if state != st.RELEASING:
                shutil.rmtree(tmp, ignore_errors=True)
    remove_orphan_blobs(hub)
    return outcomes


#: A snapshot younger than this may belong to a step still in progress (its row not committed).
ORPHAN_MIN_AGE_S = 3600.0


def remove_orphan_blobs(hub: Any, *, min_age_s: float = ORPHAN_MIN_AGE_S) -> list[str]:
    """Delete snapshots no request file refers to (a step refused after its copy, a file
    replaced or removed from a draft), and half-written ``.part-`` copies, once older than
    ``min_age_s``. Returns the names removed. Blobs of any request, released or not, stay."""
    blobs: Path = hub.data_dir.egress_blobs
    if not blobs.is_dir():
        return []
    with hub.sessions() as s:
        kept = set(s.scalars(select(EgressFile.sha256)))
    now = time.time()
    removed = []
    for entry in os.scandir(blobs):
        if entry.name in kept or not entry.is_file(follow_symlinks=False):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < min_age_s:
                continue
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed.append(entry.name)
    return sorted(removed)


def _outbox_rows(session: Session, request_id: int) -> list[tuple[EgressOutbox, str]]:
    """The outbox rows of a request in order, each with its download name."""
    rows = list(
        session.scalars(
            select(EgressOutbox)
            .where(EgressOutbox.request_id == request_id)
            .order_by(EgressOutbox.id)
        )
    )
    return list(zip(rows, download_names([r.path for r in rows]), strict=True))


def released_download(
    session: Session, data_dir: DataDir, request_id: int, name: str, *, actor: Actor
) -> tuple[Path, str]:
    """The path of released file ``name`` (its outbox name or its download name) of request
    ``request_id`` and the name it downloads under, for a project member."""
    req = manager.find(session, request_id)
    if req is None or not permissions.is_member(session, req, actor.name):
        raise NotFound(f"no released file {name!r} in egress request #{request_id}")
    if req.state != st.RELEASED:
        raise WrongState(f"request #{request_id} is {req.state}: nothing is released yet")
    rows = _outbox_rows(session, req.id) if isinstance(name, str) else []
    found = [(r, d) for r, d in rows if r.name == name and r.done_at is not None]
    found = found or [(r, d) for r, d in rows if d == name and r.done_at is not None]
    if not found:
        raise NotFound(f"no released file {name!r} in egress request #{request_id}")
    row, filename = found[0]
    path = request_dir(data_dir, req.id) / row.name
    if path.is_symlink() or not path.is_file():
        raise InvalidFile(f"the released file {name!r} is missing from the outbox")
    return path, filename


def released_file(
    session: Session, data_dir: DataDir, request_id: int, name: str, *, actor: Actor
) -> Path:
    """The path of released file ``name`` of request ``request_id``, for a project member."""
    return released_download(session, data_dir, request_id, name, actor=actor)[0]


def released_files(session: Session, request_id: int, *, actor: Actor) -> list[dict[str, Any]]:
    """The released files of a request, for a project member: ``name`` in the outbox (and in
    the download address), ``filename`` to save it under, workspace ``path``, ``sha256``."""
    req = manager.find(session, request_id)
    if req is None or not permissions.is_member(session, req, actor.name):
        raise NotFound(f"no egress request #{request_id}")
    if req.state != st.RELEASED:
        return []
    return [
        {"name": r.name, "filename": filename, "path": r.path, "sha256": r.sha256}
        for r, filename in _outbox_rows(session, req.id)
    ]
