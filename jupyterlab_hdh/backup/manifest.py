"""A backup folder's manifest: what a complete backup holds, and the proof it is intact.

Owns the life of a backup folder on disk. :func:`begin` puts an ``INCOMPLETE`` marker at
its top; the backup's files are written; :func:`finish` lists every file with its size and
SHA-256 in ``manifest.json``, written last and atomically (a temporary file, fsync,
``os.replace``, fsync of the folder) after every file was fsynced, then removes the marker.
A backup killed at any point is therefore either complete (a manifest, no marker) or
visibly incomplete (a marker, or no manifest). :func:`writing` wraps the three steps.

:func:`verify` refuses an incomplete folder and one whose files differ from the manifest,
naming every file missing, added or altered; the manifest carries its own SHA-256, so an
edit of the manifest itself is named too. Paths are relative, POSIX, sorted; links and
other non-plain files are never part of a backup.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from jupyterlab_hdh.backup.errors import BackupError

MANIFEST = "manifest.json"
INCOMPLETE = "INCOMPLETE"
FORMAT = "hdh-backup-manifest"
VERSION = 1
_CHUNK = 1 << 20
_TEMP_PREFIX = ".manifest.json."

#: ``progress(relative path, size)``: called for each file as it is hashed
Progress = Callable[[str, int], None]


class ManifestError(BackupError):
    """A backup folder cannot be written or verified (the message says why)."""


class IncompleteBackup(ManifestError):
    """The backup was interrupted (``INCOMPLETE`` marker) or has no manifest."""


class BackupAltered(ManifestError):
    """The backup's files are not those of its manifest: each one is named."""

    def __init__(
        self,
        folder: Path,
        missing: list[str],
        added: list[str],
        altered: list[str],
        manifest_altered: bool = False,
    ) -> None:
        self.folder = folder
        self.missing, self.added, self.altered = missing, added, altered
        self.manifest_altered = manifest_altered
        parts = []
        if manifest_altered:
            parts.append(f"{MANIFEST} itself was altered (its own SHA-256 does not match)")
        for what, names in (("missing", missing), ("added", added), ("altered", altered)):
            if names:
                parts.append(f"{what}: {', '.join(names)}")
        super().__init__(f"the backup in {folder} was tampered with or damaged: {'; '.join(parts)}")


@dataclass(frozen=True)
class Entry:
    """One file of a backup: its path relative to the backup folder, size and SHA-256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    files: tuple[Entry, ...]
    created_at: str
    extra: dict[str, Any] = field(default_factory=dict)
    #: the SHA-256 of the manifest's content, and what ``finish(sign=)`` made of it
    digest: str = ""
    signature: dict[str, Any] | None = None

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _body(files: list[dict[str, Any]], created_at: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "created_at": created_at,
        "extra": extra,
        "files": files,
    }


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def file_digest(path: Path, *, sync: bool = False) -> tuple[int, str]:
    """A file's size and SHA-256 (never through a link; ``sync``: fsynced too)."""
    digest, size = hashlib.sha256(), 0
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        if sync:
            os.fsync(f.fileno())
    return size, digest.hexdigest()


def _scan(folder: Path) -> tuple[list[str], list[str]]:
    """The backup's plain files (relative POSIX paths, sorted), and anything else found
    (links, sockets...), leaving out the manifest, its temporary files and the marker."""
    files, others = [], []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        base = Path(dirpath)
        for name in dirnames:
            if (base / name).is_symlink():
                others.append((base / name).relative_to(folder).as_posix())
        for name in filenames:
            path = base / name
            rel = path.relative_to(folder).as_posix()
            if base == folder and (name in (MANIFEST, INCOMPLETE) or name.startswith(_TEMP_PREFIX)):
                continue
            if path.is_symlink() or not path.is_file():
                others.append(rel)
            else:
                files.append(rel)
    return sorted(files), sorted(others)


