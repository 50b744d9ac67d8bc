"""A backup folder's manifest: written last, atomically; an interrupted backup (a marker, or
no manifest, or a real SIGKILL) is refused as incomplete; a file altered, removed or added,
and the manifest itself altered, are each named."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyterlab_hdh.backup import manifest as mf

REPO = Path(__file__).resolve().parents[2]


def _backup(folder: Path) -> mf.Manifest:
    with mf.writing(folder, extra={"hdh": "test"}) as out:
        assert (out / mf.INCOMPLETE).is_file()
        (out / "store").mkdir()
        (out / "store" / "users.jsonl").write_text('{"id":1}\n')
        (out / "store" / "schema.json").write_text("{}\n")
        (out / "datasets" / "demo" / "v1").mkdir(parents=True)
        (out / "datasets" / "demo" / "v1" / "T.parquet").write_bytes(os.urandom(3000))
        (out / "empty.txt").write_bytes(b"")
    return mf.read(folder)


def test_a_finished_backup_verifies(tmp_path: Path) -> None:
    written = _backup(tmp_path / "b")
    assert not (tmp_path / "b" / mf.INCOMPLETE).exists()
    assert [e.path for e in written.files] == [
        "datasets/demo/v1/T.parquet",
        "empty.txt",
        "store/schema.json",
        "store/users.jsonl",
    ]
    users = {e.path: e for e in written.files}["store/users.jsonl"]
    assert users.size == 9
    assert users.sha256 == hashlib.sha256(b'{"id":1}\n').hexdigest()
    assert written.extra == {"hdh": "test"} and written.size == 3000 + 9 + 3
    seen: list[str] = []
    assert mf.verify(tmp_path / "b", progress=lambda path, size: seen.append(path)) == written
    assert seen == [e.path for e in written.files]
    assert [p.name for p in (tmp_path / "b").iterdir() if p.name.startswith(".")] == []


def test_a_file_altered_removed_or_added_is_named(tmp_path: Path) -> None:
    _backup(tmp_path / "b")
    folder = tmp_path / "b"
    users = folder / "store" / "users.jsonl"
    users.write_text('{"id":2}\n')  # same size, other content
    with pytest.raises(mf.BackupAltered, match=r"altered: store/users\.jsonl$") as err:
        mf.verify(folder)
    assert err.value.altered == ["store/users.jsonl"] and not err.value.missing
    (folder / "empty.txt").unlink()
    (folder / "store" / "extra.jsonl").write_text("{}\n")
    (folder / "datasets" / "demo" / "v1" / "T.parquet").write_bytes(b"short")
    (folder / "link").symlink_to(folder / "store")
    with pytest.raises(mf.BackupAltered) as err:
        mf.verify(folder)
    assert err.value.missing == ["empty.txt"]
    assert err.value.added == ["link", "store/extra.jsonl"]
    assert err.value.altered == ["datasets/demo/v1/T.parquet", "store/users.jsonl"]
    message = str(err.value)
    assert "\n" not in message
    for name in ("empty.txt", "store/extra.jsonl", "link", "T.parquet", "users.jsonl"):
        assert name in message


def _rewrite(folder: Path, change) -> None:  # type: ignore[no-untyped-def]
    path = folder / mf.MANIFEST
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_an_altered_manifest_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    _backup(folder)
    original = (folder / mf.MANIFEST).read_text()

    def drop_a_file(document):  # type: ignore[no-untyped-def]
        document["files"] = document["files"][1:]  # hide a file that was added

    for change in (
        drop_a_file,
        lambda d: d["files"][0].update(sha256="0" * 64),
        lambda d: d.update(created_at="2000-01-01T00:00:00+00:00"),
    ):
        _rewrite(folder, change)
        with pytest.raises(mf.BackupAltered, match="manifest.json itself was altered") as err:
            mf.verify(folder)
        assert err.value.manifest_altered
        (folder / mf.MANIFEST).write_text(original)
    (folder / mf.MANIFEST).write_text(original[:-20])  # truncated
    with pytest.raises(mf.BackupAltered, match="manifest.json itself was altered"):
        mf.verify(folder)
    (folder / mf.MANIFEST).write_text(original)
    mf.verify(folder)


def test_a_manifest_naming_a_path_outside_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    _backup(folder)
    for bad in ("../outside", "/etc/passwd", "store/../x", "./x", "a//b"):

        def outside(document, bad=bad):  # type: ignore[no-untyped-def]
            document["files"][0]["path"] = bad
            body = {k: document[k] for k in ("format", "version", "created_at", "extra", "files")}
            document["sha256"] = mf._digest(body)  # a consistent, malicious manifest

        original = (folder / mf.MANIFEST).read_text()
        _rewrite(folder, outside)
        with pytest.raises(mf.ManifestError, match="malformed"):
            mf.verify(folder)
        (folder / mf.MANIFEST).write_text(original)


def test_an_interrupted_backup_is_incomplete(tmp_path: Path) -> None:
    # files written, no manifest: the marker is still there
    folder = tmp_path / "b"
    mf.begin(folder)
    (folder / "users.jsonl").write_text("{}\n")
    with pytest.raises(mf.IncompleteBackup, match="incomplete.*INCOMPLETE marker"):
        mf.verify(folder)
    # killed while the manifest was being written: its temporary file, still the marker
    (folder / ".manifest.json.123.tmp").write_text('{"format": "hdh-backup-manifest"')
    with pytest.raises(mf.IncompleteBackup):
        mf.verify(folder)
    # an error inside writing(): no manifest, the marker stays
    with pytest.raises(RuntimeError), mf.writing(tmp_path / "c") as out:
        (out / "x").write_text("x")
        raise RuntimeError("disk full")
    with pytest.raises(mf.IncompleteBackup):
        mf.verify(tmp_path / "c")
    # the marker removed by hand, still no manifest
    (folder / mf.INCOMPLETE).unlink()
    with pytest.raises(mf.IncompleteBackup, match="no manifest.json"):
        mf.verify(folder)
    with pytest.raises(mf.ManifestError, match="not a folder"):
        mf.verify(tmp_path / "nothing")


CHILD = """
import pathlib, sys, time
from jupyterlab_hdh.backup import manifest as mf
folder = pathlib.Path(sys.argv[1])
mf.begin(folder)
for i in range(1000):
    (folder / f"part-{i}.bin").write_bytes(bytes(4096))
    if i == 10:
        (folder.parent / "reached").write_text("10")
    time.sleep(0.01)
mf.finish(folder)
"""


def test_a_backup_killed_by_sigkill_is_refused_as_incomplete(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(folder)], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "reached").exists():
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    with pytest.raises(mf.IncompleteBackup):
        mf.verify(folder)


def test_a_backup_goes_into_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old").write_text("x")
    with pytest.raises(mf.ManifestError, match="not empty"):
        mf.begin(tmp_path / "used")
    with pytest.raises(mf.ManifestError, match="begin"):
        mf.finish(tmp_path / "used")
    mf.begin(tmp_path / "new")
    (tmp_path / "new" / "link").symlink_to("/etc/passwd")
    with pytest.raises(mf.ManifestError, match="links or special files: link"):
        mf.finish(tmp_path / "new")
