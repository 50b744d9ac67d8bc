"""Host ownership of what a sandbox touches, when its supervisor is root.

Owns the two walks that let an unprivileged sandbox uid use its binds: the
project workspace is given to the project's uid (:func:`give_tree`), dataset
versions are made readable by the data group (:func:`share_with_group`).
Both walk with directory descriptors and never follow a symbolic link (a
workspace is written by sandboxes: a folder swapped for a link mid-walk is
skipped, not followed), and change only what differs, so they are cheap once done.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def give_tree(root: Path, uid: int, gid: int) -> int:
    """Make ``uid:gid`` own ``root`` and everything under it; return how many entries changed.

    Only walks when ``root`` itself is not theirs yet (a new workspace, or one
    written before sandboxes had their own uid). The top is changed last, so
    a walk cut short is done again next time.
    """
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"{root} is not a folder")
    if (st.st_uid, st.st_gid) == (uid, gid):
        return 0
    changed = 0
    for _, dirnames, filenames, dirfd in os.fwalk(root, topdown=False, follow_symlinks=False):
        for name in (*filenames, *dirnames):
            try:
                s = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                if (s.st_uid, s.st_gid) != (uid, gid):
                    os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
                    changed += 1
            except FileNotFoundError:
                continue  # removed meanwhile by a running sandbox of the same project
    os.chown(root, uid, gid, follow_symlinks=False)
    return changed + 1


def share_with_group(root: Path, gid: int) -> int:
    """Group ``gid`` may read ``root``'s tree (folders: r-x, files: r--); return changes."""
    changed = 0

    def fix(name: str | Path, dir_fd: int | None) -> None:
        nonlocal changed
        s = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(s.st_mode):
            return  # published datasets hold none; never follow one
        want = stat.S_IRGRP | (stat.S_IXGRP if stat.S_ISDIR(s.st_mode) else 0)
        if s.st_gid != gid:
            os.chown(name, -1, gid, dir_fd=dir_fd, follow_symlinks=False)
            changed += 1
        if s.st_mode & want != want:
            os.chmod(name, stat.S_IMODE(s.st_mode) | want, dir_fd=dir_fd)
            changed += 1

    fix(root, None)
    for _, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        for name in (*dirnames, *filenames):
            fix(name, dirfd)
    return changed