def begin(folder: Path) -> Path:
    """Start a backup in ``folder`` (created, or empty): the ``INCOMPLETE`` marker first."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if any(folder.iterdir()):
        raise ManifestError(f"{folder} is not empty: a backup goes into a new or empty folder")
    marker = folder / INCOMPLETE
    with marker.open("w", encoding="utf-8") as out:
        out.write(
            "This backup was started but not finished: it is not a usable backup.\n"
            f"Started {datetime.now(UTC).isoformat(timespec='seconds')}.\n"
        )
        out.flush()
        os.fsync(out.fileno())
    _fsync_dir(folder)
    return folder


def finish(
    folder: Path,
    *,
    extra: dict[str, Any] | None = None,
    progress: Progress | None = None,
    sign: Callable[[str], dict[str, Any]] | None = None,
) -> Manifest:
    """Hash and fsync every file, write ``manifest.json`` atomically, then drop the marker.

    ``extra``: JSON facts the caller records in the manifest (e.g. the HDH version);
    ``sign``: makes the manifest's signature (a JSON object) from its digest, so that whoever
    rewrites files and manifest together is caught by whoever holds the key."""
    folder = Path(folder)
    if not (folder / INCOMPLETE).is_file():
        raise ManifestError(f"{folder} has no {INCOMPLETE} marker: begin() the backup first")
    files, others = _scan(folder)
    if others:
        raise ManifestError(f"{folder} holds links or special files: {', '.join(others)}")
    entries: list[dict[str, Any]] = []
    folders = {folder}
    for rel in files:
        size, sha = file_digest(folder / rel, sync=True)
        entries.append({"path": rel, "size": size, "sha256": sha})
        folders.add((folder / rel).parent)
        if progress is not None:
            progress(rel, size)
    for path in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        _fsync_dir(path)
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    body = _body(entries, created_at, dict(extra or {}))
    digest = _digest(body)
    document: dict[str, Any] = {**body, "sha256": digest}
    if sign is not None:
        document["signature"] = sign(digest)
    temp = folder / f"{_TEMP_PREFIX}{os.getpid()}.tmp"
    with temp.open("w", encoding="utf-8") as out:
        json.dump(document, out, ensure_ascii=False, indent=1)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, folder / MANIFEST)
    _fsync_dir(folder)
    (folder / INCOMPLETE).unlink()
    _fsync_dir(folder)
    return _manifest(body, digest, document.get("signature"))


@contextmanager
def writing(folder: Path, *, extra: dict[str, Any] | None = None) -> Iterator[Path]:
    """``with writing(out) as folder:`` write the backup's files; the manifest is written
    when the block ends without an error (with one, the folder stays marked incomplete)."""
    begin(folder)
    yield Path(folder)
    finish(folder, extra=extra)


def _manifest(body: dict[str, Any], digest: str, signature: Any = None) -> Manifest:
    return Manifest(
        tuple(Entry(f["path"], f["size"], f["sha256"]) for f in body["files"]),
        body["created_at"],
        body["extra"],
        digest,
        signature if isinstance(signature, dict) else None,
    )


def _safe(path: Any) -> bool:
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        return False
    pure = PurePosixPath(path)
    return (
        not pure.is_absolute()
        and pure.as_posix() == path
        and all(part not in ("", ".", "..") for part in pure.parts)
    )


def read(folder: Path) -> Manifest:
    """The manifest of a finished backup (IncompleteBackup or ManifestError otherwise),
    without checking the files: :func:`verify` does."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder} is not a folder")
    if (folder / INCOMPLETE).exists():
        raise IncompleteBackup(
            f"the backup in {folder} is incomplete (its {INCOMPLETE} marker is there: it was"
            " interrupted before its manifest was written); make a new backup"
        )
    path = folder / MANIFEST
    if not path.is_file() or path.is_symlink():
        raise IncompleteBackup(
            f"{folder} has no {MANIFEST}: it is an incomplete backup, or not an HDH backup"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BackupAltered(folder, [], [], [], manifest_altered=True) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ManifestError(f"{path} is not the manifest of an HDH backup")
    if document.get("version") != VERSION:
        raise ManifestError(
            f"{path} is of manifest version {document.get('version')!r}; this HDH reads {VERSION}"
        )
    body = {k: document.get(k) for k in ("format", "version", "created_at", "extra", "files")}
    if set(document) - {"signature"} != {*body, "sha256"} or document["sha256"] != _digest(body):
        raise BackupAltered(folder, [], [], [], manifest_altered=True)
    files = body["files"]
    valid = isinstance(files, list) and all(
        isinstance(f, dict)
        and set(f) == {"path", "size", "sha256"}
        and _safe(f["path"])
        and isinstance(f["size"], int)
        and isinstance(f["sha256"], str)
        for f in files
    )
    if not valid or not isinstance(body["created_at"], str) or not isinstance(body["extra"], dict):
        raise ManifestError(f"{path} is malformed")
    assert isinstance(files, list)
    paths = [f["path"] for f in files]
    if len(set(paths)) != len(paths) or MANIFEST in paths or INCOMPLETE in paths:
        raise ManifestError(f"{path} is malformed (a path listed twice, or a reserved name)")
    return _manifest(body, document["sha256"], document.get("signature"))


def verify(folder: Path, *, progress: Progress | None = None) -> Manifest:
    """The manifest of the backup in ``folder`` once every file matches it.

    Raises IncompleteBackup (interrupted, no manifest) or BackupAltered naming every file
    missing, added (links and special files included) or altered (size or SHA-256)."""
    folder = Path(folder)
    manifest = read(folder)
    files, others = _scan(folder)
    on_disk = set(files)
    listed = {e.path: e for e in manifest.files}
    missing = sorted(p for p in listed if p not in on_disk)
    added = sorted({*(p for p in on_disk if p not in listed), *others})
    altered = []
    for entry in manifest.files:
        if entry.path not in on_disk:
            continue
        path = folder / entry.path
        if path.stat().st_size != entry.size:
            altered.append(entry.path)
            continue
        size, sha = file_digest(path)
        if (size, sha) != (entry.size, entry.sha256):
            altered.append(entry.path)
        if progress is not None:
            progress(entry.path, size)
    if missing or added or altered:
        raise BackupAltered(folder, missing, added, altered)
    return manifest
