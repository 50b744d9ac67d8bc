"""Safe copies of workspace files into the airlock's immutable, content-addressed storage.

Owns :func:`snapshot`: it reads one file of a project workspace, which the
sandbox (untrusted) writes, and stores its bytes as
``<data_dir>/egress/blobs/<sha256>`` (read-only) so that later edits in the
workspace never change what is reviewed and released.

Defences, each refused with :class:`InvalidFile` or :class:`LimitExceeded`
before anything is stored:

* the path is relative, NUL-free, at most :data:`MAX_PATH_CHARS` characters
  and 255 bytes per component, has no empty, ``.`` or ``..`` component and no
  control or bidirectional-override characters (names shown to reviewers);
* every component is opened with ``O_NOFOLLOW`` relative to the directory
  before it (an ``openat`` walk from the workspace's own descriptor), so no
  symbolic link, at any depth, is followed: the file is inside the workspace
  when it is opened, whatever the sandbox renames concurrently;
* the last component is opened ``O_NONBLOCK`` (a FIFO never blocks) and must
  be a regular file by ``fstat`` of the open descriptor (no FIFO, device,
  socket or directory);
* at most ``limits.max_file_bytes`` are read (a file growing while it is
  copied is refused too); the bytes are hashed as they are copied to a
  temporary file, fsynced, made read-only, then renamed into place.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from jupyterlab_hdh.egress.errors import InvalidFile, LimitExceeded

MAX_PATH_CHARS = 1024
CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Size and count limits of the airlock (per file and per request)."""

    max_file_bytes: int = 100 * 1024 * 1024
    max_request_bytes: int = 500 * 1024 * 1024
    max_files: int = 50


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Snapshot:
    """A stored copy: where its bytes are, their hash and size, and the file's mtime."""

    path: str  # the normalised workspace-relative path
    sha256: str
    size: int
    mtime: datetime
    blob: Path


