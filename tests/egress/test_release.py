"""Exactly-once release: a real child process is killed (SIGKILL) at every step of a release,
then recovery yields exactly one complete release or none, never a partial file."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.egress import manager as m
from jupyterlab_hdh.egress import release as rel
from jupyterlab_hdh.egress.errors import NotFound, WrongState
from jupyterlab_hdh.store.models import AuditEvent, EgressRequest

from .airlock import ADMIN, BOB, CORA, RITA, draft, setup, state, submit, vote_all, write

REPO = Path(__file__).resolve().parents[2]
BIG = 3 * rel.CHUNK + 123  # several chunks: a kill while copying leaves a partial copy

CHILD = """
import pathlib, sys, time
from jupyterlab_hdh.context import open_installation
from jupyterlab_hdh.egress import release as rel
from jupyterlab_hdh.governance.projects import Actor
from jupyterlab_hdh.paths import DataDir

root, url, rid, pause_at, marker = sys.argv[1:]

def reached(what):  # atomically: the parent never reads a half-written marker
    pathlib.Path(marker + ".part").write_text(what)
    pathlib.Path(marker + ".part").replace(marker)

def hook(step):
    if step == pause_at:
        reached(step)
        time.sleep(600)

rel.STEP_HOOK = hook
hub = open_installation(DataDir(pathlib.Path(root), url))
rel.release(hub, int(rid), actor=Actor("rita", "reviewer"))
reached("finished")
"""


def _approved(hub: Any) -> int:
    ws = setup(hub)
    (ws / "big.bin").write_bytes(os.urandom(BIG))
    write(ws, "t.csv")
    write(ws, "code.py", "print(1)\n")
    rid = draft(hub, ("big.bin", "output"), ("t.csv", "output"), ("code.py", "code"))
    submit(hub, rid)
    vote_all(hub, rid, "approve")
    with hub.transaction() as s:
        m.approve(s, rid, actor=CORA)
    return rid


def _expected(hub: Any) -> dict[str, str]:
    ws = hub.data_dir.workspace("study")
    out = {}
    for name in ("big.bin", "t.csv"):
        sha = hashlib.sha256((ws / name).read_bytes()).hexdigest()
        out[f"{sha}-{name}"] = sha
    return out


def _visible(hub: Any, rid: int) -> dict[str, str]:
    """The files under their final names, with the sha256 of their content."""
    folder = hub.data_dir.outbox / str(rid)
    if not folder.exists():
        return {}
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.iterdir()
        if p.name != "tmp"
    }


def _released_events(hub: Any, rid: int) -> int:
    with hub.sessions() as s:
        return len(
            s.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "egress.released", AuditEvent.target == f"egress:{rid}"
                )
            ).all()
        )


def _kill_at(hub: Any, rid: int, step: str, tmp_path: Path) -> str:
    marker = tmp_path / f"marker-{step}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(hub.data_dir.root),
            hub.data_dir.store_url,
            str(rid),
            step,
            str(marker),
        ],
        env=env,
        cwd=REPO,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    reached = marker.read_text() if marker.exists() else "exited"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    return reached


STEPS = ["outbox_written", "committed", "copying", "copied", "renamed", "row_done", "released"]


@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_each_step_then_recover_gives_exactly_one_release(hub, step, tmp_path) -> None:
    rid = _approved(hub)
    expected = _expected(hub)
    assert _kill_at(hub, rid, step, tmp_path) == step
    # right after the kill: every visible file is complete (its content has its name's hash)
    for name, sha in _visible(hub, rid).items():
        assert expected[name] == sha
    if step == "outbox_written":  # the transaction never committed: nothing happened
        assert state(hub, rid) == "approved"
        assert _visible(hub, rid) == {}
    elif step == "copying":
        assert list((hub.data_dir.outbox / str(rid) / "tmp").iterdir())  # the partial copy
    assert rel.recover(hub) == (
        [] if step in ("outbox_written", "released") else [(rid, "released")]
    )
    if step == "outbox_written":
        assert state(hub, rid) == "approved"
        assert rel.release(hub, rid, actor=RITA) is True
    assert state(hub, rid) == "released"
    assert _visible(hub, rid) == expected
    assert not (hub.data_dir.outbox / str(rid) / "tmp").exists()
    assert _released_events(hub, rid) == 1
    assert rel.recover(hub) == []  # nothing left to do; a second run changes nothing
    with pytest.raises(WrongState):
        rel.release(hub, rid, actor=RITA)
    assert _released_events(hub, rid) == 1
    with hub.sessions() as s:
        assert [n["kind"] for n in m.notifications(s, "alice")].count("released") == 1
        assert verify(s).ok


def test_kill_9_at_random_moments_never_shows_a_partial_file(hub, tmp_path) -> None:
    """Kill the release after a growing delay, whatever it is doing, until one completes."""
    rid = _approved(hub)
    expected = _expected(hub)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for attempt in range(12):
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                str(hub.data_dir.root),
                hub.data_dir.store_url,
                str(rid),
                "never",
                str(tmp_path / f"m{attempt}"),
            ],
            env=env,
            cwd=REPO,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.3 + 0.15 * attempt)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        for name, sha in _visible(hub, rid).items():
            assert expected[name] == sha
        rel.recover(hub)
        assert state(hub, rid) in ("approved", "released")
        if state(hub, rid) == "released":
            break
    else:
        assert rel.release(hub, rid, actor=RITA)
    assert _visible(hub, rid) == expected
    assert _released_events(hub, rid) == 1


def test_delivering_twice_copies_once(hub) -> None:
    rid = _approved(hub)
    assert rel.release(hub, rid, actor=ADMIN) is True  # an operator may start a release
    stamp = {p: p.stat().st_mtime_ns for p in (hub.data_dir.outbox / str(rid)).iterdir()}
    assert rel.deliver(hub, rid) is True
    assert {p: p.stat().st_mtime_ns for p in (hub.data_dir.outbox / str(rid)).iterdir()} == stamp


def test_a_tampered_snapshot_is_never_released(hub) -> None:
    rid = _approved(hub)
    name = next(n for n in _expected(hub) if n.endswith("t.csv"))
    blob = hub.data_dir.egress_blobs / name.split("-")[0]
    blob.chmod(0o644)
    blob.write_text("group,count\na,1\n")  # altered on disk after approval
    with pytest.raises(rel.ReleaseError, match="does not match"):
        rel.release(hub, rid, actor=RITA)
    assert name not in _visible(hub, rid)
    assert state(hub, rid) == "releasing"
    assert rel.recover(hub)[0][1].startswith("failed")
    assert state(hub, rid) == "releasing"  # stuck visibly, never released with other bytes


def test_only_members_download_and_only_after_release(hub) -> None:
    rid = _approved(hub)
    name = next(iter(_expected(hub)))
    with hub.sessions() as s, pytest.raises(WrongState, match="nothing is released"):
        rel.released_file(s, hub.data_dir, rid, name, actor=BOB)
    rel.release(hub, rid, actor=RITA)
    with hub.sessions() as s:
        assert rel.released_file(s, hub.data_dir, rid, name, actor=BOB).is_file()
        for outsider in (RITA, ADMIN):
            with pytest.raises(NotFound):
                rel.released_file(s, hub.data_dir, rid, name, actor=outsider)
        req = s.get(EgressRequest, rid)
        assert req is not None and req.state == "released"


def test_old_orphan_snapshots_are_swept_and_referenced_ones_kept(hub) -> None:
    from jupyterlab_hdh.egress import manager as m
    from jupyterlab_hdh.egress.release import remove_orphan_blobs
    from tests.egress.airlock import ALICE, draft, setup, write

    ws = setup(hub)
    write(ws, "t.csv", "group,count\na,12\nb,15\n")
    rid = draft(hub, ("t.csv", "output"))
    write(ws, "t.csv", "group,count\na,13\nb,15\n")  # replaced: the first copy is now orphan
    with hub.transaction() as s:
        m.add_file(s, hub.data_dir, rid, "t.csv", role="output", actor=ALICE)
    blobs = hub.data_dir.egress_blobs
    with hub.sessions() as s:
        [current] = [f.sha256 for f in m._unlocked(s, rid).files]
    [orphan] = [p.name for p in blobs.iterdir() if p.name != current]
    (blobs / ".part-crashed").write_bytes(b"half a copy")
    assert remove_orphan_blobs(hub) == []  # too young: may belong to a step in progress
    old = time.time() - 7200
    for p in blobs.iterdir():
        os.utime(p, (old, old), follow_symlinks=False)
    assert remove_orphan_blobs(hub) == sorted([orphan, ".part-crashed"])
    assert [p.name for p in blobs.iterdir()] == [current]


def test_a_snapshot_reusing_an_old_orphan_copy_is_not_swept_before_its_row(hub) -> None:
    from jupyterlab_hdh.egress import manager as m
    from jupyterlab_hdh.egress.release import remove_orphan_blobs
    from jupyterlab_hdh.egress.snapshot import snapshot
    from tests.egress.airlock import ALICE, draft, setup, write

    ws = setup(hub)
    write(ws, "t.csv", "group,count\na,12\nb,15\n")
    rid = draft(hub, ("t.csv", "output"))
    with hub.transaction() as s:
        m.remove_file(s, rid, "t.csv", actor=ALICE)  # its copy is an orphan now
    blobs = hub.data_dir.egress_blobs
    [orphan] = [p.name for p in blobs.iterdir()]
    old = time.time() - 7200
    os.utime(blobs / orphan, (old, old))
    # a step copies the same content again (its row not committed yet): the copy is reused
    assert snapshot(ws, "t.csv", blobs).sha256 == orphan
    assert remove_orphan_blobs(hub) == []  # fresh again: left to that step
    assert (blobs / orphan).exists()
