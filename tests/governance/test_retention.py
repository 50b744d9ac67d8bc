"""Permit lifecycle (issue 14, item 2): when a project's permit ends, its workspace is
archived read-only for the retention period; a renewal reopens it; past the period an
operator purges it. Every step audited. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jupyterlab_hdh import workspace_files
from jupyterlab_hdh.cli import main
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance import retention as rt
from jupyterlab_hdh.store.models import AuditEvent
from tests.governance.conftest import CONTROLLER

DAY = timedelta(days=1)


@pytest.fixture
def ended(world: Any) -> tuple[Any, Path]:
    """cohort-2027 with a permit, then revoked; its workspace holds files, a folder and a
    link to a file outside it."""
    with world.transaction() as s:
        permit = pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + 30 * DAY,
            actor=CONTROLLER,
        )
        pid = permit.id
    ws = world.data_dir.workspace("cohort-2027")
    (ws / "results").mkdir(parents=True)
    (ws / "analysis.ipynb").write_text("{}")
    (ws / "results" / "table.csv").write_text("a,1\n")
    outside = world.data_dir.root / "outside.txt"
    outside.write_text("not the project's")
    (ws / "link").symlink_to(outside)
    with world.transaction() as s:
        pj.revoke_permit(s, pid, reason="study stopped", actor=CONTROLLER)
    return world, ws


def _writable(p: Path) -> bool:
    return bool(os.lstat(p).st_mode & 0o222)


def test_an_ended_permit_archives_the_workspace_read_only(ended) -> None:
    hub, ws = ended
    with hub.transaction() as s:
        outcomes = rt.sweep(s, hub.data_dir, settings=rt.RetentionSettings(days=90))
    assert [(o.project, o.action) for o in outcomes] == [("cohort-2027", "archived")]
    for p in (ws, ws / "results", ws / "analysis.ipynb", ws / "results" / "table.csv"):
        assert not _writable(p), p
    assert _writable(hub.data_dir.root / "outside.txt")  # never through the link
    marker = rt.archive_of(hub.data_dir, "cohort-2027")
    assert marker is not None and marker["files"] == 2 and "revoked" in marker["reason"]
    until = datetime.fromisoformat(marker["until"])
    assert 89 <= (until - datetime.now(UTC)).days <= 90
    assert rt.verify(hub.data_dir, "cohort-2027") == []
    with hub.sessions() as s:
        ev = s.query(AuditEvent).filter_by(action="workspace.archive").one()
        assert json.loads(ev.details)["manifest_sha256"] == marker["manifest_sha256"]
        # idempotent: a second sweep changes nothing
    with hub.transaction() as s:
        assert rt.sweep(s, hub.data_dir) == []


def test_a_change_to_an_archive_is_detected(ended) -> None:
    hub, ws = ended
    with hub.transaction() as s:
        rt.sweep(s, hub.data_dir)
    os.chmod(ws / "results" / "table.csv", 0o644)  # someone with the rights edits it
    (ws / "results" / "table.csv").write_text("a,2\n")
    assert rt.verify(hub.data_dir, "cohort-2027") == ["changed: results/table.csv"]


def test_a_renewal_reopens_it_and_the_sandbox_may_write_again(ended) -> None:
    hub, ws = ended
    with hub.transaction() as s:
        rt.sweep(s, hub.data_dir)
    with hub.transaction() as s:
        pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + 30 * DAY,
            actor=CONTROLLER,
        )
    with hub.transaction() as s:
        outcomes = rt.sweep(s, hub.data_dir)
    assert [(o.project, o.action) for o in outcomes] == [("cohort-2027", "reopened")]
    assert rt.archive_of(hub.data_dir, "cohort-2027") is None
    (ws / "results" / "new.csv").write_text("b,2\n")
    (ws / "analysis.ipynb").write_text('{"cells": []}')
    with hub.sessions() as s:
        assert s.query(AuditEvent).filter_by(action="workspace.reopen").count() == 1


def test_purge_only_after_the_retention_period(ended) -> None:
    hub, ws = ended
    with hub.transaction() as s:
        rt.sweep(s, hub.data_dir, settings=rt.RetentionSettings(days=10))
    with pytest.raises(rt.RetentionError, match="kept until"), hub.transaction() as s:
        rt.purge(s, hub.data_dir, "cohort-2027", actor="op")
    assert ws.exists()
    later = datetime.now(UTC) + 11 * DAY
    with hub.transaction() as s:
        assert [o.action for o in rt.sweep(s, hub.data_dir, now=later)] == ["due"]
        rt.purge(s, hub.data_dir, "cohort-2027", actor="op", now=later)
    rt.remove(hub.data_dir, "cohort-2027")
    assert not ws.exists() and (hub.data_dir.root / "outside.txt").exists()
    assert rt.archive_of(hub.data_dir, "cohort-2027") is None
    with hub.sessions() as s:
        assert s.query(AuditEvent).filter_by(action="workspace.purge").count() == 1


def test_hdh_workspace_commands(ended) -> None:
    hub, ws = ended
    runner = CliRunner()
    args = ["--data-dir", str(hub.data_dir.root)]
    if hub.data_dir.store_url_override:
        args += ["--store-url", hub.data_dir.store_url]
    result = runner.invoke(main, [*args, "workspace", "sweep"])
    assert result.exit_code == 0, result.output
    assert "cohort-2027: archived until" in result.output
    result = runner.invoke(main, [*args, "workspace", "list"])
    assert "cohort-2027" in result.output and "2 files" in result.output
    result = runner.invoke(main, [*args, "workspace", "purge", "cohort-2027"])
    assert result.exit_code != 0 and "kept until" in result.output
    assert "Traceback" not in result.output
    assert ws.exists()


def test_retention_settings_are_checked(hub) -> None:
    path = hub.data_dir.root / "governance.toml"
    path.write_text("[retention]\ndays = 730\n")
    assert rt.RetentionSettings.load(hub.data_dir).days == 730
    path.write_text('[retention]\ndays = "forever"\n')
    with pytest.raises(rt.RetentionError, match="days must be a whole number"):
        rt.RetentionSettings.load(hub.data_dir)


def test_the_control_plane_sweeps_on_its_own(ended) -> None:
    from fastapi.testclient import TestClient

    from jupyterlab_hdh.api.app import create_app
    from tests.waiting import wait_for

    hub, ws = ended
    with TestClient(create_app(hub.data_dir, sweep_every=0.05)):
        marker = wait_for(
            lambda: rt.archive_of(hub.data_dir, "cohort-2027"), "the control plane's sweep"
        )
    assert marker["files"] == 2 and not _writable(ws)


def test_a_sandbox_swapping_a_file_for_a_link_or_a_fifo_during_the_archive_gains_nothing(
    ended, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive runs while a sandbox may still be stopping: an entry seen as a file can be
    a link to a host file, or a FIFO, by the time it is changed or read. The host file keeps
    its mode and the archive does not hang on the FIFO."""
    hub, ws = ended
    host_file = hub.data_dir.root / "outside.txt"  # stands for the store, a key...
    walk = workspace_files.walk

    def racing(root: Path, skip=()):  # the sandbox acts between the walk's look and the change
        for rel, dirfd, st in walk(root, skip):
            if rel == "analysis.ipynb":
                os.unlink(ws / "analysis.ipynb")
                os.symlink(host_file, ws / "analysis.ipynb")
            if rel == "results/table.csv":
                os.unlink(ws / "results" / "table.csv")
                os.mkfifo(ws / "results" / "table.csv")
            yield rel, dirfd, st

    monkeypatch.setattr(workspace_files, "walk", racing)
    with hub.transaction() as s:
        marker = rt.archive(
            s,
            hub.data_dir,
            "cohort-2027",
            actor="op",
            reason="test",
            settings=rt.RetentionSettings(1),
        )
    assert _writable(host_file)  # never changed through the link
    assert marker["files"] == 0  # the link and the FIFO are no files of the archive