def check_path(path: str) -> tuple[str, ...]:
    """The components of a workspace-relative path, or InvalidFile saying what is wrong."""
    if not isinstance(path, str) or not path:
        raise InvalidFile("the file path must be a non-empty string")
    if "\x00" in path:
        raise InvalidFile("the file path contains a NUL character")
    if len(path) > MAX_PATH_CHARS:
        raise InvalidFile(f"the file path is longer than {MAX_PATH_CHARS} characters")
    if path.startswith("/"):
        raise InvalidFile(f"{path!r} is absolute: give a path relative to the project workspace")
    for ch in path:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise InvalidFile(
                f"the file path contains the control or invisible character U+{ord(ch):04X}"
            )
    parts = tuple(path.split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidFile(
                f"{path!r} has an empty, '.' or '..' component: give a plain relative path"
            )
        try:
            encoded = part.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidFile("the file path is not valid Unicode") from None
        if len(encoded) > 255:
            raise InvalidFile(f"a component of {path!r} is longer than 255 bytes")
    return parts


def _open_dir(name: str, dir_fd: int | None, shown: str) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        if dir_fd is None:
            raise InvalidFile("the project workspace does not exist yet") from None
        raise InvalidFile(f"{shown!r} does not exist in the project workspace") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise InvalidFile(
                f"{shown!r} is not a folder of the workspace (a symbolic link or a file):"
                " only real folders are followed"
            ) from None
        raise InvalidFile(f"cannot open {shown!r}: {exc.strerror}") from None


def _open_file(name: str, dir_fd: int, shown: str) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        # refuse special files before opening them (opening a device can have effects);
        # the fstat below re-checks the descriptor actually opened
        if not stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                raise InvalidFile(f"{shown!r} is a symbolic link: only regular files")
            flags |= os.O_PATH
        fd = os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise InvalidFile(f"{shown!r} does not exist in the project workspace") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidFile(f"{shown!r} is a symbolic link: only regular files") from None
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO without writer on some systems
            raise InvalidFile(f"{shown!r} is not a regular file") from None
        raise InvalidFile(f"cannot open {shown!r}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = (
            "a folder"
            if stat.S_ISDIR(st.st_mode)
            else "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
        raise InvalidFile(f"{shown!r} is {kind}: only regular files can leave the workspace")
    return fd


def open_in_workspace(workspace: Path, path: str) -> int:
    """An fd opened for reading on the regular file ``path`` inside ``workspace``, no link
    followed at any depth (the caller closes it)."""
    parts = check_path(path)
    dir_fd = _open_dir(str(workspace), None, "the project workspace")
    try:
        for i, part in enumerate(parts[:-1]):
            nxt = _open_dir(part, dir_fd, "/".join(parts[: i + 1]))
            os.close(dir_fd)
            dir_fd = nxt
        fd = _open_file(parts[-1], dir_fd, path)
    finally:
        os.close(dir_fd)
    os.set_blocking(fd, True)
    return fd


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def snapshot(
    workspace: Path, path: str, blobs: Path, *, max_bytes: int = DEFAULT_LIMITS.max_file_bytes
) -> Snapshot:
    """Copy ``workspace/path`` into ``blobs/<sha256>`` (read-only) and describe the copy."""
    fd = open_in_workspace(workspace, path)
    try:
        st = os.fstat(fd)
        if st.st_size > max_bytes:
            raise LimitExceeded(
                f"{path!r} is {st.st_size} bytes, over the limit of {max_bytes} bytes per file"
            )
        blobs.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        blobs.mkdir(exist_ok=True, mode=0o700)
        digest = hashlib.sha256()
        size = 0
        tmp_fd, tmp_name = tempfile.mkstemp(dir=blobs, prefix=".part-")
        try:
            with os.fdopen(tmp_fd, "wb") as out:
                while True:
                    chunk = os.read(fd, CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_bytes:
                        raise LimitExceeded(
                            f"{path!r} grew over the limit of {max_bytes} bytes per file"
                            " while it was copied"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp_name, 0o444)
            sha = digest.hexdigest()
            final = blobs / sha
            if final.exists() and final.stat().st_size == size:
                os.unlink(tmp_name)  # the same content is stored already:
                os.utime(final)  # fresh again, so the orphan sweep leaves it to this step
            else:
                os.replace(tmp_name, final)
                fsync_dir(blobs)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
    finally:
        os.close(fd)
    return Snapshot(
        path="/".join(check_path(path)),
        sha256=sha,
        size=size,
        mtime=datetime.fromtimestamp(st.st_mtime, UTC),
        blob=final,
    )


def blob_path(blobs: Path, sha256: str) -> Path:
    """Where the blob of ``sha256`` is stored (the name is checked: 64 hex digits)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise InvalidFile(f"not a sha256: {sha256!r}")
    return blobs / sha256


#: Output figures whose metadata is stripped when they are added (by name; the bytes decide).
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg")


def strip_figure(snap: Snapshot, blobs: Path) -> tuple[Snapshot, list[str]]:
    """The snapshot of an output figure without its metadata (EXIF, text chunks, trailing
    bytes…), stored as a blob of its own, and what was removed; ``snap`` itself when the file
    is not a figure by name, cannot be decoded (the checks then fail it), or has nothing to
    strip. The workspace file is never changed."""
    if PurePosixPath(snap.path).suffix.lower() not in FIGURE_SUFFIXES:
        return snap, []
    from hdh.disclosure import CheckError, strip_metadata

    with tempfile.TemporaryDirectory(dir=blobs, prefix=".strip-") as tmp:
        clean = Path(tmp) / "clean"
        try:
            removed = strip_metadata(snap.blob, clean)
        except CheckError:
            return snap, []
        if not removed:
            return snap, []
        digest = hashlib.sha256(clean.read_bytes()).hexdigest()
        final = blobs / digest
        if final.exists():
            os.utime(final)
        else:
            with open(clean, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(clean, 0o444)
            os.replace(clean, final)
            fsync_dir(blobs)
    return replace(snap, sha256=digest, size=final.stat().st_size, blob=final), removed
