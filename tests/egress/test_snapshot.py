"""Snapshots of workspace files: hostile entries are refused, accepted ones are frozen copies."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
from pathlib import Path

import pytest

from jupyterlab_hdh.egress.errors import InvalidFile, LimitExceeded
from jupyterlab_hdh.egress.snapshot import check_path, snapshot


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "workspaces" / "study"
    workspace.mkdir(parents=True)
    (tmp_path / "workspaces" / "other").mkdir()
    (tmp_path / "workspaces" / "other" / "secret.csv").write_text("other project's data\n")
    return workspace


@pytest.fixture
def blobs(tmp_path: Path) -> Path:
    return tmp_path / "egress" / "blobs"


def _blob_names(blobs: Path) -> list[str]:
    return sorted(p.name for p in blobs.iterdir()) if blobs.exists() else []


def test_a_file_is_copied_read_only_under_its_sha256(ws: Path, blobs: Path) -> None:
    (ws / "out").mkdir()
    data = b"group,count\na,12\n"
    (ws / "out" / "t.csv").write_bytes(data)
    snap = snapshot(ws, "out/t.csv", blobs)
    assert snap.sha256 == hashlib.sha256(data).hexdigest()
    assert snap.size == len(data) and snap.path == "out/t.csv"
    assert snap.blob == blobs / snap.sha256 and snap.blob.read_bytes() == data
    assert stat.S_IMODE(snap.blob.stat().st_mode) == 0o444
    # a later edit in the workspace does not change the stored copy
    (ws / "out" / "t.csv").write_bytes(b"group,count\na,1\n")
    assert snap.blob.read_bytes() == data
    assert _blob_names(blobs) == [snap.sha256]  # no temporary file left behind


@pytest.mark.parametrize(
    "path",
    [
        "../other/secret.csv",
        "out/../../other/secret.csv",
        "/etc/passwd",
        "a//b.csv",
        "./t.csv",
        "t.csv/",
        "",
        "t\x00.csv",
        "t\u202ecsv.exe",  # right-to-left override: a name that lies to the reviewer
        "t\n.csv",
        "x" * 256,
        "a/" * 600 + "b",
    ],
)
def test_bad_paths_are_refused_before_anything_is_read(ws: Path, blobs: Path, path: str) -> None:
    with pytest.raises(InvalidFile):
        snapshot(ws, path, blobs)
    assert _blob_names(blobs) == []


def test_unicode_names_are_accepted(ws: Path, blobs: Path) -> None:
    (ws / "résultats_é.csv").write_text("a,b\n")
    assert snapshot(ws, "résultats_é.csv", blobs).path == "résultats_é.csv"
    assert check_path("données/表.csv") == ("données", "表.csv")


def test_a_symlink_to_etc_passwd_is_refused(ws: Path, blobs: Path) -> None:
    (ws / "passwd.csv").symlink_to("/etc/passwd")
    with pytest.raises(InvalidFile, match="symbolic link"):
        snapshot(ws, "passwd.csv", blobs)
    assert _blob_names(blobs) == []


def test_a_symlink_to_another_projects_workspace_is_refused(ws: Path, blobs: Path) -> None:
    (ws / "theirs.csv").symlink_to(ws.parent / "other" / "secret.csv")
    (ws / "theirs").symlink_to(ws.parent / "other")
    with pytest.raises(InvalidFile, match="symbolic link"):
        snapshot(ws, "theirs.csv", blobs)
    with pytest.raises(InvalidFile, match="not a folder"):
        snapshot(ws, "theirs/secret.csv", blobs)
    assert _blob_names(blobs) == []


def test_a_symlinked_parent_directory_is_refused(ws: Path, blobs: Path) -> None:
    (ws / "real").mkdir()
    (ws / "real" / "t.csv").write_text("a\n")
    (ws / "linked").symlink_to(ws / "real")  # even pointing inside the workspace
    with pytest.raises(InvalidFile, match="not a folder"):
        snapshot(ws, "linked/t.csv", blobs)
    assert snapshot(ws, "real/t.csv", blobs).path == "real/t.csv"


def test_a_symlinked_workspace_is_refused(tmp_path: Path, ws: Path, blobs: Path) -> None:
    (ws / "t.csv").write_text("a\n")
    link = tmp_path / "workspaces" / "alias"
    link.symlink_to(ws)
    with pytest.raises(InvalidFile):
        snapshot(link, "t.csv", blobs)


def test_a_fifo_is_refused_without_blocking(ws: Path, blobs: Path) -> None:
    os.mkfifo(ws / "pipe.csv")  # no writer: opening it for reading would block
    with pytest.raises(InvalidFile, match="FIFO"):
        snapshot(ws, "pipe.csv", blobs)


def test_a_socket_and_a_folder_are_refused(ws: Path, blobs: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(ws / "s.csv"))
        with pytest.raises(InvalidFile, match="socket"):
            snapshot(ws, "s.csv", blobs)
    finally:
        sock.close()
    (ws / "d.csv").mkdir()
    with pytest.raises(InvalidFile, match="folder"):
        snapshot(ws, "d.csv", blobs)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_a_device_is_refused(ws: Path, blobs: Path) -> None:
    os.mknod(ws / "zero.csv", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
    with pytest.raises(InvalidFile, match="device"):
        snapshot(ws, "zero.csv", blobs)


def test_a_missing_file_is_a_clear_error(ws: Path, blobs: Path) -> None:
    with pytest.raises(InvalidFile, match="does not exist"):
        snapshot(ws, "nope.csv", blobs)
    with pytest.raises(InvalidFile, match="does not exist"):
        snapshot(ws, "nowhere/nope.csv", blobs)


def test_a_file_over_the_size_limit_is_refused(ws: Path, blobs: Path) -> None:
    with open(ws / "huge.csv", "wb") as fh:
        fh.truncate(10 * 1024 * 1024 + 1)  # sparse: big without using the disk
    with pytest.raises(LimitExceeded, match="over the limit"):
        snapshot(ws, "huge.csv", blobs, max_bytes=10 * 1024 * 1024)
    assert _blob_names(blobs) == []
    (ws / "ok.csv").write_bytes(b"x" * 100)
    assert snapshot(ws, "ok.csv", blobs, max_bytes=100).size == 100


def test_the_same_content_is_stored_once(ws: Path, blobs: Path) -> None:
    (ws / "a.csv").write_text("same\n")
    (ws / "b.csv").write_text("same\n")
    assert snapshot(ws, "a.csv", blobs).sha256 == snapshot(ws, "b.csv", blobs).sha256
    assert len(_blob_names(blobs)) == 1


def test_swapping_a_folder_for_a_symlink_during_snapshots_never_leaks(
    ws: Path, blobs: Path
) -> None:
    """The sandbox renames a folder and puts a symlink to another project in its place, over
    and over, while snapshots run: each snapshot is the real file or refused, never the other."""
    import threading
    import time

    (ws / "out").mkdir()
    (ws / "out" / "t.csv").write_text("safe\n")
    (ws.parent / "other" / "t.csv").write_text("SECRET\n")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            os.rename(ws / "out", ws / "real")
            os.symlink(ws.parent / "other", ws / "out")
            time.sleep(0.0002)
            os.unlink(ws / "out")
            os.rename(ws / "real", ws / "out")
            time.sleep(0.0002)

    flipper = threading.Thread(target=swap)
    flipper.start()
    outcomes = {"copied": 0, "refused": 0}
    try:
        deadline = time.monotonic() + 10
        while min(outcomes.values()) < 5 and time.monotonic() < deadline:
            try:
                snap = snapshot(ws, "out/t.csv", blobs)
            except InvalidFile:
                outcomes["refused"] += 1
            else:
                assert snap.blob.read_text() == "safe\n"
                outcomes["copied"] += 1
    finally:
        stop.set()
        flipper.join()
    assert outcomes["copied"] > 0 and outcomes["refused"] > 0  # both cases were exercised
    assert "SECRET" not in "".join(p.read_text() for p in blobs.iterdir())
