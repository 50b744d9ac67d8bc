"""Host ownership walks for sandboxes under a root supervisor (sandbox/ownership.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from jupyterlab_hdh.sandbox.ownership import give_tree, share_with_group

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")

UID, GID = 200077, 200077


def owner(p: Path) -> tuple[int, int]:
    st = os.lstat(p)
    return st.st_uid, st.st_gid


def test_give_tree_changes_everything_below_but_never_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "host.txt").write_text("host file")
    ws = tmp_path / "ws"
    (ws / "sub" / "deeper").mkdir(parents=True)
    (ws / "a.ipynb").write_text("{}")
    (ws / "sub" / "deeper" / "b.csv").write_text("x")
    (ws / "link-dir").symlink_to(outside)
    (ws / "sub" / "link-file").symlink_to(outside / "host.txt")

    changed = give_tree(ws, UID, GID)

    for p in (ws, ws / "a.ipynb", ws / "sub", ws / "sub" / "deeper" / "b.csv", ws / "link-dir"):
        assert owner(p) == (UID, GID), p
    assert owner(ws / "sub" / "link-file") == (UID, GID)  # the link itself
    assert owner(outside) == (0, 0) and owner(outside / "host.txt") == (0, 0)
    assert changed == 7
    assert give_tree(ws, UID, GID) == 0  # once done, nothing is walked again


def test_give_tree_does_the_top_last(tmp_path: Path) -> None:
    """A walk cut short leaves the top unchanged, so the next start walks again."""
    ws = tmp_path / "ws"
    (ws / "d").mkdir(parents=True)
    (ws / "d" / "f").write_text("x")
    os.chown(ws / "d" / "f", UID, GID)  # as if a first walk stopped there
    assert give_tree(ws, UID, GID) == 2  # d and the top; f was already theirs
    assert owner(ws / "d") == (UID, GID)


def test_give_tree_refuses_a_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(NotADirectoryError):
        give_tree(f, UID, GID)


def test_share_with_group_makes_a_dataset_group_readable_only(tmp_path: Path) -> None:
    ds = tmp_path / "ds" / "v1"
    ds.mkdir(parents=True)
    (ds / "t.parquet").write_bytes(b"PAR1")
    os.chmod(ds / "t.parquet", 0o600)
    os.chmod(ds, 0o700)
    secret = tmp_path / "secret"
    secret.write_text("key")
    os.chmod(secret, 0o600)
    (ds / "stray-link").symlink_to(secret)

    assert share_with_group(ds, GID) > 0

    f = os.lstat(ds / "t.parquet")
    assert (f.st_gid, stat.S_IMODE(f.st_mode)) == (GID, 0o640)
    d = os.lstat(ds)
    assert (d.st_gid, stat.S_IMODE(d.st_mode)) == (GID, 0o750)
    s = os.lstat(secret)
    assert (s.st_gid, stat.S_IMODE(s.st_mode)) == (0, 0o600)  # never through a link
    assert share_with_group(ds, GID) == 0
