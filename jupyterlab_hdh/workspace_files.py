"""A folder tree made read-only (or writable again) and fingerprinted, never through a link.

Owns the file side of archiving a project's workspace (``governance.retention``): every
file and folder's write bits taken away (:func:`set_writable`), and a manifest of every
regular file's size and SHA-256 with the digest of the whole list (:func:`manifest`).
Whatever is read or changed is opened again ``O_NOFOLLOW|O_NONBLOCK`` and handled through
its own descriptor: a sandbox still stopping may swap an entry for a link or a FIFO, and
must never get the caller (root on one machine) to change a file outside the tree or hang.

Standard library only: it runs in the control plane and, on Kubernetes, in the Job that
archives a project's workspace claim (:mod:`jupyterlab_hdh.k8s.workspace_job`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH

#: open what is there now, never through a link (ELOOP), never waiting on a FIFO
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def walk(root: Path, skip: Collection[str] = ()) -> Iterator[tuple[str, int, os.stat_result]]:
    """``(relative path, dir_fd, lstat)`` of everything under ``root``, never through a link,
    leaving out the top-level names in ``skip`` (and what they hold).

    The stat is only a hint: a running sandbox may swap an entry meanwhile, so whatever is
    read or changed is opened again with :func:`open_entry` and checked on its descriptor."""
    for top, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        rel = os.path.relpath(top, root)
        if rel == "." and skip:
            dirnames[:] = [d for d in dirnames if d not in skip]
            filenames = [f for f in filenames if f not in skip]
        for name in sorted((*dirnames, *filenames)):
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield (name if rel == "." else f"{rel}/{name}"), dirfd, st


def open_entry(name: str | Path, dir_fd: int | None) -> int | None:
    """A descriptor of the entry itself, or None when it is a link, a socket, or gone."""
    try:
        return os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
    except OSError:  # ELOOP: a link (perhaps swapped in meanwhile); ENXIO: a socket; gone
        return None


def digest_of(entries: Iterable[dict[str, Any]]) -> str:
    """The SHA-256 of a manifest's entries, in their canonical form (one sorted JSON object
    per line, joined by newlines)."""
    text = "\n".join(json.dumps(e, sort_keys=True) for e in entries)
    return hashlib.sha256(text.encode()).hexdigest()


def manifest(root: Path, skip: Collection[str] = ()) -> tuple[list[dict[str, Any]], str]:
    """Every regular file's relative path, size and SHA-256 (links by their target's text),
    sorted by path, and :func:`digest_of` the list."""
    entries: list[dict[str, Any]] = []
    for rel, dirfd, st in walk(root, skip):
        name = os.path.basename(rel)
        if stat.S_ISLNK(st.st_mode):
            entries.append({"path": rel, "link": os.readlink(name, dir_fd=dirfd)})
            continue
        fd = open_entry(name, dirfd)
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
    return entries, digest_of(entries)


def totals(entries: list[dict[str, Any]], digest: str) -> dict[str, Any]:
    """What a manifest says in short: how many files, how many bytes, and its digest."""
    return {
        "files": sum(1 for e in entries if "sha256" in e),
        "bytes": sum(e.get("size", 0) for e in entries),
        "manifest_sha256": digest,
    }


def differences(kept: Iterable[dict[str, Any]], now: Iterable[dict[str, Any]]) -> list[str]:
    """What changed between two manifests: ``removed: p``, ``added: p``, ``changed: p``."""
    before = {e["path"]: e for e in kept}
    after = {e["path"]: e for e in now}
    changes = [f"removed: {p}" for p in sorted(set(before) - set(after))]
    changes += [f"added: {p}" for p in sorted(set(after) - set(before))]
    changes += [f"changed: {p}" for p in sorted(set(before) & set(after)) if before[p] != after[p]]
    return changes


def _fix_mode(
    name: str | Path, dir_fd: int | None, writable: bool, refused: list[str] | None, rel: str
) -> None:
    fd = open_entry(name, dir_fd)
    if fd is None:
        return
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        want = (mode | stat.S_IWUSR) if writable else (mode & ~WRITE)
        if want != mode:
            os.fchmod(fd, want)
    except PermissionError:
        if refused is None:
            raise
        refused.append(rel)  # not the caller's to change (only root may)
    finally:
        os.close(fd)


def set_writable(
    root: Path,
    writable: bool,
    skip: Collection[str] = (),
    refused: list[str] | None = None,
) -> None:
    """Owner write added back, or every write bit taken away, on ``root`` and everything
    under it (but the top-level names in ``skip``), each changed through its own
    descriptor: a link swapped in by a sandbox is never followed out of the tree.

    ``refused``: collect there the entries the caller may not change (it is not their
    owner) instead of stopping at the first."""
    if not writable:  # the top first: nothing new is made while the rest is walked
        _fix_mode(root, None, writable, refused, ".")
    for rel, dirfd, _st in walk(root, skip):
        _fix_mode(os.path.basename(rel), dirfd, writable, refused, rel)
    if writable:
        _fix_mode(root, None, writable, refused, ".")


def let_owner_read(root: Path) -> None:
    """Give the owner read (and search, on folders) back wherever they took it away, so
    that :func:`manifest` misses nothing when it runs as the owner rather than as root.

    For the Kubernetes Job, which runs as the project's uid on a claim no sandbox mounts
    any more (so nothing swaps entries meanwhile); a link is never changed nor followed."""
    need = {True: stat.S_IRUSR | stat.S_IXUSR, False: stat.S_IRUSR}
    st = os.stat(root, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode) and st.st_mode & need[True] != need[True]:
        with contextlib.suppress(PermissionError):
            os.chmod(root, stat.S_IMODE(st.st_mode) | need[True])
    for _top, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        for name in (*dirnames, *filenames):  # a folder before fwalk enters it
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if (
                not (is_dir or stat.S_ISREG(st.st_mode))
                or st.st_mode & need[is_dir] == need[is_dir]
            ):
                continue
            # by name: its owner cannot open it to fchmod it; just checked not to be a link
            with contextlib.suppress(PermissionError):  # not the caller's: left as it is
                os.chmod(name, stat.S_IMODE(st.st_mode) | need[is_dir], dir_fd=dirfd)
